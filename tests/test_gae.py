"""Tests of rlbook.returns.gae and successor_values against computations written from definitions.

GAE is held against (1) the one-step TD error at lambda = 0, (2) the Monte-Carlo return minus V
at lambda = 1, both computed by plain loops over episodes, and (3) the explicit sum
A_t = sum_k (gamma lambda)^k delta_{t+k} over the rest of the episode (no recursion) on random
rollouts with terminations, truncations and padding slots laid out as ``collect`` lays them out.
"""

import math

import pytest
import torch

from rlbook.returns import gae, successor_values

# ---------------------------------------------------------------------------------------------
# Random rollouts with the layout of rlbook.rollout.Rollout
# ---------------------------------------------------------------------------------------------


def random_rollout(seed: int, padding: bool = True) -> dict[str, torch.Tensor]:
    """Rewards, values, successor values, terminated, truncated and mask shaped (T, N).

    Successor values are the next slot's values within an episode (the layout
    successor_values produces), independent numbers where an episode ends and at the last step.
    Episodes end by termination or truncation at random; with ``padding``, a slot after an
    episode end is sometimes a padding slot (NEXT_STEP's reset step), and sometimes an
    environment stops early and pads to the end (collect's ``complete_episodes``). Padding
    slots hold zero rewards and no episode end, like collect's, but junk values.
    """
    gen = torch.Generator().manual_seed(seed)
    T, N = 4 + seed % 13, 1 + seed % 5

    def rand() -> float:
        return float(torch.rand((), generator=gen))

    rewards = torch.randn(T, N, generator=gen, dtype=torch.float64)
    values = torch.randn(T, N, generator=gen, dtype=torch.float64)
    next_values = torch.randn(T, N, generator=gen, dtype=torch.float64)
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    mask = torch.ones(T, N, dtype=torch.bool)
    for i in range(N):
        stopped, t = False, 0
        while t < T:
            if stopped:
                mask[t, i] = False
            elif rand() < 0.3:  # the episode ends here
                if rand() < 0.5:
                    terminated[t, i] = True
                if rand() < 0.4:
                    truncated[t, i] = (
                        True  # sometimes both, as when a pole falls at the limit
                    )
                if not terminated[t, i]:
                    truncated[t, i] = True
                if padding and rand() < 0.5 and t + 1 < T:
                    mask[t + 1, i] = False  # NEXT_STEP's reset slot
                    t += 1
                if padding and rand() < 0.15:
                    stopped = True
            t += 1
    # within an episode the successor's value is the next slot's value, as successor_values
    # builds it; where an episode ends it is V(final obs), here an independent number
    dones = terminated | truncated
    next_values[:-1] = torch.where(dones[:-1], next_values[:-1], values[1:])
    # padding slots: no reward, no episode end, junk values that must not leak
    rewards[~mask] = 0.0
    values[~mask] = 1e6
    next_values[~mask] = math.nan
    return dict(
        rewards=rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
        mask=mask,
    )


def episode_end(case: dict, t: int, i: int) -> int:
    """The last real step of the episode that step t of env i belongs to (or T - 1)."""
    T = case["rewards"].shape[0]
    k = t
    while k < T - 1 and not (case["terminated"][k, i] or case["truncated"][k, i]):
        k += 1
    return k


def loop_td_errors(case: dict, gamma: float) -> torch.Tensor:
    r, v, nv = case["rewards"], case["values"], case["next_values"]
    out = torch.zeros_like(r)
    T, N = r.shape
    for i in range(N):
        for t in range(T):
            if not case["mask"][t, i]:
                continue
            bootstrap = 0.0 if case["terminated"][t, i] else float(nv[t, i])
            out[t, i] = float(r[t, i]) + gamma * bootstrap - float(v[t, i])
    return out


def loop_gae(case: dict, gamma: float, lam: float) -> torch.Tensor:
    """A_t = sum_{k=0}^{end - t} (gamma lambda)^k delta_{t+k}, by a double loop."""
    deltas = loop_td_errors(case, gamma)
    out = torch.zeros_like(deltas)
    T, N = deltas.shape
    for i in range(N):
        for t in range(T):
            if not case["mask"][t, i]:
                continue
            end = episode_end(case, t, i)
            out[t, i] = sum(
                (gamma * lam) ** (k - t) * float(deltas[k, i])
                for k in range(t, end + 1)
            )
    return out


def loop_monte_carlo_minus_v(case: dict, gamma: float) -> torch.Tensor:
    """G_t - V(s_t): discounted rewards to the end of the episode, plus the discounted
    bootstrap value where the episode was cut (truncated, or still running at T - 1)."""
    r, v, nv = case["rewards"], case["values"], case["next_values"]
    out = torch.zeros_like(r)
    T, N = r.shape
    for i in range(N):
        for t in range(T):
            if not case["mask"][t, i]:
                continue
            end = episode_end(case, t, i)
            g = sum(gamma ** (k - t) * float(r[k, i]) for k in range(t, end + 1))
            if not case["terminated"][end, i]:
                g += gamma ** (end - t + 1) * float(nv[end, i])
            out[t, i] = g - float(v[t, i])
    return out


def run_gae(case: dict, gamma: float, lam: float, use_mask: bool = True):
    return gae(
        case["rewards"],
        case["values"],
        case["next_values"],
        case["terminated"],
        case["truncated"],
        gamma=gamma,
        gae_lambda=lam,
        mask=case["mask"] if use_mask else None,
    )


# ---------------------------------------------------------------------------------------------
# The two special cases and the general one
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("seed", range(8))
def test_lambda_zero_gives_the_td_error(seed: int, gamma: float) -> None:
    case = random_rollout(seed)
    advantages, _ = run_gae(case, gamma, 0.0)
    torch.testing.assert_close(advantages, loop_td_errors(case, gamma))


@pytest.mark.parametrize("gamma", [0.5, 0.97, 1.0])
@pytest.mark.parametrize("seed", range(8))
def test_lambda_one_gives_monte_carlo_return_minus_v(seed: int, gamma: float) -> None:
    case = random_rollout(seed)
    advantages, returns = run_gae(case, gamma, 1.0)
    expected = loop_monte_carlo_minus_v(case, gamma)
    torch.testing.assert_close(advantages, expected)
    # the value targets are then the (bootstrapped) Monte-Carlo returns themselves
    mask = case["mask"]
    torch.testing.assert_close(returns[mask], (expected + case["values"])[mask])


def test_lambda_one_on_terminated_episodes_is_the_plain_return_minus_v() -> None:
    # one episode of rewards 1, 2, 3 that terminates: G = (1 + 2g + 3g^2, 2 + 3g, 3)
    g = 0.9
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64)
    terminated = torch.tensor([[False], [False], [True]])
    advantages, returns = gae(
        rewards,
        values,
        torch.tensor(
            [[-1.0], [2.0], [123.0]], dtype=torch.float64
        ),  # 123 is never read
        terminated,
        torch.zeros_like(terminated),
        gamma=g,
        gae_lambda=1.0,
    )
    expected_returns = torch.tensor([[1 + 2 * g + 3 * g**2], [2 + 3 * g], [3.0]])
    torch.testing.assert_close(returns, expected_returns.double())
    torch.testing.assert_close(advantages, expected_returns.double() - values)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("seed", range(25))
def test_gae_matches_the_explicit_sum(seed: int, lam: float) -> None:
    case = random_rollout(seed)
    advantages, returns = run_gae(case, 0.95, lam)
    torch.testing.assert_close(advantages, loop_gae(case, 0.95, lam))
    mask = case["mask"]
    torch.testing.assert_close(returns[mask], (advantages + case["values"])[mask])


@pytest.mark.parametrize("seed", range(10))
def test_padding_slots_get_zero_and_leak_nothing(seed: int) -> None:
    case = random_rollout(seed)
    mask = case["mask"]
    advantages, returns = run_gae(case, 0.99, 0.95)
    assert torch.all(advantages[~mask] == 0) and torch.all(returns[~mask] == 0)
    assert torch.isfinite(advantages).all() and torch.isfinite(returns).all()
    # other junk in the padding slots changes nothing
    other = dict(case)
    other["values"] = case["values"].masked_fill(~mask, -7.0)
    other["next_values"] = case["next_values"].masked_fill(~mask, 1e9)
    adv2, ret2 = run_gae(other, 0.99, 0.95)
    torch.testing.assert_close(adv2, advantages)
    torch.testing.assert_close(ret2, returns)


def test_without_padding_mask_is_optional() -> None:
    case = random_rollout(3, padding=False)
    assert case["mask"].all()
    with_mask = run_gae(case, 0.9, 0.8)
    without = run_gae(case, 0.9, 0.8, use_mask=False)
    for a, b in zip(with_mask, without, strict=True):
        torch.testing.assert_close(a, b)


def test_terminal_successor_values_are_never_read() -> None:
    case = random_rollout(5)
    advantages, _ = run_gae(case, 0.9, 0.9)
    other = dict(case)
    other["next_values"] = case["next_values"].masked_fill(case["terminated"], math.nan)
    torch.testing.assert_close(run_gae(other, 0.9, 0.9)[0], advantages)


def test_truncation_bootstraps_and_termination_does_not() -> None:
    # one step that ends an episode, r = 1, V(s) = 0, V(s') = 10, gamma = 0.5
    def one_step(terminated: bool, truncated: bool) -> float:
        advantages, _ = gae(
            torch.ones(1, 1),
            torch.zeros(1, 1),
            torch.full((1, 1), 10.0),
            torch.tensor([[terminated]]),
            torch.tensor([[truncated]]),
            gamma=0.5,
            gae_lambda=0.9,
        )
        return float(advantages)

    assert one_step(terminated=False, truncated=True) == 1.0 + 0.5 * 10.0
    assert one_step(terminated=True, truncated=False) == 1.0
    # a terminal state is terminal
    assert one_step(terminated=True, truncated=True) == 1.0
    # the end of the rollout (neither flag) bootstraps too
    assert one_step(terminated=False, truncated=False) == 1.0 + 0.5 * 10.0


def test_recursion_stops_at_truncation() -> None:
    # two episodes back to back in one column; the second one's advantage must not flow back
    rewards = torch.tensor([[0.0], [0.0], [5.0]])
    values = torch.zeros(3, 1)
    next_values = torch.zeros(3, 1)
    truncated = torch.tensor([[False], [True], [False]])
    advantages, _ = gae(
        rewards, values, next_values, torch.zeros_like(truncated), truncated, 1.0, 1.0
    )
    torch.testing.assert_close(advantages, torch.tensor([[0.0], [0.0], [5.0]]))


def test_a_correct_value_function_gives_zero_advantages() -> None:
    # reward 1 forever, cut by a time limit every 4 steps: V = 1 / (1 - gamma) is exact, and
    # with the bootstrap at truncations every TD error and every advantage is 0
    gamma, T, N = 0.9, 12, 3
    v = 1.0 / (1.0 - gamma)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    truncated[3::4] = True
    advantages, returns = gae(
        torch.ones(T, N),
        torch.full((T, N), v),
        torch.full((T, N), v),
        torch.zeros(T, N, dtype=torch.bool),
        truncated,
        gamma,
        0.95,
    )
    torch.testing.assert_close(advantages, torch.zeros(T, N))
    torch.testing.assert_close(returns, torch.full((T, N), v))


# ---------------------------------------------------------------------------------------------
# successor_values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_successor_values(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    T, N = 6, 4
    values = torch.randn(T, N, generator=gen)
    last = torch.randn(N, generator=gen)
    final = torch.randn(T, N, generator=gen)
    dones = torch.rand(T, N, generator=gen) < 0.3
    got = successor_values(values, last, final, dones)
    for t in range(T):
        for i in range(N):
            if dones[t, i]:
                expected = final[t, i]
            elif t == T - 1:
                expected = last[i]
            else:
                expected = values[t + 1, i]
            assert got[t, i] == expected


def test_successor_values_bad_input() -> None:
    values = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="last_values"):
        successor_values(values, torch.zeros(3), values, values.bool())
    with pytest.raises(ValueError, match="final_values"):
        successor_values(values, torch.zeros(2), torch.zeros(3, 3), values.bool())
    with pytest.raises(ValueError, match="dones"):
        successor_values(
            values, torch.zeros(2), values, torch.zeros(2, 2, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="values"):
        successor_values(torch.zeros(3), torch.zeros(2), values, values.bool())


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def good_args() -> dict:
    case = random_rollout(1)
    return dict(
        rewards=case["rewards"],
        values=case["values"],
        next_values=case["next_values"],
        terminated=case["terminated"],
        truncated=case["truncated"],
        mask=case["mask"],
    )


@pytest.mark.parametrize(
    "name", ["values", "next_values", "terminated", "truncated", "mask"]
)
def test_gae_rejects_mismatched_shapes_naming_the_argument(name: str) -> None:
    args = good_args()
    args[name] = args[name][:-1]
    with pytest.raises(ValueError, match=name):
        gae(**args)


@pytest.mark.parametrize(
    ("name", "value"),
    [("gamma", 1.5), ("gamma", -0.1), ("gae_lambda", 1.01), ("gae_lambda", math.nan)],
)
def test_gae_rejects_bad_coefficients(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        gae(**good_args(), **{name: value})


def test_gae_rejects_nan_where_it_is_read() -> None:
    args = good_args()
    t, i = args["mask"].nonzero()[0].tolist()
    values = args["values"].clone()
    values[t, i] = math.nan
    with pytest.raises(ValueError, match="values must be finite"):
        gae(**{**args, "values": values})


def test_gae_rejects_empty_and_non_tensor_input() -> None:
    args = good_args()
    with pytest.raises(TypeError, match="rewards"):
        gae(**{**args, "rewards": args["rewards"].tolist()})
    with pytest.raises(TypeError, match="next_values"):
        gae(**{**args, "next_values": 0.0})
    empty = torch.zeros(0, 2)
    with pytest.raises(ValueError, match="rewards must not be empty"):
        gae(empty, empty, empty, empty.bool(), empty.bool())
