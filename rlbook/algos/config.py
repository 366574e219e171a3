"""The base of every algorithm's config: its fields are checked when the config is made.

A config is a dataclass that subclasses :class:`Config` and lists, in ``CHECKS``, the
:mod:`rlbook.validate` helper of each field; ``check`` adds what relates fields to each other
(a minibatch must fit in a batch). So a config that trains downhill (``lr=-0.2``), counts with
``True`` or has an impossible batch size fails where it is written, with the field's name,
instead of deep inside ``train_*``.

Evaluation has one meaning for every algorithm: ``eval_every=None`` never evaluates, a
positive integer evaluates each time that many environment steps have passed, and
``stop_at_eval`` (stop at the first evaluation whose mean return reaches it) needs
``eval_every``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import ClassVar

from rlbook import validate

__all__ = ["Config"]


class Config:
    """Mixin for the config dataclasses of :mod:`rlbook.algos`; see the module docstring."""

    CHECKS: ClassVar[dict[str, Callable]] = {}
    """Field name -> ``check(name, value)`` returning the value to store."""

    def __setattr__(self, name: str, value) -> None:
        # a field changed after the config was made is checked like one given to it:
        # ``cfg.lr = -0.2`` fails here, naming lr, not inside train_*
        check = self.CHECKS.get(name)
        if check is not None:
            value = check(name, value)
        # while the dataclass's __init__ sets its fields one by one, __post_init__ follows;
        # once every field is set, a change must keep the relations between fields
        if any(f.name not in self.__dict__ for f in dataclasses.fields(self)):
            object.__setattr__(self, name, value)
            return
        old = getattr(self, name)
        object.__setattr__(self, name, value)
        try:
            self._check_relations()
        except (TypeError, ValueError):
            object.__setattr__(self, name, old)  # the config stays as it was
            raise

    def __post_init__(self) -> None:
        self._check_relations()

    def _check_relations(self) -> None:
        if hasattr(self, "eval_every"):
            for name, check in (
                ("eval_every", validate.positive_int),
                ("stop_at_eval", validate.number),
            ):
                value = validate.optional(check, name, getattr(self, name))
                object.__setattr__(self, name, value)
            if self.stop_at_eval is not None and self.eval_every is None:
                raise ValueError(
                    "stop_at_eval needs evaluations: set eval_every to a number of steps"
                )
        self.check()

    def check(self) -> None:
        """Checks that relate several fields; a config overrides it where it needs them."""


def reached(cfg, evaluation: dict | None) -> bool:
    """Whether training should stop: an evaluation ran and reached ``cfg.stop_at_eval``."""
    return (
        cfg.stop_at_eval is not None
        and evaluation is not None
        and "eval_mean" in evaluation
        and evaluation["eval_mean"] >= cfg.stop_at_eval
    )


class TrainingLog:
    """The rows of a training run, written the same way by every algorithm: each iteration
    evaluates the policy if an evaluation is due, logs its row with the ``wall_time`` since
    ``start``, and says whether ``cfg.stop_at_eval`` was reached."""

    def __init__(self, history, cfg, evaluator, bar, start: float):
        self.history, self.cfg, self.evaluator, self.bar = history, cfg, evaluator, bar
        self.start = start

    def __call__(self, row: dict, policy, env_steps: int) -> bool:
        """Log one iteration's ``row``; True when training should stop."""
        evaluator = self.evaluator
        evaluation = (
            evaluator.maybe(policy, env_steps) if evaluator is not None else None
        )
        if evaluation is not None:
            row.update(evaluation)
            self.bar.set_postfix(eval_mean=f"{evaluation['eval_mean']:.1f}")
        row["wall_time"] = time.perf_counter() - self.start
        self.history.log(**row)
        return reached(self.cfg, evaluation)

    def close(self, envs, **meta):
        """Close the progress bar and the environments; store ``meta``; return the History."""
        self.bar.close()
        envs.close()
        self.history.meta.update(meta)
        return self.history


def optional(check: Callable) -> Callable:
    """A field check: the value is None, or passes ``check``."""

    def check_optional(name, value):
        return validate.optional(check, name, value)

    return check_optional


def choice(*options) -> Callable:
    """A field check: the value is one of ``options``."""

    def check(name, value):
        return validate.choice(name, value, options)

    return check
