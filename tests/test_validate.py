"""One rule for bad input: the shared validators, one test per category, and a probe of the
public API with bad inputs, each of which must raise TypeError or ValueError naming the
argument."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlbook import validate
from rlbook.algos.ars import ARSConfig, ars_update, train_ars
from rlbook.algos.numpy_pg import NumpyPGConfig, train_numpy_pg
from rlbook.algos.ppo import PPOConfig, train_ppo
from rlbook.algos.reinforce import ReinforceConfig, fit_value, train_reinforce
from rlbook.algos.vpg import VPGConfig, train_vpg
from rlbook.checkpoint import CheckpointError, load_policy, save_policy
from rlbook.checks import ExerciseError, check_clip_objective, check_reward_to_go
from rlbook.importance import ess, importance_weights, is_estimate, per_decision_is
from rlbook.losses import (
    approx_kl,
    explained_variance,
    pg_loss,
    ppo_clip_loss,
    value_loss,
)
from rlbook.policies import (
    CategoricalPolicy,
    GaussianPolicy,
    ValueNet,
    mlp,
    orthogonal_init,
)
from rlbook.returns import (
    discounted_returns,
    gae,
    normalize,
    reward_to_go,
    successor_values,
)
from rlbook.rollout import Evaluator, collect, episode_returns, evaluate, make_envs
from rlbook.utils import set_seed
from rlbook.video import rgb_frame, to_gif

# ---------------------------------------------------------------------------------------------
# The validators, one category each
# ---------------------------------------------------------------------------------------------


def test_integers_of_numpy_type_are_integers_and_bools_are_not() -> None:
    assert validate.positive_int("n", np.int64(4)) == 4
    assert type(validate.positive_int("n", np.int32(4))) is int
    with pytest.raises(TypeError, match="n must be an integer, got True"):
        validate.positive_int("n", True)
    with pytest.raises(TypeError, match="n must be an integer"):
        validate.positive_int("n", 2.0)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        validate.positive_int("n", 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        validate.non_negative_int("seed", -1)


def test_numbers_must_be_real_finite_and_in_range() -> None:
    assert validate.unit_interval("gamma", np.float32(0.5)) == 0.5
    assert validate.unit_interval("gamma", torch.tensor(1.0)) == 1.0
    assert validate.positive("clip_coef", math.inf, allow_inf=True) == math.inf
    for bad in (math.nan, math.inf, -0.1, 1.5):
        with pytest.raises(ValueError, match="gamma must be"):
            validate.unit_interval("gamma", bad)
    for bad in ("0.9", None, True, torch.ones(2)):
        with pytest.raises(TypeError, match="gamma must be a real number"):
            validate.unit_interval("gamma", bad)
    with pytest.raises(ValueError, match="lr must be a finite number positive"):
        validate.positive("lr", -0.2)
    with pytest.raises(ValueError, match="fraction"):
        validate.probability("fraction", 0.0)
    assert validate.probability("fraction", 1) == 1.0


def test_flags_choices_and_optional_values() -> None:
    assert validate.flag("progress", np.bool_(True)) is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="progress must be True or False"):
            validate.flag("progress", bad)
    with pytest.raises(ValueError, match="baseline must be one of None, 'mean'"):
        validate.choice("baseline", "Mean", (None, "mean", "value"))
    assert validate.optional(validate.positive_int, "every", None) is None
    with pytest.raises(ValueError, match="every"):
        validate.optional(validate.positive_int, "every", 0)


def test_layer_sizes_are_a_non_empty_sequence_of_positive_integers() -> None:
    assert validate.layer_sizes("hidden", [np.int64(8), 4]) == (8, 4)
    with pytest.raises(TypeError, match="hidden must be a non-empty sequence"):
        validate.layer_sizes("hidden", 32)
    with pytest.raises(TypeError, match="hidden"):
        validate.layer_sizes("hidden", "64")
    for bad in ((), (0,), (8, -1)):
        with pytest.raises(ValueError, match="hidden"):
            validate.layer_sizes("hidden", bad)
    assert validate.layer_sizes("hidden", (), allow_empty=True) == ()


def test_tensors_are_tensors_of_the_right_shape_and_not_empty() -> None:
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got an ndarray"):
        validate.tensor("x", np.zeros(3))
    with pytest.raises(ValueError, match="x must not be empty"):
        validate.tensor("x", torch.zeros(0, 3))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        validate.tensor("x", torch.zeros(3), ndim=2)
    with pytest.raises(ValueError, match=r"y must have the shape of x \(3,\)"):
        validate.same_shape("y", torch.zeros(4), "x", torch.zeros(3))


def test_integer_rewards_are_promoted_not_truncated() -> None:
    rewards = torch.tensor([[1], [1], [1]])
    dones = torch.tensor([[False], [False], [True]])
    out = reward_to_go(rewards, dones, 0.5)
    assert out.is_floating_point()
    assert out[:, 0].tolist() == [1.75, 1.5, 1.0]
    values = torch.zeros(3, 1)
    advantages, _ = gae(
        rewards, values, values, dones, torch.zeros_like(dones), 0.5, 1.0
    )
    assert advantages[:, 0].tolist() == [1.75, 1.5, 1.0]
    x = validate.float_tensor("x", torch.tensor([1.0]))
    assert validate.float_tensor("x", x) is x  # a float tensor is not copied


def test_non_finite_values_are_refused_where_they_enter() -> None:
    rewards = torch.ones(4, 2)
    rewards[3, 1] = math.inf  # after the first column's episode ended
    dones = torch.zeros(4, 2, dtype=torch.bool)
    dones[1, 0] = True
    with pytest.raises(ValueError, match="rewards must be finite"):
        reward_to_go(rewards, dones)
    with pytest.raises(ValueError, match="x must be finite"):
        normalize(torch.tensor([1.0, math.inf, 2.0]))
    with pytest.raises(ValueError, match="weights must be finite"):
        pg_loss(torch.zeros(3), torch.tensor([1.0, math.nan, 0.0]))
    with pytest.raises(ValueError, match="r_plus must be finite"):
        ars_update(np.array([1.0, np.inf]), np.zeros(2), np.zeros((2, 1, 1)), 1, 0.1)


class NaNObservation(gym.Env):
    """Observation 0, then NaN from the third step on; never ends."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(1, np.nan if self.t >= 3 else 0.0, np.float32)
        return obs, 1.0, False, False, {}


def test_an_environment_that_returns_nan_is_refused_by_collect() -> None:
    envs = gym.vector.SyncVectorEnv([NaNObservation, NaNObservation])
    with pytest.raises(ValueError, match="envs must return finite observations"):
        collect(envs, CategoricalPolicy(1, 2, hidden=(4,)), 5, seed=0)
    envs.close()


def test_masks_are_bool_or_zero_one_and_empty_batches_are_refused() -> None:
    x = torch.tensor([1.0, 2.0, 4.0])
    as_bool = pg_loss(x, x, torch.tensor([True, False, True]))
    assert pg_loss(x, x, torch.tensor([1.0, 0.0, 1.0])) == as_bool
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        pg_loss(x, x, torch.tensor([0.5, 0.0, 1.0]))
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        pg_loss(x, x, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="mask must select at least one step"):
        pg_loss(x, x, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="log_probs must not be empty"):
        pg_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        value_loss(np.zeros(3), torch.zeros(3))


def test_configs_reject_nonsense_when_built() -> None:
    with pytest.raises(ValueError, match="lr must be a finite number positive"):
        NumpyPGConfig(lr=-0.2)
    with pytest.raises(TypeError, match="num_envs must be an integer, got True"):
        VPGConfig(num_envs=True)
    with pytest.raises(TypeError, match="hidden must be a non-empty sequence"):
        ReinforceConfig(hidden=32)
    with pytest.raises(ValueError, match="hidden"):
        PPOConfig(hidden=(64, 0))
    with pytest.raises(ValueError, match="num_steps must be at least 2"):
        PPOConfig(num_envs=1, num_steps=1)
    with pytest.raises(ValueError, match="num_minibatches must be a positive integer"):
        PPOConfig(num_minibatches=0)
    with pytest.raises(ValueError, match="num_minibatches must be at most"):
        PPOConfig(num_envs=2, num_steps=2, num_minibatches=5)
    with pytest.raises(ValueError, match="noise"):
        ARSConfig(noise=math.inf)
    assert PPOConfig(num_envs=np.int64(2)).num_envs == 2


@pytest.mark.parametrize(
    ("train", "cfg", "expected"),
    [
        (train_vpg, PPOConfig(), "VPGConfig"),
        (train_ppo, VPGConfig(), "PPOConfig"),
        (train_reinforce, ARSConfig(), "ReinforceConfig"),
        (train_ars, ReinforceConfig(), "ARSConfig"),
        (train_numpy_pg, VPGConfig(), "NumpyPGConfig"),
    ],
)
def test_a_train_function_given_another_algorithms_config_says_so(
    train, cfg, expected
) -> None:
    with pytest.raises(
        TypeError, match=f"cfg must be an? {expected}, got {type(cfg).__name__}"
    ):
        train("CartPole-v1", cfg)


def test_float_frames_in_the_unit_interval_are_scaled_and_others_refused() -> None:
    frame = np.full((4, 4, 3), 0.5, dtype=np.float32)
    assert (rgb_frame("frame", frame) == 128).all()
    assert to_gif([frame, frame]).startswith(b"GIF89a")
    with pytest.raises(
        ValueError, match=r"frames\[0\] must hold uint8 values or floats"
    ):
        to_gif([frame * 255])
    with pytest.raises(ValueError, match="must be an \\(H, W, 3\\) RGB image"):
        rgb_frame("frame", np.zeros((4, 4), np.uint8))


def test_checkpoints_say_what_is_wrong_with_a_file(tmp_path) -> None:
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    path = save_policy(policy, tmp_path / "p.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_policy(empty)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        load_policy(cut)
    # weights overwritten after saving: the stored checksum no longer matches
    data = torch.load(path, weights_only=True)
    data["state_dict"]["net.0.weight"][0, 0] += 1.0
    torch.save(data, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_policy(tmp_path / "edited.pt")
    # arguments of one network, weights of another
    data = torch.load(path, weights_only=True)
    data["kwargs"]["hidden"] = [16]
    torch.save(data, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="another architecture"):
        load_policy(tmp_path / "other.pt")

    class Sub(CategoricalPolicy):
        pass

    with pytest.raises(TypeError, match="exactly a CategoricalPolicy.*got Sub"):
        save_policy(Sub(4, 2, hidden=(8,)), tmp_path / "sub.pt")
    assert torch.equal(load_policy(path)(torch.ones(4)), policy(torch.ones(4)))


def test_graders_report_the_learners_mistakes_with_a_hint() -> None:
    def returns_text(rewards, dones, gamma):
        return "reward to go"

    with pytest.raises(ExerciseError, match="returned a str .* expected numbers"):
        check_reward_to_go(returns_text, seed=0, n_random=2)

    def in_place(rewards, dones, gamma):
        out = reward_to_go(rewards, dones, gamma)
        rewards.mul_(2.0)
        return out

    with pytest.raises(ExerciseError, match="changed its argument 'rewards' in place"):
        check_reward_to_go(in_place, seed=0, n_random=2)

    def through_numpy(ratio, advantages, clip_coef):
        r, a = ratio.numpy(), advantages.numpy()
        return torch.as_tensor(
            np.minimum(r * a, np.clip(r, 1 - clip_coef, 1 + clip_coef) * a)
        )

    with pytest.raises(
        ExerciseError, match="Hint: .numpy\\(\\) was called on a tensor"
    ):
        check_clip_objective(through_numpy)


# ---------------------------------------------------------------------------------------------
# The probe: bad inputs across the public API; each must raise TypeError or ValueError whose
# message names the argument. None may return silently.
# ---------------------------------------------------------------------------------------------

R = torch.ones(3, 2)
D = torch.zeros(3, 2, dtype=torch.bool)
V = torch.zeros(3, 2)


def _gae(**kwargs):
    args = dict(
        rewards=R, values=V, next_values=V, terminated=D, truncated=D, gamma=0.9
    )
    return gae(**{**args, **kwargs})


PROBES = [
    # returns
    ("rewards", lambda: reward_to_go(R.numpy(), D)),
    ("rewards", lambda: reward_to_go(torch.ones(3), torch.zeros(3, dtype=torch.bool))),
    ("rewards", lambda: reward_to_go(torch.zeros(0, 2), torch.zeros(0, 2).bool())),
    ("rewards", lambda: reward_to_go(R * math.nan, D)),
    ("rewards", lambda: reward_to_go(R.to(torch.complex64), D)),
    ("dones", lambda: reward_to_go(R, D[:2])),
    ("dones", lambda: reward_to_go(R, D.numpy())),
    ("dones", lambda: reward_to_go(R, torch.full((3, 2), 0.5))),
    ("gamma", lambda: reward_to_go(R, D, 1.01)),
    ("gamma", lambda: reward_to_go(R, D, "1")),
    ("gamma", lambda: reward_to_go(R, D, None)),
    ("mask", lambda: discounted_returns(R, D, mask=D[:1])),
    ("mask", lambda: discounted_returns(R, D, mask=D.numpy())),
    ("x", lambda: normalize([1.0, 2.0])),
    ("x", lambda: normalize(torch.tensor([1.0, math.nan]))),
    ("mask", lambda: normalize(torch.ones(3), torch.zeros(3, dtype=torch.bool))),
    ("values", lambda: successor_values(torch.ones(3), torch.ones(2), V, D)),
    ("last_values", lambda: successor_values(V, torch.ones(3), V, D)),
    ("last_values", lambda: successor_values(V, 0.0, V, D)),
    ("final_values", lambda: successor_values(V, torch.ones(2), V[:2], D)),
    ("dones", lambda: successor_values(V, torch.ones(2), V, D.numpy())),
    ("rewards", lambda: _gae(rewards=R.tolist())),
    ("rewards", lambda: _gae(rewards=R * math.inf)),
    ("values", lambda: _gae(values=V[:2])),
    ("values", lambda: _gae(values=V * math.nan)),
    ("next_values", lambda: _gae(next_values=0.0)),
    ("terminated", lambda: _gae(terminated=D.float() + 0.5)),
    ("truncated", lambda: _gae(truncated=D.numpy())),
    ("mask", lambda: _gae(mask=D[:, :1])),
    ("gae_lambda", lambda: _gae(gae_lambda=2.0)),
    ("gae_lambda", lambda: _gae(gae_lambda=True)),
    ("gamma", lambda: _gae(gamma=math.nan)),
    # losses
    ("log_probs", lambda: pg_loss(np.zeros(3), torch.zeros(3))),
    ("weights", lambda: pg_loss(torch.zeros(3), torch.zeros(4))),
    ("weights", lambda: pg_loss(torch.zeros(3), [0.0, 0.0, 0.0])),
    ("log_probs", lambda: pg_loss(torch.zeros(0), torch.zeros(0))),
    ("mask", lambda: pg_loss(torch.zeros(3), torch.zeros(3), torch.ones(2).bool())),
    ("returns", lambda: value_loss(torch.zeros(3), torch.ones(3) * math.nan)),
    ("returns", lambda: value_loss(torch.zeros(3), np.zeros(3))),
    ("values", lambda: value_loss(torch.zeros(0), torch.zeros(0))),
    ("old_log_probs", lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(2), V[0])),
    ("advantages", lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(3), None)),
    (
        "clip_coef",
        lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(3), torch.ones(3), 0),
    ),
    (
        "clip_coef",
        lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(3), torch.ones(3), "x"),
    ),
    ("new_log_probs", lambda: approx_kl(torch.zeros(0), torch.zeros(0))),
    # importance sampling
    ("log_p_behaviour", lambda: importance_weights(torch.zeros(2), torch.zeros(3))),
    ("log_p_target", lambda: importance_weights("abc", torch.zeros(1))),
    ("log_p_target", lambda: importance_weights(None, torch.zeros(1))),
    ("weights", lambda: is_estimate(torch.zeros(0), torch.zeros(0))),
    ("weights", lambda: ess(torch.tensor([1.0, math.inf]))),
    ("rewards", lambda: per_decision_is(torch.ones(2, 3) * math.inf, V.T, V.T)),
    ("gamma", lambda: per_decision_is(V.T, V.T, V.T, gamma=-1)),
    # policies
    ("sizes", lambda: mlp([4])),
    ("sizes", lambda: mlp(4)),
    ("hidden", lambda: CategoricalPolicy(4, 2, hidden=32)),
    ("hidden", lambda: CategoricalPolicy(4, 2, hidden=(0,))),
    ("n_actions", lambda: CategoricalPolicy(4, 1)),
    ("n_actions", lambda: CategoricalPolicy(4, True)),
    ("obs_dim", lambda: CategoricalPolicy(4.0, 2)),
    ("act_dim", lambda: GaussianPolicy(3, 0)),
    ("log_std_init", lambda: GaussianPolicy(3, 1, log_std_init=math.nan)),
    ("obs_dim", lambda: ValueNet(0)),
    ("obs", lambda: CategoricalPolicy(4, 2).dist(torch.zeros(3))),
    ("obs", lambda: CategoricalPolicy(4, 2).dist("obs")),
    # rollouts
    ("num_envs", lambda: make_envs("CartPole-v1", np.float64(2))),
    (
        "num_steps",
        lambda: collect(make_envs("CartPole-v1", 2), CategoricalPolicy(4, 2), 0),
    ),
    ("envs", lambda: collect(gym.make("CartPole-v1"), CategoricalPolicy(4, 2), 3)),
    ("num_episodes", lambda: evaluate("CartPole-v1", CategoricalPolicy(4, 2), 0)),
    (
        "num_episodes",
        lambda: episode_returns("CartPole-v1", CategoricalPolicy(4, 2), 0),
    ),
    ("every", lambda: Evaluator("CartPole-v1", 0)),
    ("seed", lambda: set_seed(-1)),
    ("seed", lambda: set_seed(1.0)),
    # configs
    ("lr", lambda: NumpyPGConfig(lr=-0.2)),
    ("num_episodes", lambda: NumpyPGConfig(num_episodes=0)),
    ("num_envs", lambda: VPGConfig(num_envs=True)),
    ("weights", lambda: VPGConfig(weights="rtg")),
    ("hidden", lambda: VPGConfig(hidden=())),
    ("hidden", lambda: ReinforceConfig(hidden=32)),
    ("gamma", lambda: ReinforceConfig(gamma=1.5)),
    ("value_lr", lambda: ReinforceConfig(value_lr=math.inf)),
    ("stop_at_eval", lambda: ReinforceConfig(stop_at_eval=400.0)),
    ("num_steps", lambda: PPOConfig(num_envs=1, num_steps=1)),
    ("num_minibatches", lambda: PPOConfig(num_minibatches=0)),
    ("target_kl", lambda: PPOConfig(target_kl=-1.0)),
    ("lr", lambda: PPOConfig(lr=math.nan)),
    ("top_directions", lambda: ARSConfig(top_directions=9)),
    ("step_size", lambda: ARSConfig(step_size=0)),
    ("cfg", lambda: train_vpg("CartPole-v1", PPOConfig())),
    ("cfg", lambda: train_ppo("CartPole-v1", {"lr": 1e-3})),
    ("env_id", lambda: make_envs("NoSuchEnv-v0", 2)),
    ("env_id", lambda: train_ppo(3, PPOConfig(total_steps=10))),
    ("eps", lambda: normalize(torch.tensor([1.0, 2.0]), eps=-1.0)),
    ("predictions", lambda: explained_variance(np.zeros(3), torch.ones(3))),
    ("targets", lambda: explained_variance(torch.zeros(3), torch.ones(3) * math.nan)),
    ("output_gain", lambda: orthogonal_init(mlp([2, 2]), "x")),
    ("net", lambda: orthogonal_init("net", 1.0)),
    ("steps", lambda: fit_value(ValueNet(2), None, V, V, D, 0)),
    # ARS, video, checkpoints
    ("b", lambda: ars_update(np.zeros(2), np.zeros(2), np.zeros((2, 1, 1)), 3, 0.1)),
    ("deltas", lambda: ars_update(np.zeros(2), np.zeros(2), np.zeros(2), 1, 0.1)),
    ("r_plus", lambda: ars_update("a", np.zeros(2), np.zeros((2, 1, 1)), 1, 0.1)),
    ("frames", lambda: to_gif([])),
    ("frames", lambda: to_gif(np.zeros((4, 4, 3), np.uint8))),
    ("fps", lambda: to_gif([np.zeros((4, 4, 3), np.uint8)], fps=0)),
    ("colors", lambda: to_gif([np.zeros((4, 4, 3), np.uint8)], colors=1)),
    ("path", lambda: load_policy(3)),
    ("policy", lambda: save_policy(torch.nn.Linear(2, 2), "x.pt")),
]


@pytest.mark.parametrize(
    ("name", "call"), PROBES, ids=[f"{i}-{name}" for i, (name, _) in enumerate(PROBES)]
)
def test_every_bad_input_gets_a_clear_error_naming_the_argument(name, call) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert name in str(info.value), str(info.value)
