"""Tests of rlbook.rollout on real gymnasium environments in both autoreset modes.

CartPole's dynamics are deterministic, so every stored transition (and every stored final
observation) is checked against the physics re-computed here from the stored observation and
action; episode sums against the returns the rollout reports; a rollout continued with
``previous=`` against one long rollout.
"""

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from rlbook.policies import CategoricalPolicy, GaussianPolicy, ValueNet
from rlbook.rollout import (
    Rollout,
    autoreset_mode,
    collect,
    episode_returns,
    evaluate,
    make_envs,
)

X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * math.pi / 360
MODES = ["next_step", "same_step"]


def cartpole_envs(mode: str, num_envs: int = 4, max_episode_steps: int | None = None):
    """CartPole in gymnasium's NumPy implementation (NEXT_STEP) or a SAME_STEP SyncVectorEnv."""
    kwargs = (
        {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    )
    if mode == "next_step":
        return gym.make_vec(
            "CartPole-v1", num_envs, vectorization_mode="vector_entry_point", **kwargs
        )
    return gym.make_vec(
        "CartPole-v1",
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **kwargs,
    )


def cartpole_step(obs: np.ndarray, action: int) -> np.ndarray:
    """One Euler step of CartPole (Barto, Sutton and Anderson, 1983), written out here."""
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass, polemass_length = masscart + masspole, masspole * length
    x, x_dot, theta, theta_dot = (float(v) for v in obs)
    force = force_mag if action == 1 else -force_mag
    cos, sin = math.cos(theta), math.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
    theta_acc = (gravity * sin - cos * temp) / (
        length * (4.0 / 3.0 - masspole * cos**2 / total_mass)
    )
    x_acc = temp - polemass_length * theta_acc * cos / total_mass
    return np.array(
        [
            x + tau * x_dot,
            x_dot + tau * x_acc,
            theta + tau * theta_dot,
            theta_dot + tau * theta_acc,
        ]
    )


def out_of_bounds(obs) -> bool:
    return abs(float(obs[0])) > X_LIMIT or abs(float(obs[2])) > THETA_LIMIT


def episode_length_at_each_done(rollout: Rollout) -> dict[tuple[int, int], int]:
    """(t, i) -> length of the episode that ended there, counted from the masked-in steps."""
    lengths, T, N = {}, *rollout.rewards.shape
    for i in range(N):
        count = 0
        for t in range(T):
            if not rollout.mask[t, i]:
                continue
            count += 1
            if rollout.dones[t, i]:
                lengths[t, i] = count
                count = 0
    return lengths


@pytest.fixture
def policy() -> CategoricalPolicy:
    torch.manual_seed(0)
    return CategoricalPolicy(4, 2, hidden=(8,))


# ---------------------------------------------------------------------------------------------
# Layout and physics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_shapes_and_dtypes(mode: str, policy) -> None:
    envs = cartpole_envs(mode, 3)
    rollout = collect(envs, policy, 25, seed=0, value_fn=ValueNet(4, hidden=(8,)))
    envs.close()
    T, N = 25, 3
    assert rollout.obs.shape == rollout.final_obs.shape == (T, N, 4)
    for name in (
        "actions",
        "rewards",
        "terminated",
        "truncated",
        "mask",
        "log_probs",
        "values",
    ):
        assert getattr(rollout, name).shape == (T, N), name
    assert rollout.next_obs.shape == (N, 4)
    for name in ("terminated", "truncated", "mask"):
        assert getattr(rollout, name).dtype == torch.bool, name
    assert rollout.obs.dtype == rollout.rewards.dtype == torch.float32
    assert not rollout.log_probs.requires_grad
    torch.testing.assert_close(rollout.dones, rollout.terminated | rollout.truncated)
    assert rollout.num_steps == int(rollout.mask.sum())


@pytest.mark.parametrize("mode", MODES)
def test_transitions_and_final_observations_follow_the_physics(
    mode: str, policy
) -> None:
    envs = cartpole_envs(mode, 4)
    rollout = collect(envs, policy, 80, seed=1)
    envs.close()
    obs, final_obs = rollout.obs.numpy(), rollout.final_obs.numpy()
    T, N = rollout.rewards.shape
    # the random policy drops the pole within 80 steps
    assert rollout.terminated.sum() >= 4
    for i in range(N):
        for t in range(T):
            if not rollout.mask[t, i]:
                continue
            expected = cartpole_step(obs[t, i], int(rollout.actions[t, i]))
            if rollout.dones[t, i]:
                # the stored final observation is the state the action led to
                np.testing.assert_allclose(
                    final_obs[t, i], expected, rtol=1e-4, atol=1e-4
                )
                assert out_of_bounds(final_obs[t, i]) == bool(rollout.terminated[t, i])
                if t + 1 < T:
                    if mode == "next_step":
                        # the next slot shows the final observation and is only a reset
                        np.testing.assert_array_equal(obs[t + 1, i], final_obs[t, i])
                        assert not rollout.mask[t + 1, i]
                    else:
                        # the next slot already starts a fresh episode
                        assert np.all(np.abs(obs[t + 1, i]) <= 0.05)
                        assert rollout.mask[t + 1, i]
            else:
                np.testing.assert_array_equal(final_obs[t, i], 0.0)
                following = obs[t + 1, i] if t + 1 < T else rollout.next_obs[i].numpy()
                np.testing.assert_allclose(following, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_terminated_and_truncated_are_kept_apart(mode: str, policy) -> None:
    envs = cartpole_envs(mode, 6, max_episode_steps=20)
    rollout = collect(envs, policy, 60, seed=2)
    envs.close()
    lengths = episode_length_at_each_done(rollout)
    assert (rollout.terminated & ~rollout.truncated).any()
    assert (rollout.truncated & ~rollout.terminated).any()
    for (t, i), length in lengths.items():
        # terminated exactly when the state is terminal; truncated exactly at the time limit
        # (a pole that falls on the 20th step is both)
        assert out_of_bounds(rollout.final_obs[t, i]) == bool(rollout.terminated[t, i])
        assert (length == 20) == bool(rollout.truncated[t, i])
    assert sorted(rollout.episode_lengths) == sorted(lengths.values())


def test_mask_is_false_exactly_at_next_step_reset_slots(policy) -> None:
    envs = cartpole_envs("next_step", 5)
    rollout = collect(envs, policy, 100, seed=3)
    envs.close()
    assert rollout.mask[0].all()
    assert torch.equal(rollout.mask[1:], ~rollout.dones[:-1])
    assert (~rollout.mask).sum() >= 5
    # a reset slot is no transition: no reward, no end flags
    assert torch.all(rollout.rewards[~rollout.mask] == 0)
    assert not rollout.dones[~rollout.mask].any()


def test_same_step_mask_is_all_true(policy) -> None:
    envs = cartpole_envs("same_step", 5)
    rollout = collect(envs, policy, 100, seed=3)
    envs.close()
    assert rollout.mask.all()
    assert rollout.dones.sum() >= 5


@pytest.mark.parametrize("mode", MODES)
def test_first_observation_is_the_seeded_reset(mode: str, policy) -> None:
    envs = cartpole_envs(mode, 3)
    rollout = collect(envs, policy, 5, seed=11)
    reset_obs, _ = envs.reset(seed=11)
    envs.close()
    np.testing.assert_array_equal(rollout.obs[0].numpy(), reset_obs)


# ---------------------------------------------------------------------------------------------
# Episode bookkeeping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_episode_returns_are_the_sums_of_rewards_of_finished_episodes(
    mode, policy
) -> None:
    envs = cartpole_envs(mode, 4)
    rollout = collect(envs, policy, 70, seed=4)
    envs.close()
    # every episode starts at the reset of t = 0 or after a done, so sums are complete
    sums = []
    for i in range(4):
        total = 0.0
        for t in range(70):
            total += float(rollout.rewards[t, i])
            if rollout.dones[t, i]:
                sums.append(total)
                total = 0.0
    assert sorted(rollout.episode_returns) == pytest.approx(sorted(sums))
    assert (
        len(rollout.episode_returns)
        == len(rollout.episode_lengths)
        == rollout.dones.sum()
    )


@pytest.mark.parametrize("mode", MODES)
def test_complete_episodes(mode: str, policy) -> None:
    num_steps = 30
    envs = cartpole_envs(mode, 6)
    rollout = collect(envs, policy, num_steps, seed=5, complete_episodes=True)
    envs.close()
    T, N = rollout.rewards.shape
    mask, dones = rollout.mask, rollout.dones
    assert T >= num_steps

    # every real step belongs to an episode that ends inside the rollout
    last_done = []
    for i in range(N):
        done_steps = torch.nonzero(dones[:, i]).flatten()
        real_steps = torch.nonzero(mask[:, i]).flatten()
        assert len(done_steps) >= 1
        assert real_steps.max() == done_steps.max(), (
            f"env {i} has real steps after its last done"
        )
        # the episode that was running at num_steps - 1 was finished, and no later one was begun
        assert done_steps.max() >= num_steps - 1
        assert (done_steps >= num_steps - 1).sum() == 1
        last_done.append(int(done_steps.max()))
    # collection stopped as soon as the last environment finished
    assert T == max(num_steps, max(last_done) + 1)

    # the masked-in rewards are exactly the finished episodes
    assert rollout.rewards[mask].sum().item() == pytest.approx(
        sum(rollout.episode_returns)
    )
    assert torch.all(rollout.rewards[~mask] == 0)
    assert sum(rollout.episode_lengths) == rollout.num_steps
    assert len(rollout.episode_returns) == int(dones.sum())
    assert not dones[~mask].any()

    # every padding slot follows a finished episode or another padding slot
    assert mask[0].all()
    padding = ~mask[1:]
    assert torch.all(~padding | dones[:-1] | ~mask[:-1])


def test_complete_episodes_with_every_episode_ending_in_time(policy) -> None:
    # with a time limit shorter than num_steps the extension stays short
    envs = cartpole_envs("same_step", 4, max_episode_steps=5)
    rollout = collect(envs, policy, 12, seed=0, complete_episodes=True)
    envs.close()
    assert rollout.rewards.shape[0] <= 12 + 4
    assert sum(rollout.episode_lengths) == rollout.num_steps


@pytest.mark.parametrize("mode", MODES)
def test_previous_continues_where_the_last_rollout_stopped(mode: str) -> None:
    T = 60
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    envs = cartpole_envs(mode, 8)
    torch.manual_seed(1)
    whole = collect(envs, policy, T, seed=6)
    # split right after a step where some environment finished: in NEXT_STEP mode its pending
    # reset must be carried into the second rollout
    split = int(torch.nonzero(whole.dones[: T // 2].any(1)).max()) + 1
    torch.manual_seed(1)
    first = collect(envs, policy, split, seed=6)
    second = collect(envs, policy, T - split, previous=first, seed=12345)
    envs.close()

    torch.testing.assert_close(second.obs[0], first.next_obs)
    for name in (
        "obs",
        "actions",
        "rewards",
        "terminated",
        "truncated",
        "mask",
        "final_obs",
    ):
        joined = torch.cat([getattr(first, name), getattr(second, name)])
        torch.testing.assert_close(joined, getattr(whole, name), msg=name)
    torch.testing.assert_close(second.next_obs, whole.next_obs)
    # episodes that straddle the split are counted whole
    assert first.episode_returns + second.episode_returns == pytest.approx(
        whole.episode_returns
    )
    assert first.episode_lengths + second.episode_lengths == whole.episode_lengths
    if mode == "next_step":
        assert not second.mask[0].all()


@pytest.mark.parametrize("mode", MODES)
def test_same_seeds_give_identical_rollouts(mode: str) -> None:
    def run(env_seed: int, torch_seed: int) -> Rollout:
        torch.manual_seed(torch_seed)
        policy = CategoricalPolicy(4, 2, hidden=(8,))
        envs = cartpole_envs(mode, 4)
        rollout = collect(envs, policy, 40, seed=env_seed)
        envs.close()
        return rollout

    a, b, c = run(7, 0), run(7, 0), run(8, 0)
    for name in (
        "obs",
        "actions",
        "rewards",
        "terminated",
        "truncated",
        "mask",
        "log_probs",
    ):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.episode_returns == b.episode_returns
    assert not torch.equal(a.obs[0], c.obs[0])


def test_log_probs_and_values_belong_to_the_stored_steps(policy) -> None:
    value_fn = ValueNet(4, hidden=(8,))
    envs = cartpole_envs("next_step", 4)
    rollout = collect(envs, policy, 30, seed=8, value_fn=value_fn)
    envs.close()
    with torch.no_grad():
        torch.testing.assert_close(
            rollout.log_probs, policy.dist(rollout.obs).log_prob(rollout.actions)
        )
        torch.testing.assert_close(rollout.values, value_fn(rollout.obs))
    envs = cartpole_envs("next_step", 2)
    assert collect(envs, policy, 3, seed=0).values is None
    envs.close()


# ---------------------------------------------------------------------------------------------
# Continuous actions
# ---------------------------------------------------------------------------------------------


class RecordActions(gym.Wrapper):
    """Keeps every action the environment receives."""

    def __init__(self, env: gym.Env, record: list):
        super().__init__(env)
        self.record = record

    def step(self, action):
        self.record.append(np.array(action, copy=True))
        return self.env.step(action)


def test_make_envs_runs_pendulum_with_same_step_autoreset() -> None:
    envs = make_envs("Pendulum-v1", 2)
    assert isinstance(envs, gym.vector.SyncVectorEnv)
    assert autoreset_mode(envs) is AutoresetMode.SAME_STEP
    torch.manual_seed(0)
    rollout = collect(envs, GaussianPolicy(3, 1, hidden=(8,)), 10, seed=0)
    envs.close()
    assert rollout.actions.shape == (10, 2, 1)
    assert rollout.log_probs.shape == (10, 2)


def test_gaussian_actions_are_clipped_only_for_the_environment() -> None:
    records = [[], []]
    envs = gym.vector.SyncVectorEnv(
        [lambda r=r: RecordActions(gym.make("Pendulum-v1"), r) for r in records],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    torch.manual_seed(0)
    # std 4.5 on a [-2, 2] space
    policy = GaussianPolicy(3, 1, hidden=(8,), log_std_init=1.5)
    rollout = collect(envs, policy, 50, seed=0)
    envs.close()
    actions = rollout.actions.numpy()
    assert np.abs(actions).max() > 2.0  # some sampled actions lie outside the space
    for i, record in enumerate(records):
        sent = np.stack(record)
        np.testing.assert_allclose(sent, np.clip(actions[:, i], -2.0, 2.0), rtol=1e-6)
        assert np.all(np.abs(sent) <= 2.0)
    # the stored log-probabilities are those of the unclipped samples
    with torch.no_grad():
        torch.testing.assert_close(
            rollout.log_probs, policy.dist(rollout.obs).log_prob(rollout.actions)
        )


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_gives_mean_and_std_over_episodes() -> None:
    # Pendulum runs in a SyncVectorEnv that seeds environment i with seed + i, so each episode
    # can be replayed one by one in a plain environment
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 1, hidden=(8,))
    mean, std = evaluate("Pendulum-v1", policy, num_episodes=3, seed=5)
    returns = []
    for i in range(3):
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=5 + i)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = policy(torch.as_tensor(obs)).numpy().clip(-2.0, 2.0)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        env.close()
        returns.append(total)
    assert mean == pytest.approx(np.mean(returns), rel=1e-5)
    assert std == pytest.approx(np.std(returns), rel=1e-4)
    assert isinstance(mean, float) and isinstance(std, float)


def test_episode_returns_are_paired_by_start_state_and_behind_evaluate() -> None:
    # episode i starts from reset(seed=seed + i): a controller replayed cave by cave in a
    # plain environment gives the same returns in the same order
    import rlbook.envs  # noqa: F401  (registers rlbook/Pixelcopter-v0)
    from rlbook.envs import HoverController, hover_policy

    returns = episode_returns(
        "rlbook/Pixelcopter-v0", HoverController(), num_episodes=4, seed=9
    )
    for i in range(4):
        env = gym.make("rlbook/Pixelcopter-v0")
        obs, _ = env.reset(seed=9 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(hover_policy(obs))
            total += reward
            done = terminated or truncated
        assert returns[i] == total
    assert returns.shape == (4,) and returns.dtype == np.float64
    mean, std = evaluate(
        "rlbook/Pixelcopter-v0", HoverController(), num_episodes=4, seed=9
    )
    assert (mean, std) == (returns.mean(), returns.std())


def test_deterministic_evaluation_is_reproducible(policy) -> None:
    first = evaluate("CartPole-v1", policy, num_episodes=5, seed=3)
    assert evaluate("CartPole-v1", policy, num_episodes=5, seed=3) == first
    assert 5 <= first[0] <= 500 and first[1] >= 0


def test_stochastic_evaluation_is_reproducible_with_the_torch_seed(policy) -> None:
    torch.manual_seed(0)
    first = evaluate("CartPole-v1", policy, num_episodes=5, deterministic=False, seed=3)
    torch.manual_seed(0)
    second = evaluate(
        "CartPole-v1", policy, num_episodes=5, deterministic=False, seed=3
    )
    assert first == second


def test_evaluate_passes_make_kwargs_to_the_environment() -> None:
    # no policy outlasts the time limit, and no policy drops the pole within 5 steps
    policy = CategoricalPolicy(4, 2, hidden=())
    mean, _ = evaluate("CartPole-v1", policy, num_episodes=4, max_episode_steps=5)
    assert mean == 5.0


def test_evaluate_bad_input(policy) -> None:
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate("CartPole-v1", policy, num_episodes=0)
    with pytest.raises(TypeError, match="GaussianPolicy"):
        evaluate("Pendulum-v1", policy, num_episodes=1)


# ---------------------------------------------------------------------------------------------
# Bad input and autoreset modes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_steps", [0, -3, 2.0, None])
def test_collect_rejects_bad_num_steps(num_steps, policy) -> None:
    envs = cartpole_envs("next_step", 2)
    with pytest.raises((TypeError, ValueError), match="num_steps"):
        collect(envs, policy, num_steps)
    envs.close()


def test_collect_rejects_a_single_environment(policy) -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="VectorEnv"):
        collect(env, policy, 5)
    env.close()


def test_collect_rejects_a_policy_of_the_wrong_kind() -> None:
    envs = cartpole_envs("next_step", 2)
    with pytest.raises(TypeError, match="CategoricalPolicy"):
        collect(envs, GaussianPolicy(4, 1), 5)
    with pytest.raises(ValueError, match="actions"):
        collect(envs, CategoricalPolicy(4, 3), 5)
    envs.close()


def test_autoreset_mode() -> None:
    envs = cartpole_envs("next_step", 2)
    assert autoreset_mode(envs) is AutoresetMode.NEXT_STEP
    envs.close()
    envs = cartpole_envs("same_step", 2)
    assert autoreset_mode(envs) is AutoresetMode.SAME_STEP
    envs.close()
    as_string = SimpleNamespace(metadata={"autoreset_mode": "SameStep"})
    assert autoreset_mode(as_string) is AutoresetMode.SAME_STEP


def test_disabled_autoreset_is_rejected(policy) -> None:
    envs = gym.make_vec(
        "CartPole-v1",
        2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
    )
    with pytest.raises(ValueError, match="autoreset"):
        collect(envs, policy, 5)
    envs.close()


def test_make_envs() -> None:
    envs = make_envs("CartPole-v1", 3)
    assert envs.num_envs == 3
    assert autoreset_mode(envs) is AutoresetMode.NEXT_STEP
    envs.close()
    for bad in (0, -1, 2.0):
        with pytest.raises((TypeError, ValueError), match="num_envs"):
            make_envs("CartPole-v1", bad)


def test_the_seed_offset_shifts_the_resets_of_collect_and_evaluate(monkeypatch):
    policy = CategoricalPolicy(4, 2, hidden=(8,))

    def first_obs(seed):
        envs = make_envs("CartPole-v1", 2)
        try:
            return collect(envs, policy, 1, seed=seed).obs[0]
        finally:
            envs.close()

    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "0")
    base, shifted_by_hand = first_obs(0), first_obs(5)
    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "5")
    assert torch.equal(first_obs(0), shifted_by_hand)
    assert not torch.equal(first_obs(0), base)
    # evaluation start states: offset 5 with seed 0 plays the episodes of seed 5
    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "0")
    torch.manual_seed(1)
    a = evaluate("CartPole-v1", policy, 3, deterministic=False, seed=5)
    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "5")
    torch.manual_seed(1)
    assert evaluate("CartPole-v1", policy, 3, deterministic=False, seed=0) == a
