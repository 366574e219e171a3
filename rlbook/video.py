"""Watch an agent: record an episode's frames, turn them into a small GIF, show it in Jupyter.

GIFs need no ffmpeg (Pillow writes them) and display the same way in a live notebook, on Colab
and in the Jupyter Book HTML: :func:`show_gif` returns an object whose output is an
``image/gif`` bundle, which the book's builder saves as an image file.

Typical use in a chapter::

    frames = record_episode("CartPole-v1", lambda obs: int(obs[2] > 0), seed=0)
    show_gif(frames, fps=25)

See chapter 4 of the book (book/04_reinforce.ipynb).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from PIL import Image

import rlbook.envs  # noqa: F401  (registers the rlbook/... ids, so they can be recorded by name)
from rlbook import validate
from rlbook.utils import offset

__all__ = ["record_episode", "to_gif", "show_gif"]


def _headless_sdl() -> None:
    """Let pygame-backed renderers (gymnasium's CartPole) run without a display.

    Without it SDL looks for a screen, and ``pygame.init()`` for a sound card, and both print
    errors on a headless machine (CI, Colab: "ALSA lib ... Unknown PCM default").
    ``setdefault`` keeps a driver the user chose; it must happen before pygame's first render.
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    # pygame 2.6 (Colab's) imports pkg_resources, whose deprecation warning says nothing to
    # a reader of the book
    warnings.filterwarnings(
        "ignore", message="pkg_resources is deprecated", module="pygame.pkgdata"
    )


def _to_env_action(action: Any, space: gymnasium.Space) -> Any:
    """Turn what a policy returned (tensor, array, number) into an action ``space`` accepts."""
    # a torch tensor; no torch import needed to recognise it
    if hasattr(action, "detach"):
        action = action.detach().cpu().numpy()
    if not isinstance(space, gymnasium.spaces.Discrete | gymnasium.spaces.Box):
        return action
    a = np.asarray(action)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"policy_fn must return a number or an array of numbers, got {action!r}"
        )
    if isinstance(space, gymnasium.spaces.Discrete):
        if a.size != 1:
            raise ValueError(
                f"policy_fn must return one discrete action, got shape {a.shape}"
            )
        value = a.reshape(-1)[0]
        if value != np.round(value):
            raise ValueError(
                f"policy_fn must return a whole action number, got {value}"
            )
        out = int(value)
    else:
        if a.size != math.prod(space.shape) or not np.isfinite(a).all():
            raise ValueError(
                f"policy_fn must return {math.prod(space.shape)} finite numbers for the "
                f"action space {space}, got {action!r}"
            )
        out = a.astype(space.dtype).reshape(space.shape)
    if isinstance(space, gymnasium.spaces.Discrete) and not space.contains(out):
        raise ValueError(f"policy_fn returned {out}, not an action of {space}")
    return out


def record_episode(
    env_or_id: gymnasium.Env | str,
    policy_fn: Callable[[np.ndarray], Any],
    seed: int | None = 0,
    max_steps: int = 500,
    every: int = 2,
) -> list[np.ndarray]:
    """Play one episode with ``policy_fn`` and return every ``every``-th rendered frame.

    The frames are those after ``reset`` (frame 0) and after steps ``every``, ``2 * every``,
    ...; the frame after the last step is always included, so the ending (a fallen pole, a
    crash) is shown. The episode stops at termination, truncation or ``max_steps`` steps.

    Parameters
    ----------
    env_or_id : gymnasium.Env or str
        An environment made with ``render_mode="rgb_array"``, or an id (for example
        ``"CartPole-v1"`` or ``"rlbook/Pixelcopter-v0"``), which is made with that render mode
        and closed afterwards.
    policy_fn : callable
        Maps one observation to one action. Torch tensors, NumPy scalars and shape-(1,) arrays
        are converted to what the action space accepts.
    seed : int or None, default 0
        Passed to ``env.reset(seed=seed)``.
    max_steps : int, default 500
        Most steps to play.
    every : int, default 2
        Keep one frame in ``every`` (2 halves the GIF's size; play it at half the env's fps).

    Returns
    -------
    list of np.ndarray
        Frames, each ``(H, W, 3)`` uint8 RGB; ``1 + ceil(T / every)`` of them for an episode of
        ``T`` steps, one fewer when ``T`` is a multiple of ``every`` (the last frame is not
        repeated).

    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    every = validate.positive_int("every", every)
    max_steps = validate.non_negative_int("max_steps", max_steps)
    if not callable(policy_fn):
        raise TypeError(f"policy_fn must be callable, got {type(policy_fn).__name__}")
    _headless_sdl()
    own_env = isinstance(env_or_id, str)
    if own_env:
        validate.env_id("env_or_id", env_or_id)
    else:
        validate.instance("env_or_id", env_or_id, gymnasium.Env)
    env = gymnasium.make(env_or_id, render_mode="rgb_array") if own_env else env_or_id
    try:
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"env_or_id must render RGB arrays; make it with render_mode='rgb_array' "
                f"(got render_mode={env.render_mode!r})"
            )
        obs, _ = env.reset(seed=offset(seed))
        frames = [rgb_frame("env.render()", env.render())]
        t = 0
        for t in range(1, max_steps + 1):
            action = _to_env_action(policy_fn(obs), env.action_space)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated or t == max_steps
            if t % every == 0 or done:
                frames.append(rgb_frame("env.render()", env.render()))
            if done:
                break
        return frames
    finally:
        if own_env:
            env.close()


def rgb_frame(name: str, image) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB image from a uint8 array, or a float array in [0, 1].

    Float images in [0, 1] (as matplotlib and many renderers make them) are scaled by 255;
    a float image outside [0, 1] or with NaN is refused rather than guessed at.
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise ValueError(
                f"{name} must hold uint8 values or floats in [0, 1], got floats in "
                f"[{np.nanmin(a)}, {np.nanmax(a)}]; convert 0-255 floats with "
                ".astype(np.uint8)"
            )
        return np.round(a * 255.0).astype(np.uint8)
    if a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(
                f"{name} must hold values in [0, 255], got {a.dtype} beyond"
            )
        return a.astype(np.uint8)
    raise TypeError(
        f"{name} must be a uint8 image or floats in [0, 1], got dtype {a.dtype}"
    )


def to_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike | None = None,
    fps: float = 30,
    scale: float = 0.5,
    every: int = 1,
    colors: int = 64,
) -> bytes:
    """Encode frames as a looping GIF with Pillow and return its bytes.

    All frames share one palette of at most ``colors`` colours, computed from a sample of the
    frames, without dithering; Pillow stores each frame as the rectangle that changed, so a
    mostly still scene (a cart on a white background) costs little. A 200-frame CartPole
    episode at 300x200 is about 100 kB.

    Parameters
    ----------
    frames : sequence of np.ndarray
        ``(H, W, 3)`` uint8 RGB images of one size, as from :func:`record_episode`.
    path : str or path-like, optional
        Also write the GIF there.
    fps : float, default 30
        Playback rate of ``frames`` (before ``every`` thins them). GIF delays are whole
        hundredths of a second and browsers slow delays under 20 ms down to 100 ms, so each
        frame lasts ``max(20, round(100 * every / fps) * 10)`` ms.
    scale : float, default 0.5
        Resize factor (0.5 turns CartPole's 600x400 into 300x200, Pixelcopter's 384x384 into
        192x192).
    every : int, default 1
        Keep one frame in ``every``, each shown ``every`` times as long (real speed is kept).
    colors : int, default 64
        Size of the shared palette, 2 to 256.

    Returns
    -------
    bytes
        The GIF file; it starts with ``b"GIF89a"``.

    Not named in the book; :func:`show_gif` (chapter 4) calls it.
    """
    validate.optional(validate.instance, "path", path, cls=(str, os.PathLike))
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        frames = list(frames)
    if not isinstance(frames, Sequence) or isinstance(frames, str | bytes):
        raise TypeError(f"frames must be a list of images, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames must hold at least one frame, got none")
    every = validate.positive_int("every", every)
    fps = validate.positive("fps", fps)
    scale = validate.positive("scale", scale)
    colors = validate.integer("colors", colors, low=2)
    if colors > 256:
        raise ValueError(f"colors must be between 2 and 256, got {colors!r}")
    arrays = [
        rgb_frame(f"frames[{i}]", frames[i]) for i in range(0, len(frames), every)
    ]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(
                f"frames must all have the shape of the first, {shape}; "
                f"frame {i * every} has shape {a.shape}"
            )
    h, w = shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # (H, W, 3) uint8 arrays are RGB to Pillow; its mode= argument is deprecated
    images = [Image.fromarray(a.astype(np.uint8, copy=False)) for a in arrays]
    if size != (w, h):
        # BOX averages the pixels it merges (smooth when shrinking); NEAREST keeps pixel art
        # crisp when enlarging.
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST
        images = [im.resize(size, resample) for im in images]

    # One palette for all frames, fitted on up to 8 evenly spread frames stacked vertically
    # (first and last included: an ending often brings a new colour, such as a crash).
    picks = np.unique(np.linspace(0, len(images) - 1, num=min(8, len(images))).round())
    sample = [images[int(i)] for i in picks]
    strip = Image.new("RGB", (size[0], size[1] * len(sample)))
    for i, im in enumerate(sample):
        strip.paste(im, (0, i * size[1]))
    palette = strip.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    indexed = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]

    # milliseconds, in GIF's 10 ms steps
    duration = max(20, round(100 * every / fps) * 10)
    buffer = io.BytesIO()
    indexed[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=duration,
        loop=0,
    )
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def show_gif(
    frames_or_bytes: Sequence[np.ndarray] | bytes, **to_gif_kwargs: Any
) -> Any:
    """Return an object that Jupyter displays as an animated GIF.

    It is an ``IPython.display.Image`` holding the GIF bytes: its ``_repr_mimebundle_`` is
    ``{"image/gif": <base64>}``, which notebooks, Colab and the Jupyter Book HTML all show
    (the book's builder writes it out as an image file).

    Parameters
    ----------
    frames_or_bytes : sequence of np.ndarray or bytes
        Frames for :func:`to_gif`, or GIF bytes it already made.
    **to_gif_kwargs
        Passed to :func:`to_gif` (``fps``, ``scale``, ``every``, ``colors``) when frames are
        given.

    Returns
    -------
    IPython.display.Image
        Make it the last expression of a cell, or pass it to ``IPython.display.display``.

    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    from IPython.display import Image as IPythonImage

    if isinstance(frames_or_bytes, (bytes, bytearray, memoryview)):
        if to_gif_kwargs:
            raise TypeError(
                f"GIF bytes are shown as they are; got options {sorted(to_gif_kwargs)}"
            )
        data = bytes(frames_or_bytes)
        if not data.startswith(b"GIF8"):
            raise ValueError(
                "frames_or_bytes holds bytes that are not a GIF (no b'GIF8' header)"
            )
    else:
        data = to_gif(frames_or_bytes, **to_gif_kwargs)
    return IPythonImage(data=data, format="gif")
