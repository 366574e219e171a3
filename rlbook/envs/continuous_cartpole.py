"""Cart-pole with a continuous force: the classic control task for Gaussian policies.

The physics, constants, start distribution, termination thresholds and reward are those of
gymnasium's ``CartPole-v1``; only the action changes. Instead of choosing "push left" or
"push right" with a fixed force of 10 N, the agent chooses a number :math:`a \\in [-1, 1]`
and the cart is pushed with :math:`F = 10\\,\\mathrm{N} \\cdot \\operatorname{clip}(a, -1, 1)`.
Holding :math:`a = \\pm 1` therefore reproduces ``CartPole-v1`` step for step, which the tests
check against gymnasium's own implementation.

See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlbook.envs._draw import fill_rect

__all__ = ["ContinuousCartPoleEnv"]


class ContinuousCartPoleEnv(gymnasium.Env):
    """Cart-pole balancing with a continuous force in ``[-1, 1]`` (times 10 N).

    A pole is hinged on a cart that moves without friction along a track. Each step the agent
    picks ``action`` of shape ``(1,)``; the cart is pushed with force
    :math:`F = F_{\\max}\\,\\operatorname{clip}(a, -1, 1)` newtons, :math:`F_{\\max} = 10`, and the
    state advances by one explicit Euler step of :math:`\\tau = 0.02` s of the frictionless
    cart-pole equations (Florian, 2005, with :math:`\\mu_c = \\mu_p = 0`):

    .. math::

        \\ddot\\theta = \\frac{g \\sin\\theta - \\cos\\theta\\,
            \\dfrac{F + m_p l \\dot\\theta^2 \\sin\\theta}{m_c + m_p}}
            {l \\left(\\tfrac43 - \\dfrac{m_p \\cos^2\\theta}{m_c + m_p}\\right)},
        \\qquad
        \\ddot x = \\frac{F + m_p l (\\dot\\theta^2 \\sin\\theta - \\ddot\\theta \\cos\\theta)}
            {m_c + m_p},

    with :math:`g = 9.8`, :math:`m_c = 1`, :math:`m_p = 0.1` and half-pole length
    :math:`l = 0.5`.

    Observation, shape ``(4,)``, float32: ``[x, x_dot, theta, theta_dot]`` in metres, m/s,
    radians and rad/s (:math:`\\theta > 0` means the pole leans to the right). The start state
    is drawn uniformly from ``[-0.05, 0.05]^4``.

    Reward: +1 for every step, including the one on which the episode ends (as in
    ``CartPole-v1``). The episode terminates when :math:`|x| > 2.4` or
    :math:`|\\theta| > 12°`. There is no time limit inside the class: registered as
    ``rlbook/ContinuousCartPole-v1``, gymnasium's ``TimeLimit`` truncates it after 500 steps,
    so the best possible return is 500.

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
        ``"rgb_array"`` makes :meth:`render` return a ``(400, 600, 3)`` uint8 picture drawn with
        NumPy (no pygame needed).

    Notes
    -----
    Why a continuous cart-pole: it lets the book train the same task with a categorical and a
    Gaussian policy and compare them. Out-of-range actions are clipped, not rejected, because
    a Gaussian policy samples unbounded actions; a NaN action or one of the wrong size raises.

    See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    # Physical constants of CartPole-v1 (Barto, Sutton & Anderson, 1983).
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    length = 0.5  # half the pole's length, metres
    force_mag = 10.0
    tau = 0.02  # seconds per step
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    # Picture size and layout, pixels.
    screen_width = 600
    screen_height = 400

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        # Twice the termination thresholds, so that the final observation is still inside.
        high = np.array(
            [
                2 * self.x_threshold,
                np.finfo(np.float32).max,
                2 * self.theta_threshold_radians,
                np.finfo(np.float32).max,
            ],
            dtype=np.float32,
        )
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.state: np.ndarray | None = None
        self._steps_beyond_terminated: int | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode from a state drawn uniformly from ``[-0.05, 0.05]^4``.

        Parameters
        ----------
        seed : int, optional
            Seeds ``self.np_random``; the same seed gives the same start state as
            ``CartPole-v1`` reset with that seed.
        options : dict, optional
            Unused; accepted for the gymnasium API.

        Returns
        -------
        obs : np.ndarray, shape (4,), float32
        info : dict
            Empty.
        """
        super().reset(seed=seed)
        self.state = self.np_random.uniform(low=-0.05, high=0.05, size=(4,))
        self._steps_beyond_terminated = None
        return self.state.astype(np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Push the cart with ``10 * clip(action, -1, 1)`` newtons for 0.02 s.

        Parameters
        ----------
        action : array_like, shape (1,) or scalar
            The force as a fraction of 10 N; values outside ``[-1, 1]`` are clipped.

        Returns
        -------
        obs : np.ndarray, shape (4,), float32
        reward : float
            1.0 (0.0 if ``step`` is called again after termination).
        terminated : bool
            The pole fell past 12° or the cart left ``[-2.4, 2.4]``.
        truncated : bool
            Always False here; the registered id adds a 500-step ``TimeLimit``.
        info : dict
            Empty.
        """
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64)
        if a.size != 1:
            raise ValueError(f"action must hold one number, got shape {a.shape}")
        a = float(a.reshape(()))
        if not math.isfinite(a):
            raise ValueError(f"action must be finite, got {a}")
        force = self.force_mag * min(max(a, -1.0), 1.0)

        x, x_dot, theta, theta_dot = (float(v) for v in self.state)
        sin, cos = math.sin(theta), math.cos(theta)
        total_mass = self.masscart + self.masspole
        polemass_length = self.masspole * self.length
        # Force on the cart plus the centrifugal pull of the pole, per unit of total mass.
        push = (force + polemass_length * theta_dot**2 * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * push) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        x_acc = push - polemass_length * theta_acc * cos / total_mass

        # Explicit Euler: every update uses the state at the start of the step.
        self.state = np.array(
            [
                x + self.tau * x_dot,
                x_dot + self.tau * x_acc,
                theta + self.tau * theta_dot,
                theta_dot + self.tau * theta_acc,
            ]
        )
        x, theta = self.state[0], self.state[2]
        terminated = bool(
            abs(x) > self.x_threshold or abs(theta) > self.theta_threshold_radians
        )

        if self._steps_beyond_terminated is None:
            reward = 1.0  # the step on which the pole falls still earns its +1, as in CartPole
            if terminated:
                self._steps_beyond_terminated = 0
        else:
            if self._steps_beyond_terminated == 0:
                gymnasium.logger.warn(
                    "step() called after terminated=True; call reset() first. "
                    "Further steps earn 0 reward."
                )
            self._steps_beyond_terminated += 1
            reward = 0.0
        return self.state.astype(np.float32), reward, terminated, False, {}

    def render(self) -> np.ndarray | None:
        """Draw the cart, the pole and the track.

        Returns
        -------
        np.ndarray or None
            ``(400, 600, 3)`` uint8 RGB image when ``render_mode == "rgb_array"``, else None.
        """
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array'."
            )
            return None
        if self.state is None:
            raise RuntimeError("call reset() before render()")
        h, w = self.screen_height, self.screen_width
        img = np.full((h, w, 3), 255, dtype=np.uint8)
        # pixels per metre: the track spans the picture
        scale = w / (2 * self.x_threshold)
        track_y = 300
        cart_w, cart_h = 50.0, 30.0
        pole_len = scale * 2 * self.length
        x, _, theta, _ = self.state
        cart_x = w / 2 + x * scale

        fill_rect(img, 0, w, track_y - 1, track_y + 1, (0, 0, 0))
        for edge in (-self.x_threshold, self.x_threshold):  # termination limits, ticks
            ex = w / 2 + edge * scale
            fill_rect(img, ex - 1, ex + 1, track_y - 8, track_y + 8, (160, 160, 160))
        fill_rect(
            img,
            cart_x - cart_w / 2,
            cart_x + cart_w / 2,
            track_y - cart_h / 2,
            track_y + cart_h / 2,
            (40, 40, 40),
        )
        axle_y = track_y - cart_h / 4
        tip = (cart_x + pole_len * math.sin(theta), axle_y - pole_len * math.cos(theta))
        _draw_segment(img, (cart_x, axle_y), tip, 5.0, (202, 152, 101))
        # axle
        _draw_segment(img, (cart_x, axle_y), (cart_x, axle_y), 5.0, (129, 132, 203))
        return img

    def close(self) -> None:
        """Nothing to release: rendering uses no window."""


def _draw_segment(
    img: np.ndarray,
    p: tuple[float, float],
    q: tuple[float, float],
    radius: float,
    color: tuple[int, int, int],
) -> None:
    """Paint every pixel within ``radius`` of the segment ``p``–``q`` (a line with round caps)."""
    h, w = img.shape[:2]
    c0 = max(int(math.floor(min(p[0], q[0]) - radius)), 0)
    c1 = min(int(math.ceil(max(p[0], q[0]) + radius)) + 1, w)
    r0 = max(int(math.floor(min(p[1], q[1]) - radius)), 0)
    r1 = min(int(math.ceil(max(p[1], q[1]) + radius)) + 1, h)
    if c0 >= c1 or r0 >= r1:
        return
    ys, xs = np.mgrid[r0:r1, c0:c1] + 0.5  # pixel centres
    dx, dy = q[0] - p[0], q[1] - p[1]
    length2 = dx * dx + dy * dy
    t = (
        0.0
        if length2 == 0
        else np.clip(((xs - p[0]) * dx + (ys - p[1]) * dy) / length2, 0, 1)
    )
    dist2 = (xs - p[0] - t * dx) ** 2 + (ys - p[1] - t * dy) ** 2
    img[r0:r1, c0:c1][dist2 <= radius * radius] = color
