"""Tests of rlbook.algos.reinforce.

The gradient of REINFORCE's loss is held against a hand computation (loops over a tiny batch,
the closed-form score of a linear softmax policy); with every reducer switched off REINFORCE
must *be* the simplest policy gradient of chapter 1; the learned baseline must fit; and the
algorithm must learn CartPole (discrete) and the continuous cart-pole (Gaussian) by a margin
that holds over seeds.
"""

import math

import numpy as np
import pytest
import torch

import rlbook.envs  # noqa: F401  (registers rlbook/ContinuousCartPole-v1)
from rlbook.algos.reinforce import (
    ReinforceConfig,
    fit_value,
    reinforce_weights,
    train_reinforce,
)
from rlbook.algos.vpg import VPGConfig, train_vpg
from rlbook.losses import pg_loss
from rlbook.policies import CategoricalPolicy, GaussianPolicy, ValueNet
from rlbook.rollout import Rollout, collect, make_envs

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 1.5),
        ("gamma", -0.1),
        ("gamma", math.nan),
        ("gamma", "0.99"),
        ("weights", "rtg"),
        ("baseline", "critic"),
        ("baseline", "none"),
        ("normalize", "yes"),
        ("num_envs", 0),
        ("steps_per_env", 2.5),
        ("iterations", 0),
        ("total_steps", 0),
        ("total_steps", 1e5),
        ("lr", 0.0),
        ("lr", math.inf),
        ("value_lr", -1.0),
        ("value_steps", 0),
        ("eval_every", -1),
        ("eval_episodes", 0),
        ("stop_at_eval", math.nan),
        ("stop_at_eval", "475"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value) -> None:
    with pytest.raises((TypeError, ValueError), match=field):
        ReinforceConfig(**{field: value})


def test_stop_at_eval_needs_evaluations() -> None:
    with pytest.raises(ValueError, match="eval_every"):
        ReinforceConfig(stop_at_eval=475.0)


def test_config_defaults_are_valid_and_hidden_becomes_a_tuple() -> None:
    cfg = ReinforceConfig(hidden=[16, 16])
    assert cfg.hidden == (16, 16)
    assert cfg.weights == "reward_to_go" and cfg.baseline == "value" and cfg.normalize


def test_train_reinforce_rejects_a_foreign_config() -> None:
    with pytest.raises(TypeError, match="ReinforceConfig"):
        train_reinforce("CartPole-v1", VPGConfig())


# ---------------------------------------------------------------------------------------------
# Weights and the loss's gradient, against a hand computation
# ---------------------------------------------------------------------------------------------


def tiny_batch() -> Rollout:
    """Two environments, five slots: env 0 has episodes of 2 and 3 steps, env 1 one of 4 steps
    and a padding slot at the end."""
    g = torch.Generator().manual_seed(0)
    T, N = 5, 2
    obs = torch.randn(T, N, 3, generator=g)
    actions = torch.tensor([[0, 1], [1, 1], [0, 0], [1, 1], [0, 0]])
    rewards = torch.tensor(
        [[1.0, 0.5], [2.0, -1.0], [0.0, 3.0], [-1.0, 1.0], [4.0, 0.0]]
    )
    terminated = torch.tensor(
        [[0, 0], [1, 0], [0, 0], [0, 1], [1, 0]], dtype=torch.bool
    )
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    zeros = torch.zeros(T, N)
    return Rollout(
        obs=obs,
        actions=actions,
        rewards=rewards * mask,
        terminated=terminated,
        truncated=torch.zeros(T, N, dtype=torch.bool),
        mask=mask,
        log_probs=zeros,
        values=None,
        final_obs=torch.zeros_like(obs),
        next_obs=obs[-1],
    )


def hand_weights(batch, gamma, kind, baseline, normalize, values=None):
    """The weights with Python loops over each episode, independently of rlbook.returns."""
    r, d, m = batch.rewards.numpy(), batch.dones.numpy(), batch.mask.numpy()
    T, N = r.shape
    w = np.zeros((T, N))
    for i in range(N):
        episode = []  # time indices of the current episode
        for t in range(T):
            if not m[t, i]:
                continue
            episode.append(t)
            if d[t, i]:
                for j, s in enumerate(episode):
                    later = episode[j:] if kind == "reward_to_go" else episode
                    w[s, i] = sum(gamma**k * r[u, i] for k, u in enumerate(later))
                episode = []
    real = w[m]
    if baseline == "mean":
        w = w - real.mean()
    elif baseline == "value":
        w = w - values.numpy()
    if normalize:
        real = w[m]
        w = np.where(m, (w - real.mean()) / (real.std() + 1e-8), 0.0)
    return w


@pytest.mark.parametrize("kind", ["reward_to_go", "return"])
@pytest.mark.parametrize("baseline", [None, "mean", "value"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_weights_match_a_hand_computation(kind, baseline, normalize, gamma) -> None:
    batch = tiny_batch()
    values = torch.linspace(-1, 1, 10).reshape(5, 2)
    got = reinforce_weights(batch, gamma, kind, baseline, normalize, values)
    expected = hand_weights(batch, gamma, kind, baseline, normalize, values)
    np.testing.assert_allclose(
        got[batch.mask].numpy(), expected[batch.mask.numpy()], rtol=1e-5
    )


def test_value_baseline_needs_values() -> None:
    with pytest.raises(ValueError, match="values"):
        reinforce_weights(tiny_batch(), baseline="value")
    with pytest.raises(ValueError, match="baseline"):
        reinforce_weights(tiny_batch(), baseline="critic")
    with pytest.raises(ValueError, match="weights"):
        reinforce_weights(tiny_batch(), weights="rtg")


def test_loss_gradient_matches_the_closed_form_score() -> None:
    # a linear softmax policy: grad_theta log pi(a|s) = (e_a - pi(.|s)) outer s, in closed form
    batch = tiny_batch()
    torch.manual_seed(0)
    policy = CategoricalPolicy(3, 2, hidden=())
    weights = reinforce_weights(batch, 0.9, "reward_to_go", "mean", True)
    loss = pg_loss(policy.dist(batch.obs).log_prob(batch.actions), weights, batch.mask)
    loss.backward()
    layer = policy.net[0]
    W, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    obs, actions = batch.obs.double().numpy(), batch.actions.numpy()
    w, m = weights.double().numpy(), batch.mask.numpy()
    grad_W, grad_b = np.zeros_like(W), np.zeros_like(b)
    for t in range(5):
        for i in range(2):
            if not m[t, i]:
                continue
            logits = W @ obs[t, i] + b
            pi = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            score = np.eye(2)[actions[t, i]] - pi
            grad_W += w[t, i] * np.outer(score, obs[t, i])
            grad_b += w[t, i] * score
    # the loss is minus the mean over real steps, so its gradient is minus the mean score * w
    np.testing.assert_allclose(layer.weight.grad.numpy(), -grad_W / m.sum(), atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.numpy(), -grad_b / m.sum(), atol=1e-6)


def test_normalized_weights_have_mean_zero_and_std_one_on_real_steps() -> None:
    batch = tiny_batch()
    w = reinforce_weights(batch, 0.99, "reward_to_go", None, True)
    real = w[batch.mask]
    assert abs(real.mean().item()) < 1e-6
    assert abs(real.std(correction=0).item() - 1.0) < 1e-5
    assert torch.all(w[~batch.mask] == 0)


# ---------------------------------------------------------------------------------------------
# The learned baseline
# ---------------------------------------------------------------------------------------------


def test_fit_value_lowers_the_value_loss_on_cartpole_returns() -> None:
    torch.manual_seed(0)
    envs = make_envs("CartPole-v1", 8)
    batch = collect(
        envs, CategoricalPolicy(4, 2, hidden=(8,)), 50, seed=0, complete_episodes=True
    )
    envs.close()
    targets = reinforce_weights(batch, 0.99, "reward_to_go")
    value_fn = ValueNet(4, hidden=(32,))
    optimizer = torch.optim.Adam(value_fn.parameters(), lr=1e-2)
    losses = fit_value(value_fn, optimizer, batch.obs, targets, batch.mask, steps=200)
    assert len(losses) == 200
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def test_value_loss_decreases_during_training() -> None:
    cfg = ReinforceConfig(
        iterations=12, num_envs=8, steps_per_env=50, seed=1, hidden=(16,)
    )
    history = train_reinforce("CartPole-v1", cfg)
    v = history["value_loss"]
    # returns grow while the policy improves, so compare relative to the targets' scale:
    # after a few batches the fit is far better than the untrained network's first guess
    scale = history["mean_length"] ** 2
    assert (v[-4:] / scale[-4:]).mean() < 0.5 * v[0] / scale[0], v
    assert isinstance(history.meta["value_fn"], ValueNet)


def test_no_value_net_without_the_value_baseline() -> None:
    cfg = ReinforceConfig(iterations=1, num_envs=2, steps_per_env=5, baseline="mean")
    history = train_reinforce("CartPole-v1", cfg)
    assert history.meta["value_fn"] is None
    assert "value_loss" not in history.keys()


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["return", "reward_to_go"])
def test_without_reducers_it_is_the_simplest_policy_gradient(weights) -> None:
    vpg = train_vpg("CartPole-v1", VPGConfig(weights=weights, iterations=4, seed=7))
    reinforce = train_reinforce(
        "CartPole-v1",
        ReinforceConfig(
            weights=weights,
            gamma=1.0,
            baseline=None,
            normalize=False,
            num_envs=16,  # chapter 1's batch layout
            steps_per_env=100,
            iterations=4,
            seed=7,
        ),
    )
    np.testing.assert_array_equal(vpg["mean_return"], reinforce["mean_return"])
    for p, q in zip(
        vpg.meta["policy"].parameters(),
        reinforce.meta["policy"].parameters(),
        strict=True,
    ):
        assert torch.equal(p, q)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learns_cartpole(seed: int) -> None:
    cfg = ReinforceConfig(total_steps=20_000, seed=seed)
    history = train_reinforce("CartPole-v1", cfg)
    returns = history["mean_return"]
    # a random policy lasts about 22 steps; after 20k steps seeds 0-5 measured 129 to 239
    assert returns[:2].mean() < 40
    assert returns[-3:].mean() > 80, returns[-3:]
    assert history["env_steps"][-1] >= 20_000


def test_learns_continuous_cartpole_a_bit() -> None:
    finals = []
    for seed in range(2):
        cfg = ReinforceConfig(total_steps=30_000, seed=seed)
        history = train_reinforce("rlbook/ContinuousCartPole-v1", cfg)
        assert isinstance(history.meta["policy"], GaussianPolicy)
        finals.append(
            (history["mean_return"][:2].mean(), history["mean_return"][-3:].mean())
        )
    for start, end in finals:
        assert end > 1.5 * start, finals


def test_is_reproducible_under_a_seed() -> None:
    cfg = ReinforceConfig(iterations=3, num_envs=4, steps_per_env=20, seed=5)
    a, b = train_reinforce("CartPole-v1", cfg), train_reinforce("CartPole-v1", cfg)
    for key in ("mean_return", "env_steps", "loss", "value_loss"):
        np.testing.assert_array_equal(a[key], b[key])
    for p, q in zip(
        a.meta["policy"].parameters(), b.meta["policy"].parameters(), strict=True
    ):
        assert torch.equal(p, q)
    c = train_reinforce(
        "CartPole-v1",
        ReinforceConfig(iterations=3, num_envs=4, steps_per_env=20, seed=6),
    )
    assert not np.array_equal(a["loss"], c["loss"])


def test_total_steps_and_evaluation_rows() -> None:
    cfg = ReinforceConfig(
        total_steps=3_000,
        num_envs=4,
        steps_per_env=50,
        eval_every=1_000,
        eval_episodes=3,
    )
    history = train_reinforce("CartPole-v1", cfg)
    steps = history["env_steps"]
    assert steps[-1] >= 3_000 and steps[-2] < 3_000
    evaluated = ~np.isnan(history["eval_mean"])
    assert evaluated.sum() >= 2
    # an evaluation runs on the first row at or past each multiple of eval_every
    np.testing.assert_array_equal(history["eval_steps"][evaluated], steps[evaluated])
    # CartPole lasts at least 8 steps
    assert np.all(history["eval_mean"][evaluated] >= 8)
    assert np.all(np.diff(history["wall_time"]) >= 0)


def test_stop_at_eval_stops_training_early() -> None:
    cfg = ReinforceConfig(
        iterations=50,
        num_envs=4,
        steps_per_env=20,
        eval_every=100,
        eval_episodes=2,
        stop_at_eval=1.0,
    )
    history = train_reinforce("CartPole-v1", cfg)
    # every CartPole episode earns at least 1, so the first evaluation already stops training
    assert len(history) == 1 and history["eval_mean"][0] >= 1
