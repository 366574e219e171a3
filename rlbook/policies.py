"""Policies and value networks: small MLPs that hand back ``torch.distributions`` objects.

Every policy exposes ``dist(obs)``, the distribution :math:`\\pi_\\theta(\\cdot \\mid s)` over actions.
Sampling, log-probabilities, entropies and deterministic actions all come from that object, so
the rest of the library never needs to know which kind of policy it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

from rlbook import validate


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    output_activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """Build a multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, output last; at least two entries, all positive.
    activation : nn.Module class
        Non-linearity between hidden layers (tanh, as in most policy-gradient code).
    output_activation : nn.Module class or None
        Non-linearity after the last layer; ``None`` leaves the output linear (logits, means).

    Returns
    -------
    nn.Sequential

    Notes
    -----
    Not named in the book; every network of this module is one.
    """
    sizes = validate.layer_sizes("sizes", sizes)
    validate.module_class("activation", activation)
    validate.module_class("output_activation", output_activation, optional=True)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two layer widths, got {sizes!r}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
        elif output_activation is not None:
            layers.append(output_activation())
    return nn.Sequential(*layers)


def _check_obs(obs: torch.Tensor, obs_dim: int, net: nn.Module) -> torch.Tensor:
    """``obs`` as a finite tensor of ``net``'s dtype on its device (NumPy arrays, float64,
    integer and CPU tensors are converted)."""
    weight = next(net.parameters())
    if not isinstance(obs, torch.Tensor):
        obs = validate.float_array("obs", obs, nonempty=False)
        obs = torch.as_tensor(obs, dtype=weight.dtype, device=weight.device)
    elif obs.is_complex():
        raise TypeError(f"obs must hold real numbers, got {obs.dtype}")
    elif obs.device != weight.device or obs.dtype != weight.dtype:
        obs = obs.to(weight.device, weight.dtype)
    if obs.shape[-1:] != (obs_dim,):
        raise ValueError(
            f"obs must have last dimension {obs_dim}, got shape {tuple(obs.shape)}"
        )
    return validate.finite("obs", obs)


class CategoricalPolicy(nn.Module):
    """A policy over ``n_actions`` discrete actions: :math:`\\pi_\\theta(a|s) = \\mathrm{softmax}(f_\\theta(s))_a`.

    Parameters
    ----------
    obs_dim : int
        Length of the (flat) observation vector.
    n_actions : int
        Number of actions.
    hidden : sequence of int
        Hidden-layer widths of the logit network.

    Notes
    -----
    The network outputs logits, never probabilities: ``Categorical(logits=...)`` computes
    log-probabilities with a log-sum-exp, which stays finite where ``log(softmax(x))`` would
    underflow to ``-inf``. See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """

    action_kind = "discrete"

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        n_actions = validate.integer("n_actions", n_actions, low=2)
        self.obs_dim = validate.positive_int("obs_dim", obs_dim)
        self.n_actions = n_actions
        hidden = validate.layer_sizes("hidden", hidden, allow_empty=True)
        self.logits_net = mlp([obs_dim, *hidden, n_actions])

    def dist(self, obs: torch.Tensor) -> Categorical:
        """The action distribution at ``obs`` (shape ``(..., obs_dim)``); batch shape ``(...)``."""
        obs = _check_obs(obs, self.obs_dim, self.logits_net)
        return Categorical(logits=self.logits_net(obs), validate_args=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits_net(obs)


class GaussianPolicy(nn.Module):
    """A diagonal Gaussian policy: a ~ N(μ_θ(s), diag(σ²)), σ = exp(log_std).

    The mean comes from an MLP; log_std is a state-independent parameter vector, as in
    most policy-gradient code (Schulman et al., 2017); log_std_init = -0.5 gives
    σ ≈ 0.61, a third of an action range [-1, 1]. dist(obs) is Independent(Normal, 1):
    log_prob sums over the action dimensions. Actions are sampled unbounded; the rollout
    clips only what the environment sees. See chapter 4.1 (book/04_1_harder_tasks.ipynb).
    """

    action_kind = "continuous"

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        log_std_init: float = -0.5,
    ):
        super().__init__()
        act_dim = validate.positive_int("act_dim", act_dim)
        self.obs_dim, self.act_dim = validate.positive_int("obs_dim", obs_dim), act_dim
        hidden = validate.layer_sizes("hidden", hidden, allow_empty=True)
        log_std_init = validate.number("log_std_init", log_std_init)
        self.mu_net = mlp([obs_dim, *hidden, act_dim])
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def dist(self, obs: torch.Tensor) -> Independent:
        """π_θ(·|obs): batch shape (...), event shape (act_dim,)."""
        obs = _check_obs(obs, self.obs_dim, self.mu_net)
        mu = self.mu_net(obs)
        return Independent(Normal(mu, self.log_std.exp(), validate_args=False), 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mu_net(obs)


class ValueNet(nn.Module):
    """A state-value network :math:`V_\\phi(s)`; maps ``(..., obs_dim)`` to ``(...)``.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.obs_dim = validate.positive_int("obs_dim", obs_dim)
        hidden = validate.layer_sizes("hidden", hidden, allow_empty=True)
        self.v_net = mlp([obs_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = _check_obs(obs, self.obs_dim, self.v_net)
        return self.v_net(obs).squeeze(-1)


def check_net_fits(name: str, net, observation_space: gym.Space) -> nn.Module:
    """Raise unless ``net`` is an ``nn.Module`` that reads observations of this space: a
    policy or value network of this module must have ``obs_dim`` equal to their length."""
    net = validate.instance(name, net, nn.Module)
    obs_dim = getattr(net, "obs_dim", None)
    shape = getattr(observation_space, "shape", None)
    if obs_dim is not None and shape is not None and tuple(shape) != (obs_dim,):
        raise ValueError(
            f"{name} reads observations of length obs_dim={obs_dim}, but the environment's "
            f"observations have shape {tuple(shape)}"
        )
    return net


def check_policy_fits(policy: nn.Module, action_space: gym.Space) -> None:
    """Raise a clear error when ``policy`` cannot act in ``action_space``.

    A categorical policy needs a ``Discrete`` space with as many actions as it has logits;
    a Gaussian policy needs a one-dimensional ``Box`` of matching size.
    """
    if not hasattr(policy, "dist"):
        raise TypeError(
            f"policy must have a dist(obs) method, got {type(policy).__name__}"
        )
    kind = getattr(policy, "action_kind", None)
    if isinstance(action_space, gym.spaces.Discrete):
        if kind != "discrete":
            raise TypeError(
                f"policy is {type(policy).__name__} ({kind} actions) but the action space is "
                f"{action_space}: use a CategoricalPolicy for discrete actions"
            )
        if getattr(policy, "n_actions", action_space.n) != action_space.n:
            raise ValueError(
                f"policy has {policy.n_actions} actions but the action space has {action_space.n}"
            )
    elif isinstance(action_space, gym.spaces.Box):
        if kind != "continuous":
            raise TypeError(
                f"policy is {type(policy).__name__} ({kind} actions) but the action space is "
                f"{action_space}: use a GaussianPolicy for continuous actions"
            )
        if action_space.shape != (getattr(policy, "act_dim", action_space.shape[0]),):
            raise ValueError(
                f"policy has act_dim={policy.act_dim} but the action space has shape "
                f"{action_space.shape}"
            )
    else:
        raise TypeError(
            f"action space must be Discrete or Box, got {action_space!r} (not supported)"
        )


def make_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    hidden: Sequence[int] = (64, 64),
) -> CategoricalPolicy | GaussianPolicy:
    """The natural policy for a pair of spaces: categorical for ``Discrete``, Gaussian for ``Box``."""
    if (
        not isinstance(observation_space, gym.spaces.Box)
        or len(observation_space.shape) != 1
    ):
        raise TypeError(
            f"observation_space must be a one-dimensional Box, got {observation_space}"
        )
    obs_dim = observation_space.shape[0]
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(action_space.n), hidden)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianPolicy(obs_dim, action_space.shape[0], hidden)
    raise TypeError(
        f"action_space must be Discrete or a one-dimensional Box, got {action_space}"
    )
