"""Tests of TRPO's pieces (rlbook.optim, rlbook.algos.trpo) against independent computations.

Conjugate gradient is held against a direct solve; Fisher-vector products by double
backpropagation against the exact Fisher matrix of a tabular softmax policy
(rlbook.exact.fisher_matrix); the line search against a toy problem whose KL and surrogate are
known in closed form. Training must solve CartPole-v1.
"""

import math

import pytest
import torch
from torch import nn

from rlbook import exact
from rlbook.algos.trpo import TRPOConfig, line_search, train_trpo, trpo_step
from rlbook.optim import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    get_flat_params,
    set_flat_params,
)
from rlbook.policies import CategoricalPolicy


def spd_matrix(n: int, seed: int, condition: float = 100.0) -> torch.Tensor:
    """A random symmetric positive-definite matrix with eigenvalues from 1 to ``condition``."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eigenvalues = torch.logspace(0, math.log10(condition), n, dtype=torch.float64)
    return q @ torch.diag(eigenvalues) @ q.T


# ---------------------------------------------------------------------------------------------
# Conjugate gradient
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_conjugate_gradient_solves_in_n_iterations(n: int) -> None:
    # well conditioned: rounding does not spoil the conjugacy within n steps
    A = spd_matrix(n, seed=n, condition=10.0)
    b = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=n, residual_tol=0.0)
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-10, rtol=1e-10)


def test_conjugate_gradient_error_falls_in_the_a_norm() -> None:
    """Each iteration minimises ½xᵀAx − bᵀx over a growing subspace: the A-norm error falls.

    With condition number 1000, rounding delays convergence past n = 30 iterations (a known
    property of CG in floating point), but the error keeps falling to rounding level."""
    n = 30
    A = spd_matrix(n, seed=3, condition=1e3)
    b = torch.randn(n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    solution = torch.linalg.solve(A, b)
    errors = []
    for k in range(1, 2 * n + 1):
        e = conjugate_gradient(lambda v: A @ v, b, iters=k, residual_tol=0.0) - solution
        errors.append((e @ A @ e).item())
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False) if a > 1e-20)
    assert errors[n - 1] < 1e-4 * errors[0] and errors[-1] < 1e-20 * errors[0]


def test_conjugate_gradient_counts_products_and_stops_at_zero() -> None:
    A = spd_matrix(6, seed=0)
    calls = []

    def matvec(v):
        calls.append(1)
        return A @ v

    conjugate_gradient(matvec, torch.ones(6, dtype=torch.float64), iters=4)
    assert len(calls) == 4  # one product per iteration, none for the start
    calls.clear()
    x = conjugate_gradient(matvec, torch.zeros(6, dtype=torch.float64), iters=4)
    assert calls == [] and (x == 0).all()  # a zero gradient: no 0/0


def test_conjugate_gradient_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="b"):
        conjugate_gradient(lambda v: v, torch.ones(2, 2))
    with pytest.raises(ValueError, match="iters"):
        conjugate_gradient(lambda v: v, torch.ones(2), iters=0)


# ---------------------------------------------------------------------------------------------
# Fisher-vector products
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_fisher_vector_product_matches_the_exact_fisher(seed: int) -> None:
    mdp = exact.random_mdp(num_states=4, num_actions=3, horizon=5, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(4, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    old = theta.detach().clone()
    v = torch.randn(12, generator=gen, dtype=torch.float64)
    product = fisher_vector_product(
        lambda: exact.trajectory_kl(mdp, old, theta), [theta], v, damping=0.0
    )
    F = exact.fisher_matrix(mdp, old)
    assert torch.allclose(product, F @ v, atol=1e-12, rtol=0)
    damped = fisher_vector_product(
        lambda: exact.trajectory_kl(mdp, old, theta), [theta], v, damping=0.1
    )
    assert torch.allclose(damped, F @ v + 0.1 * v, atol=1e-12, rtol=0)


def test_fisher_vector_product_through_a_network_on_one_hot_states() -> None:
    """A linear policy on one-hot states is the tabular softmax: the weighted mean KL over a
    batch listing every state by its visits has the exact Fisher matrix (per step) as Hessian."""
    mdp = exact.random_mdp(num_states=5, num_actions=3, horizon=4, seed=9)
    theta = torch.randn(5, 3, generator=torch.Generator().manual_seed(9)).double()
    net = nn.Linear(5, 3, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(theta.T)  # logits of state s = theta[s]
    obs = torch.eye(5, dtype=torch.float64)
    visits = exact.state_distributions(mdp, theta).sum(0)
    with torch.no_grad():
        old_log_probs = torch.log_softmax(net(obs), -1)

    def kl():
        log_probs = torch.log_softmax(net(obs), -1)
        per_state = (old_log_probs.exp() * (old_log_probs - log_probs)).sum(-1)
        return visits @ per_state

    v = torch.randn(15, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    product = fisher_vector_product(kl, list(net.parameters()), v)
    # the network's weight is theta transposed: reorder v and the product accordingly
    F = exact.fisher_matrix(mdp, theta)
    v_theta = v.reshape(3, 5).T.reshape(-1)
    expected = (F @ v_theta).reshape(5, 3).T.reshape(-1)
    assert torch.allclose(product, expected, atol=1e-12, rtol=0)


def test_fisher_vector_product_rejects_bad_input() -> None:
    theta = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="vector"):
        fisher_vector_product(lambda: theta.sum(), [theta], torch.ones(4))
    with pytest.raises(ValueError, match="damping"):
        fisher_vector_product(lambda: theta.sum(), [theta], torch.ones(3), damping=-1)


def test_flat_params_round_trip_and_flat_grad() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    params = list(net.parameters())
    flat = get_flat_params(params)
    assert flat.shape == (sum(p.numel() for p in params),)
    set_flat_params(params, 2 * flat)
    assert torch.equal(get_flat_params(params), 2 * flat)
    with pytest.raises(ValueError, match="flat"):
        set_flat_params(params, flat[:-1])
    out = net(torch.ones(1, 3)).sum()
    grads = torch.autograd.grad(out, params)
    assert torch.equal(
        flat_grad(net(torch.ones(1, 3)).sum(), params),
        torch.cat([g.reshape(-1) for g in grads]),
    )


# ---------------------------------------------------------------------------------------------
# The line search
# ---------------------------------------------------------------------------------------------

# A toy problem with closed forms: surrogate gᵀx − ½ c‖x‖², KL ½‖x‖² from x = 0.
G = torch.tensor([1.0, 2.0], dtype=torch.float64)


def toy_surrogate(curvature: float):
    return lambda x: (G @ x - 0.5 * curvature * (x @ x)).item()


def toy_kl(x: torch.Tensor) -> float:
    return 0.5 * (x @ x).item()


def test_line_search_accepts_a_good_full_step() -> None:
    x0 = torch.zeros(2, dtype=torch.float64)
    step = 0.1 * G
    x, fraction = line_search(
        toy_surrogate(0.0), toy_kl, x0, step, (G @ step).item(), max_kl=0.1
    )
    assert fraction == 1.0 and torch.equal(x, step)


def test_line_search_shrinks_a_step_that_breaks_the_kl_bound() -> None:
    x0 = torch.zeros(2, dtype=torch.float64)
    step = G  # KL 2.5, far beyond the bound
    x, fraction = line_search(
        toy_surrogate(0.0),
        toy_kl,
        x0,
        step,
        (G @ step).item(),
        max_kl=0.5,
        backtrack_coef=0.5,
        max_backtracks=10,
    )
    # fractions 1, 0.5, 0.25 give KL 2.5, 0.625, 0.156: the third is the first inside
    assert fraction == 0.25
    assert toy_kl(x) <= 0.5


def test_line_search_rejects_a_step_that_does_not_improve() -> None:
    x0 = torch.zeros(2, dtype=torch.float64)
    downhill = -0.1 * G  # inside the KL bound but the surrogate falls
    x, fraction = line_search(
        toy_surrogate(0.0), toy_kl, x0, downhill, (G @ downhill).item(), max_kl=1.0
    )
    assert fraction == 0.0 and torch.equal(x, x0)


def test_line_search_backtracks_past_an_overshoot() -> None:
    """High curvature: the full step overshoots the surrogate's maximum and loses; shorter
    steps gain, but only those gaining ``accept_ratio`` of the linear prediction pass."""
    x0 = torch.zeros(2, dtype=torch.float64)
    step = 0.5 * G  # with curvature 5 the surrogate peaks at x = G / 5, fraction 0.4
    surr = toy_surrogate(5.0)
    expected = (G @ step).item()
    x, fraction = line_search(
        surr, toy_kl, x0, step, expected, max_kl=10.0, backtrack_coef=0.5
    )
    # gain(f) = 2.5 f - 3.125 f²: f = 1 loses 0.625; f = 0.5 gains 0.469 >= 0.1 * 0.5 * 2.5
    assert fraction == 0.5
    x, fraction = line_search(
        surr,
        toy_kl,
        x0,
        step,
        expected,
        max_kl=10.0,
        backtrack_coef=0.5,
        accept_ratio=0.9,
    )
    # 0.9 f 2.5 asked: f = 0.5, 0.25, 0.125 gain 0.469, 0.430, 0.264, short of 1.125, 0.5625,
    # 0.281; f = 0.0625 gains 0.144 >= 0.141
    assert fraction == 0.0625


# ---------------------------------------------------------------------------------------------
# One update and whole runs
# ---------------------------------------------------------------------------------------------


def test_one_update_respects_the_kl_bound_and_improves_the_surrogate() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2, (16,))
    obs = torch.randn(256, 4)
    actions = torch.randint(0, 2, (256,))
    advantages = torch.randn(256)
    with torch.no_grad():
        old = policy.dist(obs)
    cfg = TRPOConfig(max_kl=0.01)
    result = trpo_step(policy, obs, actions, advantages, cfg)
    with torch.no_grad():
        new = policy.dist(obs)
        kl = torch.distributions.kl_divergence(old, new).mean().item()
        ratio = torch.exp(new.log_prob(actions) - old.log_prob(actions))
        gain = (ratio * advantages).mean() - advantages.mean()  # the ratio was 1 before
    assert result["step_fraction"] > 0
    assert kl <= 0.01 and kl == pytest.approx(result["kl"], rel=1e-5)
    assert gain.item() > 0 and gain.item() == pytest.approx(
        result["surrogate_gain"], rel=1e-5
    )
    # the quadratic model put the full step on the edge: the measured KL is near δ
    if result["step_fraction"] == 1.0:
        assert kl > 0.005


def test_zero_advantages_leave_the_policy_alone() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2, (8,))
    before = get_flat_params(list(policy.parameters()))
    result = trpo_step(
        policy, torch.randn(32, 4), torch.zeros(32, dtype=torch.long), torch.zeros(32),
        TRPOConfig(),
    )  # fmt: skip
    assert result["step_fraction"] == 0.0
    assert torch.equal(get_flat_params(list(policy.parameters())), before)


@pytest.mark.parametrize("seed", [0, 1])
def test_trpo_solves_cartpole(seed: int) -> None:
    cfg = TRPOConfig(seed=seed, total_steps=50_000, eval_every=2_500, stop_at_eval=475)
    history = train_trpo("CartPole-v1", cfg)
    assert history.first_reach("eval_mean", 475, x="eval_steps") < math.inf
    # every accepted update stayed inside the trust region
    assert (history["kl"] <= cfg.max_kl).all()
    assert (history["step_fraction"] > 0).mean() > 0.9


def test_history_columns_and_reproducibility() -> None:
    cfg = TRPOConfig(seed=3, total_steps=2_048)
    a, b = train_trpo("CartPole-v1", cfg), train_trpo("CartPole-v1", cfg)
    assert len(a) >= 4 and a["env_steps"][-1] >= 2_048 > a["env_steps"][-2]
    for key in ("surrogate_gain", "expected_gain", "kl", "step_fraction", "value_loss"):
        assert key in a.keys()
    assert (a["mean_return"] == b["mean_return"]).all()
    assert "policy" in a.meta and "value_fn" in a.meta


def test_trpo_runs_with_continuous_actions() -> None:
    import rlbook.envs  # noqa: F401  (registers rlbook/ContinuousCartPole-v1)

    history = train_trpo(
        "rlbook/ContinuousCartPole-v1", TRPOConfig(total_steps=1_024, seed=0)
    )
    assert len(history) == 2 and (history["kl"] <= 0.03).all()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_envs", 0),
        ("num_steps", 1.5),
        ("max_kl", 0.0),
        ("max_kl", float("nan")),
        ("cg_iters", 0),
        ("cg_damping", -0.1),
        ("backtrack_coef", 1.0),
        ("backtrack_coef", 0.0),
        ("max_backtracks", 0),
        ("accept_ratio", 1.5),
        ("gamma", 1.1),
        ("gae_lambda", -0.1),
        ("vf_lr", 0.0),
        ("vf_minibatches", 10_000),
        ("norm_adv", 1),
        ("hidden", (64, 0)),
        ("seed", -1),
        ("eval_every", 0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value) -> None:
    # one rule (rlbook.validate): a wrong type is a TypeError, a wrong value a ValueError
    wrong_type = (field, value) in (("num_steps", 1.5), ("norm_adv", 1))
    with pytest.raises(TypeError if wrong_type else ValueError, match=field):
        TRPOConfig(**{field: value})


def test_cfg_must_be_a_trpo_config() -> None:
    with pytest.raises(TypeError, match="TRPOConfig"):
        train_trpo("CartPole-v1", {"max_kl": 0.01})
