"""One test per category of bad input that the independent probe (tools/probe_api.py) found
getting through: each must now raise TypeError or ValueError naming the argument, and the
valid neighbour of each bad input must still be accepted."""

from __future__ import annotations

import math

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from rlbook import validate
from rlbook.algos.numpy_pg import NumpyPGConfig, grad_log_softmax_policy
from rlbook.algos.ppo import PPOConfig
from rlbook.algos.reinforce import (
    ReinforceConfig,
    fit_value,
    reinforce_weights,
    train_reinforce,
)
from rlbook.checkpoint import load_policy, save_policy
from rlbook.claims import claim
from rlbook.display import show_source
from rlbook.history import History
from rlbook.importance import is_estimate, weighted_is_estimate
from rlbook.plotting import curves_on_grid, plot_learning_curves
from rlbook.policies import CategoricalPolicy, ValueNet, check_net_fits, mlp
from rlbook.returns import reward_to_go
from rlbook.rollout import Evaluator, autoreset_mode, collect, evaluate, make_envs
from rlbook.utils import generator
from rlbook.video import record_episode, to_gif

matplotlib.use("Agg")


@pytest.fixture
def envs():
    envs = make_envs("CartPole-v1", 2)
    yield envs
    envs.close()


def _history() -> History:
    h = History()
    h.log(env_steps=10, mean_return=1.0)
    h.log(env_steps=20, mean_return=3.0)
    return h


def test_config_fields_are_checked_when_changed_after_the_config_is_made() -> None:
    cfg = PPOConfig()
    cfg.lr = np.float32(0.01)  # a valid change is stored as the field's type
    assert type(cfg.lr) is float
    with pytest.raises(ValueError, match="lr must be a finite number positive"):
        cfg.lr = -0.2
    assert cfg.lr == pytest.approx(0.01)  # the config kept its value
    with pytest.raises(ValueError, match="num_steps must be at least 2"):
        cfg.num_steps = 1
    assert cfg.num_steps == 32
    with pytest.raises(ValueError, match="stop_at_eval needs evaluations"):
        cfg.stop_at_eval = 400.0
    cfg.eval_every, cfg.stop_at_eval = 1000, 400.0
    numpy_cfg = NumpyPGConfig()
    with pytest.raises(TypeError, match="iterations must be an integer"):
        numpy_cfg.iterations = 2.5


def test_environment_ids_are_checked_where_they_are_given() -> None:
    assert validate.env_id("env_id", "CartPole-v1") == "CartPole-v1"
    with pytest.raises(ValueError, match="env_id must name a registered environment"):
        Evaluator("NoSuchEnv-v0", 100)
    with pytest.raises(TypeError, match="env_id must be a str"):
        Evaluator(None, 100)
    with pytest.raises(ValueError, match="env_or_id must name a registered"):
        record_episode("NoSuchEnv-v0", lambda obs: 0)
    with pytest.raises(TypeError, match="env_or_id must be an Env"):
        record_episode(3, lambda obs: 0)
    with pytest.raises(TypeError, match="envs must be a gymnasium vector environment"):
        autoreset_mode("envs")


def test_networks_must_read_the_environments_observations(envs) -> None:
    check_net_fits("policy", CategoricalPolicy(4, 2), envs.single_observation_space)
    with pytest.raises(ValueError, match="value_fn reads observations of length"):
        collect(envs, CategoricalPolicy(4, 2), 2, value_fn=ValueNet(3))
    with pytest.raises(TypeError, match="value_fn must be a Module"):
        collect(envs, CategoricalPolicy(4, 2), 2, value_fn="v")
    cfg = ReinforceConfig(num_envs=2, iterations=1, hidden=(4,))
    with pytest.raises(ValueError, match="value_fn reads observations of length"):
        train_reinforce("CartPole-v1", cfg, value_fn=ValueNet(3))
    with pytest.raises(TypeError, match="policy must be a Module"):
        train_reinforce("CartPole-v1", cfg, policy="p")
    with pytest.raises(ValueError, match="policy reads observations of length"):
        train_reinforce("CartPole-v1", cfg, policy=CategoricalPolicy(3, 2))


def test_non_finite_observations_and_values_are_refused_where_they_enter() -> None:
    policy, value_fn = CategoricalPolicy(4, 2, (8,)), ValueNet(4, (8,))
    with pytest.raises(ValueError, match="obs must be finite"):
        policy.dist(torch.full((1, 4), math.nan))
    with pytest.raises(ValueError, match="obs must be finite"):
        value_fn(torch.full((1, 4), math.inf))
    with pytest.raises(TypeError, match="obs must hold real numbers"):
        policy.dist(torch.zeros(1, 4, dtype=torch.complex64))
    # integer and float64 observations are converted, not refused
    assert policy.dist(torch.zeros(2, 4, dtype=torch.int64)).probs.shape == (2, 2)
    for estimate in (is_estimate, weighted_is_estimate):
        with pytest.raises(ValueError, match="values must be finite"):
            estimate(torch.ones(2), torch.tensor([math.inf, 1.0]))
    with pytest.raises(ValueError, match="weights must be finite"):
        is_estimate(torch.tensor([math.inf, 1.0]), torch.ones(2))


def test_reinforce_weights_checks_its_batch_and_values(envs) -> None:
    batch = collect(envs, CategoricalPolicy(4, 2, (8,)), 4, seed=0)
    assert reinforce_weights(batch).shape == (4, 2)
    with pytest.raises(TypeError, match="batch must be a Rollout"):
        reinforce_weights({})
    with pytest.raises(TypeError, match="normalize_weights must be True or False"):
        reinforce_weights(batch, normalize_weights="yes")
    with pytest.raises(ValueError, match="weights must be one of"):
        reinforce_weights(batch, weights="returns")
    with pytest.raises(ValueError, match="values must be finite"):
        reinforce_weights(batch, baseline="value", values=torch.full((4, 2), math.nan))
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        reinforce_weights(batch, baseline="value", values=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="values must have the shape of batch.rewards"):
        reinforce_weights(batch, baseline="value", values=torch.zeros(2, 2))
    value_fn = ValueNet(4, (8,))
    with pytest.raises(TypeError, match="optimizer must be an Optimizer"):
        fit_value(value_fn, "adam", batch.obs, batch.rewards, batch.mask, 1)


def test_flags_are_true_or_false(envs) -> None:
    policy = CategoricalPolicy(4, 2, (8,))
    with pytest.raises(TypeError, match="deterministic must be True or False"):
        evaluate("CartPole-v1", policy, 1, deterministic="yes")
    with pytest.raises(TypeError, match="deterministic must be True or False"):
        Evaluator("CartPole-v1", 10, deterministic=None)
    with pytest.raises(TypeError, match="title must be True or False"):
        show_source(reward_to_go, title="yes")
    with pytest.raises(TypeError, match="previous must be a Rollout"):
        collect(envs, policy, 2, previous={})


def test_seeds_are_checked_when_given_not_when_used() -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        Evaluator("CartPole-v1", 10, seed=-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        Evaluator("CartPole-v1", 10, seed=1.5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        generator(None)
    assert generator(np.int64(3)).initial_seed() == generator(3).initial_seed()


def test_layers_take_module_classes() -> None:
    assert isinstance(mlp([4, 2, 1], nn.ReLU, nn.Tanh)[-1], nn.Tanh)
    with pytest.raises(TypeError, match="activation must be a torch.nn.Module class"):
        mlp([4, 2, 1], "tanh")
    with pytest.raises(TypeError, match="output_activation must be a torch.nn.Module"):
        mlp([4, 2], nn.Tanh, nn.Tanh())


def test_history_metrics_are_real_numbers_named_by_their_key() -> None:
    h = History()
    h.log(loss=torch.tensor(0.5), steps=np.int64(3), mean_return=math.nan)
    assert h["steps"][0] == 3.0 and math.isnan(h["mean_return"][0])
    for bad in ("high", None, [1.0], torch.ones(2)):
        with pytest.raises(TypeError, match="loss must be a real number"):
            History().log(loss=bad)
    h = _history()
    assert h.first_reach("mean_return", np.int64(2)) == 20.0
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        h.first_reach("mean_return", math.nan)
    with pytest.raises(TypeError, match="threshold must be a real number"):
        h.first_reach("mean_return", "2")
    with pytest.raises(TypeError, match="key must be a str"):
        h.first_reach(3, 1.0)


def test_plotting_checks_its_runs_grid_and_options() -> None:
    h = _history()
    assert curves_on_grid([h, h], num=np.int64(5))[1].shape == (2, 5)
    with pytest.raises(TypeError, match="histories must be a list of History"):
        curves_on_grid(h)
    with pytest.raises(TypeError, match=r"histories\[...\] must be a History"):
        curves_on_grid([{"mean_return": 1.0}])
    with pytest.raises(ValueError, match="num must be a positive integer"):
        curves_on_grid([h], num=0)
    with pytest.raises(TypeError, match="runs must be a Mapping"):
        plot_learning_curves([h])
    with pytest.raises(ValueError, match="runs must map at least one label"):
        plot_learning_curves({})
    with pytest.raises(TypeError, match=r"runs\['a'\] must be a list of History"):
        plot_learning_curves({"a": h})
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        plot_learning_curves({"a": [h]}, threshold=math.nan)
    with pytest.raises(TypeError, match="ax must be an Axes"):
        plot_learning_curves({"a": [h]}, ax="ax")


def test_video_checks_the_path_and_the_actions_a_policy_returns() -> None:
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(TypeError, match="path must be a str or PathLike"):
        to_gif([frame], path=3)
    assert len(record_episode("CartPole-v1", lambda obs: np.int64(1), max_steps=2)) >= 2
    assert len(record_episode("CartPole-v1", lambda obs: 1.0, max_steps=2)) >= 2
    for action, kind in (("left", TypeError), (0.7, ValueError), (7, ValueError)):
        with pytest.raises(kind, match="policy_fn"):
            record_episode("CartPole-v1", lambda obs, a=action: a, max_steps=2)
    env = gym.make("rlbook/ContinuousCartPole-v1", render_mode="rgb_array")
    with pytest.raises(ValueError, match="policy_fn must return 1 finite numbers"):
        record_episode(env, lambda obs: np.array([math.nan]), max_steps=2)
    env.close()


def test_claim_bounds_must_be_finite_and_texts_strings() -> None:
    claim("ch1-probe", "a valid claim", np.float32(0.5), below=np.int64(1))
    with pytest.raises(ValueError, match="below must be a finite number, got nan"):
        claim("ch1-probe", "x", 0.5, below=math.nan)
    with pytest.raises(ValueError, match="above must be a finite number, got inf"):
        claim("ch1-probe", "x", 0.5, above=math.inf)
    with pytest.raises(TypeError, match="id must be a str"):
        claim(None, "x", 0.5, below=1.0)
    with pytest.raises(TypeError, match="text must be a str"):
        claim("ch1-probe", None, 0.5, below=1.0)


def test_load_policy_checks_map_location_before_blaming_the_file(tmp_path) -> None:
    path = save_policy(CategoricalPolicy(4, 2, (8,)), tmp_path / "p.pt")
    assert isinstance(load_policy(path, map_location=torch.device("cpu")), nn.Module)
    with pytest.raises(ValueError, match="map_location must name a torch device"):
        load_policy(path, map_location="nonsense")
    with pytest.raises(TypeError, match="map_location must be a str or device"):
        load_policy(path, map_location=3.5)


def test_numpy_gradient_checks_its_actions() -> None:
    theta, x = np.zeros((5, 2)), np.ones((3, 5))
    assert grad_log_softmax_policy(theta, x, np.array([0, 1, 1])).shape == (3, 5, 2)
    with pytest.raises(ValueError, match="actions must be in 0 .. 1"):
        grad_log_softmax_policy(theta, x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="actions must be an integer array"):
        grad_log_softmax_policy(theta, x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        grad_log_softmax_policy(theta, torch.ones(3, 5), np.array([0, 1, 1]))


def test_numpy_helpers_take_numpy_arrays_of_finite_numbers(envs) -> None:
    from rlbook.algos.numpy_pg import features, log_softmax, softmax
    from rlbook.algos.vpg import vpg_weights

    assert np.allclose(softmax(np.zeros((2, 3))), 1 / 3)
    with pytest.raises(TypeError, match="logits must be a NumPy array"):
        softmax([1.0, 2.0])
    with pytest.raises(ValueError, match="logits must be finite"):
        log_softmax(np.array([math.nan, 1.0]))
    with pytest.raises(TypeError, match="obs must be a NumPy array"):
        features(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="rollout must be a Rollout"):
        vpg_weights({}, "return")
