"""Seeds and devices, the two pieces of global state a chapter sets explicitly, and the one way
rlbook turns a uniform random number into a discrete draw."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from rlbook import validate


def seed_offset() -> int:
    """The book-wide seed shift ``k`` from ``RLBOOK_SEED_OFFSET`` (0 when unset).

    Every random stream of rlbook passes its seed through :func:`offset`, so one
    environment variable reruns the whole book on other random numbers: a claim
    that holds only for the seeds we wrote it with fails there.
    """
    return _env_int("RLBOOK_SEED_OFFSET", default=0, low=0)


def _env_int(name: str, default: int, low: int) -> int:
    """The integer in environment variable ``name`` (``default`` when unset), at least ``low``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        kind = "non-negative" if low == 0 else "positive" if low == 1 else f">= {low}"
        raise ValueError(f"{name} must be a {kind} integer, got {text!r}")
    return value


def offset(seed: int | None) -> int | None:
    """``seed + RLBOOK_SEED_OFFSET``; ``None`` (fresh entropy) stays ``None``."""
    if seed is None:
        return None
    return validate.non_negative_int("seed", seed) + seed_offset()


def rng(seed: int) -> np.random.Generator:
    """A NumPy generator seeded with ``offset(seed)``."""
    return np.random.default_rng(offset(seed))


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``offset(seed)``."""
    return torch.Generator().manual_seed(
        offset(validate.non_negative_int("seed", seed))
    )


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch, run torch on one CPU thread, return a NumPy generator.

    Parameters
    ----------
    seed : int
        A non-negative integer. The same seed gives the same numbers on the same machine;
        across CPUs, results of long training runs may differ (see the book's FACTS on SIMD).

    Returns
    -------
    numpy.random.Generator
        ``rng(seed)``, for code that prefers an explicit generator.

    Notes
    -----
    The seed is shifted by ``RLBOOK_SEED_OFFSET`` (see :func:`offset`).
    Environments are seeded separately, through ``envs.reset(seed=offset(...))``.

    How many threads split an operation can change torch's result in the last bits (a PPO
    run's numbers differ between one and two threads), so the thread count is part of the seed:
    ``RLBOOK_THREADS`` if set, else 1. The book's networks are too small to gain from threads,
    and on a shared CPU (Colab, ``pytest -n``) two threads wait on each other for milliseconds
    per operation: a PPO run measured 6 s on one thread and 43 s on two, on a busy 2-core machine.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    seed = offset(validate.non_negative_int("seed", seed))
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG, still used by some libraries)
    torch.manual_seed(seed)
    torch.set_num_threads(threads())
    return np.random.default_rng(seed)


def inverse_cdf(cdf, u):
    """The draw of a discrete distribution at the uniform number ``u``: the index ``i`` with
    ``F(i-1) < u <= F(i)``, where ``F = cdf`` holds cumulative probabilities along the last axis
    and ``F(-1) = 0``.

    ``cdf`` has shape ``(..., n)`` and ``u`` shape ``(...)``, values in (0, 1]; NumPy arrays and
    torch tensors alike. An index of probability 0 (an empty interval) is never drawn; the last
    entry of ``F`` is not read, so rounding that leaves the total a hair below 1 cannot push
    the index out of range. Every categorical draw of rlbook (rollouts, exact MDPs, the NumPy
    policy gradient) goes through here.
    """
    return (cdf[..., :-1] < u[..., None]).sum(-1)


def threads() -> int:
    """The number of CPU threads torch uses under :func:`set_seed`: ``RLBOOK_THREADS``, else 1."""
    return _env_int("RLBOOK_THREADS", default=1, low=1)


def device() -> torch.device:
    """Pick the torch device: ``RLBOOK_DEVICE`` if set, else the CPU.

    The book's small networks are fastest on a CPU; a GPU is never required. Setting
    ``RLBOOK_DEVICE=cuda`` runs the same notebooks on a GPU machine.

    Returns
    -------
    torch.device

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
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
