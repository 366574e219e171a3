"""Tests of rlbook.envs: gymnasium's checker, seeding, CartPole physics, Pixelcopter's game."""

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlbook.envs import (
    CONTINUOUS_CARTPOLE_ID,
    OBS_MEAN,
    OBS_STD,
    PIXELCOPTER_ID,
    PIXELCOPTER_STANDARDIZED_ID,
    ContinuousCartPoleEnv,
    PixelcopterEnv,
    hover_policy,
    register_envs,
)

IDS = [CONTINUOUS_CARTPOLE_ID, PIXELCOPTER_ID, PIXELCOPTER_STANDARDIZED_ID]


def _rollout(env, seed, actions):
    """Observations, rewards and end flags of ``env`` under a fixed action list."""
    obs, _ = env.reset(seed=seed)
    trajectory = [obs]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        trajectory.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            trajectory.append(obs)
    return trajectory


def _random_actions(env_id, n, seed):
    rng = np.random.default_rng(seed)
    if env_id == CONTINUOUS_CARTPOLE_ID:
        return [rng.uniform(-1, 1, size=(1,)).astype(np.float32) for _ in range(n)]
    return [int(a) for a in rng.integers(0, 2, size=n)]


def _flatten(trajectory):
    out = []
    for item in trajectory:
        if isinstance(item, tuple):
            out.extend([*np.asarray(item[0]).tolist(), item[1], item[2], item[3]])
        else:
            out.extend(np.asarray(item).tolist())
    return out


# --- both environments --------------------------------------------------------------------


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
@pytest.mark.parametrize("env_id", IDS)
def test_passes_gymnasiums_env_checker_without_warnings(env_id, render_mode):
    env = gym.make(
        env_id, render_mode=render_mode
    ).unwrapped  # unwrapped, with its spec
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory_different_seed_different(env_id):
    actions = _random_actions(env_id, 200, seed=1)
    env = gym.make(env_id)
    first = _flatten(_rollout(env, 7, actions))
    again = _flatten(_rollout(env, 7, actions))
    other = _flatten(_rollout(env, 8, actions))
    assert first == again
    assert first != other


@pytest.mark.parametrize("env_id", IDS)
def test_make_vec_sync_steps_a_batch(env_id):
    envs = gym.make_vec(env_id, num_envs=8, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (8, *envs.single_observation_space.shape)
    assert obs.dtype == np.float32
    envs.action_space.seed(0)
    for _ in range(30):
        obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert (
        obs.shape[0]
        == rewards.shape[0]
        == terminated.shape[0]
        == truncated.shape[0]
        == 8
    )
    envs.close()


def test_registration_is_idempotent_and_sets_time_limits():
    register_envs()  # a second registration must be a no-op, not an error or a warning
    assert gym.spec(CONTINUOUS_CARTPOLE_ID).max_episode_steps == 500
    assert gym.spec(PIXELCOPTER_ID).max_episode_steps == 1000


@pytest.mark.parametrize(
    ("env_id", "shape"),
    [(CONTINUOUS_CARTPOLE_ID, (400, 600, 3)), (PIXELCOPTER_ID, (384, 384, 3))],
)
def test_render_rgb_array_shape_and_dtype(env_id, shape):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == shape
    assert frame.dtype == np.uint8
    # background and two objects
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3


# --- ContinuousCartPole -------------------------------------------------------------------


def test_continuous_cartpole_matches_gymnasium_cartpole_step_by_step():
    # An independent implementation: gymnasium's own CartPole-v1, driven by the same pushes.
    ours = gym.make(CONTINUOUS_CARTPOLE_ID)
    theirs = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    steps = 0
    for seed in range(5):
        obs_ours, _ = ours.reset(seed=seed)
        obs_theirs, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(obs_ours, obs_theirs)
        done = False
        while not done:
            push_right = int(rng.integers(0, 2))
            step_ours = ours.step(
                np.array([1.0 if push_right else -1.0], dtype=np.float32)
            )
            step_theirs = theirs.step(push_right)
            np.testing.assert_allclose(step_ours[0], step_theirs[0], rtol=0, atol=1e-6)
            assert step_ours[1:4] == step_theirs[1:4]  # reward, terminated, truncated
            done = step_ours[2] or step_ours[3]
            steps += 1
    assert steps > 50


def test_continuous_cartpole_full_push_right_moves_the_cart_right():
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    xs, x_dots, thetas = [], [], []
    terminated = False
    while not terminated:  # the pole falls (to the left) after 8 steps
        obs, _, terminated, _, _ = env.step(np.array([1.0], dtype=np.float32))
        xs.append(obs[0])
        x_dots.append(obs[1])
        thetas.append(obs[2])
    assert len(xs) > 5
    # constant force: the cart keeps accelerating right
    assert np.all(np.diff(x_dots) > 0)
    assert xs[-1] > xs[0]
    assert thetas[-1] < thetas[0]  # and the pole falls back, to the left


def test_continuous_cartpole_clips_actions_and_scales_force():
    a, b, c = ContinuousCartPoleEnv(), ContinuousCartPoleEnv(), ContinuousCartPoleEnv()
    for env in (a, b, c):
        env.reset(seed=3)
    np.testing.assert_array_equal(
        a.step(np.array([5.0]))[0], b.step(np.array([1.0]))[0]
    )
    zero = c.step(np.array([0.0], dtype=np.float32))[0]
    half = ContinuousCartPoleEnv()
    half.reset(seed=3)
    halfway = half.step(np.array([0.5], dtype=np.float32))[0]
    # x_dot after one step is linear in the force: half the push gives the midpoint.
    full = ContinuousCartPoleEnv()
    full.reset(seed=3)
    pushed = full.step(np.array([1.0], dtype=np.float32))[0]
    assert math.isclose(halfway[1], (zero[1] + pushed[1]) / 2, rel_tol=1e-5)


def test_continuous_cartpole_terminates_past_the_angle_limit_and_truncates_at_500():
    env = gym.make(CONTINUOUS_CARTPOLE_ID)
    obs, _ = env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        # Push towards the side the pole leans to (a PD rule): it balances for 500 steps.
        force = np.tanh(3 * (obs[2] + 0.5 * obs[3] + 0.05 * obs[1] + 0.01 * obs[0]))
        obs, reward, terminated, truncated, _ = env.step(
            np.array([force], dtype=np.float32)
        )
        assert reward == 1.0
        steps += 1
    assert (steps, terminated, truncated) == (500, False, True)

    obs, _ = env.reset(seed=0)
    for _ in range(500):
        obs, reward, terminated, truncated, _ = env.step(
            np.array([-1.0], dtype=np.float32)
        )
        if terminated:
            break
    assert terminated and not truncated and reward == 1.0
    assert abs(obs[2]) > 12 * math.pi / 180 or abs(obs[0]) > 2.4


@pytest.mark.parametrize("bad", [np.array([np.nan]), np.array([0.1, 0.2])])
def test_continuous_cartpole_rejects_bad_actions(bad):
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


# --- Pixelcopter --------------------------------------------------------------------------


def _episode(env, policy, seed, rng=None):
    obs, _ = env.reset(seed=seed)
    rewards, length = [], 0
    while True:
        action = policy(obs) if rng is None else int(rng.integers(0, 2))
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        length += 1
        if terminated or truncated:
            return length, rewards, terminated


def test_pixelcopter_random_policy_crashes_fast_and_hover_lasts_much_longer():
    env = gym.make(PIXELCOPTER_ID)
    rng = np.random.default_rng(0)
    random_runs = [_episode(env, None, seed, rng) for seed in range(50)]
    hover_runs = [_episode(env, hover_policy, seed) for seed in range(50)]
    random_len = np.mean([r[0] for r in random_runs])
    hover_len = np.mean([r[0] for r in hover_runs])
    random_return = np.mean([sum(r[1]) for r in random_runs])
    # Measured over 100 seeds: random 9 to 10 steps (return -4.1), hover 119 (return 14).
    assert 5 < random_len < 15
    assert -5 <= random_return < -3
    assert hover_len > 5 * random_len
    assert all(r[2] for r in random_runs)  # every random episode ends in a crash


def test_pixelcopter_rewards_are_passes_or_a_crash():
    env = gym.make(PIXELCOPTER_ID)
    seen = set()
    for seed in range(20):
        _, rewards, terminated = _episode(env, hover_policy, seed)
        seen.update(rewards)
        # the crash, and only the crash, costs 5
        assert terminated and rewards[-1] == -5.0
        assert all(r >= 0 for r in rewards[:-1])
    assert seen <= {0.0, 1.0, 2.0, -5.0}
    assert {0.0, 1.0, -5.0} <= seen


def test_pixelcopter_holding_up_hits_the_ceiling():
    env = PixelcopterEnv()
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        obs, reward, terminated, truncated, _ = env.step(0)
        if terminated:
            break
    assert terminated and not truncated and reward == -5.0
    # It crashed rising, near the ceiling (the wall under a neighbouring column may be lower).
    assert obs[1] < 0 and obs[2] < 1.2 + 6 and obs[3] > 16


def test_pixelcopter_observations_follow_ples_momentum_update():
    # Recompute the copter's motion from the observations alone, with PLE's constants:
    # v <- 0.99 (v + accel * dt), y <- y + v, accel = -0.875 (up) or 0.09 (nothing) * speed.
    speed, dt = 0.0004 * 48, 1000 / 30
    env = PixelcopterEnv()
    obs, _ = env.reset(seed=4)
    assert obs[0] == 24.0 and obs[1] == 0.0
    rng = np.random.default_rng(1)
    for _ in range(8):
        action = int(rng.integers(0, 2))
        new, *_ = env.step(action)
        accel = (-0.875 if action == 0 else 0.09) * speed
        v = 0.99 * (obs[1] + accel * dt)
        assert math.isclose(new[1], v, rel_tol=1e-5, abs_tol=1e-6)
        assert math.isclose(new[0], obs[0] + v, rel_tol=1e-5)
        # The gap is always 0.5 H = 24 px tall, and the gate's block 9 px.
        assert math.isclose(new[2] + new[3], 24.0, rel_tol=1e-6)
        assert math.isclose(new[6] - new[5], 9.0, rel_tol=1e-6)
        # the next gate is ahead of the copter, at most 1.5 W - 16 px
        assert 0 < new[4] <= 56
        obs = new


def test_pixelcopter_truncates_at_the_time_limit_without_crashing():
    # hover survives at least 40 steps
    env = gym.make(PIXELCOPTER_ID, max_episode_steps=30)
    length, _, terminated = _episode(env, hover_policy, seed=0)
    assert length == 30 and not terminated


def test_hover_policy_is_vectorized_and_rejects_bad_shapes():
    envs = gym.make_vec(PIXELCOPTER_ID, num_envs=16, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    for _ in range(20):
        batch = hover_policy(obs)
        assert batch.shape == (16,) and batch.dtype == np.int64
        assert batch.tolist() == [hover_policy(o) for o in obs]
        obs, *_ = envs.step(batch)
    assert isinstance(hover_policy(obs[0]), int)
    with pytest.raises(ValueError, match="obs"):
        hover_policy(np.zeros(6))


def test_pixelcopter_rejects_bad_actions():
    env = PixelcopterEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(2)


def test_standardized_pixelcopter_is_the_same_game_seen_through_fixed_constants():
    raw, std = gym.make(PIXELCOPTER_ID), gym.make(PIXELCOPTER_STANDARDIZED_ID)
    actions = _random_actions(PIXELCOPTER_ID, 300, seed=4)
    a, b = _rollout(raw, 7, actions), _rollout(std, 7, actions)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple):
            assert x[1:] == y[1:]  # same rewards and ends: the same caves
            x, y = x[0], y[0]
        np.testing.assert_allclose((x - OBS_MEAN) / OBS_STD, y, rtol=1e-6)
        assert y.dtype == np.float32


def test_standardization_constants_are_the_documented_measurement():
    # OBS_MEAN and OBS_STD: states of hover_policy's flights from reset seeds 0 to 99
    env = gym.make(PIXELCOPTER_ID)
    states = []
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            states.append(obs)
            obs, _, terminated, truncated, _ = env.step(hover_policy(obs))
            done = terminated or truncated
    states = np.array(states)
    assert len(states) == 11_855
    np.testing.assert_allclose(states.mean(0), OBS_MEAN, atol=0.05)
    np.testing.assert_allclose(states.std(0), OBS_STD, rtol=0.02)


def test_an_agent_of_the_standardized_pixelcopter_saves_and_loads(tmp_path):
    # the scaling lives in the environment, so the agent is a plain CategoricalPolicy
    import torch

    from rlbook.algos.ppo import PPOConfig, train_ppo
    from rlbook.checkpoint import load_policy, save_policy

    cfg = PPOConfig(total_steps=256, num_envs=2, num_steps=64, update_epochs=1)
    policy = train_ppo(PIXELCOPTER_STANDARDIZED_ID, cfg).meta["policy"]
    loaded = load_policy(save_policy(policy, tmp_path / "pixelcopter.pt"))
    env = gym.make(PIXELCOPTER_STANDARDIZED_ID)
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(5)]))
    with torch.no_grad():
        assert torch.equal(policy.dist(obs).logits, loaded.dist(obs).logits)
