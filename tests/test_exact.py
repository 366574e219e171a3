"""Tests of rlbook.exact: the exact yardstick against independent computations and samples.

Every check compares two different computations of one quantity: autograd against finite
differences, forward DP against brute-force enumeration and against backward DP plus the
policy gradient theorem, sample means against exact expectations (within 4 standard errors).
"""

import itertools
import math

import pytest
import torch

from rlbook.exact import (
    TabularMDP,
    Trajectories,
    advantages,
    all_trajectories,
    bound_constant,
    chain_mdp,
    estimator_stats,
    estimator_weights,
    exact_gradient,
    expected_advantage,
    expected_return,
    fisher_matrix,
    grad_log_probs,
    gradient_estimates,
    max_state_kl,
    natural_gradient,
    policy_probs,
    random_mdp,
    sample_trajectories,
    state_distributions,
    state_kl,
    surrogate,
    trajectory_kl,
    value_functions,
)

NUM_SAMPLES = 200_000


def random_theta(mdp: TabularMDP, seed: int) -> torch.Tensor:
    """Logits of a non-uniform policy, so the tests do not only probe θ = 0."""
    gen = torch.Generator().manual_seed(seed)
    shape = (mdp.num_states, mdp.num_actions)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


# Small MDPs of different shapes, each with a policy: (name, mdp, theta).
CASES = {
    "random-4x3-h5": (random_mdp(seed=0), 0),
    "random-3x2-h4": (random_mdp(num_states=3, num_actions=2, horizon=4, seed=1), 1),
    "random-5x4-h6": (random_mdp(num_states=5, num_actions=4, horizon=6, seed=2), 2),
    "chain": (chain_mdp(), None),
}


def case(name: str) -> tuple[TabularMDP, torch.Tensor]:
    mdp, theta_seed = CASES[name]
    if theta_seed is None:  # the uniform policy, as a reader meets the chain first
        return mdp, torch.zeros(mdp.num_states, mdp.num_actions, dtype=torch.float64)
    return mdp, random_theta(mdp, theta_seed)


# ---------------------------------------------------------------------------------------------
# The exact objective and gradient
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("name", list(CASES))
def test_exact_gradient_matches_central_finite_differences(
    name: str, gamma: float
) -> None:
    mdp, theta = case(name)
    grad = exact_gradient(mdp, theta, gamma=gamma)
    eps = 1e-6
    fd = torch.zeros_like(theta)
    for s, a in itertools.product(range(mdp.num_states), range(mdp.num_actions)):
        step = torch.zeros_like(theta)
        step[s, a] = eps
        up = expected_return(mdp, theta + step, gamma=gamma)
        down = expected_return(mdp, theta - step, gamma=gamma)
        fd[s, a] = (up - down) / (2 * eps)
    rel_err = (fd - grad).norm() / grad.norm()
    assert rel_err < 1e-5


def enumerate_return(mdp: TabularMDP, theta: torch.Tensor, gamma: float) -> float:
    """E[Σ_t γ^t r_t] as a sum over every trajectory (s_0, a_0, ..., s_{H-1}, a_{H-1})."""
    pi = torch.softmax(theta, dim=-1).tolist()
    P, R, mu0 = mdp.P.tolist(), mdp.R.tolist(), mdp.mu0.tolist()
    S, A, H = mdp.num_states, mdp.num_actions, mdp.horizon
    total = 0.0
    for states in itertools.product(range(S), repeat=H):
        for actions in itertools.product(range(A), repeat=H):
            prob = mu0[states[0]]
            ret = 0.0
            for t in range(H):
                s, a = states[t], actions[t]
                prob *= pi[s][a]
                ret += gamma**t * R[s][a]
                if t + 1 < H:
                    prob *= P[s][a][states[t + 1]]
            total += prob * ret
    return total


@pytest.mark.parametrize("gamma", [1.0, 0.8])
@pytest.mark.parametrize(
    "mdp",
    [
        random_mdp(num_states=2, num_actions=2, horizon=3, seed=7),
        chain_mdp(3, horizon=4),
    ],
    ids=["random-2x2-h3", "chain-3-h4"],
)
def test_expected_return_matches_brute_force_enumeration(
    mdp: TabularMDP, gamma: float
) -> None:
    theta = random_theta(mdp, seed=3)
    assert expected_return(mdp, theta, gamma=gamma).item() == pytest.approx(
        enumerate_return(mdp, theta, gamma), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("gamma", [1.0, 0.7])
@pytest.mark.parametrize("name", list(CASES))
def test_backward_dp_agrees_with_forward_dp_and_policy_gradient_theorem(
    name: str, gamma: float
) -> None:
    mdp, theta = case(name)
    V, Q = value_functions(mdp, theta, gamma=gamma)
    # J = E[V_0(s_0)]: backward DP against forward DP.
    assert (mdp.mu0 @ V[0]).item() == pytest.approx(
        expected_return(mdp, theta, gamma).item()
    )
    # Policy gradient theorem for the tabular softmax (Sutton et al., 2000):
    # ∂J/∂θ[s, a] = Σ_t γ^t d_t(s) π(a|s) (Q_t(s, a) − V_t(s)), against autograd.
    d = state_distributions(mdp, theta)
    pi = policy_probs(theta)
    discounts = gamma ** torch.arange(mdp.horizon, dtype=torch.float64)
    pgt = torch.einsum("t,ts,sa,tsa->sa", discounts, d, pi, Q - V[..., None])
    torch.testing.assert_close(
        pgt, exact_gradient(mdp, theta, gamma), rtol=1e-10, atol=1e-12
    )


def test_grad_log_probs_matches_autograd() -> None:
    mdp, theta = case("random-5x4-h6")
    gen = torch.Generator().manual_seed(0)
    states = torch.randint(mdp.num_states, (6,), generator=gen)
    actions = torch.randint(mdp.num_actions, (6,), generator=gen)
    scores = grad_log_probs(theta, states, actions)
    assert scores.shape == (6, mdp.num_states, mdp.num_actions)
    for i in range(6):
        th = theta.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(
            torch.log_softmax(th, -1)[states[i], actions[i]], th
        )
        torch.testing.assert_close(scores[i], expected)


def test_gradient_estimates_are_sums_of_weighted_scores() -> None:
    mdp, theta = case("random-4x3-h5")
    traj = sample_trajectories(mdp, theta, 1000, seed=0)
    V = value_functions(mdp, theta).V
    for weights in ("return", "reward_to_go"):
        w = estimator_weights(traj, weights=weights, baseline=V)
        scores = grad_log_probs(theta, traj.states, traj.actions)  # (M, H, S, A)
        expected = (w[..., None, None] * scores).sum(1)
        got = gradient_estimates(mdp, theta, traj, weights=weights, baseline=V)
        torch.testing.assert_close(got, expected)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


def test_sampling_is_reproducible_and_well_formed() -> None:
    mdp, theta = case("random-4x3-h5")
    a = sample_trajectories(mdp, theta, 500, seed=3)
    b = sample_trajectories(mdp, theta, 500, seed=3)
    c = sample_trajectories(mdp, theta, 500, seed=4)
    assert a.states.shape == a.actions.shape == a.rewards.shape == (500, mdp.horizon)
    assert a.states.dtype == a.actions.dtype == torch.long
    assert a.rewards.dtype == torch.float64
    assert torch.equal(a.states, b.states) and torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)
    torch.testing.assert_close(a.rewards, mdp.R[a.states, a.actions])


@pytest.fixture(scope="module")
def samples() -> dict[str, Trajectories]:
    """200k episodes per case, drawn once for all the statistical tests."""
    return {
        name: sample_trajectories(*case(name), NUM_SAMPLES, seed=100 + i)
        for i, name in enumerate(CASES)
    }


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("name", list(CASES))
def test_mean_sampled_return_matches_expected_return(
    samples: dict[str, Trajectories], name: str, gamma: float
) -> None:
    mdp, theta = case(name)
    traj = samples[name]
    returns = (
        gamma ** torch.arange(mdp.horizon, dtype=torch.float64) * traj.rewards
    ).sum(1)
    se = returns.std() / math.sqrt(len(returns))
    exact = expected_return(mdp, theta, gamma=gamma)
    assert abs(returns.mean() - exact) < 4 * se


@pytest.mark.parametrize("name", list(CASES))
def test_state_frequencies_match_state_distributions(
    samples: dict[str, Trajectories], name: str
) -> None:
    mdp, theta = case(name)
    traj = samples[name]
    # (H, S)
    freq = torch.nn.functional.one_hot(traj.states, mdp.num_states).double().mean(0)
    d = state_distributions(mdp, theta)
    se = (d * (1 - d) / NUM_SAMPLES).sqrt()
    assert ((freq - d).abs() <= 4 * se + 1e-12).all()


# ---------------------------------------------------------------------------------------------
# Monte-Carlo estimators against the exact gradient
# ---------------------------------------------------------------------------------------------

UNBIASED = [
    (weights, baseline, gamma)
    for weights in ("return", "reward_to_go")
    for baseline in ("none", "constant", "V")
    for gamma in (1.0, 0.9)
]


def make_baseline(kind: str, mdp: TabularMDP, theta: torch.Tensor, gamma: float):
    if kind == "none":
        return None
    if kind == "constant":
        return 1.5
    values = value_functions(mdp, theta, gamma=gamma)
    return values.V if kind == "V" else values.Q


@pytest.mark.parametrize(("weights", "baseline", "gamma"), UNBIASED)
@pytest.mark.parametrize("name", list(CASES))
def test_estimators_are_unbiased(
    samples: dict[str, Trajectories],
    name: str,
    weights: str,
    baseline: str,
    gamma: float,
) -> None:
    mdp, theta = case(name)
    b = make_baseline(baseline, mdp, theta, gamma)
    estimates = gradient_estimates(
        mdp, theta, samples[name], weights, baseline=b, gamma=gamma
    )
    stats = estimator_stats(estimates, exact=exact_gradient(mdp, theta, gamma=gamma))
    assert stats.max_abs_z < 4


@pytest.mark.parametrize("name", list(CASES))
def test_action_dependent_baseline_is_biased(
    samples: dict[str, Trajectories], name: str
) -> None:
    mdp, theta = case(name)
    Q = value_functions(mdp, theta).Q
    exact = exact_gradient(mdp, theta)
    for weights in ("return", "reward_to_go"):
        estimates = gradient_estimates(mdp, theta, samples[name], weights, baseline=Q)
        assert estimator_stats(estimates, exact=exact).max_abs_z > 10
    # With reward-to-go, E[∇log π_t (G_t − Q_t)] = 0 step by step: the estimator's mean is zero.
    estimates = gradient_estimates(
        mdp, theta, samples[name], "reward_to_go", baseline=Q
    )
    assert estimator_stats(estimates, exact=torch.zeros_like(exact)).max_abs_z < 4


@pytest.mark.parametrize("name", list(CASES))
def test_reward_to_go_has_lower_variance_than_full_return(
    samples: dict[str, Trajectories], name: str
) -> None:
    mdp, theta = case(name)
    full = gradient_estimates(mdp, theta, samples[name], "return")
    rtg = gradient_estimates(mdp, theta, samples[name], "reward_to_go")
    assert estimator_stats(rtg).total_variance < estimator_stats(full).total_variance


def test_estimator_stats_z_score_on_constant_estimates() -> None:
    estimates = torch.tensor([[1.0, 2.0], [1.0, 4.0], [1.0, 6.0]])
    stats = estimator_stats(estimates, exact=torch.tensor([1.0, 4.0]))
    torch.testing.assert_close(
        stats.mean, torch.tensor([1.0, 4.0], dtype=torch.float64)
    )
    assert stats.total_variance == pytest.approx(4.0)
    assert stats.max_abs_z == 0.0
    assert (
        estimator_stats(estimates, exact=torch.tensor([1.5, 4.0])).max_abs_z == math.inf
    )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

GOOD_P = torch.full((2, 2, 2), 0.5, dtype=torch.float64)
GOOD_R = torch.zeros(2, 2)
GOOD_MU0 = torch.tensor([1.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"P": torch.full((2, 2, 2), 0.4)}, "P"),
        ({"P": torch.tensor([[[1.5, -0.5]] * 2] * 2)}, "P"),
        ({"P": torch.full((2, 2, 3), 1 / 3)}, "P"),
        ({"R": torch.zeros(2, 3)}, "R"),
        ({"R": torch.tensor([[0.0, float("nan")], [0.0, 0.0]])}, "R"),
        ({"mu0": torch.tensor([0.5, 0.6])}, "mu0"),
        ({"mu0": torch.tensor([1.0, 0.0, 0.0])}, "mu0"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
    ],
)
def test_mdp_rejects_bad_input(kwargs: dict, argument: str) -> None:
    args = {"P": GOOD_P, "R": GOOD_R, "mu0": GOOD_MU0, "horizon": 3} | kwargs
    with pytest.raises(ValueError, match=rf"^{argument}:"):
        TabularMDP(**args)


def test_functions_reject_bad_input() -> None:
    mdp, theta = case("random-4x3-h5")
    traj = sample_trajectories(mdp, theta, 10, seed=0)
    wrong_theta = torch.zeros(3, 4)
    for fn in (expected_return, exact_gradient, value_functions, state_distributions):
        with pytest.raises((TypeError, ValueError), match=r"^theta\b"):
            fn(mdp, wrong_theta)
    with pytest.raises((TypeError, ValueError), match=r"^theta\b"):
        sample_trajectories(mdp, wrong_theta, 10, seed=0)
    with pytest.raises((TypeError, ValueError), match=r"^theta\b"):
        expected_return(mdp, torch.full_like(theta, float("nan")))
    for gamma in (1.5, -0.1, float("nan")):
        with pytest.raises((TypeError, ValueError), match=r"^gamma\b"):
            exact_gradient(mdp, theta, gamma=gamma)
        with pytest.raises((TypeError, ValueError), match=r"^gamma\b"):
            gradient_estimates(mdp, theta, traj, gamma=gamma)
    for n in (0, -3, 2.0):
        with pytest.raises((TypeError, ValueError), match=r"^num_trajectories\b"):
            sample_trajectories(mdp, theta, n, seed=0)
    with pytest.raises((TypeError, ValueError), match=r"^weights\b"):
        gradient_estimates(mdp, theta, traj, weights="advantage")
    for bad in (torch.zeros(mdp.horizon), torch.zeros(mdp.horizon, mdp.num_states + 1)):
        with pytest.raises((TypeError, ValueError), match=r"^baseline\b"):
            gradient_estimates(mdp, theta, traj, baseline=bad)
    with pytest.raises((TypeError, ValueError), match=r"^actions\b"):
        grad_log_probs(theta, traj.states, traj.actions + mdp.num_actions)
    with pytest.raises((TypeError, ValueError), match=r"^estimates\b"):
        estimator_stats(torch.zeros(1, 4, 3))


@pytest.mark.parametrize(
    "mdp", [random_mdp(seed=0), chain_mdp(), random_mdp(horizon=1)]
)
def test_all_trajectories_are_a_distribution_whose_mean_return_is_j(mdp):
    from rlbook.exact import all_trajectories, expected_return

    theta = torch.randn(mdp.num_states, mdp.num_actions, dtype=torch.float64)
    episodes, prob = all_trajectories(mdp, theta)
    assert episodes.states.shape == (len(prob), mdp.horizon)
    assert (prob > 0).all() and abs(prob.sum().item() - 1) < 1e-12
    exact = expected_return(mdp, theta).item()
    assert abs((prob @ episodes.rewards.sum(1)).item() - exact) < 1e-12


# ---------------------------------------------------------------------------------------------
# Trust regions: the performance-difference lemma, the bound, the Fisher matrix (chapter 5.1)
# ---------------------------------------------------------------------------------------------


def perturbed(theta: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return theta + scale * torch.randn(theta.shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("seed", range(6))
def test_performance_difference_lemma_holds_exactly(seed: int, gamma: float) -> None:
    mdp = random_mdp(num_states=4, num_actions=3, horizon=3 + seed, seed=100 + seed)
    theta = random_theta(mdp, seed)
    theta_new = perturbed(theta, 1.5, seed + 50)  # far away: the lemma is exact anyway
    difference = expected_return(mdp, theta_new, gamma) - expected_return(
        mdp, theta, gamma
    )
    assert abs(expected_advantage(mdp, theta, theta_new, gamma) - difference) < 1e-12
    # ... and the surrogate differs from it: the state distributions differ
    assert abs(surrogate(mdp, theta, theta_new, gamma) - difference) > 1e-4


def test_performance_difference_by_brute_force_enumeration() -> None:
    """E over every episode of θ' of Σ_t A^θ_t(s_t, a_t), against J(θ') − J(θ)."""
    mdp, theta = case("random-3x2-h4")
    theta_new = perturbed(theta, 1.0, 7)
    A = advantages(mdp, theta)
    episodes, prob = all_trajectories(mdp, theta_new)  # sampled by the NEW policy
    steps = torch.arange(mdp.horizon)
    total = (prob * A[steps, episodes.states, episodes.actions].sum(1)).sum()
    difference = expected_return(mdp, theta_new) - expected_return(mdp, theta)
    assert abs(total - difference) < 1e-12


@pytest.mark.parametrize("name", list(CASES))
def test_surrogate_is_zero_at_theta_with_the_policy_gradient(name: str) -> None:
    mdp, theta = case(name)
    assert abs(surrogate(mdp, theta, theta)) < 1e-13
    th = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(surrogate(mdp, theta, th, 0.9), th)
    assert torch.allclose(grad, exact_gradient(mdp, theta, 0.9), atol=1e-12, rtol=0)


@pytest.mark.parametrize("gamma", [1.0, 0.8])
def test_trpo_bound_holds_on_random_pairs(gamma: float) -> None:
    worst = 0.0
    for seed in range(40):
        mdp = random_mdp(num_states=3, num_actions=3, horizon=2 + seed % 6, seed=seed)
        theta = random_theta(mdp, seed)
        theta_new = perturbed(theta, [0.01, 0.1, 1.0, 3.0][seed % 4], seed + 1000)
        error = (
            expected_return(mdp, theta_new, gamma)
            - expected_return(mdp, theta, gamma)
            - surrogate(mdp, theta, theta_new, gamma)
        )
        penalty = bound_constant(mdp, theta, gamma) * max_state_kl(theta, theta_new)
        assert abs(error) <= penalty + 1e-14  # both sides of the bound
        worst = max(worst, abs(error.item()) / penalty.item())
    assert 0 < worst < 1


def test_bound_constant_formula() -> None:
    mdp, theta = case("random-4x3-h5")
    eps = advantages(mdp, theta).abs().max()
    # gamma = 1: 4 eps sum_t t = 2 eps H (H - 1)
    assert torch.isclose(bound_constant(mdp, theta), 2 * eps * 5 * 4, rtol=1e-14)
    # one step: no later state can differ, the surrogate is exact
    one = random_mdp(horizon=1, seed=3)
    th = random_theta(one, 3)
    assert bound_constant(one, th) == 0
    assert (
        abs(
            expected_return(one, th + 1)
            - expected_return(one, th)
            - surrogate(one, th, th + 1)
        )
        < 1e-14
    )


def test_state_kl_against_a_direct_sum_and_its_properties() -> None:
    mdp, theta = case("random-5x4-h6")
    theta_new = perturbed(theta, 0.7, 3)
    p, q = policy_probs(theta), policy_probs(theta_new)
    direct = (p * (p / q).log()).sum(1)
    assert torch.allclose(state_kl(theta, theta_new), direct, atol=1e-14, rtol=0)
    assert abs(max_state_kl(theta, theta_new) - direct.max()) < 1e-14
    assert (state_kl(theta, theta_new) > 0).all()
    # a constant added to a row of logits: the same policy
    assert state_kl(theta, theta + 3.0).abs().max() < 1e-14
    with pytest.raises(ValueError, match="theta_new"):
        state_kl(theta, theta[:, :2])


def test_trajectory_kl_by_brute_force_enumeration() -> None:
    mdp, theta = case("random-3x2-h4")
    theta_new = perturbed(theta, 0.8, 11)
    episodes, prob = all_trajectories(mdp, theta)
    log_ratio = (policy_probs(theta).log() - policy_probs(theta_new).log())[
        episodes.states, episodes.actions
    ].sum(1)
    assert abs(trajectory_kl(mdp, theta, theta_new) - (prob * log_ratio).sum()) < 1e-13


@pytest.mark.parametrize("name", list(CASES))
def test_fisher_is_the_hessian_of_the_kl_at_theta(name: str) -> None:
    mdp, theta = case(name)
    n = mdp.num_states * mdp.num_actions
    hessian = torch.autograd.functional.hessian(
        lambda th: trajectory_kl(mdp, theta, th), theta
    ).reshape(n, n)
    F = fisher_matrix(mdp, theta)
    assert torch.allclose(F, F.T, atol=0, rtol=0)
    assert torch.allclose(hessian, F, atol=1e-12, rtol=0)
    # positive semi-definite, with one null direction per state (constant logits)
    eigenvalues = torch.linalg.eigvalsh(F)
    assert eigenvalues.min() > -1e-12
    assert (eigenvalues.abs() < 1e-12).sum() >= mdp.num_states


def test_fisher_matches_a_monte_carlo_average_of_score_outer_products() -> None:
    mdp, theta = case("random-4x3-h5")
    traj = sample_trajectories(mdp, theta, 40_000, seed=5)
    scores = grad_log_probs(theta, traj.states, traj.actions)  # (M, H, S, A)
    scores = scores.reshape(*scores.shape[:2], -1)
    per_episode = torch.einsum("mti,mtj->mij", scores, scores)  # Σ_t g_t g_tᵀ
    stats = estimator_stats(per_episode, exact=fisher_matrix(mdp, theta))
    assert stats.max_abs_z < 5
    # the whole-episode score's outer product has the same mean: cross terms vanish (EGLP)
    total = scores.sum(1)
    outer = torch.einsum("mi,mj->mij", total, total)
    assert estimator_stats(outer, exact=fisher_matrix(mdp, theta)).max_abs_z < 5


@pytest.mark.parametrize("name", list(CASES))
def test_natural_gradient_is_the_centred_average_advantage(name: str) -> None:
    """Kakade (2001): for a tabular softmax, F⁺∇J in state s is the visit-weighted advantage."""
    mdp, theta = case(name)
    d = state_distributions(mdp, theta)  # (H, S)
    visits = d.sum(0)
    A = advantages(mdp, theta)
    average = torch.einsum("ts,tsa->sa", d, A) / visits[:, None]
    centred = average - average.mean(1, keepdim=True)
    nat = natural_gradient(mdp, theta)
    assert torch.allclose(nat, centred, atol=1e-9, rtol=0)
    # and F times it gives back the gradient
    F = fisher_matrix(mdp, theta)
    assert torch.allclose(
        F @ nat.flatten(), exact_gradient(mdp, theta).flatten(), atol=1e-12, rtol=0
    )


def test_trust_region_functions_reject_bad_input() -> None:
    mdp, theta = case("random-4x3-h5")
    with pytest.raises(ValueError, match="theta"):
        surrogate(mdp, theta, theta[:, :2])
    with pytest.raises(ValueError, match="gamma"):
        expected_advantage(mdp, theta, theta, gamma=1.5)
    with pytest.raises(ValueError, match="theta"):
        fisher_matrix(mdp, theta.T)
    with pytest.raises(ValueError, match="theta"):
        trajectory_kl(mdp, theta, torch.full_like(theta, float("nan")))
