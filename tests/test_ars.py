"""Tests of augmented random search (rlbook.algos.ars).

The update is checked against the mathematics it approximates: on a quadratic, the antithetic
difference f(θ + νδ) - f(θ - νδ) equals 2ν ∇f·δ exactly, so the averaged step points along the
analytic gradient. Top-b selection and the reward-std scaling are checked with directions along
the coordinate axes, where each direction's contribution can be read off its own coordinate.
The running observation statistics are held against NumPy's mean and variance of all the rows.
Training must solve CartPole within a budget a few times the benchmark's slowest seed.
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlbook.envs  # noqa: F401  (registers rlbook/ContinuousCartPole-v1)
from rlbook.algos.ars import (
    ARSConfig,
    LinearPolicy,
    PairedEnvs,
    RunningMeanStd,
    ars_update,
    linear_actions,
    run_linear_policies,
    train_ars,
)
from rlbook.rollout import evaluate
from rlbook.utils import offset

# ---------------------------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------------------------


def _quadratic(dim=6, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(dim, dim))
    a = q @ q.T + dim * np.eye(dim)  # positive definite
    optimum = rng.normal(size=dim)

    # f(theta) = -1/2 (theta - optimum)^T A (theta - optimum), batched over rows
    def f(
        theta,
    ):
        diff = theta - optimum
        return -0.5 * np.einsum("...i,ij,...j->...", diff, a, diff)

    def grad(theta):
        return -a @ (theta - optimum)

    return f, grad


def _cosine(u, v):
    return float(u.ravel() @ v.ravel() / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_antithetic_difference_is_exact_on_a_quadratic():
    f, grad = _quadratic()
    rng = np.random.default_rng(1)
    theta, nu = rng.normal(size=6), 0.3
    deltas = rng.standard_normal((50, 6))
    # the even terms of the Taylor series cancel: nothing but the directional derivative is left
    difference = f(theta + nu * deltas) - f(theta - nu * deltas)
    assert np.allclose(difference, 2 * nu * deltas @ grad(theta))


def test_averaged_step_points_along_the_true_gradient():
    f, grad = _quadratic()
    rng = np.random.default_rng(2)
    theta, nu, n = rng.normal(size=6), 0.5, 40_000
    deltas = rng.standard_normal((n, 6))
    r_plus, r_minus = f(theta + nu * deltas), f(theta - nu * deltas)
    step = ars_update(
        r_plus, r_minus, deltas, b=n, step_size=1.0, scale_by_reward_std=False
    )
    # E[(g . delta) delta] = g for delta ~ N(0, I): step / (2 nu) estimates the gradient itself
    estimate = step / (2 * nu)
    g = grad(theta)
    assert _cosine(estimate, g) > 0.995
    assert abs(np.linalg.norm(estimate) / np.linalg.norm(g) - 1) < 0.05


def test_top_b_step_still_climbs():
    f, grad = _quadratic()
    rng = np.random.default_rng(3)
    for _ in range(20):
        theta = rng.normal(size=6) * 3
        deltas = rng.standard_normal((64, 6))
        step = ars_update(
            f(theta + 0.1 * deltas), f(theta - 0.1 * deltas), deltas, 8, 0.01
        )
        assert _cosine(step, grad(theta)) > 0.3
        assert f(theta + step) > f(theta)


def _axis_deltas(n):
    # direction k moves coordinate k only: its weight is readable there
    return np.eye(n)


def test_top_b_keeps_the_b_largest_max_returns():
    r_plus = np.array([1.0, 9.0, 2.0, 3.0, 0.0])
    r_minus = np.array([4.0, 0.0, 8.0, 1.0, 7.0])
    # max(r+, r-) = [4, 9, 8, 3, 7]: the top three are directions 1, 2, 4
    step = ars_update(r_plus, r_minus, _axis_deltas(5), b=3, step_size=1.0)
    assert np.flatnonzero(step).tolist() == [1, 2, 4]
    sigma = np.std([9.0, 8.0, 7.0, 0.0, 2.0, 0.0])
    expected = np.array([0.0, 9.0, -6.0, 0.0, -7.0]) / (3 * sigma)
    assert np.allclose(step, expected)


def test_top_b_ranks_by_the_better_of_the_pair_not_by_r_plus():
    # direction 0 is bad only in its + rollout; its - rollout is the best of all
    r_plus = np.array([0.0, 5.0, 4.0])
    r_minus = np.array([10.0, 1.0, 1.0])
    step = ars_update(r_plus, r_minus, _axis_deltas(3), b=1, step_size=1.0)
    assert step[0] < 0 and step[1] == step[2] == 0


def test_b_equal_to_n_uses_every_direction():
    rng = np.random.default_rng(4)
    r_plus, r_minus, deltas = (
        rng.normal(size=7),
        rng.normal(size=7),
        rng.normal(size=(7, 2, 3)),
    )
    step = ars_update(r_plus, r_minus, deltas, b=7, step_size=0.1)
    loop = sum((r_plus[k] - r_minus[k]) * deltas[k] for k in range(7))
    sigma = np.concatenate([r_plus, r_minus]).std()
    assert np.allclose(step, 0.1 / (7 * sigma) * loop)


def test_reward_std_scaling_makes_the_step_invariant_to_reward_scale():
    rng = np.random.default_rng(5)
    r_plus, r_minus, deltas = (
        rng.normal(size=9),
        rng.normal(size=9),
        rng.normal(size=(9, 4)),
    )
    base = ars_update(r_plus, r_minus, deltas, 4, 0.02)
    for scale, shift in [(100.0, 0.0), (0.01, 3.0), (7.0, -50.0)]:
        moved = ars_update(
            scale * r_plus + shift, scale * r_minus + shift, deltas, 4, 0.02
        )
        assert np.allclose(moved, base)
    # without the scaling, the step grows with the rewards, and the ratio is sigma_R
    raw = ars_update(r_plus, r_minus, deltas, 4, 0.02, scale_by_reward_std=False)
    assert np.allclose(
        ars_update(10 * r_plus, 10 * r_minus, deltas, 4, 0.02, False), 10 * raw
    )
    top = np.argsort(-np.maximum(r_plus, r_minus))[:4]
    sigma = np.std(np.concatenate([r_plus[top], r_minus[top]]))
    assert np.allclose(raw, sigma * base)


def test_equal_returns_give_a_zero_step_not_nan():
    step = ars_update(np.full(4, 500.0), np.full(4, 500.0), np.ones((4, 2, 3)), 2, 0.1)
    assert step.shape == (2, 3) and np.all(step == 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(r_plus=np.zeros(3), r_minus=np.zeros(4)), "r_minus must have the shape"),
        (dict(deltas=np.zeros((4, 2))), "deltas"),
        (dict(deltas=np.zeros(3)), "deltas"),
        (dict(b=0), "b must"),
        (dict(b=4), "b must"),
        (dict(b=1.5), "b must"),
    ],
)
def test_update_rejects_bad_input(kwargs, match):
    args = dict(
        r_plus=np.zeros(3),
        r_minus=np.zeros(3),
        deltas=np.zeros((3, 2)),
        b=2,
        step_size=1.0,
    )
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError), match=match):
        ars_update(**args)


# ---------------------------------------------------------------------------------------------
# Observation statistics
# ---------------------------------------------------------------------------------------------


def test_running_stats_match_numpy_over_all_rows_seen():
    rng = np.random.default_rng(6)
    stats = RunningMeanStd((3,))
    seen = []
    # uneven batches, one of a single row, and a large offset that breaks E[x^2] - E[x]^2
    for size in [1, 7, 200, 3, 50]:
        batch = 1e6 + rng.normal(size=(size, 3)) * [1.0, 0.01, 5.0]
        stats.update(batch)
        seen.append(batch)
        everything = np.concatenate(seen)
        assert stats.count == len(everything)
        assert np.allclose(stats.mean, everything.mean(axis=0), rtol=0, atol=1e-8)
        assert np.allclose(stats.var, everything.var(axis=0), rtol=1e-7, atol=1e-12)


def test_running_stats_start_as_identity_and_leave_constant_coordinates_alone():
    stats = RunningMeanStd((2,))
    assert np.all(stats.mean == 0) and np.all(stats.std == 1)
    stats.update(np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 3.0]]))
    assert stats.std[0] == 1.0  # constant coordinate: divided by 1, not by 0
    assert np.isclose(stats.std[1], np.std([1.0, 2.0, 3.0]))
    stats.update(np.zeros((0, 2)))  # an empty batch changes nothing
    assert stats.count == 3
    with pytest.raises(ValueError, match="x must be shaped"):
        stats.update(np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


def test_linear_policy_mode_is_the_ars_action():
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(32, 4)).astype(np.float32)
    mean, std = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    normalised = (obs - mean) / std
    for space in [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,))]:
        out = space.n if isinstance(space, gym.spaces.Discrete) else space.shape[0]
        weights = rng.normal(size=(out, 4))
        kind = "discrete" if isinstance(space, gym.spaces.Discrete) else "continuous"
        policy = LinearPolicy(weights, mean, std, kind)
        mode = policy.dist(torch.as_tensor(obs)).mode.numpy()
        ours = linear_actions(np.broadcast_to(weights, (32, out, 4)), normalised, space)
        if kind == "discrete":
            assert np.array_equal(mode, ours)
        else:  # the environment clips the mode, as linear_actions does
            assert np.allclose(np.clip(mode, -1, 1), ours, atol=1e-5)
    with pytest.raises(ValueError, match="action_kind"):
        LinearPolicy(np.zeros((2, 4)), np.zeros(4), np.ones(4), "binary")


def test_run_linear_policies_counts_only_first_episode_steps():
    rng = np.random.default_rng(8)
    weights = rng.normal(size=(6, 2, 4)) * [
        [1.0, 1.0, 10.0, 3.0]
    ]  # some balance, some fall
    # a Python vector env seeds its copy i with seed + i: each can be replayed on its own
    envs = gym.make_vec("CartPole-v1", 6, vectorization_mode="sync")
    returns, lengths, states = run_linear_policies(
        envs, weights, np.zeros(4), np.ones(4), seed=3
    )
    envs.close()
    assert np.array_equal(returns, lengths)  # CartPole pays 1 per step
    assert len(states) == lengths.sum()
    # episodes of different lengths: some copies waited
    assert len(set(lengths.tolist())) > 1
    for i in range(6):  # one plain episode per policy
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=3 + i)
        steps, done = 0, False
        while not done:
            obs, _, terminated, truncated, _ = env.step(
                int(np.argmax(weights[i] @ obs))
            )
            steps, done = steps + 1, terminated or truncated
        assert steps == lengths[i], i


@pytest.mark.parametrize(
    "env_id", ["CartPole-v1", "rlbook/ContinuousCartPole-v1", "rlbook/Pixelcopter-v0"]
)
def test_the_two_sides_of_a_pair_share_start_and_randomness(env_id):
    # one policy per pair, the same on both sides: with common random numbers the two
    # episodes must be the same episode (Pixelcopter also draws its blocks as it goes)
    envs = PairedEnvs(env_id, 6)
    d, act = envs.single_observation_space.shape[0], envs.single_action_space
    out = act.n if isinstance(act, gym.spaces.Discrete) else act.shape[0]
    weights = np.random.default_rng(9).normal(size=(6, out, d))
    first, _ = envs.reset(seed=5)
    assert np.array_equal(first[:6], first[6:])
    assert (
        len(np.unique(first[:6], axis=0)) == 6
    )  # but the pairs differ from each other
    returns, lengths, _ = run_linear_policies(
        envs, np.concatenate([weights, weights]), np.zeros(d), np.ones(d), seed=5
    )
    envs.close()
    assert np.array_equal(returns[:6], returns[6:])
    assert np.array_equal(lengths[:6], lengths[6:])
    # switched off, the second half starts elsewhere
    independent = PairedEnvs(env_id, 6, common=False)
    first, _ = independent.reset(seed=5)
    independent.close()
    assert not np.isclose(first[:6], first[6:]).all(axis=1).any()


def test_train_ars_plays_each_pair_from_one_start(monkeypatch):
    import rlbook.algos.ars as ars

    starts = []

    def spy(envs, weights, obs_mean, obs_std, seed):
        obs, _ = envs.reset(seed=offset(seed))
        starts.append(obs)
        return run_linear_policies(envs, weights, obs_mean, obs_std, seed)

    monkeypatch.setattr(ars, "run_linear_policies", spy)
    cfg = ARSConfig(
        num_directions=3, top_directions=2, episodes_per_direction=2, total_steps=1000
    )
    train_ars("CartPole-v1", cfg)
    assert len(starts) > 1
    for obs in starts:  # rows: 3 directions x 2 episodes, + side then - side
        assert np.array_equal(obs[:6], obs[6:])
        assert len(np.unique(obs[:6], axis=0)) == 6
    starts.clear()
    off = ARSConfig(total_steps=1000, common_random_numbers=False)
    train_ars("CartPole-v1", off)
    assert not any(np.array_equal(obs[:8], obs[8:]) for obs in starts)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def test_env_steps_count_every_step_of_both_antithetic_rollouts():
    cfg = ARSConfig(
        num_directions=3, top_directions=2, episodes_per_direction=2, total_steps=3000
    )
    history = train_ars("CartPole-v1", cfg)
    increments = np.diff(history["env_steps"], prepend=0)
    # reward 1 per step: the steps of an iteration are 2N m times the mean return
    assert np.allclose(increments, 2 * 3 * 2 * history["mean_return"])
    assert history["env_steps"][-1] >= 3000
    assert history["env_steps"][-2] < 3000


def test_same_seed_same_run():
    cfg = ARSConfig(seed=5, total_steps=4000)
    a, b = train_ars("CartPole-v1", cfg), train_ars("CartPole-v1", cfg)
    assert np.array_equal(a["mean_return"], b["mean_return"])
    assert np.array_equal(a.meta["weights"], b.meta["weights"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solves_cartpole(seed):
    # the benchmark's slowest seed needs about 11,000 steps; the budget is 5 times that
    cfg = ARSConfig(seed=seed, total_steps=60_000, eval_every=2_500, stop_at_eval=475.0)
    history = train_ars("CartPole-v1", cfg)
    assert history.first_reach("eval_mean", 475.0, x="eval_steps") < math.inf
    # the returned policy is the one evaluated: a fresh evaluation agrees
    mean, _ = evaluate("CartPole-v1", history.meta["policy"], 10, seed=99)
    assert mean > 400


def test_continuous_actions_train_and_stay_in_range():
    cfg = ARSConfig(total_steps=3_000, eval_every=1_000)
    history = train_ars("rlbook/ContinuousCartPole-v1", cfg)
    assert np.isfinite(history["eval_mean"][~np.isnan(history["eval_mean"])]).all()
    policy = history.meta["policy"]
    assert policy.action_kind == "continuous" and policy.act_dim == 1
    space = gym.spaces.Box(-1.0, 1.0, (1,))
    obs = np.random.default_rng(0).normal(size=(100, 4)) * 5
    actions = linear_actions(
        np.broadcast_to(history.meta["weights"], (100, 1, 4)), obs, space
    )
    assert actions.min() >= -1 and actions.max() <= 1


def test_observation_statistics_are_those_of_the_visited_states():
    history = train_ars("CartPole-v1", ARSConfig(total_steps=2_000))
    # without normalisation the policy sees raw observations
    raw = train_ars("CartPole-v1", ARSConfig(total_steps=2_000, normalize_obs=False))
    assert np.all(raw.meta["obs_mean"] == 0) and np.all(raw.meta["obs_std"] == 1)
    # CartPole's angle stays within +-0.21 rad: its std must be well below that
    assert 0 < history.meta["obs_std"][2] < 0.21
    assert history.meta["obs_std"][2] != 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_directions", 0),
        ("num_directions", 2.5),
        ("top_directions", 0),
        ("top_directions", 9),
        ("step_size", 0.0),
        ("step_size", math.nan),
        ("noise", -0.1),
        ("total_steps", 0),
        ("episodes_per_direction", 0),
        ("normalize_obs", 1),
        ("scale_by_reward_std", "yes"),
        ("common_random_numbers", 0),
        ("seed", -1),
        ("eval_every", 0),
        ("stop_at_eval", "high"),
        ("progress", None),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises((TypeError, ValueError), match=field):
        ARSConfig(**{field: value})


def test_bad_environments_and_configs_are_rejected():
    with pytest.raises(TypeError, match="cfg must be an ARSConfig"):
        train_ars("CartPole-v1", {"seed": 0})
    with pytest.raises(ValueError, match="flat Box observation space"):
        train_ars("FrozenLake-v1", ARSConfig(total_steps=10))
    with pytest.raises(ValueError, match="action space"):
        train_ars("Blackjack-v1", ARSConfig(total_steps=10))
