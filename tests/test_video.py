"""Tests of rlbook.video: recording frames, encoding GIFs, showing them in Jupyter."""

import base64
import io
import math

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image, ImageSequence

from rlbook.envs import hover_policy
from rlbook.video import record_episode, show_gif, to_gif


def _balance(obs):
    """Push towards the side the pole leans to: balances ContinuousCartPole for 500 steps."""
    return np.array(
        [np.tanh(3 * (obs[2] + 0.5 * obs[3] + 0.05 * obs[1] + 0.01 * obs[0]))]
    )


def _push_right(obs):
    return np.array([1.0], dtype=np.float32)


def _episode_length(env_id, policy, seed):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    for t in range(1, 10_000):
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            return t
    raise AssertionError("episode did not end")


def _gif_frames(data):
    with Image.open(io.BytesIO(data)) as im:
        return [
            (frame.size, frame.info.get("duration", 0))
            for frame in ImageSequence.Iterator(im)
        ]


@pytest.mark.parametrize("every", [1, 2, 3])
def test_record_episode_keeps_every_kth_frame_and_the_last(every):
    steps = _episode_length("rlbook/ContinuousCartPole-v1", _push_right, seed=0)
    frames = record_episode(
        "rlbook/ContinuousCartPole-v1", _push_right, seed=0, every=every
    )
    assert len(frames) == 1 + math.ceil(steps / every)
    assert all(f.shape == (400, 600, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])


def test_record_episode_stops_at_max_steps_and_accepts_an_env():
    env = gym.make("rlbook/Pixelcopter-v0", render_mode="rgb_array")
    frames = record_episode(env, hover_policy, seed=1, max_steps=20, every=4)
    assert len(frames) == 1 + 20 // 4
    assert frames[0].shape == (384, 384, 3)


def test_record_episode_needs_an_rgb_array_env():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_episode(gym.make("rlbook/Pixelcopter-v0"), hover_policy)


def test_record_episode_renders_gymnasium_cartpole_headless():
    pytest.importorskip("pygame")
    frames = record_episode(
        "CartPole-v1", lambda obs: int(obs[2] > 0), seed=0, max_steps=6
    )
    assert len(frames) == 4 and frames[0].shape == (400, 600, 3)


def test_to_gif_encodes_every_frame_at_the_right_speed(tmp_path):
    frames = record_episode(
        "rlbook/ContinuousCartPole-v1", _balance, seed=0, max_steps=400, every=2
    )
    assert len(frames) == 201
    path = tmp_path / "cartpole.gif"
    data = to_gif(frames, path=path, fps=25, scale=0.5)
    assert data.startswith(b"GIF8")
    assert path.read_bytes() == data
    gif = _gif_frames(data)
    assert all(size == (300, 200) for size, _ in gif)
    # Pillow merges identical consecutive frames into one longer frame, so count time, not frames.
    assert len(gif) <= len(frames)
    assert sum(duration for _, duration in gif) == 40 * len(frames)
    assert len(data) < 200_000  # about 75 kB measured: small enough to embed in a page


def test_to_gif_every_keeps_real_time_and_clamps_short_delays():
    frames = [np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(6)]
    gif = _gif_frames(to_gif(frames, fps=50, scale=1, every=2))
    assert [d for _, d in gif] == [40, 40, 40]
    gif = _gif_frames(to_gif(frames, fps=200, scale=1))
    assert [d for _, d in gif] == [
        20
    ] * 6  # browsers would slow a 10 ms delay to 100 ms


def test_to_gif_rejects_bad_input():
    with pytest.raises(ValueError, match="frames must hold at least one frame"):
        to_gif([])
    frames = [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1"):
        to_gif(frames)
    with pytest.raises(ValueError, match="fps"):
        to_gif(frames[:1], fps=0)


def test_show_gif_displays_as_image_gif():
    from IPython.core.formatters import DisplayFormatter

    frames = [np.full((10, 12, 3), 30 * i, dtype=np.uint8) for i in range(5)]
    data = to_gif(frames, scale=1)
    for obj in (show_gif(frames, scale=1), show_gif(data)):
        bundle, _ = obj._repr_mimebundle_()
        assert base64.b64decode(bundle["image/gif"]) == data
        # what a notebook stores in its output
        formatted, _ = DisplayFormatter().format(obj)
        assert "image/gif" in formatted
    with pytest.raises(ValueError, match="GIF"):
        show_gif(b"\x89PNG....")
