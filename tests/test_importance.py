"""Tests of rlbook.importance: importance weights and estimators against exact expectations.

Exact expectations come from listing every outcome: every point of a small discrete
distribution, every tuple of a few samples, every trajectory of a small tabular MDP with its
probability computed from the dynamics (which the library never sees). The library's answers
are held against those sums, not against a restatement of its own code.
"""

import itertools

import numpy as np
import pytest
import torch

from rlbook import exact
from rlbook.importance import (
    ess,
    importance_weights,
    is_estimate,
    per_decision_is,
    trajectory_weights,
    weighted_is_estimate,
)

P_TARGET = torch.tensor([0.05, 0.10, 0.15, 0.20, 0.20, 0.30], dtype=torch.float64)
Q_BEHAVIOUR = torch.tensor([0.30, 0.25, 0.20, 0.12, 0.08, 0.05], dtype=torch.float64)
F_VALUES = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 4.0], dtype=torch.float64)


def all_trajectories(mdp: exact.TabularMDP, theta: torch.Tensor):
    """Every trajectory with positive probability under ``theta``, and that probability.

    The probability includes ``mu0`` and ``P``: ``P(τ|θ) = μ0(s_0) Π π(a_t|s_t) Π P(s_{t+1}|s_t, a_t)``.
    """
    pi = exact.policy_probs(theta).detach()
    S, A, H = mdp.num_states, mdp.num_actions, mdp.horizon
    states = torch.arange(S)[:, None]
    actions = torch.empty(S, 0, dtype=torch.long)
    prob = mdp.mu0.clone()
    for t in range(H):
        # branch every partial trajectory over the action at step t (and the next state)
        n = len(prob)
        a = torch.arange(A).repeat(n)
        s_t = states[:, t].repeat_interleave(A)
        prob = prob.repeat_interleave(A) * pi[s_t, a]
        states = states.repeat_interleave(A, 0)
        actions = torch.cat([actions.repeat_interleave(A, 0), a[:, None]], 1)
        if t < H - 1:
            n = len(prob)
            s_next = torch.arange(S).repeat(n)
            prob = (
                prob.repeat_interleave(S)
                * mdp.P[s_t.repeat_interleave(S), a.repeat_interleave(S), s_next]
            )
            states = torch.cat([states.repeat_interleave(S, 0), s_next[:, None]], 1)
            actions = actions.repeat_interleave(S, 0)
            keep = prob > 0
            states, actions, prob = states[keep], actions[keep], prob[keep]
    traj = exact.Trajectories(
        states=states, actions=actions, rewards=mdp.R[states, actions]
    )
    return traj, prob


@pytest.fixture(scope="module")
def small_mdp():
    mdp = exact.random_mdp(num_states=3, num_actions=2, horizon=4, seed=5)
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(3, 2, dtype=torch.float64, generator=gen)
    theta_new = theta + 0.8 * torch.randn(3, 2, dtype=torch.float64, generator=gen)
    traj, prob = all_trajectories(mdp, theta)
    log_b = exact.policy_probs(theta).log()[traj.states, traj.actions]
    log_t = exact.policy_probs(theta_new).log()[traj.states, traj.actions]
    return mdp, theta, theta_new, traj, prob, log_t, log_b


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def test_importance_weights_are_the_ratio_of_probabilities() -> None:
    w = importance_weights(P_TARGET.log(), Q_BEHAVIOUR.log())
    assert torch.allclose(w, P_TARGET / Q_BEHAVIOUR, rtol=1e-14, atol=0)
    # weights of mean one under q: sum_x q(x) p(x) / q(x) = 1
    assert abs((Q_BEHAVIOUR * w).sum().item() - 1.0) < 1e-15


def test_weights_of_tiny_probabilities_are_finite_where_the_naive_ratio_is_nan() -> (
    None
):
    log_p = torch.tensor([-800.0, -1000.0, -5.0], dtype=torch.float64)
    log_q = torch.tensor([-801.0, -999.0, -5.0], dtype=torch.float64)
    assert torch.isnan(torch.exp(log_p) / torch.exp(log_q)).any()  # the trap
    w = importance_weights(log_p, log_q)
    assert torch.allclose(
        w, torch.tensor([np.e, np.exp(-1.0), 1.0], dtype=torch.float64)
    )
    # float32 too, where exp underflows already below about -104
    w32 = importance_weights(log_p.float(), log_q.float())
    assert w32.dtype == torch.float32 and torch.isfinite(w32).all()


def test_target_with_probability_zero_gets_weight_zero() -> None:
    w = importance_weights(
        torch.tensor([float("-inf"), 0.0]), torch.tensor([-1.0, -1.0])
    )
    assert w.tolist() == [0.0, pytest.approx(np.e)]


def test_weights_are_differentiable_in_the_target() -> None:
    # d/dz (p_z(x) / q(x)) = w * d log p_z(x) / dz: the score times the weight
    z = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64, requires_grad=True)
    log_q = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    w = importance_weights(torch.log_softmax(z, -1), log_q)
    (g,) = torch.autograd.grad(w[2], z)
    expected = w[2].detach() * (torch.eye(3)[2] - torch.softmax(z.detach(), -1))
    assert torch.allclose(g, expected.double(), atol=1e-15)


def test_trajectory_weights_equal_the_ratio_of_trajectory_probabilities(
    small_mdp,
) -> None:
    # the dynamics cancel: the library never sees mu0 or P, the enumeration does
    mdp, theta, theta_new, traj, prob, log_t, log_b = small_mdp
    _, prob_new = all_trajectories(mdp, theta_new)  # same listing order, other policy
    W = trajectory_weights(log_t, log_b)
    assert W.shape == (traj.num_trajectories,)
    assert torch.allclose(W, prob_new / prob, rtol=1e-12, atol=0)


def test_trajectory_weights_of_a_long_episode_do_not_underflow() -> None:
    log_q = torch.full((2, 2000), np.log(0.3), dtype=torch.float64)
    log_p = log_q + torch.tensor([[0.001], [-0.001]], dtype=torch.float64)
    W = trajectory_weights(log_p, log_q)
    assert torch.allclose(
        W, torch.tensor([np.exp(2.0), np.exp(-2.0)], dtype=torch.float64)
    )


# ---------------------------------------------------------------------------------------------
# Estimators: exact means by enumeration
# ---------------------------------------------------------------------------------------------


def test_is_estimate_is_unbiased_exactly_for_every_sample_size() -> None:
    w_all = P_TARGET / Q_BEHAVIOUR
    target = (P_TARGET * F_VALUES).sum()
    for n in (1, 2, 3):
        idx = torch.tensor(list(itertools.product(range(6), repeat=n)))  # every n-tuple
        prob = Q_BEHAVIOUR[idx].prod(1)
        estimates = torch.stack([is_estimate(w_all[i], F_VALUES[i]) for i in idx])
        assert abs((prob * estimates).sum() - target) < 1e-14
        # and its variance is Var_q[w f] / n
        var_one = (Q_BEHAVIOUR * (w_all * F_VALUES) ** 2).sum() - target**2
        var_n = (prob * (estimates - target) ** 2).sum()
        assert abs(var_n - var_one / n) < 1e-12


def test_weighted_is_estimate_is_biased_but_the_bias_shrinks() -> None:
    w_all = P_TARGET / Q_BEHAVIOUR
    target = (P_TARGET * F_VALUES).sum()
    biases = []
    for n in (1, 2, 3, 4):
        idx = torch.tensor(list(itertools.product(range(6), repeat=n)))
        prob = Q_BEHAVIOUR[idx].prod(1)
        estimates = torch.stack(
            [weighted_is_estimate(w_all[i], F_VALUES[i]) for i in idx]
        )
        biases.append(((prob * estimates).sum() - target).abs().item())
    # n = 1: the weight cancels, the estimate is f(x) with x ~ q, so the bias is E_q f - E_p f
    assert abs(biases[0] - abs((Q_BEHAVIOUR * F_VALUES).sum() - target)) < 1e-14
    assert biases[0] > biases[1] > biases[2] > biases[3] > 0.1


def test_weighted_is_estimate_is_a_weighted_average() -> None:
    # would overflow when summed
    w = torch.tensor([1e300, 3e300, 0.0], dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0], [5.0, -2.0], [100.0, 7.0]], dtype=torch.float64)
    assert torch.allclose(
        weighted_is_estimate(w, f), torch.tensor([4.0, -1.0], dtype=torch.float64)
    )
    # scale-free, and equal weights give the plain mean
    assert torch.allclose(weighted_is_estimate(torch.ones(3), f), f.mean(0))
    assert torch.allclose(weighted_is_estimate(7 * torch.ones(3), f), f.mean(0))


def test_estimators_on_the_mdp_are_unbiased_exactly(small_mdp) -> None:
    mdp, theta, theta_new, traj, prob, log_t, log_b = small_mdp
    J_new = exact.expected_return(mdp, theta_new).item()
    returns = traj.rewards.sum(1)
    ordinary = trajectory_weights(log_t, log_b) * returns
    per_decision = per_decision_is(traj.rewards, log_t, log_b)
    assert abs((prob * ordinary).sum().item() - J_new) < 1e-12
    assert abs((prob * per_decision).sum().item() - J_new) < 1e-12
    # with a discount, per-decision IS estimates the discounted objective
    J_disc = exact.expected_return(mdp, theta_new, gamma=0.7).item()
    disc = per_decision_is(traj.rewards, log_t, log_b, gamma=0.7)
    assert abs((prob * disc).sum().item() - J_disc) < 1e-12
    # and the listing is complete: the probabilities sum to one
    assert abs(prob.sum().item() - 1.0) < 1e-12


def test_per_decision_matches_a_loop_and_special_cases(small_mdp) -> None:
    *_, traj, _, log_t, log_b = small_mdp
    gamma = 0.9
    expected = torch.zeros(traj.num_trajectories, dtype=torch.float64)
    for t in range(traj.horizon):
        w_t = torch.exp((log_t[:, : t + 1] - log_b[:, : t + 1]).sum(1))
        expected += gamma**t * w_t * traj.rewards[:, t]
    assert torch.allclose(per_decision_is(traj.rewards, log_t, log_b, gamma), expected)
    # H = 1: per-decision and ordinary IS coincide
    one = per_decision_is(traj.rewards[:, :1], log_t[:, :1], log_b[:, :1])
    assert torch.allclose(
        one, trajectory_weights(log_t[:, :1], log_b[:, :1]) * traj.rewards[:, 0]
    )
    # a reward only at the last step: they coincide too
    last = torch.zeros_like(traj.rewards)
    last[:, -1] = traj.rewards[:, -1]
    ordinary = trajectory_weights(log_t, log_b) * last.sum(1)
    assert torch.allclose(per_decision_is(last, log_t, log_b), ordinary)


# ---------------------------------------------------------------------------------------------
# Effective sample size
# ---------------------------------------------------------------------------------------------


def test_ess_extremes_and_scale_invariance() -> None:
    assert ess(torch.ones(50)) == pytest.approx(50)
    assert ess(torch.tensor([0.0, 0.0, 3.0, 0.0])) == pytest.approx(1)
    w = torch.tensor([0.5, 2.0, 1.0, 4.0], dtype=torch.float64)
    assert ess(w) == pytest.approx(ess(1e300 * w)) == pytest.approx(7.5**2 / 21.25)


def test_ess_approaches_m_over_the_second_moment_of_the_weights() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.multinomial(Q_BEHAVIOUR, 200_000, replacement=True, generator=gen)
    w = (P_TARGET / Q_BEHAVIOUR)[x]
    second_moment = (P_TARGET**2 / Q_BEHAVIOUR).sum().item()  # 1 + chi^2(p || q)
    assert ess(w) / len(x) == pytest.approx(1 / second_moment, rel=0.02)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: importance_weights(torch.zeros(3), torch.zeros(4)),
            "log_p_behaviour must have the shape",
        ),
        (
            lambda: importance_weights(torch.tensor([float("nan")]), torch.zeros(1)),
            "log_p_target must not contain NaN",
        ),
        (
            lambda: importance_weights(torch.zeros(1), torch.tensor([float("-inf")])),
            "log_p_behaviour must be finite",
        ),
        (
            lambda: importance_weights(torch.tensor([float("inf")]), torch.zeros(1)),
            "log_p_target must be a log-probability, got \\+inf",
        ),
        (
            lambda: importance_weights("a", torch.zeros(1)),
            "log_p_target must be an array of real numbers",
        ),
        (lambda: trajectory_weights(torch.tensor(0.0), torch.tensor(0.0)), "time axis"),
        (lambda: is_estimate(torch.ones(3), torch.ones(4)), "values must have shape"),
        (
            lambda: is_estimate(torch.ones(3, 1), torch.ones(3)),
            "weights must have shape",
        ),
        (
            lambda: is_estimate(-torch.ones(3), torch.ones(3)),
            "weights must be non-negative",
        ),
        (
            lambda: weighted_is_estimate(torch.zeros(3), torch.ones(3)),
            "weights must not all be zero",
        ),
        (
            lambda: weighted_is_estimate(
                torch.tensor([1.0, float("inf")]), torch.ones(2)
            ),
            "inf",
        ),
        (
            lambda: per_decision_is(
                torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), 1.5
            ),
            "gamma",
        ),
        (
            lambda: per_decision_is(
                torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2, 3)
            ),
            "rewards must have the shape",
        ),
        (
            lambda: per_decision_is(torch.zeros(3), torch.zeros(3), torch.zeros(3)),
            "log_p_target must have shape \\(M, H\\)",
        ),
        (lambda: ess(torch.zeros(3)), "weights must not all be zero"),
        (lambda: ess(torch.tensor([1.0, -1.0])), "non-negative"),
        (lambda: ess(torch.ones(2, 2)), "weights must have shape \\(M,\\)"),
    ],
)
def test_bad_input_names_the_argument(call, match) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        call()
