"""The graders' common harness: calling the learner's code, comparing, reporting."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch


class ExerciseError(AssertionError):
    """A learner's function gave a wrong answer (or crashed) on a graded case."""


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _copy(value):
    # the learner's function gets copies: changing its inputs in place must not change the case
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _same(a, b) -> bool:
    """Whether an argument still equals its original (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor | np.ndarray) and isinstance(
        b, torch.Tensor | np.ndarray
    ):
        return bool(np.array_equal(_as_array(a), _as_array(b), equal_nan=True))
    return True


def _crash_hint(exc: Exception) -> str:
    """A hint for the crashes learners meet most often."""
    text = str(exc)
    if "numpy()" in text and "requires grad" in text:
        return (
            "\nHint: .numpy() was called on a tensor that is part of an autograd graph. "
            "Stay in torch (torch.exp, torch.where, ...), or call .detach() first where a "
            "number is only read."
        )
    return ""


# Graders of exercises whose function returns nothing by design (it updates the networks,
# or reports each iteration through ``record``): a function that does nothing is told what it
# failed to do, not asked about ``return``.
PROCEDURES = ("check_ppo_update", "check_reinforce_loop", "check_train_ppo")


def _call(name: str, fn: Callable, args: dict):
    """The learner's ``fn`` on copies of ``args``; a crash or an in-place edit of an input
    becomes an :class:`ExerciseError` that says so, with a hint."""
    copies = {k: _copy(v) for k, v in args.items()}
    try:
        got = fn(**copies)
    except NotImplementedError:
        raise
    except Exception as exc:
        raise ExerciseError(
            f"{name} raised {type(exc).__name__}: {exc}\non the input\n{_fmt(args)}"
            f"{_crash_hint(exc)}"
        ) from exc
    for key, original in args.items():
        if not _same(copies[key], original):
            raise ExerciseError(
                f"{name} changed its argument {key!r} in place, on the input\n{_fmt(args)}\n"
                "Hint: the caller still needs its data. Build the result in a new tensor "
                "(torch.empty_like, torch.zeros_like) or work on a copy (x.clone())."
            )
    return got


def _run_loop(name: str, fn: Callable, env_id: str, cfg, recorder: Callable) -> list:
    """Run the learner's training loop ``fn(env_id, cfg, record)``; return what it recorded.
    A crash becomes an :class:`ExerciseError` naming the input and how far the loop got."""
    got: list = []
    try:
        fn(env_id, cfg, recorder(got))
    except NotImplementedError:
        raise
    except Exception as exc:
        raise ExerciseError(
            f"{name} raised {type(exc).__name__}: {exc}\n"
            f"on the input {env_id!r}, {cfg} (after {len(got)} recorded iterations)"
        ) from exc
    return got


def _numbers(name: str, got) -> np.ndarray:
    """What the learner returned, as a float array, or an ExerciseError saying what it was."""
    if got is None:
        raise ExerciseError(f"{name} returned None; did you forget `return`?")
    try:
        array = _as_array(got)
    except (TypeError, ValueError, RuntimeError) as exc:
        array = np.asarray(None)
        if "requires grad" in str(exc):
            array = _as_array(got.detach())
    if array.dtype.kind not in "biuf":
        shown = repr(got)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ExerciseError(
            f"{name} returned a {type(got).__name__} ({shown}); expected numbers: a torch "
            "tensor (or a NumPy array) of the shape the exercise asks for."
        )
    return array.astype(float)


def _try(name: str, fn: Callable, args: dict) -> np.ndarray | None:
    """``fn``'s answer as a float array, or None when it fails (the full grading reports it)."""
    try:
        return _numbers(name, _call(name, fn, args))
    except ExerciseError:
        return None


def _fmt(args: dict) -> str:
    with np.printoptions(precision=3, suppress=True, linewidth=100, threshold=60):
        return "\n".join(
            f"  {k} = {v!r}" if isinstance(v, float) else f"  {k} = {_as_array(v)!r}"
            for k, v in args.items()
        )


def _grade(
    name: str,
    fn: Callable,
    reference: Callable,
    cases: Iterable[dict],
    mistakes: dict[str, Callable] | None = None,
    hint: str = "",
    atol: float = 1e-5,
) -> bool:
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    count = 0
    for args in cases:
        count += 1
        expected = _as_array(reference(**args))
        got = _numbers(name, _call(name, fn, args))
        if got.shape != expected.shape:
            raise ExerciseError(
                f"{name} returned shape {got.shape}, expected {expected.shape}, on the input\n"
                f"{_fmt(args)}"
            )
        if not np.allclose(got, expected, atol=atol, rtol=1e-4):
            diagnosis = ""
            for description, mistake in (mistakes or {}).items():
                if np.allclose(got, _as_array(mistake(**args)), atol=atol, rtol=1e-4):
                    diagnosis = f"\nIt looks like {description}."
                    break
            with np.printoptions(
                precision=3, suppress=True, linewidth=100, threshold=60
            ):
                raise ExerciseError(
                    f"{name} gave a wrong answer on the input\n{_fmt(args)}\n"
                    f"expected:\n  {expected!r}\ngot:\n  {got!r}{diagnosis}\nHint: {hint}"
                )
    print(f"{name}: all {count} cases passed.")
    return True
