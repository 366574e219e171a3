"""Seeds and devices: the two pieces of global state a chapter sets explicitly."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch, and return a fresh NumPy generator.

    Parameters
    ----------
    seed : int
        A non-negative integer. The same seed gives the same numbers on the same machine;
        across CPUs, results of long training runs may differ (see the book's FACTS on SIMD).

    Returns
    -------
    numpy.random.Generator
        ``np.random.default_rng(seed)``, for code that prefers an explicit generator.

    Notes
    -----
    Environments are seeded separately, through ``envs.reset(seed=...)``.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG, still used by some libraries)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def device() -> torch.device:
    """Pick the torch device: ``RLBOOK_DEVICE`` if set, else the CPU.

    The book's small networks are fastest on a CPU; a GPU is never required. Setting
    ``RLBOOK_DEVICE=cuda`` runs the same notebooks on a GPU machine.

    Returns
    -------
    torch.device

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    name = os.environ.get("RLBOOK_DEVICE")
    if name:
        try:
            return torch.device(name)
        except RuntimeError as exc:
            raise ValueError(
                f"RLBOOK_DEVICE must name a torch device, got {name!r}"
            ) from exc
    # Tiny MLPs on a few hundred observations are faster on the CPU than on a GPU, so the CPU is
    # the default even where CUDA exists; RLBOOK_DEVICE=cuda opts in.
    return torch.device("cpu")
