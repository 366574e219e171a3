"""Environments the book needs that gymnasium lacks, registered under ``rlbook/...`` ids.

Importing this module registers these ids with gymnasium (its one side effect; importing
:mod:`rlbook` alone registers nothing):

- ``rlbook/ContinuousCartPole-v1``: :class:`ContinuousCartPoleEnv`, CartPole-v1 with a force
  in ``[-1, 1]`` (times 10 N), truncated after 500 steps like CartPole-v1;
- ``rlbook/Pixelcopter-v0``: :class:`PixelcopterEnv`, the PyGame Learning Environment's
  helicopter game in NumPy, truncated after 1000 steps (the original has no time limit);
- ``rlbook/PixelcopterStandardized-v0``: the same game, each observation feature standardised
  with fixed constants (``PixelcopterEnv(standardize=True)``, :data:`OBS_MEAN`,
  :data:`OBS_STD`), the input the book's agents learn from;
- five probe environments, ``rlbook/Probe1ConstantReward-v0`` to
  ``rlbook/Probe5ObsActionReward-v0`` (:data:`PROBES`): tasks of one or two steps whose right
  value function and policy are known, to find which part of an agent is broken
  (chapter 6.2, book/06_2_building_ppo.ipynb).

All ids work with ``gymnasium.make`` and ``gymnasium.make_vec(..., vectorization_mode="sync")``
(or ``"async"``: the entry points are import strings, so worker processes register them too).
Registering twice is harmless: an id already in the registry is left alone.

Examples
--------
>>> import gymnasium as gym
>>> import rlbook.envs
>>> envs = gym.make_vec("rlbook/ContinuousCartPole-v1", num_envs=8, vectorization_mode="sync")

See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
"""

import gymnasium

from rlbook.envs.continuous_cartpole import ContinuousCartPoleEnv
from rlbook.envs.pixelcopter import (
    OBS_MEAN,
    OBS_STD,
    HoverController,
    PixelcopterEnv,
    hover_policy,
)
from rlbook.envs.probes import PROBES, probe_errors

__all__ = [
    "ContinuousCartPoleEnv",
    "PixelcopterEnv",
    "hover_policy",
    "HoverController",
    "OBS_MEAN",
    "OBS_STD",
    "PROBES",
    "probe_errors",
    "CONTINUOUS_CARTPOLE_ID",
    "PIXELCOPTER_ID",
    "PIXELCOPTER_STANDARDIZED_ID",
    "register_envs",
]

CONTINUOUS_CARTPOLE_ID = "rlbook/ContinuousCartPole-v1"
PIXELCOPTER_ID = "rlbook/Pixelcopter-v0"
PIXELCOPTER_STANDARDIZED_ID = "rlbook/PixelcopterStandardized-v0"


def register_envs() -> None:
    """Register the book's environments with gymnasium, skipping ids already registered.

    Called once when :mod:`rlbook.envs` is imported; safe to call again.

    Not named in the book: ``import rlbook.envs`` calls it (chapter 4.1).
    """
    specs = {
        CONTINUOUS_CARTPOLE_ID: dict(
            entry_point="rlbook.envs.continuous_cartpole:ContinuousCartPoleEnv",
            max_episode_steps=500,
            reward_threshold=475.0,  # as CartPole-v1
        ),
        # PLE's game never ends on its own; 1000 steps (about 33 s of play) keeps episodes
        # and chapters short, and the cut is reported as truncated, not terminated.
        PIXELCOPTER_ID: dict(
            entry_point="rlbook.envs.pixelcopter:PixelcopterEnv",
            max_episode_steps=1000,
        ),
        # the same game with per-feature standardised observations (fixed constants)
        PIXELCOPTER_STANDARDIZED_ID: dict(
            entry_point="rlbook.envs.pixelcopter:PixelcopterEnv",
            max_episode_steps=1000,
            kwargs={"standardize": True},
        ),
    }
    for env_id, cls in PROBES.items():
        # episodes of one or two steps that end in a terminal state: no time limit
        specs[env_id] = dict(entry_point=f"rlbook.envs.probes:{cls.__name__}")
    for env_id, kwargs in specs.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, **kwargs)


register_envs()
