"""Policies and value networks: small MLPs that hand back ``torch.distributions`` objects.

Every policy exposes ``dist(obs)``, the distribution :math:`\\pi_\\theta(\\cdot \\mid s)` over actions.
Sampling, log-probabilities, entropies and deterministic actions all come from that object, so
the rest of the library never needs to know which kind of policy it holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal
from torch.nn import functional as F

from rlbook import validate
from rlbook.utils import device


class MLP(nn.Sequential):
    """An ``nn.Sequential`` of linear layers and activations whose forward pass calls
    ``F.linear`` and ``torch.tanh`` directly: the same operations in the same order, so the
    same numbers, without a module call per layer. On the book's small networks that call
    is a quarter of the time of a forward pass, and rollouts make one per step.

    Not named in the book; :func:`mlp` builds one.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            kind = type(layer)
            if kind is nn.Linear:
                x = F.linear(x, layer.weight, layer.bias)
            elif kind is nn.Tanh:
                x = torch.tanh(x)
            else:
                x = layer(x)
        return x


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    output_activation: type[nn.Module] | None = None,
) -> MLP:
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
    MLP
        An ``nn.Sequential`` (layer ``i`` is ``net[i]``) with a leaner forward pass.

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
    return MLP(*layers)


def orthogonal_init(net: nn.Sequential, output_gain: float) -> nn.Sequential:
    """Orthogonal weights with gain sqrt(2) in the hidden layers and ``output_gain`` in the last;
    zero biases (CleanRL's ``layer_init``; Huang et al., 2022, detail 2). Returns ``net``.

    A last policy layer with gain 0.01 starts every state at nearly uniform action
    probabilities; the value network's last layer uses gain 1.
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    validate.instance("net", net, nn.Module)
    output_gain = validate.positive("output_gain", output_gain)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        gain = output_gain if i == len(linears) - 1 else math.sqrt(2)
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return net


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
        self.net = mlp([obs_dim, *hidden, n_actions])

    def dist(self, obs: torch.Tensor) -> Categorical:
        """The action distribution at ``obs`` (shape ``(..., obs_dim)``); batch shape ``(...)``."""
        obs = _check_obs(obs, self.obs_dim, self.net)
        return Categorical(logits=self.net(obs), validate_args=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


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
        self.net = mlp([obs_dim, *hidden, act_dim])
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def dist(self, obs: torch.Tensor) -> Independent:
        """π_θ(·|obs): batch shape (...), event shape (act_dim,)."""
        obs = _check_obs(obs, self.obs_dim, self.net)
        mu = self.net(obs)
        return Independent(Normal(mu, self.log_std.exp(), validate_args=False), 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


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
        self.net = mlp([obs_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = _check_obs(obs, self.obs_dim, self.net)
        return self.net(obs).squeeze(-1)


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


def actor_critic(obs_space, act_space, hidden, ortho_init: bool):
    """A policy and a separate value network for these spaces, on rlbook's device, with
    PPO's orthogonal initialisation when ``ortho_init``. Used by PPO and TRPO."""
    policy = make_policy(obs_space, act_space, hidden)
    value_fn = ValueNet(obs_space.shape[0], hidden)
    if ortho_init:
        orthogonal_init(policy.net, 0.01)
        orthogonal_init(value_fn.net, 1.0)
    dev = device()
    return policy.to(dev), value_fn.to(dev)
