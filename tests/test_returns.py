"""Tests of rlbook.returns against plain Python loops written from the definitions.

reward_to_go and discounted_returns are checked against double loops over episodes,
against each other (the whole return is the reward-to-go at the episode's first step), and on
real rollouts against the episode returns the environment reported.
"""

import math

import numpy as np
import pytest
import torch

from rlbook.policies import CategoricalPolicy
from rlbook.returns import discounted_returns, normalize, reward_to_go
from rlbook.rollout import collect, make_envs


def random_case(seed: int, done_prob: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rewards and dones shaped (T, N); the last step need not end an episode."""
    gen = torch.Generator().manual_seed(seed)
    t, n = 3 + seed % 11, 1 + seed % 4
    rewards = torch.randn(t, n, generator=gen, dtype=torch.float64)
    dones = torch.rand(t, n, generator=gen) < done_prob
    return rewards, dones


def loop_reward_to_go(rewards, dones, gamma):
    """G[t] = sum_{k=t}^{end of t's episode} gamma^(k-t) r[k], by a double loop."""
    r, d = rewards.tolist(), dones.tolist()
    T, N = len(r), len(r[0])
    out = [[0.0] * N for _ in range(T)]
    for i in range(N):
        for t in range(T):
            total, k = 0.0, t
            while k < T:
                total += gamma ** (k - t) * r[k][i]
                if d[k][i]:
                    break
                k += 1
            out[t][i] = total
    return torch.tensor(out, dtype=rewards.dtype)


def episodes_of(dones_column, mask_column=None):
    """Lists of step indices, one per episode, for a single environment."""
    T = len(dones_column)
    mask_column = [True] * T if mask_column is None else mask_column
    episodes, current = [], []
    for t in range(T):
        if not mask_column[t]:
            if current:
                episodes.append(current)
            current = []
            continue
        current.append(t)
        if dones_column[t]:
            episodes.append(current)
            current = []
    if current:
        episodes.append(current)
    return episodes


def loop_discounted_returns(rewards, dones, gamma, mask=None):
    """Each step gets sum_k gamma^k r_k over its episode, k counted from the episode's start."""
    r, d = rewards.tolist(), dones.tolist()
    m = None if mask is None else mask.tolist()
    T, N = len(r), len(r[0])
    out = torch.full((T, N), math.nan, dtype=rewards.dtype)
    for i in range(N):
        column_mask = None if m is None else [m[t][i] for t in range(T)]
        for steps in episodes_of([d[t][i] for t in range(T)], column_mask):
            ret = sum(gamma**k * r[t][i] for k, t in enumerate(steps))
            for t in steps:
                out[t, i] = ret
    return out


GAMMAS = [0.0, 0.5, 0.9, 0.99, 1.0]


# ---------------------------------------------------------------------------------------------
# reward_to_go
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("seed", range(8))
def test_reward_to_go_matches_double_loop(seed: int, gamma: float) -> None:
    rewards, dones = random_case(seed)
    got = reward_to_go(rewards, dones, gamma)
    assert got.shape == rewards.shape and got.dtype == rewards.dtype
    torch.testing.assert_close(got, loop_reward_to_go(rewards, dones, gamma))


def test_reward_to_go_with_gamma_zero_is_the_reward() -> None:
    rewards, dones = random_case(5)
    torch.testing.assert_close(reward_to_go(rewards, dones, 0.0), rewards)


def test_reward_to_go_without_dones_is_a_reversed_cumulative_sum() -> None:
    rewards, _ = random_case(7)
    dones = torch.zeros_like(rewards, dtype=torch.bool)
    expected = rewards.flip(0).cumsum(0).flip(0)
    torch.testing.assert_close(reward_to_go(rewards, dones, 1.0), expected)


def test_reward_to_go_never_crosses_a_done() -> None:
    # changing a reward of one episode must leave the other episodes' reward-to-go alone
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    dones = torch.tensor([[False], [True], [False], [False], [True]])
    before = reward_to_go(rewards, dones, 0.9)
    rewards[3, 0] = 100.0
    after = reward_to_go(rewards, dones, 0.9)
    torch.testing.assert_close(after[:2], before[:2])
    assert torch.all(after[2:4] != before[2:4])
    torch.testing.assert_close(after[4], before[4])


def test_reward_to_go_hand_computed_example() -> None:
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    dones = torch.tensor([[False, True], [False, False], [True, False]])
    expected = torch.tensor(
        [[1 + 0.5 * 2 + 0.25 * 3, 1.0], [2 + 0.5 * 3, 1.5], [3.0, 1.0]]
    )
    torch.testing.assert_close(reward_to_go(rewards, dones, 0.5), expected)


def test_reward_to_go_accepts_integer_dones_and_does_not_modify_inputs() -> None:
    rewards, dones = random_case(3)
    rewards_copy = rewards.clone()
    got = reward_to_go(rewards, dones.long(), 0.9)
    torch.testing.assert_close(got, reward_to_go(rewards, dones, 0.9))
    torch.testing.assert_close(rewards, rewards_copy)


# ---------------------------------------------------------------------------------------------
# discounted_returns
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("seed", range(8))
def test_discounted_returns_matches_loop_over_episodes(seed: int, gamma: float) -> None:
    rewards, dones = random_case(seed)
    got = discounted_returns(rewards, dones, gamma)
    torch.testing.assert_close(got, loop_discounted_returns(rewards, dones, gamma))


@pytest.mark.parametrize("gamma", [0.7, 1.0])
@pytest.mark.parametrize("seed", range(6))
def test_discounted_returns_is_reward_to_go_at_episode_start_and_constant_within(
    seed: int, gamma: float
) -> None:
    rewards, dones = random_case(seed, done_prob=0.25)
    whole = discounted_returns(rewards, dones, gamma)
    to_go = reward_to_go(rewards, dones, gamma)
    for i in range(rewards.shape[1]):
        for steps in episodes_of(dones[:, i].tolist()):
            values = whole[steps, i]
            torch.testing.assert_close(
                values, torch.full_like(values, to_go[steps[0], i].item())
            )


def test_discounted_returns_hand_computed_example() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    dones = torch.tensor([[False], [True], [False], [True]])
    expected = torch.tensor(
        [[1 + 0.5 * 2], [1 + 0.5 * 2], [3 + 0.5 * 4], [3 + 0.5 * 4]]
    )
    torch.testing.assert_close(discounted_returns(rewards, dones, 0.5), expected)


def test_discounted_returns_starts_a_new_episode_after_a_padding_slot() -> None:
    # NEXT_STEP layout: episode [1, 2], a padding (reset) slot, then episode [3, 4]; the
    # padding slot carries a reward that must not count, and no done of its own
    rewards = torch.tensor([[1.0], [2.0], [7.0], [3.0], [4.0]])
    dones = torch.tensor([[False], [True], [False], [False], [True]])
    mask = torch.tensor([[True], [True], [False], [True], [True]])
    got = discounted_returns(rewards, dones, 0.5, mask=mask)
    assert got[0, 0] == got[1, 0] == 1 + 0.5 * 2
    assert got[3, 0] == got[4, 0] == 3 + 0.5 * 4
    # without the mask the padding slot would be taken as the second episode's first step
    unmasked = discounted_returns(rewards, dones, 0.5)
    assert unmasked[3, 0] != got[3, 0]


@pytest.mark.parametrize("seed", range(6))
def test_discounted_returns_with_random_padding_matches_loop(seed: int) -> None:
    rewards, dones = random_case(seed, done_prob=0.3)
    # a padding slot follows every done, as in NEXT_STEP autoreset
    mask = torch.ones_like(dones)
    mask[1:] = ~dones[:-1]
    dones = dones & mask
    got = discounted_returns(rewards, dones, 0.8, mask=mask)
    expected = loop_discounted_returns(rewards, dones, 0.8, mask=mask)
    torch.testing.assert_close(got[mask], expected[mask])


@pytest.mark.parametrize("gamma", [1.0, 0.95])
def test_discounted_returns_on_a_rollout_equals_the_reported_episode_returns(
    gamma,
) -> None:
    torch.manual_seed(0)
    envs = make_envs("CartPole-v1", 6)
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    rollout = collect(envs, policy, 30, seed=0, complete_episodes=True)
    envs.close()
    whole = discounted_returns(rollout.rewards, rollout.dones, gamma, mask=rollout.mask)
    # the return at each episode's last step, against the environment's own episode sums
    # (undiscounted: they come from CartPole's +1 per step, so gamma < 1 gives the geometric sum)
    got = sorted(whole[rollout.dones].tolist())
    expected = sorted(
        length if gamma == 1.0 else (1 - gamma**length) / (1 - gamma)
        for length in rollout.episode_lengths
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert sorted(rollout.episode_returns) == sorted(rollout.episode_lengths)


def test_discounted_returns_rejects_a_mask_of_the_wrong_shape() -> None:
    rewards, dones = random_case(2)
    with pytest.raises(ValueError, match="mask"):
        discounted_returns(
            rewards, dones, 1.0, mask=torch.ones(rewards.shape[0] + 1, 1).bool()
        )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

GOOD_REWARDS = torch.ones(4, 2)
GOOD_DONES = torch.zeros(4, 2, dtype=torch.bool)


@pytest.mark.parametrize("fn", [reward_to_go, discounted_returns])
@pytest.mark.parametrize(
    ("rewards", "dones", "gamma", "error", "match"),
    [
        (
            torch.ones(0, 3),
            torch.zeros(0, 3, dtype=torch.bool),
            1.0,
            ValueError,
            "rewards",
        ),
        (torch.ones(4), torch.zeros(4, dtype=torch.bool), 1.0, ValueError, "rewards"),
        (GOOD_REWARDS, torch.zeros(4, 3, dtype=torch.bool), 1.0, ValueError, "dones"),
        (GOOD_REWARDS, torch.zeros(3, 2, dtype=torch.bool), 1.0, ValueError, "dones"),
        (
            torch.tensor([[1.0], [math.nan]]),
            torch.zeros(2, 1).bool(),
            1.0,
            ValueError,
            "rewards",
        ),
        (GOOD_REWARDS, GOOD_DONES, -0.1, ValueError, "gamma"),
        (GOOD_REWARDS, GOOD_DONES, 1.5, ValueError, "gamma"),
        (GOOD_REWARDS, GOOD_DONES, math.nan, ValueError, "gamma"),
        (GOOD_REWARDS, GOOD_DONES, True, TypeError, "gamma"),
        (GOOD_REWARDS, GOOD_DONES, "0.9", TypeError, "gamma"),
        ([[1.0, 2.0]], GOOD_DONES, 1.0, TypeError, "rewards"),
        (np.ones((4, 2)), GOOD_DONES, 1.0, TypeError, "rewards"),
        (GOOD_REWARDS, np.zeros((4, 2), dtype=bool), 1.0, TypeError, "dones"),
    ],
    ids=[
        "empty",
        "1d",
        "dones-too-wide",
        "dones-too-short",
        "nan-reward",
        "gamma-negative",
        "gamma-above-one",
        "gamma-nan",
        "gamma-bool",
        "gamma-str",
        "rewards-list",
        "rewards-ndarray",
        "dones-ndarray",
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(
    fn, rewards, dones, gamma, error, match
) -> None:
    with pytest.raises(error, match=match):
        fn(rewards, dones, gamma)


@pytest.mark.parametrize("gamma", [0, 1])
def test_integer_gamma_at_the_bounds_is_accepted(gamma: int) -> None:
    rewards, dones = random_case(1)
    torch.testing.assert_close(
        reward_to_go(rewards, dones, gamma),
        loop_reward_to_go(rewards, dones, float(gamma)),
    )


# ---------------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(50,), (16, 8)])
def test_normalize_gives_mean_zero_and_std_one(shape) -> None:
    gen = torch.Generator().manual_seed(0)
    x = 3.0 + 10.0 * torch.randn(shape, generator=gen, dtype=torch.float64)
    y = normalize(x)
    assert y.shape == x.shape
    assert abs(y.mean().item()) < 1e-10
    assert y.std(correction=0).item() == pytest.approx(1.0, abs=1e-6)
    # an affine map of x: the order and the ratios of differences are kept
    torch.testing.assert_close(
        y, (x - x.mean()) / x.std(correction=0), atol=1e-6, rtol=1e-6
    )


def test_normalize_uses_only_masked_entries_and_zeros_the_rest() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    mask = torch.rand(12, 5, generator=gen) < 0.6
    y = normalize(x, mask)
    assert torch.all(y[~mask] == 0)
    assert abs(y[mask].mean().item()) < 1e-10
    assert y[mask].std(correction=0).item() == pytest.approx(1.0, abs=1e-6)
    # garbage (even NaN) in the masked-out slots changes nothing
    x2 = x.clone()
    x2[~mask] = math.nan
    torch.testing.assert_close(normalize(x2, mask), y)


@pytest.mark.parametrize("value", [0.0, 500.0, 0.1, 123.456])
@pytest.mark.parametrize("shape", [(7,), (64, 16)])
def test_normalize_of_constant_input_is_zero(value: float, shape) -> None:
    # the docstring's promise: all-equal weights give zeros, not NaN (and not rounding noise
    # blown up to unit scale, which would be random weights of size ~1)
    y = normalize(torch.full(shape, value))
    assert not torch.isnan(y).any()
    assert y.abs().max().item() < 1e-3


def test_normalize_of_a_single_entry_is_zero() -> None:
    assert normalize(torch.tensor([4.2])).tolist() == [0.0]
    mask = torch.tensor([False, True, False])
    assert normalize(torch.tensor([1.0, 2.0, 3.0]), mask).tolist() == [0.0, 0.0, 0.0]


def test_normalize_bad_input() -> None:
    with pytest.raises(TypeError, match="x"):
        normalize([1.0, 2.0])
    with pytest.raises(ValueError, match="mask"):
        normalize(torch.ones(3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        normalize(torch.ones(3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        normalize(torch.tensor([1.0, math.nan]))
