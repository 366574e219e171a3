"""Exact policy gradients on small finite-horizon tabular MDPs: the yardstick for every estimator.

A tabular MDP with a handful of states and a short horizon is small enough that the expected
return of a softmax policy, J(θ), can be computed exactly by dynamic programming, and its
gradient ∇J(θ) exactly by autograd through that computation. Every sampled policy-gradient
estimator in the book (full return, reward-to-go, baselines) is held against this exact value.

Shapes: ``S`` states, ``A`` actions, horizon ``H``, ``M`` sampled trajectories. Time runs
``t = 0, ..., H - 1``; the policy ``π(a|s) = softmax(θ[s])[a]`` does not depend on ``t``.
Everything is float64 so that finite differences and tight tolerances are meaningful.

See chapter 1 of the book (book/01_policy_gradient.ipynb).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from rlbook import validate
from rlbook.utils import generator, inverse_cdf

__all__ = [
    "EstimatorStats",
    "TabularMDP",
    "Trajectories",
    "ValueFunctions",
    "advantages",
    "all_trajectories",
    "bound_constant",
    "chain_mdp",
    "estimator_stats",
    "estimator_weights",
    "exact_gradient",
    "expected_advantage",
    "expected_return",
    "fisher_matrix",
    "grad_log_probs",
    "gradient_estimates",
    "max_state_kl",
    "natural_gradient",
    "policy_probs",
    "random_mdp",
    "sample_trajectories",
    "state_distributions",
    "state_kl",
    "surrogate",
    "trajectory_kl",
    "value_functions",
]

_ROW_SUM_TOL = 1e-8


# ---------------------------------------------------------------------------------------------
# The MDP
# ---------------------------------------------------------------------------------------------


def _as_float64(x: object, name: str) -> torch.Tensor:
    """Convert ``x`` to a float64 tensor (a private copy), or raise naming the argument."""
    try:
        t = torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(
            f"{name} must be a real array or tensor, got {type(x).__name__}"
        ) from err
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or infinite entries")
    # Clone so that later in-place edits of the caller's array cannot change the MDP.
    return t.detach().clone()


def _check_distribution(p: torch.Tensor, name: str) -> None:
    """Raise unless the last axis of ``p`` is a probability distribution."""
    if (p < 0).any():
        raise ValueError(
            f"{name}: probabilities must be non-negative, min is {p.min().item():.3g}"
        )
    err = (p.sum(-1) - 1.0).abs().max().item()
    if err > _ROW_SUM_TOL:
        raise ValueError(
            f"{name}: probabilities must sum to 1 over the last axis (within {_ROW_SUM_TOL:g}), "
            f"the worst row is off by {err:.3g}"
        )


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite-horizon MDP with finitely many states and actions, stored as float64 tensors.

    An episode starts in ``s_0 ~ mu0``; at each step ``t = 0, ..., H - 1`` the agent picks
    ``a_t``, receives ``r_t = R[s_t, a_t]`` and moves to ``s_{t+1} ~ P[s_t, a_t, :]``.
    The episode ends after exactly ``H`` rewards; there are no terminal states (an absorbing
    state with zero reward plays that role when one is needed).

    Parameters
    ----------
    P : torch.Tensor, shape (S, A, S)
        Transition probabilities, ``P[s, a, s'] = Pr(s_{t+1} = s' | s_t = s, a_t = a)``.
    R : torch.Tensor, shape (S, A)
        Reward for taking action ``a`` in state ``s`` (deterministic given ``(s, a)``; for an
        MDP with random rewards, pass their expectation: J and ∇J only depend on it).
    mu0 : torch.Tensor, shape (S,)
        Distribution of the initial state ``s_0``.
    horizon : int
        Number of steps ``H >= 1`` in an episode.

    Raises
    ------
    ValueError
        Naming the argument, if shapes disagree, probabilities are negative or do not sum to 1
        (within 1e-8), an entry is not finite, or ``horizon < 1``.

    Notes
    -----
    Array-likes are converted to float64 tensors and copied. The dataclass is frozen (the fields
    cannot be rebound), but tensors are mutable: do not edit them in place.

    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """

    P: torch.Tensor
    R: torch.Tensor
    mu0: torch.Tensor
    horizon: int

    def __post_init__(self) -> None:
        P = _as_float64(self.P, "P")
        R = _as_float64(self.R, "R")
        mu0 = _as_float64(self.mu0, "mu0")
        if (
            P.ndim != 3
            or P.shape[0] != P.shape[2]
            or P.shape[0] == 0
            or P.shape[1] == 0
        ):
            raise ValueError(
                f"P: expected shape (S, A, S) with S, A >= 1, got {tuple(P.shape)}"
            )
        num_states, num_actions = P.shape[0], P.shape[1]
        if R.shape != (num_states, num_actions):
            raise ValueError(
                f"R: expected shape (S, A) = {(num_states, num_actions)} to match P, "
                f"got {tuple(R.shape)}"
            )
        if mu0.shape != (num_states,):
            raise ValueError(
                f"mu0: expected shape (S,) = ({num_states},), got {tuple(mu0.shape)}"
            )
        _check_distribution(P, "P")
        _check_distribution(mu0, "mu0")
        if isinstance(self.horizon, bool) or not isinstance(
            self.horizon, (int, np.integer)
        ):
            raise ValueError(
                f"horizon: expected an int, got {type(self.horizon).__name__}"
            )
        if self.horizon < 1:
            raise ValueError(f"horizon: expected horizon >= 1, got {self.horizon}")
        # The dataclass is frozen; object.__setattr__ is the sanctioned way to normalise fields.
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "mu0", mu0)
        object.__setattr__(self, "horizon", int(self.horizon))

    @property
    def num_states(self) -> int:
        """Number of states ``S``."""
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        """Number of actions ``A``."""
        return self.P.shape[1]


def random_mdp(
    num_states: int = 4, num_actions: int = 3, horizon: int = 5, seed: int = 0
) -> TabularMDP:
    """A random tabular MDP, reproducible from ``seed``.

    Each transition row ``P[s, a, :]`` and the initial distribution ``mu0`` are drawn from a
    flat Dirichlet(1, ..., 1) (uniform on the simplex); each reward ``R[s, a]`` is standard
    normal, so rewards of both signs occur.

    Parameters
    ----------
    num_states, num_actions : int
        ``S`` and ``A``, both at least 1.
    horizon : int
        Episode length ``H >= 1``.
    seed : int
        Seed of a private ``numpy.random.Generator``; the global RNGs are left untouched.

    Returns
    -------
    TabularMDP
        With ``P`` of shape (S, A, S), ``R`` (S, A), ``mu0`` (S,).

    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """
    num_states = validate.positive_int("num_states", num_states)
    num_actions = validate.positive_int("num_actions", num_actions)
    # the seed names the MDP, an object the book analyses exactly: RLBOOK_SEED_OFFSET,
    # which shifts sampling noise and training, leaves it alone
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    R = rng.standard_normal((num_states, num_actions))
    mu0 = rng.dirichlet(np.ones(num_states))
    return TabularMDP(P=P, R=R, mu0=mu0, horizon=horizon)


def chain_mdp(
    num_states: int = 4,
    horizon: int = 6,
    slip: float = 0.1,
    home_reward: float = 0.1,
    goal_reward: float = 1.0,
) -> TabularMDP:
    """A corridor of ``num_states`` cells: a small sure reward at home, a large one far away.

    ::

        "left" at home: +home_reward                    any action at the goal: +goal_reward
             ┌──┐                                              ┌──┐
             └─► [0 home] ◄──► [1] ◄──► ... ◄──► [S-1 goal] ◄──┘

    States are the cells ``0, 1, ..., S - 1``: state 0 is "home", where every episode starts
    (``mu0 = [1, 0, ..., 0]``), and state ``S - 1`` is the "goal". Two actions:

    - action 0, "left": move one cell left (at home, bump into the wall and stay);
    - action 1, "right": move one cell right (at the goal, stay).

    Either move fails with probability ``slip``, leaving the agent where it was.
    Rewards: ``R[0, left] = home_reward`` (a sure, small payoff for staying home) and
    ``R[S-1, left] = R[S-1, right] = goal_reward`` (for being at the goal); all others are 0.

    The trade-off is the usual one of policy-gradient methods: a policy that drifts left
    collects ``home_reward`` every step, one that walks right collects nothing for ``S - 1``
    steps and then ``goal_reward`` per step until the horizon. With the defaults, always walking
    right is worth J ≈ 2.67 and always staying home J = 0.6; the uniform policy (θ = 0) gets
    J ≈ 0.53, and its gradient points right.

    Parameters
    ----------
    num_states : int
        Number of cells ``S >= 2``.
    horizon : int
        Episode length ``H >= 1``.
    slip : float
        Probability in [0, 1) that a move fails.
    home_reward, goal_reward : float
        The two non-zero rewards.

    Returns
    -------
    TabularMDP
        With ``A = 2`` actions (0 = left, 1 = right).

    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    num_states = validate.integer("num_states", num_states, low=2)
    slip = validate.number("slip", slip, low=0.0, high=1.0, high_open=True)
    left, right = 0, 1
    P = torch.zeros(num_states, 2, num_states, dtype=torch.float64)
    for s in range(num_states):
        for a, target in ((left, max(s - 1, 0)), (right, min(s + 1, num_states - 1))):
            P[s, a, target] += 1.0 - slip
            P[s, a, s] += slip
    R = torch.zeros(num_states, 2, dtype=torch.float64)
    R[0, left] = home_reward
    R[num_states - 1, :] = goal_reward
    mu0 = torch.zeros(num_states, dtype=torch.float64)
    mu0[0] = 1.0
    return TabularMDP(P=P, R=R, mu0=mu0, horizon=horizon)


# ---------------------------------------------------------------------------------------------
# The policy and the exact objective
# ---------------------------------------------------------------------------------------------


def _check_theta(theta: object, mdp: TabularMDP | None = None) -> torch.Tensor:
    """Return ``theta`` as a float64 tensor (keeping autograd history), or raise naming it."""
    if mdp is not None:
        validate.instance("mdp", mdp, TabularMDP)
    if not isinstance(theta, torch.Tensor):
        try:
            theta = torch.as_tensor(theta, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"theta must be a tensor of shape (S, A), got {theta!r}"
            ) from err
    if not theta.is_floating_point():
        raise TypeError(
            f"theta: expected a floating-point tensor, got dtype {theta.dtype}"
        )
    if theta.ndim != 2:
        raise ValueError(f"theta: expected shape (S, A), got {tuple(theta.shape)}")
    if mdp is not None and theta.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(
            f"theta: expected shape (S, A) = {(mdp.num_states, mdp.num_actions)} to match the "
            f"MDP, got {tuple(theta.shape)}"
        )
    if not torch.isfinite(theta).all():
        raise ValueError("theta: contains NaN or infinite entries")
    return theta.to(torch.float64)


def _check_gamma(gamma: float) -> float:
    """Return ``gamma`` as a float, or raise unless it lies in [0, 1]."""
    return validate.unit_interval("gamma", gamma)


def policy_probs(theta: torch.Tensor) -> torch.Tensor:
    r"""Action probabilities of the tabular softmax policy, ``π(a|s) = softmax(θ[s])[a]``.

    .. math:: \pi_\theta(a \mid s) = \frac{\exp \theta_{s,a}}{\sum_{b} \exp \theta_{s,b}}

    Parameters
    ----------
    theta : torch.Tensor, shape (S, A)
        One logit per state-action pair.

    Returns
    -------
    torch.Tensor, shape (S, A)
        Each row sums to 1. Differentiable in ``theta``; computed stably (the softmax
        subtracts each row's maximum, so large logits do not overflow).

    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """
    theta = _check_theta(theta)
    return torch.softmax(theta, dim=-1)


def state_distributions(mdp: TabularMDP, theta: torch.Tensor) -> torch.Tensor:
    r"""Exact distribution of the state at each step, by forward dynamic programming.

    .. math:: d_0 = \mu_0, \qquad
              d_{t+1}(s') = \sum_{s, a} d_t(s)\, \pi_\theta(a \mid s)\, P(s' \mid s, a)

    Parameters
    ----------
    mdp : TabularMDP
    theta : torch.Tensor, shape (S, A)
        Softmax policy parameters.

    Returns
    -------
    torch.Tensor, shape (H, S)
        Row ``t`` is ``d_t = Pr(s_t = ·)``. Differentiable in ``theta``.

    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """
    pi = policy_probs(_check_theta(theta, mdp))
    d = mdp.mu0
    rows = [d]
    for _ in range(mdp.horizon - 1):
        d = torch.einsum("s,sa,sat->t", d, pi, mdp.P)
        rows.append(d)
    return torch.stack(rows)


def expected_return(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""Exact expected (discounted) return of the softmax policy, J(θ).

    .. math:: J(\theta) = \mathbb{E}_{\tau \sim \pi_\theta}
              \Big[\sum_{t=0}^{H-1} \gamma^t r_t\Big]
              = \sum_{t=0}^{H-1} \gamma^t \sum_{s, a} d_t(s)\, \pi_\theta(a \mid s)\, R(s, a)

    with ``d_t`` from :func:`state_distributions` (forward dynamic programming over the state
    distribution; no sampling, no enumeration of trajectories).

    Parameters
    ----------
    mdp : TabularMDP
    theta : torch.Tensor, shape (S, A)
        Softmax policy parameters.
    gamma : float
        Discount factor in [0, 1]; the default 1 gives the undiscounted finite-horizon return.

    Returns
    -------
    torch.Tensor, shape ()
        Float64 scalar, differentiable in ``theta``.

    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    gamma = _check_gamma(gamma)
    theta = _check_theta(theta, mdp)
    d = state_distributions(mdp, theta)
    pi = policy_probs(theta)
    reward_per_step = torch.einsum("ts,sa,sa->t", d, pi, mdp.R)  # (H,) = E[r_t]
    discounts = gamma ** torch.arange(mdp.horizon, dtype=torch.float64)
    return (discounts * reward_per_step).sum()


def exact_gradient(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""Exact policy gradient ∇J(θ), by autograd through :func:`expected_return`.

    .. math:: \nabla_\theta J(\theta), \qquad
              J(\theta) = \mathbb{E}_{\tau \sim \pi_\theta}\Big[\sum_{t=0}^{H-1} \gamma^t r_t\Big]

    Parameters
    ----------
    mdp : TabularMDP
    theta : torch.Tensor, shape (S, A)
        Softmax policy parameters (not modified; any autograd history is ignored).
    gamma : float
        Discount factor in [0, 1].

    Returns
    -------
    torch.Tensor, shape (S, A)
        Float64, detached. Each row sums to 0 (adding a constant to ``θ[s]`` leaves the policy
        unchanged).

    Notes
    -----
    This is the target that every Monte-Carlo estimator of chapters 1-3 is held against. It
    equals the policy gradient theorem's expression
    ``∂J/∂θ[s, a] = Σ_t γ^t d_t(s) π(a|s) (Q_t(s, a) − V_t(s))`` (Sutton et al., 2000), which
    the tests check against :func:`value_functions`.

    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    theta = _check_theta(theta, mdp).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(expected_return(mdp, theta, gamma=gamma), theta)
    return grad


class ValueFunctions(NamedTuple):
    """Exact time-dependent value functions of a policy; see :func:`value_functions`."""

    V: torch.Tensor
    """State values, shape (H, S)."""
    Q: torch.Tensor
    """Action values, shape (H, S, A)."""


def value_functions(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> ValueFunctions:
    r"""Exact values ``V_t(s)`` and ``Q_t(s, a)`` of the softmax policy, by backward DP.

    .. math:: Q_t(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, V_{t+1}(s'), \qquad
              V_t(s) = \sum_a \pi_\theta(a \mid s)\, Q_t(s, a), \qquad V_H \equiv 0

    so that ``V_t(s) = E[Σ_{k=t}^{H-1} γ^{k−t} r_k | s_t = s]`` is the expected discounted
    reward-to-go from step ``t``, and ``Q_t(s, a)`` the same given also ``a_t = a``. In
    particular ``J(θ) = Σ_s mu0(s) V_0(s)``.

    Parameters
    ----------
    mdp : TabularMDP
    theta : torch.Tensor, shape (S, A)
        Softmax policy parameters.
    gamma : float
        Discount factor in [0, 1].

    Returns
    -------
    ValueFunctions
        ``V`` of shape (H, S) and ``Q`` of shape (H, S, A), float64, differentiable in
        ``theta``. ``V`` is the state- and time-dependent baseline ``b_t(s_t) = V_t(s_t)`` of
        chapter 2; ``Q`` is the action-dependent "baseline" that biases the estimator.

    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """
    gamma = _check_gamma(gamma)
    pi = policy_probs(_check_theta(theta, mdp))
    v_next = torch.zeros(mdp.num_states, dtype=torch.float64)
    vs, qs = [], []
    for _ in range(mdp.horizon):
        q = mdp.R + gamma * torch.einsum("sat,t->sa", mdp.P, v_next)
        v_next = (pi * q).sum(-1)
        qs.append(q)
        vs.append(v_next)
    # Built from the last step backwards; flip to index by t = 0, ..., H - 1.
    return ValueFunctions(V=torch.stack(vs[::-1]), Q=torch.stack(qs[::-1]))


# ---------------------------------------------------------------------------------------------
# Trust regions: the surrogate, the KL divergence and the Fisher matrix (chapter 5.1)
# ---------------------------------------------------------------------------------------------


def advantages(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""Exact advantages ``A_t(s, a) = Q_t(s, a) − V_t(s)`` of the softmax policy, shape (H, S, A).

    They average to zero under the policy itself, ``Σ_a π_θ(a|s) A_t(s, a) = 0``. Detached: the
    trust-region quantities below hold the old policy's values fixed.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    V, Q = value_functions(mdp, theta, gamma=gamma)
    return (Q - V[..., None]).detach()


def surrogate(
    mdp: TabularMDP, theta: torch.Tensor, theta_new: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""The exact surrogate ``L_θ(θ')``: old states and advantages, new action probabilities.

    .. math:: L_\theta(\theta') = \sum_{t=0}^{H-1} \gamma^t \sum_s d^\theta_t(s)
              \sum_a \pi_{\theta'}(a \mid s)\, A^\theta_t(s, a)

    It is zero at ``θ' = θ`` and its gradient there is ∇J(θ); ``J(θ) + L_θ(θ')`` is the first-order
    model of ``J(θ')`` that trust-region methods maximise.

    Returns
    -------
    torch.Tensor, shape ()
        Float64, differentiable in ``theta_new`` (``theta`` enters only through constants).

    See chapter 5 (book/05_importance_sampling.ipynb) and 5.1 (book/05_1_trust_regions.ipynb).
    """
    gamma = _check_gamma(gamma)
    theta = _check_theta(theta, mdp).detach()
    d = state_distributions(mdp, theta)
    discounts = gamma ** torch.arange(mdp.horizon, dtype=torch.float64)
    pi_new = policy_probs(_check_theta(theta_new, mdp))
    return torch.einsum(
        "t,ts,sa,tsa->", discounts, d, pi_new, advantages(mdp, theta, gamma)
    )


def expected_advantage(
    mdp: TabularMDP, theta: torch.Tensor, theta_new: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""The old policy's advantages averaged over the NEW policy's states and actions.

    .. math:: \sum_{t=0}^{H-1} \gamma^t \sum_s d^{\theta'}_t(s)
              \sum_a \pi_{\theta'}(a \mid s)\, A^\theta_t(s, a) \;=\; J(\theta') - J(\theta)

    The equality is the performance-difference lemma (Kakade and Langford, 2002); the surrogate
    :func:`surrogate` is the same sum with the old state distributions ``d^θ_t``.

    Returns
    -------
    torch.Tensor, shape ()
        Float64, differentiable in ``theta_new``.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    gamma = _check_gamma(gamma)
    theta = _check_theta(theta, mdp).detach()
    theta_new = _check_theta(theta_new, mdp)
    d_new = state_distributions(mdp, theta_new)
    discounts = gamma ** torch.arange(mdp.horizon, dtype=torch.float64)
    return torch.einsum(
        "t,ts,sa,tsa->",
        discounts,
        d_new,
        policy_probs(theta_new),
        advantages(mdp, theta, gamma),
    )


def state_kl(theta: torch.Tensor, theta_new: torch.Tensor) -> torch.Tensor:
    r"""``KL(π_θ(·|s) ‖ π_θ'(·|s))`` in every state, shape (S,), from log-probabilities.

    .. math:: \mathrm{KL}_s = \sum_a \pi_\theta(a \mid s)
              \big(\log\pi_\theta(a \mid s) - \log\pi_{\theta'}(a \mid s)\big)

    Differentiable in both arguments. The book does not name it; :func:`max_state_kl` and
    :func:`trajectory_kl` (chapter 5.1) are built on it.
    """
    theta, theta_new = _check_theta(theta), _check_theta(theta_new)
    if theta.shape != theta_new.shape:
        raise ValueError(
            f"theta_new: expected the shape of theta {tuple(theta.shape)}, "
            f"got {tuple(theta_new.shape)}"
        )
    log_pi = torch.log_softmax(theta, dim=-1)
    log_pi_new = torch.log_softmax(theta_new, dim=-1)
    return (log_pi.exp() * (log_pi - log_pi_new)).sum(-1)


def max_state_kl(theta: torch.Tensor, theta_new: torch.Tensor) -> torch.Tensor:
    """``max_s KL(π_θ(·|s) ‖ π_θ'(·|s))``, the divergence of TRPO's lower bound, shape ().

    The maximum runs over every state, visited or not. See chapter 5.1 of the book
    (book/05_1_trust_regions.ipynb).
    """
    return state_kl(theta, theta_new).max()


def trajectory_kl(
    mdp: TabularMDP, theta: torch.Tensor, theta_new: torch.Tensor
) -> torch.Tensor:
    r"""``KL(P_θ ‖ P_θ')`` between the two distributions of whole episodes.

    The dynamics cancel from the log-ratio of two episode probabilities, leaving one KL term
    per visited state:

    .. math:: \mathrm{KL}(P_\theta \,\|\, P_{\theta'})
              = \sum_{t=0}^{H-1} \sum_s d^\theta_t(s)\,
              \mathrm{KL}\big(\pi_\theta(\cdot \mid s) \,\|\, \pi_{\theta'}(\cdot \mid s)\big)

    the expected KL over the old policy's states (TRPO constrains its average per step). Its
    Hessian in ``θ'`` at ``θ' = θ`` is :func:`fisher_matrix`.

    Returns
    -------
    torch.Tensor, shape ()
        Float64, differentiable in ``theta_new``.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    theta = _check_theta(theta, mdp).detach()
    d = state_distributions(mdp, theta)
    return d.sum(0) @ state_kl(theta, _check_theta(theta_new, mdp))


def fisher_matrix(mdp: TabularMDP, theta: torch.Tensor) -> torch.Tensor:
    r"""Exact Fisher information of the episode distribution, shape (S·A, S·A).

    .. math:: F(\theta) = \mathbb E_{\tau \sim \pi_\theta}\Big[\sum_{t=0}^{H-1}
              \nabla\log\pi_\theta(a_t \mid s_t)\, \nabla\log\pi_\theta(a_t \mid s_t)^\top\Big]
              = \sum_s \Big(\sum_t d_t(s)\Big)
              \big(\mathrm{diag}\,\pi_s - \pi_s \pi_s^\top\big) \text{ in block } s

    with ``π_s = π_θ(·|s)``. The score of step ``t`` lives in row ``s_t`` of θ only, so ``F`` is
    block-diagonal, one ``A × A`` block per state, weighted by the expected number of visits.
    Rows and columns are ordered like ``theta.flatten()``. ``F`` is singular: adding a constant
    to a row of θ leaves the policy unchanged, and unvisited states have zero blocks.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    theta = _check_theta(theta, mdp).detach()
    visits = state_distributions(mdp, theta).sum(0)  # (S,) expected visits per episode
    pi = policy_probs(theta)
    blocks = visits[:, None, None] * (
        torch.diag_embed(pi) - pi[:, :, None] * pi[:, None]
    )
    return torch.block_diag(*blocks)


def natural_gradient(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""The natural gradient ``F(θ)⁺ ∇J(θ)``, shape (S, A), by the pseudo-inverse of F.

    ``F`` is singular (see :func:`fisher_matrix`); ``∇J`` has no component along its null space,
    so the pseudo-inverse gives the natural direction with no component there either
    (Amari, 1998; Kakade, 2001).

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    theta = _check_theta(theta, mdp).detach()
    grad = exact_gradient(mdp, theta, gamma=gamma).flatten()
    F = fisher_matrix(mdp, theta)
    return (torch.linalg.pinv(F, hermitian=True, rtol=1e-10) @ grad).reshape(
        theta.shape
    )


def bound_constant(
    mdp: TabularMDP, theta: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    r"""The constant ``C`` of TRPO's lower bound for a finite horizon ``H``.

    .. math:: J(\theta') \ge J(\theta) + L_\theta(\theta') - C\,
              \max_s \mathrm{KL}\big(\pi_\theta(\cdot \mid s) \,\|\,
              \pi_{\theta'}(\cdot \mid s)\big), \qquad
              C = 4 \epsilon \sum_{t=0}^{H-1} t \gamma^t, \quad
              \epsilon = \max_{t, s, a} |A^\theta_t(s, a)|

    Schulman et al. (2015) prove it for an infinite discounted horizon, where the sum is
    ``γ / (1 − γ)²``; the same coupling argument, stopped at step ``H − 1``, gives this sum
    (``H (H − 1) / 2`` for ``γ = 1``). It bounds the error both ways:
    ``|J(θ') − J(θ) − L_θ(θ')| ≤ C max_s KL``.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    gamma = _check_gamma(gamma)
    epsilon = advantages(mdp, _check_theta(theta, mdp), gamma).abs().max()
    steps = torch.arange(mdp.horizon, dtype=torch.float64)
    return 4 * epsilon * (steps * gamma**steps).sum()


# ---------------------------------------------------------------------------------------------
# Sampling and Monte-Carlo estimators
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Trajectories:
    """A batch of ``M`` complete episodes of length ``H`` sampled from a :class:`TabularMDP`.

    Row ``m`` is the episode ``s_0, a_0, r_0, s_1, a_1, r_1, ..., s_{H-1}, a_{H-1}, r_{H-1}``.

    Attributes
    ----------
    states : torch.Tensor, shape (M, H), int64
        ``states[m, t] = s_t``.
    actions : torch.Tensor, shape (M, H), int64
        ``actions[m, t] = a_t``.
    rewards : torch.Tensor, shape (M, H), float64
        ``rewards[m, t] = r_t = R[s_t, a_t]``; the return of episode ``m`` is
        ``rewards[m].sum()``.

    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor

    @property
    def num_trajectories(self) -> int:
        """Number of episodes ``M``."""
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        """Episode length ``H``."""
        return self.states.shape[1]


def all_trajectories(
    mdp: TabularMDP, theta: torch.Tensor
) -> tuple[Trajectories, torch.Tensor]:
    """Every episode with non-zero probability under ``theta``, and its probability.

    The exact yardstick for any per-episode estimator: ``prob @ f(episodes)`` is ``E[f]``.
    There are at most ``(S A)^H`` episodes, so keep ``H`` small.

    Returns
    -------
    (Trajectories, torch.Tensor)
        The ``M`` episodes, shaped ``(M, H)``, and their probabilities ``(M,)``, summing to 1.

    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """
    pi = policy_probs(_check_theta(theta, mdp))
    pairs = torch.cartesian_prod(
        torch.arange(mdp.num_states), torch.arange(mdp.num_actions)
    )
    index = torch.cartesian_prod(*[torch.arange(len(pairs))] * mdp.horizon)
    s, a = (
        pairs[index, 0].reshape(-1, mdp.horizon),
        pairs[index, 1].reshape(-1, mdp.horizon),
    )
    prob = mdp.mu0[s[:, 0]] * pi[s, a].prod(1)
    prob = prob * mdp.P[s[:, :-1], a[:, :-1], s[:, 1:]].prod(
        1
    )  # transitions t -> t + 1
    keep = prob > 0
    s, a = s[keep], a[keep]
    return Trajectories(states=s, actions=a, rewards=mdp.R[s, a]), prob[keep]


def sample_trajectories(
    mdp: TabularMDP, theta: torch.Tensor, num_trajectories: int, seed: int
) -> Trajectories:
    r"""Sample ``M`` independent episodes of the softmax policy, all ``M`` at once.

    .. math:: s_0 \sim \mu_0, \quad a_t \sim \pi_\theta(\cdot \mid s_t), \quad
              r_t = R(s_t, a_t), \quad s_{t+1} \sim P(\cdot \mid s_t, a_t)

    The loop runs over the ``H`` steps only; each step draws all ``M`` actions (and next
    states) at once by inverse-CDF sampling: ``a = #{b : F(b) <= u}`` with ``u ~ U[0, 1)``
    and ``F`` the cumulative probabilities of the row ``π(·|s_t)`` (``P(·|s_t, a_t)``).

    Parameters
    ----------
    mdp : TabularMDP
    theta : torch.Tensor, shape (S, A)
        Softmax policy parameters.
    num_trajectories : int
        Number of episodes ``M >= 1``.
    seed : int
        Seed of a private ``torch.Generator``: same seed, same episodes; the global RNG is
        left untouched.

    Returns
    -------
    Trajectories
        ``states``, ``actions`` (M, H) int64 and ``rewards`` (M, H) float64.

    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    num_trajectories = validate.positive_int("num_trajectories", num_trajectories)
    pi = policy_probs(_check_theta(theta, mdp)).detach()
    gen = generator(seed)
    M, H = int(num_trajectories), mdp.horizon
    policy_cdf, transition_cdf = pi.cumsum(-1), mdp.P.cumsum(-1)  # (S, A), (S, A, S)
    states = torch.empty(M, H, dtype=torch.long)
    actions = torch.empty(M, H, dtype=torch.long)
    s = _sample_rows(mdp.mu0.cumsum(-1).expand(M, -1), gen)
    for t in range(H):
        a = _sample_rows(policy_cdf[s], gen)
        states[:, t], actions[:, t] = s, a
        if t < H - 1:  # the state after the last step is never used
            s = _sample_rows(transition_cdf[s, a], gen)
    return Trajectories(states=states, actions=actions, rewards=mdp.R[states, actions])


def _sample_rows(cdf: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One index per row of ``cdf`` (shape (M, n)), drawn from that row's distribution."""
    # torch.rand lies in [0, 1); inverse_cdf wants (0, 1]
    u = 1.0 - torch.rand(cdf.shape[0], dtype=cdf.dtype, generator=gen)
    return inverse_cdf(cdf, u)


def _check_indices(
    states: torch.Tensor, actions: torch.Tensor, num_states: int, num_actions: int
) -> None:
    """Raise unless ``states`` and ``actions`` are int64 index tensors of one shape, in range."""
    if states.shape != actions.shape:
        raise ValueError(
            f"actions: expected the shape of states {tuple(states.shape)}, "
            f"got {tuple(actions.shape)}"
        )
    for name, idx, n in (
        ("states", states, num_states),
        ("actions", actions, num_actions),
    ):
        if idx.dtype != torch.long:
            raise TypeError(
                f"{name}: expected an int64 tensor of indices, got {idx.dtype}"
            )
        if idx.numel() and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"{name}: indices must lie in [0, {n}), got {idx.min().item()}..{idx.max().item()}"
            )


def _check_score_args(theta, states, actions):
    """Check the arguments of :func:`grad_log_probs`; theta comes back detached."""
    theta = _check_theta(theta).detach()
    states, actions = torch.as_tensor(states), torch.as_tensor(actions)
    _check_indices(states, actions, *theta.shape)
    return theta, states, actions


def grad_log_probs(
    theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """Score ∇_θ log π_θ(a|s) of the tabular softmax policy, in closed form.

        ∂ log π_θ(a|s) / ∂θ[s', b] = 1[s' = s] (1[b = a] - π_θ(b|s))

    Only row s is non-zero; it sums to zero, and so does its mean over a ~ π(·|s).
    theta: (S, A); states, actions: int64 (...). Returns float64 (..., S, A), detached.
    See chapter 2 (book/02_eglp_lemma.ipynb).
    """
    theta, states, actions = _check_score_args(theta, states, actions)
    num_states, num_actions = theta.shape
    pi = policy_probs(theta)
    row = (
        torch.nn.functional.one_hot(actions, num_actions).to(torch.float64) - pi[states]
    )
    where = torch.nn.functional.one_hot(states, num_states).to(torch.float64)
    return where[..., :, None] * row[..., None, :]


def _reward_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = Σ_{k>=t} γ^{k−t} r_k`` along the last axis, by the recursion G_t = r_t + γ G_{t+1}."""
    rtg = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        rtg[..., t] = running
    return rtg


def estimator_weights(
    traj: Trajectories,
    weights: Literal["return", "reward_to_go"] = "return",
    baseline: float | torch.Tensor | None = None,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Per-step weights w_t of a REINFORCE-style estimator, (M, H) float64.

        "return":        w_t = G_0 - b_t
        "reward_to_go":  w_t = γ^t (G_t - b_t),   G_t = Σ_{k>=t} γ^(k-t) r_k

    γ^t keeps reward-to-go unbiased for J = E[Σ_t γ^t r_t] (deep-RL code drops it).
    baseline: None, a float, (H, S) for b[t, s_t], or (H, S, A) for b[t, s_t, a_t].
    See chapter 3 (book/03_reward_to_go.ipynb).
    """
    gamma = _check_gamma(gamma)
    M, H = traj.states.shape
    if weights == "return":
        w = (gamma ** torch.arange(H, dtype=torch.float64) * traj.rewards).sum(
            -1, keepdim=True
        )
        w = w.expand(M, H)
        step_discount = torch.ones(H, dtype=torch.float64)
    elif weights == "reward_to_go":
        w = _reward_to_go(traj.rewards, gamma)
        step_discount = gamma ** torch.arange(H, dtype=torch.float64)
    else:
        raise ValueError(f"weights must be 'return' or 'reward_to_go', got {weights!r}")
    return step_discount * (w - _baseline_values(baseline, traj))


def _baseline_values(
    baseline: float | torch.Tensor | None, traj: Trajectories
) -> torch.Tensor:
    """The baseline ``b_t`` at each visited step, shape (M, H) (or a broadcastable scalar)."""
    if baseline is None:
        return torch.zeros((), dtype=torch.float64)
    if isinstance(baseline, bool):
        raise ValueError("baseline: expected None, a float or a tensor, got a bool")
    b = torch.as_tensor(baseline, dtype=torch.float64)
    if not torch.isfinite(b).all():
        raise ValueError("baseline: contains NaN or infinite entries")
    H = traj.horizon
    steps = torch.arange(H)[None, :]  # (1, H), broadcast against the (M, H) indices
    if b.ndim == 0:
        return b
    # Indexing would also accept a table with too many states; the exact shape is checked by
    # gradient_estimates, which knows the MDP. Here: the right horizon and no out-of-range index.
    fits = b.ndim in (2, 3) and b.shape[0] == H and int(traj.states.max()) < b.shape[1]
    if fits and b.ndim == 2:
        return b[steps, traj.states]
    if fits and b.ndim == 3 and int(traj.actions.max()) < b.shape[2]:
        return b[steps, traj.states, traj.actions]
    raise ValueError(
        f"baseline: expected None, a float, or a tensor of shape (H, S) or (H, S, A) with "
        f"H = {H}, got shape {tuple(b.shape)}"
    )


def _check_estimate_args(mdp, theta, traj, baseline) -> torch.Tensor:
    """Check the arguments of :func:`gradient_estimates`; return ``theta``."""
    theta = _check_theta(theta, mdp)
    if traj.states.ndim != 2 or traj.states.shape[1] != mdp.horizon:
        raise ValueError(
            f"traj must hold episodes of shape (M, H) with H = {mdp.horizon}, "
            f"got {tuple(traj.states.shape)}"
        )
    _check_indices(traj.states, traj.actions, mdp.num_states, mdp.num_actions)
    if isinstance(baseline, torch.Tensor) and baseline.ndim > 0:
        H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
        if tuple(baseline.shape) not in ((H, S), (H, S, A)):
            raise ValueError(
                f"baseline must have shape (H, S) = {(H, S)} or (H, S, A) = "
                f"{(H, S, A)}, got {tuple(baseline.shape)}"
            )
    return theta


def gradient_estimates(
    mdp: TabularMDP,
    theta: torch.Tensor,
    traj: Trajectories,
    weights: Literal["return", "reward_to_go"] = "return",
    baseline: float | torch.Tensor | None = None,
    gamma: float = 1.0,
) -> torch.Tensor:
    """One Monte-Carlo estimate of the policy gradient per sampled episode, (M, S, A).

        ĝ(τ) = Σ_t w_t ∇_θ log π_θ(a_t|s_t),   w_t from estimator_weights

    Unbiased for ∇J(θ) with no baseline, a constant or a state baseline (H, S); an
    action baseline (H, S, A) biases it. theta: (S, A), the parameters traj was sampled
    with. See chapter 3 (book/03_reward_to_go.ipynb).
    """
    theta = _check_estimate_args(mdp, theta, traj, baseline)
    # (M, H)
    w = estimator_weights(traj, weights=weights, baseline=baseline, gamma=gamma)
    # Σ_t w_t ∇log π(a_t|s_t) without the (M, H, S, A) scores of grad_log_probs: the
    # step-t score is zero outside row s_t, so add w_t (e_{a_t} - π(·|s_t)) to that row
    pi = policy_probs(theta.detach())
    num_actions = mdp.num_actions
    rows = torch.nn.functional.one_hot(traj.actions, num_actions).to(torch.float64)
    rows = w[..., None] * (rows - pi[traj.states])  # (M, H, A)
    estimates = torch.zeros(
        traj.num_trajectories, mdp.num_states, num_actions, dtype=torch.float64
    )
    # (M, H, A): row s_t of step t
    index = traj.states[..., None].expand(-1, -1, num_actions)
    return estimates.scatter_add_(1, index, rows)


@dataclass(frozen=True, eq=False)
class EstimatorStats:
    """Summary of ``M`` independent gradient estimates; see :func:`estimator_stats`.

    Attributes
    ----------
    mean : torch.Tensor, shape (S, A)
        Sample mean, the estimate of ∇J(θ).
    variance : torch.Tensor, shape (S, A)
        Per-parameter sample variance of one estimate (unbiased, divisor M − 1).
    std_error : torch.Tensor, shape (S, A)
        Standard error of the mean, ``sqrt(variance / M)``.
    total_variance : float
        ``variance.sum()``, i.e. ``E‖ĝ − E ĝ‖²``: one number to compare estimators by.
    num_samples : int
        ``M``.
    max_abs_z : float or None
        ``max |mean − exact| / std_error`` over parameters when ``exact`` was given.

    Not named in the book; :func:`estimator_stats` (chapter 1) returns it.
    """

    mean: torch.Tensor
    variance: torch.Tensor
    std_error: torch.Tensor
    total_variance: float
    num_samples: int
    max_abs_z: float | None = None


def estimator_stats(
    estimates: torch.Tensor, exact: torch.Tensor | None = None
) -> EstimatorStats:
    r"""Mean, variance and standard error of per-episode estimates, and z-scores against ``exact``.

    .. math:: \bar g = \frac1M \sum_m \hat g_m, \quad
              \mathrm{se} = \sqrt{\frac{\widehat{\mathrm{Var}}[\hat g]}{M}}, \quad
              z_{\max} = \max_i \frac{|\bar g_i - \nabla_i J|}{\mathrm{se}_i}

    For an unbiased estimator each ``z_i`` is approximately standard normal, so ``z_max`` above
    4 or 5 (with a few dozen parameters) signals a bias. A parameter whose estimates never vary
    (e.g. of a state never visited) gets ``z = 0`` if its mean equals ``exact`` (to 1e-12,
    relative) and ``z = inf`` otherwise.

    Parameters
    ----------
    estimates : torch.Tensor, shape (M, ...), e.g. (M, S, A)
        One estimate per episode, ``M >= 2``, as from :func:`gradient_estimates`.
    exact : torch.Tensor, shape (...), optional
        The exact value, e.g. from :func:`exact_gradient`.

    Returns
    -------
    EstimatorStats

    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    estimates = torch.as_tensor(estimates).detach().to(torch.float64)
    if estimates.ndim < 1 or estimates.shape[0] < 2:
        raise ValueError(
            f"estimates: expected shape (M, ...) with M >= 2, got {tuple(estimates.shape)}"
        )
    M = estimates.shape[0]
    mean = estimates.mean(0)
    variance = estimates.var(0, correction=1)
    std_error = (variance / M).sqrt()
    max_abs_z = None
    if exact is not None:
        exact = torch.as_tensor(exact).detach().to(torch.float64)
        if exact.shape != mean.shape:
            raise ValueError(
                f"exact: expected shape {tuple(mean.shape)} to match one estimate, "
                f"got {tuple(exact.shape)}"
            )
        gap = (mean - exact).abs()
        agrees = gap <= 1e-12 * (1.0 + exact.abs())
        z = torch.where(
            std_error > 0,
            gap / std_error,
            torch.where(
                agrees, torch.zeros_like(gap), torch.full_like(gap, float("inf"))
            ),
        )
        max_abs_z = z.max().item()
    return EstimatorStats(
        mean=mean,
        variance=variance,
        std_error=std_error,
        total_variance=variance.sum().item(),
        num_samples=M,
        max_abs_z=max_abs_z,
    )
