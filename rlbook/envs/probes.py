"""Probe environments: five tiny tasks whose right answer is known, to find where an agent is broken.

Each probe isolates one part of an actor-critic agent (Andy Jones, "Debugging RL, without the
agonizing pain", 2021; ARENA's PPO chapter). A probe has one-dimensional observations in
``[-1, 1]``, two actions and episodes of one or two steps, so a working PPO learns it in a few
thousand steps; what it must learn is stated exactly (:meth:`ProbeEnv.targets`). Run them in
order: the first that fails names the broken part.

===========  ========================================  ===========================================
probe        the task                                  a correct agent learns; a failure points at
===========  ========================================  ===========================================
1 constant   obs 0, reward +1, one step                V(0) = 1: the value loss or its optimiser
2 observed   obs ±1, reward = obs, one step            V(s) = s: the value net does not see the
                                                       state (or states and targets are misaligned)
3 delayed    obs 0 then 1, reward 0 then +1            V(0) = gamma, V(1) = 1: discounting or
                                                       bootstrapping
4 action     obs 0, reward +1 for action 1, else -1    pi(1 | 0) = 1, V = 1: the policy loss
5 both       obs ±1, reward +1 if action 1 is taken    pi(1 | +1) = pi(0 | -1) = 1, V = 1: the
             exactly when obs = +1, else -1            policy does not see the state
===========  ========================================  ===========================================

In probes 1 to 3 the action changes nothing. Every episode ends in a terminal state
(``terminated``), never by a time limit.

See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

__all__ = [
    "ProbeEnv",
    "ConstantRewardProbe",
    "ObservedRewardProbe",
    "DelayedRewardProbe",
    "ActionRewardProbe",
    "ObsActionRewardProbe",
    "PROBES",
    "probe_errors",
]


class ProbeEnv(gymnasium.Env):
    """Base class of the probes: observation ``Box([-1], [1])``, actions ``Discrete(2)``.

    A subclass sets ``observations`` (the states an episode can visit, each a float),
    defines :meth:`_first` (the first observation of an episode), :meth:`_reward` and
    :meth:`targets`, and may override ``horizon`` (steps per episode, 1 by default).
    """

    metadata = {"render_modes": []}
    horizon = 1
    observations: tuple[float, ...] = (0.0,)

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._obs = 0.0
        self._t = 0

    def _first(self) -> float:
        return 0.0

    def _reward(self, obs: float, action: int) -> float:
        raise NotImplementedError

    def _next(self, obs: float) -> float:
        return obs

    def _observation(self) -> np.ndarray:
        return np.array([self._obs], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        self._obs = self._first()
        return self._observation(), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 or 1, got {action!r}")
        reward = float(self._reward(self._obs, int(action)))
        self._t += 1
        terminated = self._t >= self.horizon
        if not terminated:
            self._obs = self._next(self._obs)
        return self._observation(), reward, terminated, False, {}

    @classmethod
    def targets(cls, gamma: float) -> dict[float, tuple[float, int | None]]:
        """What a correct agent learns: for each observation, its value and its best action
        (None where the action changes nothing), under the discount ``gamma``."""
        raise NotImplementedError


class ConstantRewardProbe(ProbeEnv):
    """Probe 1: observation 0, reward +1, one step. A correct critic learns V(0) = 1.

    Nothing depends on the state or the action, so only the value loss and the critic's
    optimiser are tested. A critic that stays far from 1 has a broken value loss (its sign, its
    target) or is not being stepped.
    """

    def _reward(self, obs, action):
        return 1.0

    @classmethod
    def targets(cls, gamma):
        return {0.0: (1.0, None)}


class ObservedRewardProbe(ProbeEnv):
    """Probe 2: observation -1 or +1 (equally likely), reward equal to it, one step.

    A correct critic learns V(s) = s. Passing probe 1 but failing this one means the critic
    does not use the state, or the value targets were paired with the wrong states (a
    shuffle applied to one tensor and not the other).
    """

    observations = (-1.0, 1.0)

    def _first(self):
        return float(self.np_random.choice(self.observations))

    def _reward(self, obs, action):
        return obs

    @classmethod
    def targets(cls, gamma):
        return {-1.0: (-1.0, None), 1.0: (1.0, None)}


class DelayedRewardProbe(ProbeEnv):
    """Probe 3: observation 0, reward 0; then observation 1, reward +1; the episode ends.

    A correct critic learns V(1) = 1 and V(0) = gamma: the reward arrives one step later and is
    discounted once. V(0) near 0 means the critic does not bootstrap from the next state (or
    the returns stop at every step); V(0) near 1 means the discount is missing.
    """

    horizon = 2
    observations = (0.0, 1.0)

    def _reward(self, obs, action):
        return 1.0 if obs == 1.0 else 0.0

    def _next(self, obs):
        return 1.0

    @classmethod
    def targets(cls, gamma):
        return {0.0: (float(gamma), None), 1.0: (1.0, None)}


class ActionRewardProbe(ProbeEnv):
    """Probe 4: observation 0; reward +1 for action 1 and -1 for action 0; one step.

    A correct agent learns pi(1 | 0) = 1 and then V(0) = 1. An agent that learns action 0 has
    the sign of its policy loss (or of its advantages) flipped; one that stays at 1/2 gets no
    policy gradient (for instance a ratio whose "old" log-probability is not a constant).
    """

    def _reward(self, obs, action):
        return 1.0 if action == 1 else -1.0

    @classmethod
    def targets(cls, gamma):
        return {0.0: (1.0, 1)}


class ObsActionRewardProbe(ProbeEnv):
    """Probe 5: observation -1 or +1; reward +1 if the action is 1 exactly when the observation
    is +1 (action 0 when it is -1), else -1; one step.

    A correct agent learns pi(1 | +1) = 1, pi(0 | -1) = 1 and V = 1 in both states. Passing
    probe 4 but failing this one means the policy does not see the state, or actions were
    paired with the wrong observations.
    """

    observations = (-1.0, 1.0)

    def _first(self):
        return float(self.np_random.choice(self.observations))

    def _reward(self, obs, action):
        return 1.0 if action == int(obs > 0) else -1.0

    @classmethod
    def targets(cls, gamma):
        return {-1.0: (1.0, 0), 1.0: (1.0, 1)}


PROBES: dict[str, type[ProbeEnv]] = {
    "rlbook/Probe1ConstantReward-v0": ConstantRewardProbe,
    "rlbook/Probe2ObservedReward-v0": ObservedRewardProbe,
    "rlbook/Probe3DelayedReward-v0": DelayedRewardProbe,
    "rlbook/Probe4ActionReward-v0": ActionRewardProbe,
    "rlbook/Probe5ObsActionReward-v0": ObsActionRewardProbe,
}
"""The five probes by gymnasium id, in the order to run them."""


def probe_errors(env_id: str, policy, value_fn, gamma: float) -> dict[str, float]:
    """How far a trained agent is from a probe's right answer.

    Returns ``{"value_error": max_s |V(s) - V*(s)|, "best_action_prob": min_s pi(a*(s) | s)}``
    over the probe's observations; ``best_action_prob`` is NaN where no action is better than
    another (probes 1 to 3).

    ``policy`` has ``dist(obs)`` (a categorical policy) and ``value_fn`` maps observations
    ``(B, 1)`` to values ``(B,)``, like :class:`rlbook.policies.ValueNet`.

    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    import torch  # here, not at the top: the environments themselves need no torch

    if env_id not in PROBES:
        raise ValueError(f"env_id must be one of {list(PROBES)}, got {env_id!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, int | float):
        raise TypeError(f"gamma must be a number, got {type(gamma).__name__}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    targets = PROBES[env_id].targets(gamma)
    dev = next(value_fn.parameters()).device
    obs = torch.tensor([[s] for s in targets], dtype=torch.float32, device=dev)
    expected = torch.tensor([v for v, _ in targets.values()], device=dev)
    with torch.no_grad():
        value_error = (value_fn(obs).reshape(-1) - expected).abs().max().item()
        probs = policy.dist(obs).probs
    best = [
        probs[i, a].item() for i, (_, a) in enumerate(targets.values()) if a is not None
    ]
    return {
        "value_error": value_error,
        "best_action_prob": min(best) if best else float("nan"),
    }
