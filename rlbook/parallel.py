"""Independent training runs side by side, one per CPU core, with the plain loop's results.

A chapter that trains one agent per seed spends most of its time in a loop such as
``[train_ppo(env_id, cfg(seed)) for seed in seeds]``. The runs do not talk to each other and
each seeds itself, so they can run at the same time in forked copies of the process:
:func:`map_runs` does that and hands back, in order, the very numbers the loop would have
produced, and leaves the random state as the loop would have left it.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.utils import _env_int, device

# (fn, items) of the map_runs in progress: forked workers inherit it, so fn may be a lambda or a
# function defined in a notebook, which could not be pickled and sent
_JOB: tuple[Callable, Sequence] | None = None


def workers() -> int:
    """How many runs :func:`map_runs` puts side by side: ``RLBOOK_WORKERS`` if set, else the
    number of CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS
        cpus = os.cpu_count() or 1
    return _env_int("RLBOOK_WORKERS", default=cpus, low=1)


def _random_state() -> tuple:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002


def _set_random_state(state: tuple) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])  # noqa: NPY002
    torch.set_rng_state(state[2])


def _run(i: int) -> tuple[Any, tuple]:
    fn, items = _JOB
    return fn(items[i]), _random_state()


def _forking_helps(n: int) -> bool:
    """Fork only where it is safe and can help: Linux, a CPU device, more than one run and
    one core, and not already inside a worker."""
    return (
        sys.platform.startswith("linux")
        and device().type == "cpu"
        and n > 1
        and workers() > 1
        and _JOB is None
    )


def map_runs(
    fn: Callable[[Any], Any], items: Sequence, *, desc: str | None = None
) -> list:
    """``[fn(item) for item in items]``, with the runs side by side on the CPU's cores.

    ``fn`` must seed itself from its item, as every ``train_*`` does with ``cfg.seed``: then
    each run's numbers do not depend on which process ran it or when, the results are those of
    the plain loop, bit for bit, and afterwards the random state is the one the loop leaves
    (the state at the end of the last run). On a GPU, with one core, with ``RLBOOK_WORKERS=1``
    or off Linux it is the plain loop. Wall-clock times measured inside the runs are not
    comparable with those of a plain loop: the runs share the machine.

    Parameters
    ----------
    fn : callable
        One run: takes an item, returns its result (a ``History``, say).
    items : sequence
        One item per run (seeds, configs, ...).
    desc : str, optional
        Label of the progress bar.

    Returns
    -------
    list
        ``fn(item)`` for each item, in the order of ``items``.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    global _JOB
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    items = list(validate.instance("items", items, Sequence))
    # the first torch.optim optimizer of a process imports torch._dynamo, which takes seconds:
    # import it here, so that forked workers inherit it instead of each paying, and so that
    # no run's clock (wall_time) includes it
    import torch._dynamo  # noqa: F401

    if not _forking_helps(len(items)):
        return [fn(item) for item in tqdm(items, desc=desc, disable=desc is None)]
    context = multiprocessing.get_context("fork")
    _JOB = (fn, items)
    try:
        with context.Pool(min(workers(), len(items))) as pool:
            done = list(
                tqdm(
                    pool.imap(_run, range(len(items))),
                    total=len(items),
                    desc=desc,
                    disable=desc is None,
                )
            )
    finally:
        _JOB = None
    _set_random_state(done[-1][1])
    return [result for result, _ in done]
