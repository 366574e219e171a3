"""Pixelcopter: the PyGame Learning Environment's helicopter game, rewritten in NumPy.

A copter flies through a cave that scrolls from right to left. Gravity pulls it down; holding
"up" accelerates it upwards. The cave's ceiling and floor follow a wavy centre line, and
rectangular blocks hang inside the cave. The agent earns +1 for every cave column that
scrolls off the screen and every block it flies past, and -5 when it crashes, which ends the
episode. The original game (Tasfi, 2016) needs pygame and is not on PyPI; this version keeps its
numbers (a 48x48 screen at 30 frames per second, the same momentum update, the same
observation) and needs only NumPy, for stepping and for drawing.

See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from rlbook import validate
from rlbook.envs._draw import fill_rect

__all__ = [
    "PixelcopterEnv",
    "hover_policy",
    "HoverController",
    "UP",
    "NOOP",
    "OBS_MEAN",
    "OBS_STD",
]

UP = 0
"""Action that accelerates the copter upwards (PLE's only key)."""
NOOP = 1
"""Action that lets gravity act."""

# Measured once, over the 11,855 states of 100 episodes of hover_policy (reset seeds 0 to 99;
# seeds 100 to 199 agree to within 0.8 px in the means and 2% in the stds), and rounded.
OBS_MEAN = np.array([23.7, 0.0, 11.6, 12.4, 23.0, 19.5, 28.5], dtype=np.float32)
"""Per-feature mean of the observation in flight, in pixels (px/step for the velocity)."""
OBS_STD = np.array([3.9, 0.36, 2.7, 2.7, 13.0, 7.1, 7.1], dtype=np.float32)
"""Per-feature standard deviation of the observation in flight, same units."""


class PixelcopterEnv(gymnasium.Env):
    """Fly a copter through a scrolling cave without touching its walls or the blocks inside.

    Every step lasts ``dt = 1000 / 30`` ms (PLE measures time in milliseconds at 30 fps). With
    ``speed = 0.0004 * W`` px/ms the world scrolls left by ``speed * dt = 0.64`` px per step,
    and the copter's vertical velocity ``v`` (px per step, positive is down) follows PLE:

    .. math::

        v \\leftarrow 0.99 \\left(v + \\begin{cases}
            -0.875\\,\\mathrm{speed}\\cdot dt & \\text{action 0 (up)}\\\\
            \\phantom{-}0.09\\,\\mathrm{speed}\\cdot dt & \\text{action 1 (nothing)}
        \\end{cases}\\right), \\qquad y \\leftarrow y + v,

    so "up" changes the velocity by -0.56 px/step and gravity by +0.058 px/step: the game is
    about pressing up rarely and at the right moments.

    World, all in pixels of the ``W x H = 48 x 48`` screen, ``y`` pointing down:

    - the copter is a ``2.4 x 2.4`` square centred at ``x = 16`` (``0.35 W``), starting at
      ``y = 24`` at rest;
    - the cave is made of columns 4 px wide; a column with centre line ``c`` is open between
      ``c - 0.25 H`` and ``c + 0.25 H`` (a 24 px gap) and solid above and below. The centre
      line is ``c = H/2 + 0.125 H sin(f x + phi + j)``, rounded to whole pixels, with a
      frequency ``f = 4.5 / W + U(-0.01, 0.01)`` rad/px and phase ``phi ~ U(0, 2 pi)`` drawn
      per episode and a jitter ``j ~ U(0, 0.5)`` per column, as in PLE;
    - blocks (PLE calls them gates) are ``4 x 9`` px rectangles. The next one appears 48 to
      71 px from the screen's left edge when the copter passes the previous one, its centre
      drawn uniformly from the whole pixels 12 to 35 (``0.25 H`` to ``0.75 H``), like PLE, so
      most stand inside the gap and must be flown around, above or below.

    Observation, shape ``(7,)``, float32, in pixels (px/step for the velocity), PLE's order:
    ``[player_y, player_vel, dist_to_ceil, dist_to_floor, next_gate_dist_to_player,
    next_gate_block_top, next_gate_block_bottom]``. The distances to the ceiling and the floor
    are measured from the copter's centre to the column under it; the gate distance is
    horizontal, between centres; block top and bottom are ``y`` coordinates. Typical ranges
    while flying: ``y`` in [6, 42], ``v`` in [-5, 2], distances to the walls in [0, 24], gate
    distance in (0, 56], block edges in [7.5, 39.5]. The space's bounds are looser, so that
    they hold even on the crash step: ``[-96, 96]`` for ``y`` and the wall distances,
    ``[-60, 60]`` for ``v``, ``[0, 72]`` for the gate distance, ``[0, 48]`` for the block edges.

    Actions, ``Discrete(2)``: 0 = up, 1 = do nothing (PLE's order).

    Reward per step: ``+1`` for each cave column that scrolls off the left edge (one every 6.25
    steps) plus ``+1`` for each block whose centre the copter passes (one every 50 to 90
    steps); on a crash the reward is exactly ``-5`` and ``terminated`` is True. A crash is any
    overlap of the copter with the cave walls or a block, or the copter leaving the screen.

    With ``standardize=True`` (the id ``rlbook/PixelcopterStandardized-v0``) the observation
    is ``(obs - OBS_MEAN) / OBS_STD``, feature by feature: fixed constants measured once on
    flights of :func:`hover_policy`, so every feature has a spread of about 1 and the game,
    its caves and its rewards are unchanged (same seed, same cave). A tanh network then
    starts unsaturated, and no feature is drowned by the others' scale (section 4.1).

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
        ``"rgb_array"`` makes :meth:`render` return a ``(48 * scale, 48 * scale, 3)`` uint8
        picture drawn with NumPy.
    scale : int, default 8
        Pixels of the picture per pixel of the game (8 gives 384 x 384).
    standardize : bool, default False
        Return standardised observations ``(obs - OBS_MEAN) / OBS_STD`` instead of pixels.

    Notes
    -----
    Differences from PLE, all deliberate: PLE has no time limit; the id
    ``rlbook/Pixelcopter-v0`` registers ``max_episode_steps=1000`` (``truncated=True`` after
    1000 steps, return at most about 175), so episodes end and chapters stay fast, and a learner
    must bootstrap on truncation rather than treat it as a crash. The cave continues smoothly
    instead of restarting its wave every screen. ``next_gate_block_top`` is the block's top
    edge (PLE reports its centre under that name). The crash step's reward is -5 alone,
    without the column or block rewards of that step.

    Measured over 100 seeds: a uniformly random policy crashes after 9 to 10 steps (return
    about -4.1: -5, plus 1 when it outlives the first column, which leaves the screen after 7
    steps; PLE counts columns a little later, hence its -5), and :func:`hover_policy` lasts
    119 steps on average (median 77, return about 14), always ending on a block.

    See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    width = 48
    height = 48
    dt = 1000.0 / 30.0  # milliseconds per step, as PLE's clock at 30 fps
    speed = 0.0004 * width  # px per millisecond
    player_x = float(int(0.35 * width))
    player_size = 0.05 * width
    column_width = int(0.1 * width)
    gap_half = 0.25 * height
    wave_amplitude = 0.125 * height
    block_width = int(0.1 * width)
    block_height = int(0.2 * height)
    crash_reward = -5.0

    def __init__(
        self, render_mode: str | None = None, scale: int = 8, standardize: bool = False
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.scale = validate.positive_int("scale", scale)
        self.action_space = spaces.Discrete(2)
        # Loose bounds that always hold, crash step included: |v| < 0.99 * 0.56 / 0.01 < 60,
        # so the copter ends at most 60 px beyond the screen; blocks start at most 1.5 W ahead.
        h, w = self.height, self.width
        low = np.array([-2 * h, -60, -2 * h, -2 * h, 0, 0, 0], dtype=np.float32)
        high = np.array([2 * h, 60, 2 * h, 2 * h, 1.5 * w, h, h], dtype=np.float32)
        self.standardize = bool(standardize)
        if self.standardize:
            low, high = (low - OBS_MEAN) / OBS_STD, (high - OBS_MEAN) / OBS_STD
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._y = self._vel = 0.0
        self._scroll = 0.0  # how far the world has moved left, px
        self._col_k0 = 0  # index of the leftmost live column
        self._col_c: list[int] = []  # centre lines of the live columns
        self._blocks: list[list[float]] = []  # [x_centre, top, passed] per live block
        self._freq = self._phase = 0.0
        self._crashed: bool | None = None

    # --- world geometry -------------------------------------------------------------------

    def _column_x(self, k: int | np.ndarray) -> float | np.ndarray:
        """Screen x of the centre of column ``k``."""
        return self.column_width / 2 + k * self.column_width - self._scroll

    def _extend_terrain(self) -> None:
        """Append columns until the cave reaches two screens to the right."""
        while self._column_x(self._col_k0 + len(self._col_c)) < 2 * self.width:
            k = self._col_k0 + len(self._col_c)
            world_x = self.column_width / 2 + k * self.column_width
            wave = math.sin(
                self._freq * world_x + self._phase + self.np_random.uniform(0.0, 0.5)
            )
            self._col_c.append(int(round(self.height / 2 + self.wave_amplitude * wave)))

    def _centre_at(self, x: float) -> int:
        """Centre line of the column whose span holds screen coordinate ``x``."""
        k = int(math.floor((x + self._scroll) / self.column_width))
        return self._col_c[k - self._col_k0]

    def _add_block(self) -> None:
        """Place a block 48 to 71 px from the left edge, its centre 12 to 35 px from the top."""
        x = float(self.np_random.integers(self.width, int(1.5 * self.width)))
        # As in PLE the height ignores the cave: most blocks stand in the gap, some lean on a wall.
        centre = float(
            self.np_random.integers(int(0.25 * self.height), int(0.75 * self.height))
        )
        self._blocks.append([x, centre - self.block_height / 2, 0.0])

    def _next_block(self) -> list[float]:
        """The block nearest to the copter among those still ahead of it."""
        ahead = [b for b in self._blocks if b[0] - self.player_x > 0]
        return min(ahead, key=lambda b: b[0])

    def _obs(self) -> np.ndarray:
        """The 7 PLE features as float32, in pixels or standardised."""
        c = self._centre_at(self.player_x)
        block_x, top, _ = self._next_block()
        obs = np.array(
            [
                self._y,
                self._vel,
                self._y - (c - self.gap_half),
                (c + self.gap_half) - self._y,
                block_x - self.player_x,
                top,
                top + self.block_height,
            ],
            dtype=np.float32,
        )
        return (obs - OBS_MEAN) / OBS_STD if self.standardize else obs

    def _collides(self) -> bool:
        """Whether the copter's square overlaps a wall, a block, or leaves the screen."""
        half = self.player_size / 2
        y0, y1 = self._y - half, self._y + half
        if y0 < 0 or y1 > self.height:
            return True
        px = self.player_x
        reach = (self.column_width + self.player_size) / 2
        # only the two or three columns around the copter can touch it: test those (one
        # column of margin on each side, so the exact test below decides as before)
        near = (px + self._scroll - self.column_width / 2) / self.column_width
        first = max(int(math.floor(near - reach / self.column_width)) - 1, self._col_k0)
        last = int(math.ceil(near + reach / self.column_width)) + 1
        for k in range(first, min(last, self._col_k0 + len(self._col_c) - 1) + 1):
            c = self._col_c[k - self._col_k0]
            if abs(self._column_x(k) - px) < reach and (
                y0 < c - self.gap_half or y1 > c + self.gap_half
            ):
                return True
        reach = (self.block_width + self.player_size) / 2
        return any(
            abs(x - px) < reach and y0 < top + self.block_height and y1 > top
            for x, top, _ in self._blocks
        )

    # --- gymnasium API --------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new cave with the copter at rest in the middle of the screen.

        Parameters
        ----------
        seed : int, optional
            Seeds ``self.np_random``, which draws the cave and the blocks.
        options : dict, optional
            Unused; accepted for the gymnasium API.

        Returns
        -------
        obs : np.ndarray, shape (7,), float32
        info : dict
            Empty.
        """
        super().reset(seed=seed)
        self._y = self.height / 2
        self._vel = 0.0
        self._scroll = 0.0
        self._col_k0 = 0
        self._col_c = []
        self._freq = 4.5 / self.width + self.np_random.uniform(-0.01, 0.01)
        self._phase = self.np_random.uniform(0.0, 2 * math.pi)
        self._extend_terrain()
        self._blocks = []
        self._add_block()
        self._crashed = False
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance the game by one frame (1/30 s).

        Parameters
        ----------
        action : int
            0 = up, 1 = do nothing.

        Returns
        -------
        obs : np.ndarray, shape (7,), float32
        reward : float
            Columns scrolled off plus blocks passed this step (usually 0 or 1), or -5 on a crash.
        terminated : bool
            True when the copter crashed.
        truncated : bool
            Always False here; the registered id adds a 1000-step ``TimeLimit``.
        info : dict
            Empty.
        """
        if self._crashed is None:
            raise RuntimeError("call reset() before step()")
        # the common case (an integer 0 or 1) without the space's general check
        plain = isinstance(action, int | np.integer) and 0 <= action <= 1
        if not plain and not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (up) or 1 (do nothing), got {action!r}")
        if self._crashed:
            gymnasium.logger.warn(
                "step() called after the copter crashed; call reset() first."
            )
            return self._obs(), 0.0, True, False, {}

        accel = (-0.875 if int(action) == UP else 0.09) * self.speed
        self._vel = (self._vel + accel * self.dt) * 0.99
        self._y += self._vel
        shift = self.speed * self.dt
        self._scroll += shift
        for b in self._blocks:
            b[0] -= shift

        reward = 0.0
        # Columns whose right edge has left the screen score and go.
        while self._column_x(self._col_k0) + self.column_width / 2 <= 0:
            self._col_k0 += 1
            self._col_c.pop(0)
            reward += 1.0
        self._extend_terrain()
        for b in list(self._blocks):
            if not b[2] and b[0] <= self.player_x:
                b[2] = 1.0
                reward += 1.0
                self._add_block()
            if b[0] + self.block_width / 2 <= 0:
                self._blocks.remove(b)

        if self._collides():
            self._crashed = True
            return self._obs(), self.crash_reward, True, False, {}
        return self._obs(), reward, False, False, {}

    def render(self) -> np.ndarray | None:
        """Draw the cave, the blocks and the copter.

        Returns
        -------
        np.ndarray or None
            ``(48 * scale, 48 * scale, 3)`` uint8 RGB image when ``render_mode == "rgb_array"``,
            else None.
        """
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array'."
            )
            return None
        if self._crashed is None:
            raise RuntimeError("call reset() before render()")
        s = self.scale
        img = np.zeros((self.height * s, self.width * s, 3), dtype=np.uint8)
        img[:] = (18, 22, 40)  # night sky
        wall = (70, 170, 60)
        half_w = self.column_width / 2
        for i, c in enumerate(self._col_c):
            x = self._column_x(self._col_k0 + i)
            fill_rect(
                img,
                s * (x - half_w),
                s * (x + half_w),
                0,
                s * (c - self.gap_half),
                wall,
            )
            fill_rect(
                img,
                s * (x - half_w),
                s * (x + half_w),
                s * (c + self.gap_half),
                img.shape[0],
                wall,
            )
        half_b = self.block_width / 2
        for x, top, _ in self._blocks:
            fill_rect(
                img,
                s * (x - half_b),
                s * (x + half_b),
                s * top,
                s * (top + self.block_height),
                (230, 120, 40),
            )
        half = self.player_size / 2
        color = (230, 40, 40) if self._crashed else (250, 230, 90)
        px, y = self.player_x, self._y
        fill_rect(
            img, s * (px - half), s * (px + half), s * (y - half), s * (y + half), color
        )
        # A rotor on top, so the square reads as a copter.
        fill_rect(
            img,
            s * (px - 2 * half),
            s * (px + 2 * half),
            s * (y - 1.4 * half),
            s * (y - half),
            color,
        )
        return img

    def close(self) -> None:
        """Nothing to release: rendering uses no window."""


def hover_policy(obs: np.ndarray) -> int | np.ndarray:
    """Press up when the copter is below the middle of the cave and falling.

    A hand-written baseline that ignores the blocks: action 0 (up) when
    ``dist_to_floor < dist_to_ceil and player_vel > 0``, otherwise 1 (do nothing).
    (``y`` points down, so a positive velocity is falling.) Waiting until the copter falls damps
    the strong upward kick of a press, so the copter follows the middle of the cave without
    touching its walls; it dies on the first block that covers the middle of the cave. Over 100 seeds it
    survives about 12 times as long as a uniformly random policy (see :class:`PixelcopterEnv`),
    and a learned policy can beat it by dodging the blocks.

    Parameters
    ----------
    obs : array_like, shape (7,) or (N, 7)
        Pixelcopter observations.

    Returns
    -------
    int or np.ndarray of shape (N,), int64
        0 (up) or 1 (do nothing) per observation.

    See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
    """
    obs = np.asarray(obs, dtype=np.float64)
    if obs.ndim not in (1, 2) or obs.shape[-1] != 7:
        raise ValueError(f"obs must have shape (7,) or (N, 7), got {obs.shape}")
    press = (obs[..., 3] < obs[..., 2]) & (obs[..., 1] > 0)
    actions = np.where(press, UP, NOOP).astype(np.int64)
    return int(actions) if obs.ndim == 1 else actions


class HoverController(torch.nn.Module):
    """:func:`hover_policy` as a policy object, so that ``evaluate`` and ``episode_returns``
    run it like a trained agent: ``dist(obs)`` puts all the probability on its choice.

    It reads raw pixels (``rlbook/Pixelcopter-v0``). See chapter 4.1 of the book
    (book/04_1_harder_tasks.ipynb).
    """

    # evaluation code reads these two attributes, and the device from a parameter
    action_kind, n_actions = "discrete", 2

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        choice = torch.as_tensor(hover_policy(obs.cpu().numpy()), device=obs.device)
        return torch.distributions.Categorical(
            probs=torch.nn.functional.one_hot(choice, 2).float()
        )
