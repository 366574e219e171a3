"""One rule for bad input: the shared argument checks of rlbook.

Every public function and config of the package checks its arguments with these helpers, so
bad input always gets the same kind of answer: a ``TypeError`` when an argument has the wrong
type, a ``ValueError`` when it has the right type but an impossible value, and in both cases
a message that starts with the argument's name and says what was expected and what came::

    gamma must be a number in [0, 1], got 1.5
    rewards must be a torch.Tensor, got ndarray
    hidden must be a non-empty sequence of positive integers, got 32

Each helper returns the value in the form the caller computes with (a Python ``int`` or
``float``, a floating-point tensor, a tuple), so a check is one line. Integers of NumPy type
are integers; ``True`` and ``False`` are not numbers. Integer rewards become floating point
(they would be truncated otherwise). A value the caller does not compute with is not copied:
a float32 tensor comes back as the same object, so checking never changes the arithmetic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "bool_tensor",
    "choice",
    "env_id",
    "finite",
    "flag",
    "float_array",
    "float_tensor",
    "instance",
    "integer",
    "layer_sizes",
    "module_class",
    "non_negative",
    "non_negative_int",
    "number",
    "optional",
    "positive",
    "positive_int",
    "probability",
    "real",
    "same_shape",
    "tensor",
    "unit_interval",
]


def _kind(value) -> str:
    """A short description of ``value`` for a message: its value if small, else its type."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"an ndarray of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else type(value).__name__


# ------------------------------------------------------------------------------ plain values


def integer(name: str, value, *, low: int | None = None) -> int:
    """``value`` as a Python int, at least ``low``; NumPy integers count, bools do not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_kind(value)}")
    if low is not None and value < low:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            low, f"an integer >= {low}"
        )
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An integer >= 1 (sizes, counts, step numbers)."""
    return integer(name, value, low=1)


def non_negative_int(name: str, value) -> int:
    """An integer >= 0 (seeds)."""
    return integer(name, value, low=0)


def real(name: str, value) -> float:
    """A real number (Python, NumPy, or a 0-d tensor or array) as a float; not a bool.

    NaN and inf pass: a logged metric may be NaN (no episode finished in an iteration)."""
    return _scalar(name, value)


def _scalar(name: str, value) -> float:
    """A real number (Python, NumPy, or a 0-d tensor or array) as a float; not a bool."""
    zero_d = isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0
    if zero_d and (value.dtype == torch.bool or value.dtype == np.bool_):
        zero_d = False
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or zero_d):
        raise TypeError(f"{name} must be a real number, got {_kind(value)}")
    return float(value)


def number(
    name: str,
    value,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """A real number in the interval from ``low`` to ``high``; NaN never, inf only if allowed."""
    x = _scalar(name, value)
    inside = (x > low if low_open else x >= low) and (
        x < high if high_open else x <= high
    )
    if math.isnan(x) or not inside or (math.isinf(x) and not allow_inf):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        where = f"in {left}{low}, {high}{right}"
        if (low, high, low_open) == (0.0, math.inf, True):
            where = "positive"
        elif (low, high) == (0.0, math.inf):
            where = "non-negative"
        elif (low, high) == (-math.inf, math.inf):
            where = "finite"
        finite_ = " finite" if not allow_inf else ""
        where = "" if where == "finite" else f" {where}"
        extra = " (or inf)" if allow_inf else ""
        raise ValueError(
            f"{name} must be a{finite_} number{where}{extra}, got {value!r}"
        )
    return x


def positive(name: str, value, *, allow_inf: bool = False) -> float:
    """A number > 0 (learning rates, step sizes, clip coefficients)."""
    return number(name, value, low=0.0, low_open=True, allow_inf=allow_inf)


def non_negative(name: str, value) -> float:
    """A finite number >= 0 (loss weights)."""
    return number(name, value, low=0.0)


def unit_interval(name: str, value) -> float:
    """A number in [0, 1] (a discount factor, GAE's lambda)."""
    return number(name, value, low=0.0, high=1.0)


def probability(name: str, value) -> float:
    """A number in (0, 1] (a fraction that must not be zero)."""
    return number(name, value, low=0.0, high=1.0, low_open=True)


def flag(name: str, value) -> bool:
    """``True`` or ``False``, nothing else (``1`` and ``"yes"`` are refused)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {_kind(value)}")
    return bool(value)


def choice(name: str, value, options: Sequence):
    """One of ``options`` (strings, or None)."""
    if not any(value is o or (type(value) is type(o) and value == o) for o in options):
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def optional(check, name: str, value, **kwargs):
    """``None``, or a value that passes ``check(name, value, **kwargs)``."""
    return None if value is None else check(name, value, **kwargs)


def layer_sizes(name: str, value, *, allow_empty: bool = False) -> tuple[int, ...]:
    """A sequence of positive integers, such as ``(64, 64)``, as a tuple; empty if allowed."""
    some = "a" if allow_empty else "a non-empty"
    expected = f"{name} must be {some} sequence of positive integers such as (64, 64)"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{expected}, got {_kind(value)}")
    items = list(value)
    if not items and not allow_empty:
        raise ValueError(f"{expected}, got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{expected}, got {value!r}")
        if item < 1:
            raise ValueError(f"{expected}, got {value!r}")
    return tuple(int(item) for item in items)


def module_class(name: str, value, *, optional: bool = False):
    """A subclass of ``torch.nn.Module`` such as ``nn.Tanh`` (the class, not an instance)."""
    if value is None and optional:
        return None
    if not (isinstance(value, type) and issubclass(value, torch.nn.Module)):
        raise TypeError(
            f"{name} must be a torch.nn.Module class such as nn.Tanh (not an instance), "
            f"got {_kind(value)}"
        )
    return value


def env_id(name: str, value) -> str:
    """The id of a registered gymnasium environment, such as ``"CartPole-v1"``."""
    import gymnasium

    instance(name, value, str)
    try:
        gymnasium.spec(value)
    except gymnasium.error.Error as exc:  # NameNotFound, VersionNotFound, ...
        raise ValueError(
            f"{name} must name a registered environment, got {value!r} ({exc}); "
            "import rlbook.envs first for the rlbook/ ids"
        ) from exc
    return value


def instance(name: str, value, cls: type | tuple[type, ...]):
    """``value`` itself, if it is an instance of ``cls``; a TypeError naming both otherwise.

    For configs this is the message that says a ``train_*`` got another algorithm's config.
    """
    if not isinstance(value, cls):
        names = (
            " or ".join(c.__name__ for c in cls)
            if isinstance(cls, tuple)
            else cls.__name__
        )
        article = "an" if names[0] in "AEIOU" else "a"
        raise TypeError(f"{name} must be {article} {names}, got {type(value).__name__}")
    return value


# ------------------------------------------------------------------------------ tensors


def tensor(
    name: str,
    x,
    *,
    ndim: int | None = None,
    nonempty: bool = True,
) -> torch.Tensor:
    """A ``torch.Tensor`` (not an array or list), with ``ndim`` axes and at least one entry."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_kind(x)}")
    _check_shape(name, tuple(x.shape), ndim, nonempty)
    return x


def _check_shape(name: str, shape: tuple, ndim: int | None, nonempty: bool) -> None:
    if ndim is not None and len(shape) != ndim:
        s = "s" * (ndim != 1)
        raise ValueError(f"{name} must have {ndim} dimension{s}, got shape {shape}")
    if nonempty and math.prod(shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape}")


def finite(name: str, x, *, where: torch.Tensor | None = None):
    """``x`` itself if every entry (every entry ``where`` True) is finite: no NaN, no inf."""
    if isinstance(x, torch.Tensor):
        if where is None and x.is_floating_point() and math.isfinite(x.detach().sum()):
            # a NaN or inf entry makes the sum NaN or inf: one reduction, no bool tensor
            # (a sum that overflows from finite entries falls through to the full check)
            return x
        ok = torch.isfinite(x if where is None else x[where]).all()
    else:
        ok = np.isfinite(x if where is None else x[where]).all()
    if not ok:
        raise ValueError(f"{name} must be finite, got an entry that is NaN or inf")
    return x


def float_tensor(
    name: str,
    x,
    *,
    ndim: int | None = None,
    nonempty: bool = True,
    check_finite: bool = False,
) -> torch.Tensor:
    """A real tensor as floating point: integers and bools are promoted, not truncated."""
    x = tensor(name, x, ndim=ndim, nonempty=nonempty)
    if x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if check_finite:
        finite(name, x)
    return x


def bool_tensor(name: str, x, *, like: tuple[str, torch.Tensor] | None = None):
    """A mask-like tensor as ``torch.bool``; other dtypes must hold only 0 and 1."""
    x = tensor(name, x, nonempty=False)
    if like is not None:
        same_shape(name, x, *like)
    if x.dtype == torch.bool:
        return x
    if x.is_complex() or not ((x == 0) | (x == 1)).all():
        raise ValueError(
            f"{name} must be a bool tensor (or hold only 0 and 1), got {x.dtype} values "
            "other than 0 and 1"
        )
    return x.bool()


def same_shape(name: str, x, ref_name: str, ref) -> None:
    """Raise unless ``x`` has the shape of ``ref``."""
    if tuple(x.shape) != tuple(ref.shape):
        raise ValueError(
            f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, "
            f"got {tuple(x.shape)}"
        )


def float_array(
    name: str, x, *, ndim: int | None = None, nonempty: bool = True
) -> np.ndarray:
    """A NumPy float64 array from an array, a list or a tensor; anything else is refused."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise TypeError(
            f"{name} must be an array of real numbers, got {_kind(x)}"
        ) from exc
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers, got {_kind(x)}")
    out = raw.astype(np.float64, copy=False)
    _check_shape(name, out.shape, ndim, nonempty)
    return out
