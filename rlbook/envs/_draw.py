"""Drawing for the environments' ``render()``: NumPy only, no window."""

from __future__ import annotations

import numpy as np


def fill_rect(
    img: np.ndarray,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    color: tuple[int, int, int],
) -> None:
    """Fill the pixels whose centres lie in ``[x0, x1) x [y0, y1)``, clipped to ``img``."""
    h, w = img.shape[:2]
    c0, c1 = max(int(round(x0)), 0), min(int(round(x1)), w)
    r0, r1 = max(int(round(y0)), 0), min(int(round(y1)), h)
    if c0 < c1 and r0 < r1:
        img[r0:r1, c0:c1] = color
