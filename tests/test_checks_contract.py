"""What every grader in rlbook.checks promises, whatever its exercise (found by name, so a new
grader is covered the day it is added): a stub's NotImplementedError passes through (the student
edition relies on it), a crash is reported with its type and input, ``None`` gets a question
about ``return``, and something that is not a function is a TypeError naming ``fn``."""

from __future__ import annotations

import numpy as np
import pytest

from rlbook import checks

GRADERS = [
    getattr(checks, name) for name in sorted(dir(checks)) if name.startswith("check_")
]


def test_every_chapter_grader_is_found() -> None:
    assert len(GRADERS) >= 13


@pytest.mark.parametrize("check", GRADERS, ids=lambda c: c.__name__)
def test_not_implemented_error_propagates(check) -> None:
    def stub(*args, **kwargs):
        raise NotImplementedError("your code here")

    with pytest.raises(NotImplementedError, match="your code here"):
        check(stub)


@pytest.mark.parametrize("check", GRADERS, ids=lambda c: c.__name__)
def test_a_crash_is_reported_with_its_type_and_input(check) -> None:
    def crashes(*args, **kwargs):
        raise RuntimeError("boom")

    with pytest.raises(checks.ExerciseError, match="raised RuntimeError: boom") as info:
        check(crashes)
    assert "input" in str(info.value)


@pytest.mark.parametrize("check", GRADERS, ids=lambda c: c.__name__)
def test_returning_none_asks_about_return(check) -> None:
    if check.__name__ in checks.PROCEDURES:
        # the exercise returns nothing: doing nothing is named for what it left undone
        with pytest.raises(
            checks.ExerciseError, match="did not change|called record 0"
        ):
            check(lambda *args, **kwargs: None)
        return
    with pytest.raises(checks.ExerciseError, match="return"):
        check(lambda *args, **kwargs: None)


def test_procedures_are_graders() -> None:
    assert set(checks.PROCEDURES) <= {c.__name__ for c in GRADERS}


@pytest.mark.parametrize("check", GRADERS, ids=lambda c: c.__name__)
def test_non_callable_is_a_type_error(check) -> None:
    with pytest.raises(TypeError, match="fn"):
        check(np.zeros(3))
