"""An independent probe of rlbook's public API with bad input (issue 11, part 3).

Every call below gives one public function, class or config of rlbook an input of a known
kind and states what a careful library must do with it:

* a bad input must raise ``TypeError`` (a wrong type) or ``ValueError`` (a right type with an
  impossible value), and the message must name the argument;
* a grader given a learner's broken function must raise ``ExerciseError`` whose message says
  what the learner did (a wrong return type, an in-place edit, ``.numpy()`` on a tensor that
  needs grad), never let a traceback through;
* a valid input included as a control (NumPy integers, integer rewards, float64
  observations, ...) must be accepted and give the right result.

Each outcome is classified automatically:

``CLEAR``        the expected exception class, with a message that names the argument;
``CRYPTIC``      any other exception, or one whose message does not name the argument
                 (a valid control that is refused counts here too);
``SILENT``       no exception for a bad input, or a wrong / NaN / truncated result;
``OK-ACCEPTED``  a valid control, accepted with the right result.

Run ``python tools/probe_api.py`` (``-v`` prints every row, not only the failing ones); it
prints a table, the counts per class and per category, and exits 1 when any CRYPTIC or SILENT
outcome remains. Every call is cheap (tiny trainings, one or two environments).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import math
import os
import sys
import tempfile
import typing
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rlbook.envs  # noqa: F401  (registers the rlbook/... ids)
from rlbook import (
    checkpoint,
    claims,
    display,
    history,
    importance,
    losses,
    plotting,
    policies,
    returns,
    rollout,
    utils,
    video,
)
from rlbook.algos import ars, numpy_pg, ppo, reinforce, trpo, vpg
from rlbook.checks import ExerciseError, ch1, ch3, ch4, ch6, ch6_1, ch6_2

CLEAR, CRYPTIC, SILENT, OK = "CLEAR", "CRYPTIC", "SILENT", "OK-ACCEPTED"


@dataclasses.dataclass
class Case:
    category: str
    label: str
    thunk: Callable
    expect: type | tuple | None  # exception class expected; None: a valid control
    names: tuple[str, ...] = ()
    check: Callable | None = None  # for a control: result -> True when right
    outcome: str = ""
    detail: str = ""


CASES: list[Case] = []


def bad(category, label, thunk, expect, *names):
    """A bad input: ``thunk()`` must raise ``expect`` naming one of ``names``."""
    CASES.append(Case(category, label, thunk, expect, names))


def ok(category, label, thunk, check=None):
    """A valid input: ``thunk()`` must succeed, and ``check(result)`` hold if given."""
    CASES.append(Case(category, label, thunk, None, (), check))


def run_case(case: Case) -> None:
    sink = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            result = case.thunk()
    except Exception as exc:  # the probe classifies every exception
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        case.detail = message[:150]
        if case.expect is None:
            case.outcome = CRYPTIC
            case.detail = "valid input refused: " + case.detail
        elif not isinstance(exc, case.expect):
            case.outcome = CRYPTIC
        elif case.names and not any(n in str(exc) for n in case.names):
            case.outcome = CRYPTIC
            case.detail = f"does not name {case.names[0]!r}: " + case.detail
        else:
            case.outcome = CLEAR
        return
    if case.expect is not None:
        case.outcome = SILENT
        case.detail = f"accepted, returned {_short(result)}"
        return
    try:
        right = case.check is None or bool(case.check(result))
    except Exception as exc:
        right, case.detail = False, f"check raised {type(exc).__name__}: {exc}"
    case.outcome = OK if right else SILENT
    if not right and not case.detail:
        case.detail = f"wrong result {_short(result)}"


def _short(x) -> str:
    text = repr(x).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------------------ fixtures

T = torch.tensor
TMP = Path(tempfile.mkdtemp(prefix="rlbook-probe-"))
REW = T([[1.0, 0.0], [1.0, 2.0], [1.0, 1.0]])
DONES = T([[False, False], [False, True], [True, False]])
VALS = T([[0.5, 0.1], [0.2, 0.3], [0.1, 0.4]])
NOT = torch.zeros(3, 2, dtype=torch.bool)
LP = T([-0.5, -1.0, -0.7])
W = T([1.0, -2.0, 0.5])


def _nan_at(x, value=math.nan):
    y = x.clone().float()
    y.view(-1)[0] = value
    return y


def close(expected, atol=1e-6):
    def check(result):
        got = torch.as_tensor(result).double()
        want = torch.as_tensor(expected).double()
        return got.shape == want.shape and torch.allclose(got, want, atol=atol)

    return check


def is_float_tensor(result):
    return isinstance(result, torch.Tensor) and result.is_floating_point()


CAT = policies.CategoricalPolicy(4, 2, (8,))
GAUSS = policies.GaussianPolicy(4, 1, (8,))
VNET = policies.ValueNet(4, (8,))


def cartpole(n=2):
    return rollout.make_envs("CartPole-v1", n)


# ------------------------------------------------------------------------------ returns


def returns_cases():
    rtg = returns.reward_to_go
    want = rtg(REW, DONES, 0.5)
    ok("controls", "reward_to_go float", lambda: rtg(REW, DONES, 0.5), close(want))
    ok(
        "dtypes",
        "reward_to_go int64 rewards promoted",
        lambda: rtg(T([[1], [1], [1]]), T([[False], [False], [True]]), 0.5),
        close([[1.75], [1.5], [1.0]]),
    )
    ok(
        "dtypes",
        "reward_to_go float64 rewards kept",
        lambda: rtg(REW.double(), DONES, 0.5),
        lambda r: r.dtype == torch.float64,
    )
    ok(
        "dtypes",
        "reward_to_go int 0/1 dones accepted",
        lambda: rtg(REW, DONES.long(), 0.5),
        close(want),
    )
    ok(
        "numpy-ints",
        "reward_to_go gamma=np.int64(1)",
        lambda: rtg(REW, DONES, np.int64(1)),
    )
    ok(
        "numpy-ints",
        "reward_to_go gamma=np.float32",
        lambda: rtg(REW, DONES, np.float32(0.5)),
    )
    for fn, name in (
        (rtg, "reward_to_go"),
        (returns.discounted_returns, "discounted_returns"),
    ):
        bad(
            "types",
            f"{name} numpy rewards",
            lambda fn=fn: fn(REW.numpy(), DONES),
            TypeError,
            "rewards",
        )
        bad(
            "types",
            f"{name} list rewards",
            lambda fn=fn: fn([[1.0]], T([[True]])),
            TypeError,
            "rewards",
        )
        bad(
            "types",
            f"{name} None rewards",
            lambda fn=fn: fn(None, DONES),
            TypeError,
            "rewards",
        )
        bad(
            "types",
            f"{name} str rewards",
            lambda fn=fn: fn("abc", DONES),
            TypeError,
            "rewards",
        )
        bad(
            "types",
            f"{name} numpy dones",
            lambda fn=fn: fn(REW, DONES.numpy()),
            TypeError,
            "dones",
        )
        bad(
            "types",
            f"{name} str gamma",
            lambda fn=fn: fn(REW, DONES, "0.9"),
            TypeError,
            "gamma",
        )
        bad(
            "types",
            f"{name} None gamma",
            lambda fn=fn: fn(REW, DONES, None),
            TypeError,
            "gamma",
        )
        bad(
            "types",
            f"{name} bool gamma",
            lambda fn=fn: fn(REW, DONES, True),
            TypeError,
            "gamma",
        )
        bad(
            "values",
            f"{name} gamma=1.5",
            lambda fn=fn: fn(REW, DONES, 1.5),
            ValueError,
            "gamma",
        )
        bad(
            "values",
            f"{name} gamma=-0.1",
            lambda fn=fn: fn(REW, DONES, -0.1),
            ValueError,
            "gamma",
        )
        bad(
            "non-finite",
            f"{name} gamma=nan",
            lambda fn=fn: fn(REW, DONES, math.nan),
            ValueError,
            "gamma",
        )
        bad(
            "non-finite",
            f"{name} nan reward",
            lambda fn=fn: fn(_nan_at(REW), DONES),
            ValueError,
            "rewards",
        )
        bad(
            "non-finite",
            f"{name} inf reward",
            lambda fn=fn: fn(_nan_at(REW, math.inf), DONES),
            ValueError,
            "rewards",
        )
        bad(
            "empty",
            f"{name} empty rewards",
            lambda fn=fn: fn(torch.zeros(0, 2), torch.zeros(0, 2, dtype=torch.bool)),
            ValueError,
            "rewards",
        )
        bad(
            "shapes",
            f"{name} 1-d rewards",
            lambda fn=fn: fn(T([1.0, 2.0]), T([False, True])),
            ValueError,
            "rewards",
        )
        bad(
            "shapes",
            f"{name} 3-d rewards",
            lambda fn=fn: fn(REW[..., None], DONES[..., None]),
            ValueError,
            "rewards",
        )
        bad(
            "mismatch",
            f"{name} dones of another shape",
            lambda fn=fn: fn(REW, DONES[:2]),
            ValueError,
            "dones",
        )
        bad(
            "dtypes",
            f"{name} float dones of 0.5",
            lambda fn=fn: fn(REW, torch.full((3, 2), 0.5)),
            ValueError,
            "dones",
        )
        bad(
            "dtypes",
            f"{name} complex rewards",
            lambda fn=fn: fn(REW.to(torch.complex64), DONES),
            TypeError,
            "rewards",
        )
    dr = returns.discounted_returns
    bad(
        "types",
        "discounted_returns numpy mask",
        lambda: dr(REW, DONES, 1.0, np.ones((3, 2), bool)),
        TypeError,
        "mask",
    )
    bad(
        "mismatch",
        "discounted_returns mask shape",
        lambda: dr(REW, DONES, 1.0, torch.ones(2, 2, dtype=torch.bool)),
        ValueError,
        "mask",
    )
    bad(
        "dtypes",
        "discounted_returns mask of 2s",
        lambda: dr(REW, DONES, 1.0, torch.full((3, 2), 2)),
        ValueError,
        "mask",
    )

    nz = returns.normalize
    x = T([1.0, 2.0, 3.0, 4.0])
    ok("controls", "normalize", lambda: nz(x), lambda r: abs(float(r.mean())) < 1e-6)
    ok("dtypes", "normalize int64 promoted", lambda: nz(T([1, 2, 3, 4])), close(nz(x)))
    bad("types", "normalize numpy x", lambda: nz(x.numpy()), TypeError, "x")
    bad("types", "normalize list x", lambda: nz([1.0, 2.0]), TypeError, "x")
    bad("types", "normalize None x", lambda: nz(None), TypeError, "x")
    bad("types", "normalize str eps", lambda: nz(x, eps="1e-8"), TypeError, "eps")
    bad("values", "normalize eps=-1", lambda: nz(x, eps=-1.0), ValueError, "eps")
    bad(
        "non-finite",
        "normalize inf entry",
        lambda: nz(_nan_at(x, math.inf)),
        ValueError,
        "x",
    )
    bad("non-finite", "normalize nan entry", lambda: nz(_nan_at(x)), ValueError, "x")
    bad("empty", "normalize empty x", lambda: nz(torch.zeros(0)), ValueError, "x")
    bad(
        "empty",
        "normalize all-False mask",
        lambda: nz(x, torch.zeros(4, dtype=torch.bool)),
        ValueError,
        "mask",
    )
    bad(
        "types",
        "normalize numpy mask",
        lambda: nz(x, np.ones(4, bool)),
        TypeError,
        "mask",
    )
    bad(
        "dtypes",
        "normalize float mask 0.3",
        lambda: nz(x, torch.full((4,), 0.3)),
        ValueError,
        "mask",
    )
    bad(
        "mismatch",
        "normalize mask shape",
        lambda: nz(x, torch.ones(3, dtype=torch.bool)),
        ValueError,
        "mask",
    )
    ok("dtypes", "normalize 0/1 int mask accepted", lambda: nz(x, T([1, 1, 0, 1])))

    g = returns.gae
    ok("controls", "gae", lambda: g(REW, VALS, VALS, NOT, NOT, 0.9, 0.8))
    ok(
        "dtypes",
        "gae int64 rewards promoted",
        lambda: g(
            T([[1], [1]]),
            torch.zeros(2, 1),
            torch.zeros(2, 1),
            T([[False], [True]]),
            torch.zeros(2, 1, dtype=torch.bool),
            0.5,
            1.0,
        )[0],
        close([[1.5], [1.0]]),
    )
    bad(
        "types",
        "gae numpy values",
        lambda: g(REW, VALS.numpy(), VALS, NOT, NOT),
        TypeError,
        "values",
    )
    bad(
        "types",
        "gae list next_values",
        lambda: g(REW, VALS, [[0.0]], NOT, NOT),
        TypeError,
        "next_values",
    )
    bad(
        "types",
        "gae None terminated",
        lambda: g(REW, VALS, VALS, None, NOT),
        TypeError,
        "terminated",
    )
    bad(
        "types",
        "gae str gae_lambda",
        lambda: g(REW, VALS, VALS, NOT, NOT, 0.9, "0.9"),
        TypeError,
        "gae_lambda",
    )
    bad(
        "values",
        "gae gae_lambda=2",
        lambda: g(REW, VALS, VALS, NOT, NOT, 0.9, 2.0),
        ValueError,
        "gae_lambda",
    )
    bad(
        "non-finite",
        "gae nan value",
        lambda: g(REW, _nan_at(VALS), VALS, NOT, NOT),
        ValueError,
        "values",
    )
    bad(
        "non-finite",
        "gae inf reward",
        lambda: g(_nan_at(REW, math.inf), VALS, VALS, NOT, NOT),
        ValueError,
        "rewards",
    )
    bad(
        "empty",
        "gae empty",
        lambda: g(
            torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, 2), NOT[:0], NOT[:0]
        ),
        ValueError,
        "rewards",
    )
    bad(
        "mismatch",
        "gae values shape",
        lambda: g(REW, VALS[:2], VALS, NOT, NOT),
        ValueError,
        "values",
    )
    bad(
        "mismatch",
        "gae truncated shape",
        lambda: g(REW, VALS, VALS, NOT, NOT[:, :1]),
        ValueError,
        "truncated",
    )
    bad(
        "dtypes",
        "gae float mask 0.5",
        lambda: g(REW, VALS, VALS, NOT, NOT, mask=torch.full((3, 2), 0.5)),
        ValueError,
        "mask",
    )
    sv = returns.successor_values
    ok("controls", "successor_values", lambda: sv(VALS, VALS[0], VALS, DONES))
    bad(
        "types",
        "successor_values numpy last_values",
        lambda: sv(VALS, VALS[0].numpy(), VALS, DONES),
        TypeError,
        "last_values",
    )
    bad(
        "mismatch",
        "successor_values last_values shape",
        lambda: sv(VALS, VALS[:, 0], VALS, DONES),
        ValueError,
        "last_values",
    )
    bad(
        "mismatch",
        "successor_values final_values shape",
        lambda: sv(VALS, VALS[0], VALS[:2], DONES),
        ValueError,
        "final_values",
    )
    bad(
        "types",
        "successor_values list values",
        lambda: sv([[1.0]], VALS[0], VALS, DONES),
        TypeError,
        "values",
    )


# ------------------------------------------------------------------------------ losses


def loss_cases():
    for name, fn, args in (
        ("pg_loss", losses.pg_loss, ("log_probs", "weights")),
        ("value_loss", losses.value_loss, ("values", "returns")),
        ("approx_kl", losses.approx_kl, ("new_log_probs", "old_log_probs")),
    ):
        a0, a1 = args
        ok("controls", f"{name}", lambda fn=fn: fn(LP, W), lambda r: torch.isfinite(r))
        ok(
            "dtypes",
            f"{name} int64 second argument",
            lambda fn=fn: fn(LP, T([1, -2, 0])),
            lambda r: torch.isfinite(r),
        )
        bad(
            "types",
            f"{name} numpy {a0}",
            lambda fn=fn: fn(LP.numpy(), W),
            TypeError,
            a0,
        )
        bad(
            "types",
            f"{name} numpy {a1}",
            lambda fn=fn: fn(LP, W.numpy()),
            TypeError,
            a1,
        )
        bad("types", f"{name} list {a0}", lambda fn=fn: fn([0.1], W), TypeError, a0)
        bad("types", f"{name} None {a1}", lambda fn=fn: fn(LP, None), TypeError, a1)
        bad(
            "empty",
            f"{name} empty",
            lambda fn=fn: fn(torch.zeros(0), torch.zeros(0)),
            ValueError,
            a0,
        )
        bad(
            "non-finite",
            f"{name} nan {a1}",
            lambda fn=fn: fn(LP, _nan_at(W)),
            ValueError,
            a1,
        )
        bad(
            "non-finite",
            f"{name} inf {a0}",
            lambda fn=fn: fn(_nan_at(LP, math.inf), W),
            ValueError,
            a0,
        )
        bad(
            "mismatch",
            f"{name} shapes differ",
            lambda fn=fn: fn(LP, W[:2]),
            ValueError,
            a1,
        )
        bad(
            "types",
            f"{name} numpy mask",
            lambda fn=fn: fn(LP, W, np.ones(3, bool)),
            TypeError,
            "mask",
        )
        bad(
            "dtypes",
            f"{name} float mask 0.5",
            lambda fn=fn: fn(LP, W, torch.full((3,), 0.5)),
            ValueError,
            "mask",
        )
        bad(
            "empty",
            f"{name} all-False mask",
            lambda fn=fn: fn(LP, W, torch.zeros(3, dtype=torch.bool)),
            ValueError,
            "mask",
        )
        bad(
            "mismatch",
            f"{name} mask shape",
            lambda fn=fn: fn(LP, W, torch.ones(2, dtype=torch.bool)),
            ValueError,
            "mask",
        )
        ok(
            "dtypes",
            f"{name} 0/1 float mask",
            lambda fn=fn: fn(LP, W, T([1.0, 0.0, 1.0])),
        )
    pc = losses.ppo_clip_loss
    ok("controls", "ppo_clip_loss", lambda: pc(LP, LP, W, 0.2))
    ok(
        "numpy-ints",
        "ppo_clip_loss clip_coef=np.float64",
        lambda: pc(LP, LP, W, np.float64(0.2)),
    )
    ok(
        "controls",
        "ppo_clip_loss clip_coef=inf (no clip)",
        lambda: pc(LP, LP, W, math.inf),
    )
    bad(
        "types",
        "ppo_clip_loss numpy advantages",
        lambda: pc(LP, LP, W.numpy()),
        TypeError,
        "advantages",
    )
    bad(
        "types",
        "ppo_clip_loss str clip_coef",
        lambda: pc(LP, LP, W, "0.2"),
        TypeError,
        "clip_coef",
    )
    bad(
        "types",
        "ppo_clip_loss bool clip_coef",
        lambda: pc(LP, LP, W, True),
        TypeError,
        "clip_coef",
    )
    bad(
        "values",
        "ppo_clip_loss clip_coef=0",
        lambda: pc(LP, LP, W, 0.0),
        ValueError,
        "clip_coef",
    )
    bad(
        "values",
        "ppo_clip_loss clip_coef=-0.2",
        lambda: pc(LP, LP, W, -0.2),
        ValueError,
        "clip_coef",
    )
    bad(
        "non-finite",
        "ppo_clip_loss clip_coef=nan",
        lambda: pc(LP, LP, W, math.nan),
        ValueError,
        "clip_coef",
    )
    bad(
        "mismatch",
        "ppo_clip_loss old_log_probs shape",
        lambda: pc(LP, LP[:2], W),
        ValueError,
        "old_log_probs",
    )
    bad(
        "empty",
        "ppo_clip_loss empty",
        lambda: pc(torch.zeros(0), torch.zeros(0), torch.zeros(0)),
        ValueError,
        "new_log_probs",
    )
    bad(
        "non-finite",
        "ppo_clip_loss nan advantages",
        lambda: pc(LP, LP, _nan_at(W)),
        ValueError,
        "advantages",
    )
    cf = losses.clip_fraction
    bad(
        "values",
        "clip_fraction clip_coef=-1",
        lambda: cf(LP, LP, -1.0),
        ValueError,
        "clip_coef",
    )
    bad(
        "types",
        "clip_fraction None clip_coef",
        lambda: cf(LP, LP, None),
        TypeError,
        "clip_coef",
    )
    bad(
        "types",
        "importance_ratio numpy",
        lambda: losses.importance_ratio(LP.numpy(), LP),
        TypeError,
        "new_log_probs",
    )


# ------------------------------------------------------------------------------ importance


def importance_cases():
    iw = importance.importance_weights
    ok("controls", "importance_weights", lambda: iw(LP, LP), close(torch.ones(3)))
    ok(
        "controls",
        "importance_weights from numpy (documented)",
        lambda: iw(LP.numpy(), LP.numpy()),
        close(torch.ones(3)),
    )
    ok(
        "dtypes",
        "importance_weights int64 log-probs",
        lambda: iw(T([0, -1]), T([0, 0])),
        close([1.0, math.exp(-1)]),
    )
    bad(
        "types",
        "importance_weights str",
        lambda: iw("abc", LP),
        TypeError,
        "log_p_target",
    )
    bad(
        "types",
        "importance_weights None",
        lambda: iw(LP, None),
        TypeError,
        "log_p_behaviour",
    )
    bad(
        "mismatch",
        "importance_weights shapes",
        lambda: iw(LP, LP[:2]),
        ValueError,
        "log_p_behaviour",
    )
    bad(
        "non-finite",
        "importance_weights nan",
        lambda: iw(_nan_at(LP), LP),
        ValueError,
        "log_p_target",
    )
    bad(
        "non-finite",
        "importance_weights -inf behaviour",
        lambda: iw(LP, _nan_at(LP, -math.inf)),
        ValueError,
        "log_p_behaviour",
    )
    bad(
        "non-finite",
        "importance_weights +inf target",
        lambda: iw(_nan_at(LP, math.inf), LP),
        ValueError,
        "log_p_target",
    )
    tw = importance.trajectory_weights
    ok(
        "controls",
        "trajectory_weights",
        lambda: tw(LP[None], LP[None]),
        close(torch.ones(1)),
    )
    bad(
        "shapes",
        "trajectory_weights 0-d",
        lambda: tw(T(0.0), T(0.0)),
        ValueError,
        "log_p_target",
    )
    bad(
        "types",
        "trajectory_weights ragged list",
        lambda: tw([[0.0], [0.0, 1.0]], [[0.0], [0.0]]),
        TypeError,
        "log_p_target",
    )
    ise, wis = importance.is_estimate, importance.weighted_is_estimate
    for name, fn in (("is_estimate", ise), ("weighted_is_estimate", wis)):
        ok("controls", name, lambda fn=fn: fn(T([1.0, 2.0]), T([3.0, 4.0])))
        bad(
            "shapes",
            f"{name} 2-d weights",
            lambda fn=fn: fn(torch.ones(2, 2), torch.ones(2)),
            ValueError,
            "weights",
        )
        bad(
            "values",
            f"{name} negative weight",
            lambda fn=fn: fn(T([1.0, -1.0]), T([1.0, 1.0])),
            ValueError,
            "weights",
        )
        bad(
            "mismatch",
            f"{name} values length",
            lambda fn=fn: fn(T([1.0, 2.0]), T([1.0, 2.0, 3.0])),
            ValueError,
            "values",
        )
        bad(
            "empty",
            f"{name} empty",
            lambda fn=fn: fn(torch.zeros(0), torch.zeros(0)),
            ValueError,
            "weights",
        )
        bad(
            "non-finite",
            f"{name} nan value",
            lambda fn=fn: fn(T([1.0, 2.0]), T([math.nan, 1.0])),
            ValueError,
            "values",
        )
        bad(
            "non-finite",
            f"{name} inf value",
            lambda fn=fn: fn(T([1.0, 2.0]), T([math.inf, 1.0])),
            ValueError,
            "values",
        )
        bad(
            "types",
            f"{name} str weights",
            lambda fn=fn: fn("ab", T([1.0])),
            TypeError,
            "weights",
        )
    bad(
        "values",
        "weighted_is_estimate all-zero weights",
        lambda: wis(T([0.0, 0.0]), T([1.0, 2.0])),
        ValueError,
        "weights",
    )
    pd = importance.per_decision_is
    r2 = torch.ones(2, 3)
    ok(
        "controls",
        "per_decision_is",
        lambda: pd(r2, torch.zeros(2, 3), torch.zeros(2, 3), 0.5),
        close([1.75, 1.75]),
    )
    ok(
        "dtypes",
        "per_decision_is int64 rewards",
        lambda: pd(r2.long(), torch.zeros(2, 3), torch.zeros(2, 3), 0.5),
        close([1.75, 1.75]),
    )
    bad(
        "values",
        "per_decision_is gamma=2",
        lambda: pd(r2, torch.zeros(2, 3), torch.zeros(2, 3), 2.0),
        ValueError,
        "gamma",
    )
    bad(
        "shapes",
        "per_decision_is 1-d",
        lambda: pd(T([1.0]), T([0.0]), T([0.0])),
        ValueError,
        "log_p_target",
    )
    bad(
        "mismatch",
        "per_decision_is rewards shape",
        lambda: pd(torch.ones(2, 2), torch.zeros(2, 3), torch.zeros(2, 3)),
        ValueError,
        "rewards",
    )
    bad(
        "non-finite",
        "per_decision_is inf reward",
        lambda: pd(_nan_at(r2, math.inf), torch.zeros(2, 3), torch.zeros(2, 3)),
        ValueError,
        "rewards",
    )
    ess = importance.ess
    ok("controls", "ess", lambda: ess(T([1.0, 1.0])), lambda r: abs(r - 2.0) < 1e-9)
    bad("values", "ess all zero", lambda: ess(T([0.0, 0.0])), ValueError, "weights")
    bad(
        "non-finite",
        "ess inf weight",
        lambda: ess(T([math.inf, 1.0])),
        ValueError,
        "weights",
    )
    bad("empty", "ess empty", lambda: ess(torch.zeros(0)), ValueError, "weights")


# ------------------------------------------------------------------------------ policies


def policy_cases():
    cp, gp, vn = policies.CategoricalPolicy, policies.GaussianPolicy, policies.ValueNet
    ok(
        "numpy-ints",
        "CategoricalPolicy np.int64 sizes",
        lambda: cp(np.int64(4), np.int64(2), (np.int64(8),)),
    )
    ok("numpy-ints", "GaussianPolicy np.int32 act_dim", lambda: gp(4, np.int32(1)))
    ok("numpy-ints", "ValueNet np.int64 obs_dim", lambda: vn(np.int64(4)))
    ok("controls", "CategoricalPolicy hidden=[] (linear)", lambda: cp(4, 2, []))
    for label, fn, arg in (
        ("CategoricalPolicy", lambda v: cp(v, 2), "obs_dim"),
        ("CategoricalPolicy", lambda v: cp(4, v), "n_actions"),
        ("GaussianPolicy", lambda v: gp(4, v), "act_dim"),
        ("ValueNet", lambda v: vn(v), "obs_dim"),
    ):
        bad("types", f"{label} {arg}='4'", lambda fn=fn: fn("4"), TypeError, arg)
        bad("types", f"{label} {arg}=4.0", lambda fn=fn: fn(4.0), TypeError, arg)
        bad("types", f"{label} {arg}=True", lambda fn=fn: fn(True), TypeError, arg)
        bad("types", f"{label} {arg}=None", lambda fn=fn: fn(None), TypeError, arg)
        bad("values", f"{label} {arg}=0", lambda fn=fn: fn(0), ValueError, arg)
        bad("values", f"{label} {arg}=-3", lambda fn=fn: fn(-3), ValueError, arg)
    bad(
        "values",
        "CategoricalPolicy n_actions=1",
        lambda: cp(4, 1),
        ValueError,
        "n_actions",
    )
    for hidden, kind in (
        (32, TypeError),
        ("32", TypeError),
        ((0,), ValueError),
        ((32.0,), TypeError),
        ((True,), TypeError),
        ((-4, 4), ValueError),
    ):
        bad(
            "configs",
            f"CategoricalPolicy hidden={hidden!r}",
            lambda h=hidden: cp(4, 2, h),
            kind,
            "hidden",
        )
    bad(
        "non-finite",
        "GaussianPolicy log_std_init=nan",
        lambda: gp(4, 1, (8,), math.nan),
        ValueError,
        "log_std_init",
    )
    bad(
        "types",
        "GaussianPolicy log_std_init='x'",
        lambda: gp(4, 1, (8,), "x"),
        TypeError,
        "log_std_init",
    )
    ok(
        "controls",
        "dist of numpy float64 obs",
        lambda: CAT.dist(np.zeros((3, 4))).probs,
        lambda p: p.shape == (3, 2),
    )
    ok(
        "dtypes",
        "dist of torch float64 obs",
        lambda: CAT.dist(torch.zeros(3, 4, dtype=torch.float64)).probs,
        lambda p: p.shape == (3, 2),
    )
    ok(
        "dtypes",
        "dist of int64 obs",
        lambda: CAT.dist(torch.zeros(3, 4, dtype=torch.int64)).probs,
        lambda p: p.shape == (3, 2),
    )
    ok(
        "dtypes",
        "ValueNet of float64 obs",
        lambda: VNET(torch.zeros(3, 4, dtype=torch.float64)),
        lambda v: v.shape == (3,),
    )
    bad(
        "shapes",
        "dist obs last dim 3",
        lambda: CAT.dist(torch.zeros(3, 3)),
        ValueError,
        "obs",
    )
    bad(
        "shapes",
        "ValueNet obs last dim 5",
        lambda: VNET(torch.zeros(2, 5)),
        ValueError,
        "obs",
    )
    bad("types", "dist str obs", lambda: CAT.dist("obs"), TypeError, "obs")
    bad("types", "dist None obs", lambda: GAUSS.dist(None), TypeError, "obs")
    bad(
        "non-finite",
        "dist nan obs",
        lambda: CAT.dist(torch.full((1, 4), math.nan)),
        ValueError,
        "obs",
    )
    bad(
        "non-finite",
        "ValueNet inf obs",
        lambda: VNET(torch.full((1, 4), math.inf)),
        ValueError,
        "obs",
    )
    bad(
        "dtypes",
        "dist complex obs",
        lambda: CAT.dist(torch.zeros(1, 4, dtype=torch.complex64)),
        TypeError,
        "obs",
    )
    mlp = policies.mlp
    ok("numpy-ints", "mlp np.int64 sizes", lambda: mlp(np.array([4, 8, 2])))
    bad("values", "mlp one size", lambda: mlp([4]), ValueError, "sizes")
    bad("types", "mlp sizes=4", lambda: mlp(4), TypeError, "sizes")
    bad(
        "types",
        "mlp activation='tanh'",
        lambda: mlp([4, 2, 1], "tanh"),
        TypeError,
        "activation",
    )
    bad(
        "types",
        "mlp output_activation=nn.Tanh()",
        lambda: mlp([4, 2], nn.Tanh, nn.Tanh()),
        TypeError,
        "output_activation",
    )
    box = gym.spaces.Box(-1, 1, (4,))
    mp = policies.make_policy
    bad(
        "types",
        "make_policy str space",
        lambda: mp("Box", gym.spaces.Discrete(2)),
        TypeError,
        "observation_space",
    )
    bad(
        "types",
        "make_policy 2-d action Box",
        lambda: mp(box, gym.spaces.Box(-1, 1, (2, 2))),
        TypeError,
        "action_space",
    )
    bad(
        "configs",
        "make_policy hidden=(0,)",
        lambda: mp(box, gym.spaces.Discrete(2), (0,)),
        ValueError,
        "hidden",
    )
    fits = policies.check_policy_fits
    bad(
        "mismatch",
        "check_policy_fits Gaussian on Discrete",
        lambda: fits(GAUSS, gym.spaces.Discrete(2)),
        TypeError,
        "policy",
    )
    bad(
        "mismatch",
        "check_policy_fits 2 logits on Discrete(3)",
        lambda: fits(CAT, gym.spaces.Discrete(3)),
        ValueError,
        "policy",
    )
    bad(
        "types",
        "check_policy_fits not a policy",
        lambda: fits("policy", gym.spaces.Discrete(2)),
        TypeError,
        "policy",
    )
    bad(
        "types",
        "check_policy_fits str space",
        lambda: fits(CAT, "Discrete(2)"),
        TypeError,
        "action space",
    )


# ------------------------------------------------------------------------------ rollout


def rollout_cases():
    me = rollout.make_envs
    ok(
        "numpy-ints",
        "make_envs num_envs=np.int64(2)",
        lambda: me("CartPole-v1", np.int64(2)).close(),
    )
    bad(
        "values",
        "make_envs unknown id",
        lambda: me("NoSuchEnv-v0", 2),
        ValueError,
        "env_id",
    )
    bad("types", "make_envs env_id=None", lambda: me(None, 2), TypeError, "env_id")
    bad(
        "types",
        "make_envs num_envs='2'",
        lambda: me("CartPole-v1", "2"),
        TypeError,
        "num_envs",
    )
    bad(
        "types",
        "make_envs num_envs=2.0",
        lambda: me("CartPole-v1", 2.0),
        TypeError,
        "num_envs",
    )
    bad(
        "values",
        "make_envs num_envs=0",
        lambda: me("CartPole-v1", 0),
        ValueError,
        "num_envs",
    )
    col = rollout.collect
    envs = cartpole()
    ok(
        "controls",
        "collect",
        lambda: col(envs, CAT, 4, seed=0),
        lambda r: r.rewards.shape == (4, 2),
    )
    ok(
        "numpy-ints",
        "collect num_steps=np.int64(3), seed=np.int64(1)",
        lambda: col(envs, CAT, np.int64(3), seed=np.int64(1)),
    )
    bad(
        "types",
        "collect envs=str",
        lambda: col("CartPole-v1", CAT, 4),
        TypeError,
        "envs",
    )
    bad("types", "collect policy=None", lambda: col(envs, None, 4), TypeError, "policy")
    bad(
        "types",
        "collect policy=str",
        lambda: col(envs, "policy", 4),
        TypeError,
        "policy",
    )
    bad(
        "mismatch",
        "collect Gaussian on CartPole",
        lambda: col(envs, GAUSS, 4),
        TypeError,
        "policy",
    )
    bad(
        "mismatch",
        "collect obs_dim mismatch",
        lambda: col(envs, policies.CategoricalPolicy(3, 2), 4),
        ValueError,
        "obs",
    )
    bad(
        "mismatch",
        "collect 3 logits on 2 actions",
        lambda: col(envs, policies.CategoricalPolicy(4, 3), 4),
        ValueError,
        "policy",
    )
    bad(
        "values",
        "collect num_steps=0",
        lambda: col(envs, CAT, 0),
        ValueError,
        "num_steps",
    )
    bad(
        "types",
        "collect num_steps=2.5",
        lambda: col(envs, CAT, 2.5),
        TypeError,
        "num_steps",
    )
    bad(
        "types",
        "collect num_steps=True",
        lambda: col(envs, CAT, True),
        TypeError,
        "num_steps",
    )
    bad(
        "values",
        "collect seed=-1",
        lambda: col(envs, CAT, 2, seed=-1),
        ValueError,
        "seed",
    )
    bad(
        "types",
        "collect seed='0'",
        lambda: col(envs, CAT, 2, seed="0"),
        TypeError,
        "seed",
    )
    bad(
        "types",
        "collect complete_episodes=1",
        lambda: col(envs, CAT, 2, complete_episodes=1),
        TypeError,
        "complete_episodes",
    )
    bad(
        "types",
        "collect previous=dict",
        lambda: col(envs, CAT, 2, previous={}),
        TypeError,
        "previous",
    )
    bad(
        "types",
        "collect value_fn=str",
        lambda: col(envs, CAT, 2, value_fn="v"),
        TypeError,
        "value_fn",
    )
    bad(
        "mismatch",
        "collect value_fn of obs_dim 3",
        lambda: col(envs, CAT, 2, value_fn=policies.ValueNet(3)),
        ValueError,
        "value_fn",
    )
    ev = rollout.evaluate
    ok(
        "numpy-ints",
        "evaluate num_episodes=np.int64(1)",
        lambda: ev("CartPole-v1", CAT, np.int64(1)),
    )
    bad(
        "values",
        "evaluate num_episodes=0",
        lambda: ev("CartPole-v1", CAT, 0),
        ValueError,
        "num_episodes",
    )
    bad(
        "types",
        "evaluate num_episodes=1.0",
        lambda: ev("CartPole-v1", CAT, 1.0),
        TypeError,
        "num_episodes",
    )
    bad(
        "values",
        "evaluate seed=-5",
        lambda: ev("CartPole-v1", CAT, 1, seed=-5),
        ValueError,
        "seed",
    )
    bad(
        "types",
        "evaluate deterministic='yes'",
        lambda: ev("CartPole-v1", CAT, 1, deterministic="yes"),
        TypeError,
        "deterministic",
    )
    bad(
        "types",
        "evaluate policy=str",
        lambda: ev("CartPole-v1", "policy", 1),
        TypeError,
        "policy",
    )
    bad(
        "values",
        "evaluate unknown env",
        lambda: ev("NoSuchEnv-v0", CAT, 1),
        ValueError,
        "env_id",
    )
    bad(
        "mismatch",
        "evaluate Gaussian on CartPole",
        lambda: ev("CartPole-v1", GAUSS, 1),
        TypeError,
        "policy",
    )
    E = rollout.Evaluator
    ok(
        "numpy-ints",
        "Evaluator every=np.int64(10)",
        lambda: E("CartPole-v1", np.int64(10)),
    )
    bad("values", "Evaluator every=0", lambda: E("CartPole-v1", 0), ValueError, "every")
    bad(
        "types",
        "Evaluator every='10'",
        lambda: E("CartPole-v1", "10"),
        TypeError,
        "every",
    )
    bad(
        "values",
        "Evaluator seed=-1",
        lambda: E("CartPole-v1", 10, seed=-1),
        ValueError,
        "seed",
    )
    bad(
        "types",
        "Evaluator seed=1.5",
        lambda: E("CartPole-v1", 10, seed=1.5),
        TypeError,
        "seed",
    )
    bad(
        "values",
        "Evaluator unknown env",
        lambda: E("NoSuchEnv-v0", 10),
        ValueError,
        "env_id",
    )
    bad(
        "types",
        "Evaluator deterministic=None",
        lambda: E("CartPole-v1", 10, deterministic=None),
        TypeError,
        "deterministic",
    )
    bad(
        "types",
        "autoreset_mode of a str",
        lambda: rollout.autoreset_mode("envs"),
        TypeError,
        "envs",
    )


# ------------------------------------------------------------------------------ algos


def config_cases():
    classes = (
        reinforce.ReinforceConfig,
        vpg.VPGConfig,
        numpy_pg.NumpyPGConfig,
        ppo.PPOConfig,
        ars.ARSConfig,
        trpo.TRPOConfig,
    )
    neg_ok = {"stop_at_eval"}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name, hint, default = f.name, hints[f.name], f.default
            optional = type(None) in typing.get_args(hint)
            base = (
                hint
                if not optional
                else next(a for a in typing.get_args(hint) if a is not type(None))
            )
            c = cls.__name__

            def make(value, cls=cls, name=name):
                return cls(**{name: value})

            if base is not str:
                bad(
                    "configs",
                    f"{c}({name}='x')",
                    lambda m=make: m("x"),
                    TypeError,
                    name,
                )
            if not optional:
                # None is a wrong type, or for a field of named choices, not one of them
                kind = ValueError if base is str else TypeError
                bad("configs", f"{c}({name}=None)", lambda m=make: m(None), kind, name)
            if base is bool:
                bad("configs", f"{c}({name}=1)", lambda m=make: m(1), TypeError, name)
                ok("configs", f"{c}({name}=np.bool_)", lambda m=make: m(np.bool_(True)))
            elif base is int:
                bad(
                    "configs",
                    f"{c}({name}=2.5)",
                    lambda m=make: m(2.5),
                    TypeError,
                    name,
                )
                bad(
                    "configs",
                    f"{c}({name}=True)",
                    lambda m=make: m(True),
                    TypeError,
                    name,
                )
                bad(
                    "configs", f"{c}({name}=-1)", lambda m=make: m(-1), ValueError, name
                )
                if name != "seed":
                    bad(
                        "configs",
                        f"{c}({name}=0)",
                        lambda m=make: m(0),
                        ValueError,
                        name,
                    )
                value = default if isinstance(default, int) and default else 1
                ok(
                    "numpy-ints",
                    f"{c}({name}=np.int64)",
                    lambda m=make, v=value, n=name: m(np.int64(v)),
                    lambda r, n=name: type(getattr(r, n)) is int,
                )
            elif base is float:
                bad(
                    "configs",
                    f"{c}({name}=True)",
                    lambda m=make: m(True),
                    TypeError,
                    name,
                )
                bad(
                    "non-finite",
                    f"{c}({name}=nan)",
                    lambda m=make: m(math.nan),
                    ValueError,
                    name,
                )
                if name != "max_grad_norm":
                    bad(
                        "non-finite",
                        f"{c}({name}=-inf)",
                        lambda m=make: m(-math.inf),
                        ValueError,
                        name,
                    )
                if name not in neg_ok:
                    bad(
                        "configs",
                        f"{c}({name}=-0.5)",
                        lambda m=make: m(-0.5),
                        ValueError,
                        name,
                    )
                value = default if isinstance(default, float) else 0.5
                extra = {"eval_every": 100} if name == "stop_at_eval" else {}

                def make32(v, cls=cls, name=name, extra=extra):
                    return cls(**{name: np.float32(v)}, **extra)

                ok(
                    "numpy-ints",
                    f"{c}({name}=np.float32)",
                    lambda m=make32, v=value: m(v),
                    lambda r, n=name: type(getattr(r, n)) is float,
                )
            elif name == "hidden":
                bad("configs", f"{c}(hidden=32)", lambda m=make: m(32), TypeError, name)
                bad(
                    "configs", f"{c}(hidden=())", lambda m=make: m(()), ValueError, name
                )
                bad(
                    "configs",
                    f"{c}(hidden=(0,))",
                    lambda m=make: m((0,)),
                    ValueError,
                    name,
                )
            elif base is str:
                bad(
                    "configs",
                    f"{c}({name}='nonsense')",
                    lambda m=make: m("nonsense"),
                    ValueError,
                    name,
                )
        bad(
            "configs",
            f"{cls.__name__}(nonsense_field=1)",
            lambda cls=cls: cls(nonsense_field=1),
            TypeError,
            "nonsense_field",
        )
        if "eval_every" in {f.name for f in dataclasses.fields(cls)}:
            bad(
                "configs",
                f"{cls.__name__}(stop_at_eval without eval_every)",
                lambda cls=cls: cls(stop_at_eval=400.0),
                ValueError,
                "eval_every",
            )
            bad(
                "configs",
                f"{cls.__name__}(eval_every=0)",
                lambda cls=cls: cls(eval_every=0),
                ValueError,
                "eval_every",
            )
    P = ppo.PPOConfig
    bad(
        "configs",
        "PPOConfig(num_envs=1, num_steps=1)",
        lambda: P(num_envs=1, num_steps=1),
        ValueError,
        "num_steps",
    )
    bad(
        "configs",
        "PPOConfig(num_minibatches > batch)",
        lambda: P(num_envs=1, num_steps=4, num_minibatches=8),
        ValueError,
        "num_minibatches",
    )
    bad(
        "configs",
        "TRPOConfig(vf_minibatches > batch)",
        lambda: trpo.TRPOConfig(num_envs=1, num_steps=2, vf_minibatches=4),
        ValueError,
        "vf_minibatches",
    )
    bad(
        "configs",
        "ARSConfig(top_directions > num_directions)",
        lambda: ars.ARSConfig(num_directions=2, top_directions=3),
        ValueError,
        "top_directions",
    )
    bad(
        "configs",
        "TRPOConfig(backtrack_coef=1)",
        lambda: trpo.TRPOConfig(backtrack_coef=1.0),
        ValueError,
        "backtrack_coef",
    )
    ok("controls", "PPOConfig.cartpole()", lambda: P.cartpole())
    ok(
        "controls",
        "ReinforceConfig(baseline=None)",
        lambda: reinforce.ReinforceConfig(baseline=None),
    )


def train_cases():
    R = reinforce.ReinforceConfig(
        num_envs=2, iterations=1, hidden=(8,), baseline="value"
    )
    V = vpg.VPGConfig(num_envs=2, steps_per_env=2, iterations=1, hidden=(8,))
    N = numpy_pg.NumpyPGConfig(num_episodes=2, iterations=1)
    P = ppo.PPOConfig(
        num_envs=2,
        num_steps=8,
        total_steps=16,
        hidden=(8,),
        update_epochs=1,
        num_minibatches=2,
    )
    A = ars.ARSConfig(num_directions=2, top_directions=1, total_steps=50)
    TR = trpo.TRPOConfig(
        num_envs=2, num_steps=8, total_steps=16, hidden=(8,), vf_minibatches=2
    )
    trains = (
        ("train_reinforce", reinforce.train_reinforce, R),
        ("train_vpg", vpg.train_vpg, V),
        ("train_numpy_pg", numpy_pg.train_numpy_pg, N),
        ("train_ppo", ppo.train_ppo, P),
        ("train_ars", ars.train_ars, A),
        ("train_trpo", trpo.train_trpo, TR),
    )
    for name, fn, cfg in trains:
        other = V if cfg is not V else R
        ok(
            "controls",
            f"{name} tiny run",
            lambda fn=fn, cfg=cfg: fn("CartPole-v1", cfg),
            lambda h: len(h) >= 1,
        )
        bad(
            "other-config",
            f"{name} given {type(other).__name__}",
            lambda fn=fn, o=other: fn("CartPole-v1", o),
            TypeError,
            "cfg",
        )
        bad(
            "other-config",
            f"{name} given a dict",
            lambda fn=fn: fn("CartPole-v1", {"lr": 0.1}),
            TypeError,
            "cfg",
        )
        bad(
            "values",
            f"{name} unknown env",
            lambda fn=fn, cfg=cfg: fn("NoSuchEnv-v0", cfg),
            ValueError,
            "env_id",
        )
        bad(
            "types",
            f"{name} env_id=None",
            lambda fn=fn, cfg=cfg: fn(None, cfg),
            TypeError,
            "env_id",
        )

        def mutate(fn=fn, cfg=cfg):
            changed = dataclasses.replace(cfg)
            field = (
                "lr"
                if hasattr(changed, "lr")
                else "step_size"
                if hasattr(changed, "step_size")
                else "max_kl"
            )
            setattr(changed, field, -0.2)
            return fn("CartPole-v1", changed)

        bad(
            "configs",
            f"{name} config edited to lr=-0.2 after construction",
            mutate,
            ValueError,
            "lr",
            "step_size",
            "max_kl",
        )
    tr = reinforce.train_reinforce
    bad(
        "types",
        "train_reinforce policy=str",
        lambda: tr("CartPole-v1", R, policy="p"),
        TypeError,
        "policy",
    )
    bad(
        "mismatch",
        "train_reinforce Gaussian policy on CartPole",
        lambda: tr("CartPole-v1", R, policy=policies.GaussianPolicy(4, 1)),
        TypeError,
        "policy",
    )
    bad(
        "types",
        "train_reinforce value_fn=str",
        lambda: tr("CartPole-v1", R, value_fn="v"),
        TypeError,
        "value_fn",
    )
    bad(
        "mismatch",
        "train_reinforce value_fn obs_dim 3",
        lambda: tr("CartPole-v1", R, value_fn=policies.ValueNet(3)),
        ValueError,
        "value_fn",
    )
    bad(
        "types",
        "train_vpg policy=str",
        lambda: vpg.train_vpg("CartPole-v1", V, policy="p"),
        TypeError,
        "policy",
    )
    bad(
        "mismatch",
        "train_numpy_pg continuous env",
        lambda: numpy_pg.train_numpy_pg("rlbook/ContinuousCartPole-v1", N),
        TypeError,
        "env_id",
    )
    rw = reinforce.reinforce_weights
    batch = rollout.collect(cartpole(), CAT, 4, seed=0)
    ok("controls", "reinforce_weights", lambda: rw(batch))
    bad(
        "values",
        "reinforce_weights weights='returns'",
        lambda: rw(batch, weights="returns"),
        ValueError,
        "weights",
    )
    bad(
        "values",
        "reinforce_weights baseline='values'",
        lambda: rw(batch, baseline="values"),
        ValueError,
        "baseline",
    )
    bad(
        "values",
        "reinforce_weights gamma=2",
        lambda: rw(batch, gamma=2.0),
        ValueError,
        "gamma",
    )
    bad("types", "reinforce_weights batch=dict", lambda: rw({}), TypeError, "batch")
    bad(
        "types",
        "reinforce_weights normalize_weights='yes'",
        lambda: rw(batch, normalize_weights="yes"),
        TypeError,
        "normalize_weights",
    )
    bad(
        "mismatch",
        "reinforce_weights values of wrong shape",
        lambda: rw(batch, baseline="value", values=torch.zeros(2, 2)),
        ValueError,
        "values",
    )
    bad(
        "types",
        "reinforce_weights numpy values",
        lambda: rw(batch, baseline="value", values=np.zeros((4, 2))),
        TypeError,
        "values",
    )
    bad(
        "non-finite",
        "reinforce_weights nan values",
        lambda: rw(batch, baseline="value", values=torch.full((4, 2), math.nan)),
        ValueError,
        "values",
    )
    bad(
        "values",
        "vpg_weights kind='x'",
        lambda: vpg.vpg_weights(batch, "x"),
        ValueError,
        "kind",
    )
    fv = reinforce.fit_value
    vnet = policies.ValueNet(4, (8,))
    opt = torch.optim.Adam(vnet.parameters())
    ok(
        "controls",
        "fit_value",
        lambda: fv(vnet, opt, batch.obs, batch.rewards, batch.mask, 1),
    )
    bad(
        "values",
        "fit_value steps=0",
        lambda: fv(vnet, opt, batch.obs, batch.rewards, batch.mask, 0),
        ValueError,
        "steps",
    )
    bad(
        "types",
        "fit_value numpy targets",
        lambda: fv(vnet, opt, batch.obs, batch.rewards.numpy(), batch.mask, 1),
        TypeError,
        "returns",
        "targets",
    )
    bad(
        "types",
        "fit_value optimizer=str",
        lambda: fv(vnet, "adam", batch.obs, batch.rewards, batch.mask, 1),
        TypeError,
        "optimizer",
    )
    g = numpy_pg.grad_log_softmax_policy
    theta, x = np.zeros((5, 2)), np.ones((3, 5))
    ok("controls", "grad_log_softmax_policy", lambda: g(theta, x, np.array([0, 1, 1])))
    bad(
        "mismatch",
        "grad_log_softmax_policy x width",
        lambda: g(theta, np.ones((3, 4)), np.array([0, 1, 1])),
        ValueError,
        "x",
    )
    bad(
        "mismatch",
        "grad_log_softmax_policy actions length",
        lambda: g(theta, x, np.array([0, 1])),
        ValueError,
        "actions",
    )
    bad(
        "values",
        "grad_log_softmax_policy action out of range",
        lambda: g(theta, x, np.array([0, 1, 2])),
        ValueError,
        "actions",
    )
    bad(
        "dtypes",
        "grad_log_softmax_policy float actions",
        lambda: g(theta, x, np.array([0.0, 1.0, 1.0])),
        TypeError,
        "actions",
    )
    bad(
        "types",
        "grad_log_softmax_policy torch x",
        lambda: g(theta, torch.ones(3, 5), np.array([0, 1, 1])),
        TypeError,
        "x",
    )


# ------------------------------------------------------------------------------ checkpoints


def checkpoint_cases():
    save, load, CE = (
        checkpoint.save_policy,
        checkpoint.load_policy,
        checkpoint.CheckpointError,
    )
    good = TMP / "good.pt"
    save(CAT, good)
    raw = good.read_bytes()
    ok(
        "checkpoints",
        "load_policy of a saved policy",
        lambda: load(good),
        lambda p: torch.equal(p.net[0].weight, CAT.net[0].weight),
    )
    ok(
        "checkpoints",
        "save/load GaussianPolicy",
        lambda: load(save(GAUSS, TMP / "g.pt")),
        lambda p: isinstance(p, policies.GaussianPolicy),
    )

    def write(name, data):
        path = TMP / name
        path.write_bytes(data)
        return path

    bad(
        "checkpoints",
        "load_policy empty file",
        lambda: load(write("empty.pt", b"")),
        CE,
        "empty",
    )
    bad(
        "checkpoints",
        "load_policy truncated file",
        lambda: load(write("cut.pt", raw[: len(raw) // 2])),
        CE,
        "truncated",
    )
    bad(
        "checkpoints",
        "load_policy random bytes",
        lambda: load(write("junk.pt", bytes(range(256)) * 4)),
        CE,
        "not a policy checkpoint",
    )
    weight = CAT.net[0].weight.detach().contiguous().numpy().tobytes()
    at = raw.find(weight)
    flipped = raw[:at] + bytes(b ^ 0xFF for b in raw[at : at + 8]) + raw[at + 8 :]
    bad(
        "checkpoints",
        "load_policy weight bytes overwritten",
        lambda: load(write("flip.pt", flipped)),
        CE,
        "corrupted",
    )
    torch.save(CAT.state_dict(), TMP / "bare.pt")
    bad(
        "checkpoints",
        "load_policy of a bare state_dict",
        lambda: load(TMP / "bare.pt"),
        CE,
        "not a policy checkpoint",
    )
    torch.save(CAT, TMP / "module.pt")
    bad(
        "checkpoints",
        "load_policy of a pickled module",
        lambda: load(TMP / "module.pt"),
        CE,
        "not a policy checkpoint",
    )

    def edited(name, **changes):
        data = torch.load(good, weights_only=True)
        data.update(changes)
        torch.save(data, TMP / name)
        return TMP / name

    bad(
        "checkpoints",
        "load_policy unknown class",
        lambda: load(edited("cls.pt", **{"class": "os.system"})),
        CE,
        "os.system",
    )
    bad(
        "checkpoints",
        "load_policy future version",
        lambda: load(edited("ver.pt", version=99)),
        CE,
        "version",
    )
    bad(
        "checkpoints",
        "load_policy no checksum",
        lambda: load(edited("nosum.pt", checksum=None)),
        CE,
        "corrupted",
    )
    bad(
        "checkpoints",
        "load_policy nonsense kwargs",
        lambda: load(
            edited("kw.pt", kwargs={"obs_dim": -1, "n_actions": 2, "hidden": [8]})
        ),
        CE,
        "rebuild",
    )
    bad(
        "checkpoints",
        "load_policy other architecture",
        lambda: load(
            edited("arch.pt", kwargs={"obs_dim": 4, "n_actions": 2, "hidden": [16]})
        ),
        CE,
        "architecture",
    )
    bad(
        "checkpoints",
        "load_policy missing file",
        lambda: load(TMP / "missing.pt"),
        FileNotFoundError,
        "missing.pt",
    )
    bad(
        "checkpoints",
        "load_policy of a folder",
        lambda: load(TMP),
        (FileNotFoundError, IsADirectoryError, CE),
        str(TMP),
    )
    bad("types", "load_policy path=None", lambda: load(None), TypeError, "path")
    bad("types", "load_policy path=3", lambda: load(3), TypeError, "path")
    bad(
        "values",
        "load_policy map_location='nonsense'",
        lambda: load(good, map_location="nonsense"),
        ValueError,
        "map_location",
    )
    bad(
        "types",
        "load_policy map_location=3.5",
        lambda: load(good, map_location=3.5),
        TypeError,
        "map_location",
    )

    class Sub(policies.CategoricalPolicy):
        pass

    bad(
        "checkpoints",
        "save_policy of a subclass",
        lambda: save(Sub(4, 2), TMP / "sub.pt"),
        TypeError,
        "policy",
    )
    bad(
        "types",
        "save_policy of nn.Linear",
        lambda: save(nn.Linear(2, 2), TMP / "lin.pt"),
        TypeError,
        "policy",
    )
    bad(
        "types",
        "save_policy of a str",
        lambda: save("policy", TMP / "s.pt"),
        TypeError,
        "policy",
    )
    bad("types", "save_policy path=None", lambda: save(CAT, None), TypeError, "path")
    relu = policies.CategoricalPolicy(4, 2, (8,))
    relu.net[1] = nn.ReLU()
    bad(
        "checkpoints",
        "save_policy of a ReLU network",
        lambda: save(relu, TMP / "relu.pt"),
        ValueError,
        "net",
    )


# ------------------------------------------------------------------------------ history, plotting


def history_cases():
    H = history.History
    h = H()
    h.log(env_steps=10, mean_return=1.0)
    h.log(env_steps=20, mean_return=3.0)
    ok(
        "controls",
        "History.first_reach",
        lambda: h.first_reach("mean_return", 2.0),
        lambda r: r == 20.0,
    )
    ok(
        "numpy-ints",
        "History.log np.int64 value",
        lambda: H().log(env_steps=np.int64(3)),
    )
    ok("dtypes", "History.log 0-d tensor", lambda: H().log(loss=T(0.5)))
    bad(
        "types",
        "History.log str value",
        lambda: H().log(loss="high"),
        TypeError,
        "loss",
    )
    bad(
        "types", "History.log None value", lambda: H().log(loss=None), TypeError, "loss"
    )
    bad(
        "shapes",
        "History.log 2-entry tensor",
        lambda: H().log(loss=T([1.0, 2.0])),
        TypeError,
        "loss",
    )
    bad(
        "types",
        "History.log list value",
        lambda: H().log(loss=[1.0]),
        TypeError,
        "loss",
    )
    bad("values", "History unknown key", lambda: h["nope"], KeyError, "nope")
    bad(
        "values",
        "first_reach unknown key",
        lambda: h.first_reach("nope", 1.0),
        KeyError,
        "nope",
    )
    bad(
        "types",
        "first_reach threshold='2'",
        lambda: h.first_reach("mean_return", "2"),
        TypeError,
        "threshold",
    )
    bad(
        "non-finite",
        "first_reach threshold=nan",
        lambda: h.first_reach("mean_return", math.nan),
        ValueError,
        "threshold",
    )
    bad("types", "first_reach key=3", lambda: h.first_reach(3, 1.0), TypeError, "key")
    cg = plotting.curves_on_grid
    ok(
        "controls",
        "curves_on_grid",
        lambda: cg([h, h], num=5),
        lambda r: r[1].shape == (2, 5),
    )
    ok("numpy-ints", "curves_on_grid num=np.int64(5)", lambda: cg([h], num=np.int64(5)))
    bad("empty", "curves_on_grid []", lambda: cg([]), ValueError, "histories")
    bad("types", "curves_on_grid of one History", lambda: cg(h), TypeError, "histories")
    bad(
        "types",
        "curves_on_grid list of dicts",
        lambda: cg([{"a": 1}]),
        TypeError,
        "histories",
    )
    bad("values", "curves_on_grid num=0", lambda: cg([h], num=0), ValueError, "num")
    bad("values", "curves_on_grid num=-1", lambda: cg([h], num=-1), ValueError, "num")
    bad("types", "curves_on_grid num=5.0", lambda: cg([h], num=5.0), TypeError, "num")
    bad(
        "values",
        "curves_on_grid y missing",
        lambda: cg([h], y="nope"),
        (KeyError, ValueError),
        "nope",
    )
    plc = plotting.plot_learning_curves
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def plot(*args, **kwargs):
        try:
            return plc(*args, **kwargs)
        finally:
            plt.close("all")

    ok("controls", "plot_learning_curves", lambda: plot({"a": [h, h]}))
    bad(
        "values",
        "plot_learning_curves band='iqr'",
        lambda: plot({"a": [h]}, band="iqr"),
        ValueError,
        "band",
    )
    bad("types", "plot_learning_curves runs=list", lambda: plot([h]), TypeError, "runs")
    bad(
        "types",
        "plot_learning_curves runs={'a': History}",
        lambda: plot({"a": h}),
        TypeError,
        "runs",
    )
    bad("empty", "plot_learning_curves runs={}", lambda: plot({}), ValueError, "runs")
    bad(
        "types",
        "plot_learning_curves threshold='475'",
        lambda: plot({"a": [h]}, threshold="475"),
        TypeError,
        "threshold",
    )
    bad(
        "non-finite",
        "plot_learning_curves threshold=nan",
        lambda: plot({"a": [h]}, threshold=math.nan),
        ValueError,
        "threshold",
    )
    bad(
        "types",
        "plot_learning_curves ax='ax'",
        lambda: plot({"a": [h]}, ax="ax"),
        TypeError,
        "ax",
    )


# ------------------------------------------------------------------------------ video, display


def video_cases():
    frame = np.zeros((8, 8, 3), np.uint8)
    tg = video.to_gif
    ok(
        "controls",
        "to_gif uint8",
        lambda: tg([frame, frame]),
        lambda b: b.startswith(b"GIF8"),
    )
    ok(
        "numpy-ints",
        "to_gif every=np.int64(1), colors=np.int64(16)",
        lambda: tg([frame], every=np.int64(1), colors=np.int64(16)),
    )

    def grey(data):
        from PIL import Image

        im = Image.open(io.BytesIO(data)).convert("RGB")
        return np.asarray(im).mean() > 100

    ok(
        "dtypes",
        "to_gif float32 frame in [0, 1] is not black",
        lambda: tg([np.full((8, 8, 3), 0.8, np.float32)], scale=1.0),
        grey,
    )
    bad(
        "dtypes",
        "to_gif float frame of 0-255",
        lambda: tg([np.full((8, 8, 3), 200.0)]),
        ValueError,
        "frames",
    )
    bad(
        "non-finite",
        "to_gif nan frame",
        lambda: tg([np.full((8, 8, 3), math.nan)]),
        ValueError,
        "frames",
    )
    bad(
        "shapes",
        "to_gif 2-d frame",
        lambda: tg([np.zeros((8, 8), np.uint8)]),
        ValueError,
        "frames",
    )
    bad(
        "mismatch",
        "to_gif frames of two sizes",
        lambda: tg([frame, np.zeros((4, 4, 3), np.uint8)]),
        ValueError,
        "frames",
    )
    bad("empty", "to_gif no frames", lambda: tg([]), ValueError, "frames")
    bad("types", "to_gif frames=None", lambda: tg(None), TypeError, "frames")
    bad(
        "dtypes",
        "to_gif int64 frame of 300",
        lambda: tg([np.full((8, 8, 3), 300)]),
        ValueError,
        "frames",
    )
    bad(
        "dtypes",
        "to_gif str frame",
        lambda: tg([np.full((8, 8, 3), "a")]),
        TypeError,
        "frames",
    )
    bad("values", "to_gif fps=0", lambda: tg([frame], fps=0), ValueError, "fps")
    bad(
        "non-finite",
        "to_gif scale=nan",
        lambda: tg([frame], scale=math.nan),
        ValueError,
        "scale",
    )
    bad(
        "values",
        "to_gif colors=300",
        lambda: tg([frame], colors=300),
        ValueError,
        "colors",
    )
    bad("types", "to_gif every=1.5", lambda: tg([frame], every=1.5), TypeError, "every")
    bad("types", "to_gif path=3", lambda: tg([frame], path=3), TypeError, "path")
    sg = video.show_gif
    ok("controls", "show_gif of frames", lambda: sg([frame]))
    bad(
        "values",
        "show_gif bytes not a GIF",
        lambda: sg(b"PNG..."),
        ValueError,
        "frames_or_bytes",
    )
    bad(
        "types",
        "show_gif bytes with options",
        lambda: sg(tg([frame]), fps=3),
        TypeError,
        "fps",
    )
    bad("types", "show_gif of None", lambda: sg(None), TypeError, "frames")
    rec = video.record_episode
    ok(
        "controls",
        "record_episode",
        lambda: rec("CartPole-v1", lambda o: 0, max_steps=3),
        lambda fr: len(fr) >= 2,
    )
    ok(
        "numpy-ints",
        "record_episode np.int64 action",
        lambda: rec("CartPole-v1", lambda o: np.int64(1), max_steps=2),
    )
    ok(
        "dtypes",
        "record_episode tensor action",
        lambda: rec("CartPole-v1", lambda o: T(1), max_steps=2),
    )
    bad(
        "types",
        "record_episode policy_fn=None",
        lambda: rec("CartPole-v1", None),
        TypeError,
        "policy_fn",
    )
    bad(
        "values",
        "record_episode unknown env",
        lambda: rec("NoSuchEnv-v0", lambda o: 0),
        ValueError,
        "env_or_id",
    )
    bad(
        "types",
        "record_episode env_or_id=3",
        lambda: rec(3, lambda o: 0),
        TypeError,
        "env_or_id",
    )
    bad(
        "values",
        "record_episode max_steps=-1",
        lambda: rec("CartPole-v1", lambda o: 0, max_steps=-1),
        ValueError,
        "max_steps",
    )
    bad(
        "values",
        "record_episode every=0",
        lambda: rec("CartPole-v1", lambda o: 0, every=0),
        ValueError,
        "every",
    )
    bad(
        "values",
        "record_episode seed=-1",
        lambda: rec("CartPole-v1", lambda o: 0, seed=-1),
        ValueError,
        "seed",
    )
    bad(
        "values",
        "record_episode policy_fn returns 'left'",
        lambda: rec("CartPole-v1", lambda o: "left", max_steps=2),
        (TypeError, ValueError),
        "policy_fn",
    )
    bad(
        "values",
        "record_episode policy_fn returns 2 actions",
        lambda: rec("CartPole-v1", lambda o: [0, 1], max_steps=2),
        ValueError,
        "policy_fn",
    )
    bad(
        "values",
        "record_episode action 0.7 (would be truncated to 0)",
        lambda: rec("CartPole-v1", lambda o: 0.7, max_steps=2),
        ValueError,
        "policy_fn",
    )
    bad(
        "values",
        "record_episode action 7 of 2",
        lambda: rec("CartPole-v1", lambda o: 7, max_steps=2),
        ValueError,
        "policy_fn",
    )
    bad(
        "values",
        "record_episode env without rgb_array",
        lambda: rec(gym.make("CartPole-v1"), lambda o: 0),
        ValueError,
        "render",
    )
    ss = display.show_source
    ok(
        "controls",
        "show_source",
        lambda: ss(returns.reward_to_go),
        lambda m: "def reward_to_go" in m.data,
    )
    bad("types", "show_source of 42", lambda: ss(42), TypeError, "obj")
    bad("types", "show_source of a builtin", lambda: ss(len), TypeError, "obj")
    bad(
        "types",
        "show_source title='yes'",
        lambda: ss(returns.reward_to_go, title="yes"),
        TypeError,
        "title",
    )


# ------------------------------------------------------------------------------ claims, utils


def claims_utils_cases():
    os.environ.pop("RLBOOK_CLAIMS_RECORD", None)
    cl, CF = claims.claim, claims.ClaimFailed
    ok("controls", "claim holds", lambda: cl("ch1-probe", "x", 0.5, below=1.0))
    ok(
        "numpy-ints",
        "claim np.int64 value",
        lambda: cl("ch1-probe", "x", np.int64(0), below=1),
    )
    ok(
        "dtypes",
        "claim 0-d tensor value",
        lambda: cl("ch1-probe", "x", T(0.5), below=1.0),
    )
    bad(
        "values",
        "claim fails",
        lambda: cl("ch1-probe", "x", 2.0, below=1.0),
        CF,
        "ch1-probe",
    )
    bad(
        "non-finite",
        "claim nan value fails",
        lambda: cl("ch1-probe", "x", math.nan, below=1.0),
        CF,
        "ch1-probe",
    )
    bad(
        "values",
        "claim bad id",
        lambda: cl("Chapter one", "x", 0.5, below=1.0),
        ValueError,
        "id",
    )
    bad(
        "types", "claim id=None", lambda: cl(None, "x", 0.5, below=1.0), TypeError, "id"
    )
    bad(
        "types",
        "claim text=None",
        lambda: cl("ch1-probe", None, 0.5, below=1.0),
        TypeError,
        "text",
    )
    bad(
        "values",
        "claim empty text",
        lambda: cl("ch1-probe", "  ", 0.5, below=1.0),
        ValueError,
        "text",
    )
    bad(
        "types",
        "claim value='0.5'",
        lambda: cl("ch1-probe", "x", "0.5", below=1.0),
        TypeError,
        "value",
    )
    bad(
        "types",
        "claim value=[0.5]",
        lambda: cl("ch1-probe", "x", [0.5], below=1.0),
        TypeError,
        "value",
    )
    bad(
        "types",
        "claim value=True",
        lambda: cl("ch1-probe", "x", True, below=1.0),
        TypeError,
        "value",
    )
    bad(
        "shapes",
        "claim value=tensor of 2",
        lambda: cl("ch1-probe", "x", T([0.5, 0.6]), below=1.0),
        (TypeError, ValueError),
        "value",
    )
    bad(
        "values",
        "claim no bound",
        lambda: cl("ch1-probe", "x", 0.5),
        ValueError,
        "below",
    )
    bad(
        "non-finite",
        "claim below=nan",
        lambda: cl("ch1-probe", "x", 0.5, below=math.nan),
        ValueError,
        "below",
    )
    bad(
        "non-finite",
        "claim above=inf",
        lambda: cl("ch1-probe", "x", 0.5, above=math.inf),
        ValueError,
        "above",
    )
    bad(
        "types",
        "claim below='1'",
        lambda: cl("ch1-probe", "x", 0.5, below="1"),
        TypeError,
        "below",
    )
    bad(
        "values",
        "claim empty range",
        lambda: cl("ch1-probe", "x", 0.5, below=0.0, above=1.0),
        ValueError,
        "above",
    )
    bad(
        "types",
        "claim z_of=True",
        lambda: cl("ch1-probe", "x", 0.5, below=5.0, z_of=True),
        TypeError,
        "z_of",
    )
    bad(
        "values",
        "claim z_of=0",
        lambda: cl("ch1-probe", "x", 0.5, below=5.0, z_of=0),
        ValueError,
        "z_of",
    )
    bad(
        "values",
        "claim z_of with above",
        lambda: cl("ch1-probe", "x", 0.5, above=0.0, z_of=3),
        ValueError,
        "z_of",
    )
    ok("numpy-ints", "set_seed(np.int64(3))", lambda: utils.set_seed(np.int64(3)))
    for fname, fn in (
        ("set_seed", utils.set_seed),
        ("rng", utils.rng),
        ("generator", utils.generator),
    ):
        bad("values", f"{fname}(-1)", lambda fn=fn: fn(-1), ValueError, "seed")
        bad("types", f"{fname}('1')", lambda fn=fn: fn("1"), TypeError, "seed")
        bad("types", f"{fname}(1.5)", lambda fn=fn: fn(1.5), TypeError, "seed")
        bad("types", f"{fname}(True)", lambda fn=fn: fn(True), TypeError, "seed")
    bad("types", "set_seed(None)", lambda: utils.set_seed(None), TypeError, "seed")
    ok(
        "controls",
        "rng(None) draws fresh entropy (graders' default)",
        lambda: utils.rng(None),
    )
    bad("types", "generator(None)", lambda: utils.generator(None), TypeError, "seed")

    def with_env(name, value, fn):
        old = os.environ.get(name)
        os.environ[name] = value
        try:
            return fn()
        finally:
            if old is None:
                os.environ.pop(name)
            else:
                os.environ[name] = old

    bad(
        "values",
        "RLBOOK_SEED_OFFSET=abc",
        lambda: with_env("RLBOOK_SEED_OFFSET", "abc", lambda: utils.set_seed(0)),
        ValueError,
        "RLBOOK_SEED_OFFSET",
    )
    bad(
        "values",
        "RLBOOK_SEED_OFFSET=-5",
        lambda: with_env("RLBOOK_SEED_OFFSET", "-5", utils.seed_offset),
        ValueError,
        "RLBOOK_SEED_OFFSET",
    )
    bad(
        "values",
        "RLBOOK_THREADS=0",
        lambda: with_env("RLBOOK_THREADS", "0", utils.threads),
        ValueError,
        "RLBOOK_THREADS",
    )
    bad(
        "values",
        "RLBOOK_DEVICE=gpu0",
        lambda: with_env("RLBOOK_DEVICE", "gpu0", utils.device),
        ValueError,
        "RLBOOK_DEVICE",
    )


# ------------------------------------------------------------------------------ graders


def grader_cases():
    good_rtg = returns.reward_to_go

    def edits_in_place(rewards, dones, gamma):
        rewards *= 1.0
        out = good_rtg(rewards, dones, gamma)
        rewards[0] = 99.0
        return out

    rtg_graders = (
        ("check_reward_to_go", ch3.check_reward_to_go, good_rtg),
        (
            "check_discounted_returns",
            ch1.check_discounted_returns,
            returns.discounted_returns,
        ),
    )
    for name, grader, right in rtg_graders:
        ok(
            "graders",
            f"{name} right answer",
            lambda g=grader, r=right: g(r, n_random=2),
        )
        bad(
            "graders",
            f"{name} fn returns a str",
            lambda g=grader: g(lambda **k: "done"),
            ExerciseError,
            "returned a str",
        )
        bad(
            "graders",
            f"{name} fn returns None",
            lambda g=grader: g(lambda **k: None),
            ExerciseError,
            "return",
        )
        bad(
            "graders",
            f"{name} fn returns a list of tensors",
            lambda g=grader: g(lambda rewards, **k: [rewards]),
            ExerciseError,
            "shape",
            "returned",
        )
        bad(
            "graders",
            f"{name} fn returns a dict",
            lambda g=grader: g(lambda **k: {"a": 1}),
            ExerciseError,
            "returned a dict",
        )
        bad(
            "graders",
            f"{name} fn raises",
            lambda g=grader: g(lambda **k: 1 / 0),
            ExerciseError,
            "ZeroDivisionError",
        )
        bad(
            "graders",
            f"{name} fn has wrong parameters",
            lambda g=grader: g(lambda x: x),
            ExerciseError,
            "argument",
        )
        bad(
            "graders",
            f"{name} fn not callable",
            lambda g=grader: g("reward_to_go"),
            TypeError,
            "fn",
        )
        bad(
            "graders",
            f"{name} fn returns a wrong shape",
            lambda g=grader: g(lambda rewards, **k: rewards[0]),
            ExerciseError,
            "shape",
        )
        bad(
            "graders",
            f"{name} seed=-1",
            lambda g=grader, r=right: g(r, seed=-1),
            ValueError,
            "seed",
        )
        bad(
            "graders",
            f"{name} n_random='5'",
            lambda g=grader, r=right: g(r, n_random="5"),
            TypeError,
            "n_random",
        )
        bad(
            "graders",
            f"{name} n_random=-1",
            lambda g=grader, r=right: g(r, n_random=-1),
            ValueError,
            "n_random",
        )
    bad(
        "graders",
        "check_reward_to_go fn edits its input in place",
        lambda: ch3.check_reward_to_go(edits_in_place),
        ExerciseError,
        "in place",
    )

    def clip_numpy(ratio, advantages, clip_coef):
        r, a = ratio.numpy(), advantages.numpy()
        return torch.as_tensor(
            np.minimum(r * a, np.clip(r, 1 - clip_coef, 1 + clip_coef) * a)
        )

    def clip_right(ratio, advantages, clip_coef):
        clipped = torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
        return torch.minimum(ratio * advantages, clipped * advantages)

    ok(
        "graders",
        "check_clip_objective right answer",
        lambda: ch6_1.check_clip_objective(clip_right, n_random=2),
    )
    bad(
        "graders",
        "check_clip_objective .numpy() on a grad tensor",
        lambda: ch6_1.check_clip_objective(clip_numpy),
        ExerciseError,
        ".detach()",
    )
    bad(
        "graders",
        "check_clip_objective fn returns a float",
        lambda: ch6_1.check_clip_objective(lambda **k: 0.5),
        ExerciseError,
        "tensor",
        "returned",
    )
    bad(
        "graders",
        "check_gae fn returns a str",
        lambda: ch6.check_gae(lambda **k: "gae"),
        ExerciseError,
        "returned",
    )
    bad(
        "graders",
        "check_gae fn returns a pair (advantages, returns)",
        lambda: ch6.check_gae(lambda rewards, **k: (rewards, rewards)),
        ExerciseError,
        "shape",
    )
    bad(
        "graders",
        "check_normalize fn edits x in place",
        lambda: ch4.check_normalize(_normalize_in_place),
        ExerciseError,
        "in place",
    )
    bad(
        "graders",
        "check_normalize fn returns numpy of strings",
        lambda: ch4.check_normalize(lambda **k: np.array(["a"])),
        ExerciseError,
        "returned",
    )
    bad(
        "graders",
        "check_value_loss fn returns a python float (.item())",
        lambda: ch6_2.check_value_loss(_value_loss_item),
        ExerciseError,
        "gradient",
    )
    bad(
        "graders",
        "check_value_loss .numpy() on a grad tensor",
        lambda: ch6_2.check_value_loss(_value_loss_numpy),
        ExerciseError,
        ".detach()",
    )
    bad(
        "graders",
        "check_reinforce_loop fn not callable",
        lambda: ch4.check_reinforce_loop(None),
        TypeError,
        "fn",
    )
    bad(
        "graders",
        "check_reinforce_loop fn raises",
        lambda: ch4.check_reinforce_loop(lambda env_id, cfg, record: 1 / 0),
        ExerciseError,
        "ZeroDivisionError",
    )
    bad(
        "graders",
        "check_train_ppo fn records nothing",
        lambda: ch6_2.check_train_ppo(lambda env_id, cfg, record: None),
        ExerciseError,
        "record",
    )


def _normalize_in_place(**kwargs):
    x = next(iter(kwargs.values()))
    x -= x.mean()
    x /= x.std(correction=0) + 1e-8
    return x


def _value_loss_item(new_values, old_values, advantages):
    return (0.5 * ((new_values - (advantages + old_values)) ** 2).mean()).item()


def _value_loss_numpy(new_values, old_values, advantages):
    returns = (advantages + old_values).numpy()
    return torch.as_tensor(0.5 * np.mean((new_values.numpy() - returns) ** 2))


# ------------------------------------------------------------------------------ the rest


def other_module_cases():
    """ppo's and ars's helpers, trpo, optim, exact, envs, numpy_pg, and every grader."""
    from rlbook import exact, optim
    from rlbook.checks import (
        check_ars_update,
        check_clip_objective,
        check_conjugate_gradient,
        check_discounted_returns,
        check_fisher_vector_product,
        check_gae,
        check_gaussian_log_prob,
        check_gaussian_score,
        check_grad_log_softmax,
        check_minibatch_advantages,
        check_minibatches,
        check_normalize,
        check_per_decision_is,
        check_ppo_update,
        check_reinforce_loop,
        check_reward_to_go,
        check_reward_to_go_estimates,
        check_score_categorical,
        check_train_ppo,
        check_trajectory_weights,
        check_value_loss,
    )
    from rlbook.envs import PixelcopterEnv, hover_policy, probe_errors

    ev = losses.explained_variance
    ok(
        "controls",
        "explained_variance",
        lambda: ev(T([1.0, 2.0]), T([1.0, 2.0])),
        lambda r: r == 1.0,
    )
    bad(
        "types",
        "explained_variance numpy",
        lambda: ev(np.ones(2), T([1.0, 2.0])),
        TypeError,
        "predictions",
    )
    bad(
        "mismatch",
        "explained_variance shapes",
        lambda: ev(T([1.0]), T([1.0, 2.0])),
        ValueError,
        "targets",
    )
    bad(
        "empty",
        "explained_variance empty",
        lambda: ev(torch.zeros(0), torch.zeros(0)),
        ValueError,
        "predictions",
    )
    oi = policies.orthogonal_init
    bad("types", "orthogonal_init net=str", lambda: oi("net", 1.0), TypeError, "net")
    bad(
        "values",
        "orthogonal_init output_gain=-1",
        lambda: oi(policies.mlp([2, 2]), -1.0),
        ValueError,
        "output_gain",
    )
    pa = returns.ppo_advantages
    batch = rollout.collect(cartpole(), CAT, 4, seed=0)
    ok("controls", "ppo_advantages", lambda: pa(batch, VNET, 0.99, 0.95))
    bad(
        "values",
        "ppo_advantages gamma=2",
        lambda: pa(batch, VNET, 2.0, 0.95),
        ValueError,
        "gamma",
    )
    bad(
        "types",
        "ppo_advantages rollout=dict",
        lambda: pa({}, VNET, 0.99, 0.95),
        TypeError,
        "rollout",
    )
    bad(
        "types",
        "ppo_advantages value_fn=str",
        lambda: pa(batch, "v", 0.99, 0.95),
        TypeError,
        "value_fn",
    )
    bad(
        "types",
        "ppo_advantages handle_truncation='yes'",
        lambda: pa(batch, VNET, 0.99, 0.95, "yes"),
        TypeError,
        "handle_truncation",
    )

    au = ars.ars_update
    rp, rm, deltas = np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.ones((2, 1, 4))
    ok("controls", "ars_update", lambda: au(rp, rm, deltas, 1, 0.1))
    ok(
        "numpy-ints",
        "ars_update b=np.int64(2)",
        lambda: au(rp, rm, deltas, np.int64(2), 0.1),
    )
    ok(
        "dtypes",
        "ars_update int returns promoted",
        lambda: au(np.array([1, 2]), np.array([0, 1]), deltas, 2, 0.1),
    )
    bad(
        "values",
        "ars_update b=3 of 2",
        lambda: au(rp, rm, deltas, 3, 0.1),
        ValueError,
        "b",
    )
    bad(
        "non-finite",
        "ars_update nan return",
        lambda: au(np.array([math.nan, 1.0]), rm, deltas, 1, 0.1),
        ValueError,
        "r_plus",
    )
    bad(
        "mismatch",
        "ars_update deltas rows",
        lambda: au(rp, rm, np.ones((3, 1, 4)), 1, 0.1),
        ValueError,
        "deltas",
    )
    bad(
        "values",
        "ars_update step_size=-1",
        lambda: au(rp, rm, deltas, 1, -1.0),
        ValueError,
        "step_size",
    )
    bad(
        "non-finite",
        "ars_update step_size=nan",
        lambda: au(rp, rm, deltas, 1, math.nan),
        ValueError,
        "step_size",
    )
    bad(
        "types",
        "ars_update scale_by_reward_std='no'",
        lambda: au(rp, rm, deltas, 1, 0.1, "no"),
        TypeError,
        "scale_by_reward_std",
    )
    bad(
        "non-finite",
        "ars_update nan deltas",
        lambda: au(rp, rm, np.full((2, 1, 4), math.nan), 1, 0.1),
        ValueError,
        "deltas",
    )
    LP_ = ars.LinearPolicy
    ok(
        "controls",
        "LinearPolicy",
        lambda: LP_(np.zeros((2, 4)), np.zeros(4), np.ones(4), "discrete"),
    )
    bad(
        "values",
        "LinearPolicy action_kind='x'",
        lambda: LP_(np.zeros((2, 4)), np.zeros(4), np.ones(4), "x"),
        ValueError,
        "action_kind",
    )
    bad(
        "mismatch",
        "LinearPolicy obs_mean length",
        lambda: LP_(np.zeros((2, 4)), np.zeros(3), np.ones(4), "discrete"),
        ValueError,
        "obs_mean",
    )
    bad(
        "values",
        "LinearPolicy obs_std=0",
        lambda: LP_(np.zeros((2, 4)), np.zeros(4), np.zeros(4), "discrete"),
        ValueError,
        "obs_std",
    )
    bad(
        "types",
        "LinearPolicy weights=str",
        lambda: LP_("w", np.zeros(4), np.ones(4), "discrete"),
        TypeError,
        "weights",
    )
    rms = ars.RunningMeanStd
    bad("types", "RunningMeanStd shape=4.0", lambda: rms(4.0), TypeError, "shape")
    bad(
        "mismatch",
        "RunningMeanStd.update wrong width",
        lambda: rms((4,)).update(np.ones((2, 3))),
        ValueError,
        "x",
    )
    bad(
        "non-finite",
        "RunningMeanStd.update nan",
        lambda: rms((4,)).update(np.full((2, 4), math.nan)),
        ValueError,
        "x",
    )
    la = ars.linear_actions
    bad(
        "mismatch",
        "linear_actions weights width",
        lambda: la(np.zeros((2, 3)), np.zeros((1, 4)), gym.spaces.Discrete(2)),
        ValueError,
        "weights",
    )

    ls = trpo.line_search
    x0 = torch.zeros(2)
    ok(
        "controls",
        "line_search",
        lambda: ls(
            lambda x: float(x.sum()), lambda x: 0.0, x0, torch.ones(2), 2.0, 0.01
        ),
    )
    bad(
        "values",
        "line_search max_kl=0",
        lambda: ls(lambda x: 0.0, lambda x: 0.0, x0, torch.ones(2), 1.0, 0.0),
        ValueError,
        "max_kl",
    )
    bad(
        "mismatch",
        "line_search full_step shape",
        lambda: ls(lambda x: 0.0, lambda x: 0.0, x0, torch.ones(3), 1.0, 0.01),
        ValueError,
        "full_step",
    )
    bad(
        "types",
        "line_search surrogate=str",
        lambda: ls("s", lambda x: 0.0, x0, torch.ones(2), 1.0, 0.01),
        TypeError,
        "surrogate",
    )
    bad(
        "types",
        "line_search max_backtracks=2.0",
        lambda: ls(
            lambda x: 0.0,
            lambda x: 0.0,
            x0,
            torch.ones(2),
            1.0,
            0.01,
            max_backtracks=2.0,
        ),
        TypeError,
        "max_backtracks",
    )
    bad(
        "other-config",
        "trpo_step given a PPOConfig",
        lambda: trpo.trpo_step(
            CAT, batch.obs, batch.actions, batch.rewards, ppo.PPOConfig()
        ),
        TypeError,
        "cfg",
    )

    cg, A = optim.conjugate_gradient, torch.eye(2)
    ok(
        "controls",
        "conjugate_gradient",
        lambda: cg(lambda v: A @ v, torch.ones(2)),
        close(torch.ones(2)),
    )
    ok(
        "numpy-ints",
        "conjugate_gradient iters=np.int64(3)",
        lambda: cg(lambda v: A @ v, torch.ones(2), np.int64(3)),
    )
    bad(
        "types",
        "conjugate_gradient b numpy",
        lambda: cg(lambda v: A @ v, np.ones(2)),
        TypeError,
        "b",
    )
    bad(
        "types",
        "conjugate_gradient iters=2.0",
        lambda: cg(lambda v: A @ v, torch.ones(2), 2.0),
        TypeError,
        "iters",
    )
    bad(
        "values",
        "conjugate_gradient iters=0",
        lambda: cg(lambda v: A @ v, torch.ones(2), 0),
        ValueError,
        "iters",
    )
    bad(
        "types",
        "conjugate_gradient matvec=str",
        lambda: cg("A", torch.ones(2)),
        TypeError,
        "matvec",
    )
    bad(
        "non-finite",
        "conjugate_gradient nan b",
        lambda: cg(lambda v: A @ v, T([math.nan, 1.0])),
        ValueError,
        "b",
    )
    bad(
        "values",
        "conjugate_gradient matvec returns wrong shape",
        lambda: cg(lambda v: torch.ones(3), torch.ones(2)),
        ValueError,
        "matvec",
    )
    p = [torch.zeros(2, requires_grad=True)]
    bad(
        "mismatch",
        "set_flat_params wrong length",
        lambda: optim.set_flat_params(p, torch.zeros(3)),
        ValueError,
        "flat",
    )
    bad(
        "types",
        "set_flat_params numpy",
        lambda: optim.set_flat_params(p, np.zeros(2)),
        TypeError,
        "flat",
    )
    bad(
        "types",
        "get_flat_params of a tensor",
        lambda: optim.get_flat_params(torch.zeros(2)),
        TypeError,
        "params",
    )
    bad(
        "values",
        "fisher_vector_product damping=-1",
        lambda: optim.fisher_vector_product(
            lambda: (p[0] ** 2).sum(), p, torch.ones(2), -1.0
        ),
        ValueError,
        "damping",
    )
    bad(
        "mismatch",
        "fisher_vector_product vector length",
        lambda: optim.fisher_vector_product(
            lambda: (p[0] ** 2).sum(), p, torch.ones(3)
        ),
        ValueError,
        "vector",
    )

    mdp = exact.random_mdp(3, 2, 3, seed=0)
    theta = torch.zeros(3, 2, dtype=torch.float64)
    ok("controls", "exact.expected_return", lambda: exact.expected_return(mdp, theta))
    ok(
        "numpy-ints",
        "exact.random_mdp np.int64 sizes",
        lambda: exact.random_mdp(
            np.int64(3), np.int64(2), np.int64(3), seed=np.int64(0)
        ),
    )
    ok(
        "dtypes",
        "exact.policy_probs float32 theta",
        lambda: exact.policy_probs(theta.float()),
    )
    bad(
        "types",
        "exact.random_mdp num_states='3'",
        lambda: exact.random_mdp("3"),
        TypeError,
        "num_states",
    )
    bad(
        "values",
        "exact.random_mdp horizon=0",
        lambda: exact.random_mdp(3, 2, 0),
        ValueError,
        "horizon",
    )
    bad(
        "values",
        "exact.chain_mdp slip=2",
        lambda: exact.chain_mdp(slip=2.0),
        ValueError,
        "slip",
    )
    bad(
        "mismatch",
        "exact.expected_return theta shape",
        lambda: exact.expected_return(mdp, torch.zeros(2, 2)),
        ValueError,
        "theta",
    )
    ok(
        "controls",
        "exact.expected_return of a NumPy theta (documented: array-like)",
        lambda: exact.expected_return(mdp, np.zeros((3, 2))),
        close(exact.expected_return(mdp, theta)),
    )
    bad(
        "non-finite",
        "exact.policy_probs nan theta",
        lambda: exact.policy_probs(torch.full((3, 2), math.nan)),
        ValueError,
        "theta",
    )
    bad(
        "values",
        "exact.expected_return gamma=2",
        lambda: exact.expected_return(mdp, theta, 2.0),
        ValueError,
        "gamma",
    )
    bad(
        "types",
        "exact.expected_return mdp=str",
        lambda: exact.expected_return("mdp", theta),
        TypeError,
        "mdp",
    )
    bad(
        "values",
        "exact.sample_trajectories num_trajectories=0",
        lambda: exact.sample_trajectories(mdp, theta, 0, 0),
        ValueError,
        "num_trajectories",
    )
    bad(
        "values",
        "exact.sample_trajectories seed=-1",
        lambda: exact.sample_trajectories(mdp, theta, 2, -1),
        ValueError,
        "seed",
    )
    bad(
        "values",
        "exact.TabularMDP P rows not summing to 1",
        lambda: exact.TabularMDP(
            torch.ones(2, 2, 2),
            torch.zeros(2, 2),
            T([0.5, 0.5], dtype=torch.float64),
            2,
        ),
        ValueError,
        "P",
    )
    bad(
        "mismatch",
        "exact.TabularMDP R shape",
        lambda: exact.TabularMDP(mdp.P, torch.zeros(2, 2), mdp.mu0, 2),
        ValueError,
        "R",
    )
    bad(
        "empty",
        "exact.estimator_stats empty",
        lambda: exact.estimator_stats(torch.zeros(0, 2)),
        ValueError,
        "estimates",
    )
    bad(
        "values",
        "exact.estimator_weights weights='x'",
        lambda: exact.estimator_weights(
            exact.sample_trajectories(mdp, theta, 2, 0), "x"
        ),
        ValueError,
        "weights",
    )

    bad(
        "values",
        "gym.make Pixelcopter render_mode='x'",
        lambda: PixelcopterEnv(render_mode="x"),
        ValueError,
        "render_mode",
    )
    bad(
        "values",
        "PixelcopterEnv scale=0",
        lambda: PixelcopterEnv(scale=0),
        ValueError,
        "scale",
    )
    bad(
        "types",
        "PixelcopterEnv scale='8'",
        lambda: PixelcopterEnv(scale="8"),
        TypeError,
        "scale",
    )
    bad(
        "types",
        "PixelcopterEnv scale=2.5",
        lambda: PixelcopterEnv(scale=2.5),
        (TypeError, ValueError),
        "scale",
    )
    ok(
        "numpy-ints",
        "PixelcopterEnv scale=np.int64(2)",
        lambda: PixelcopterEnv(scale=np.int64(2)),
    )
    bad(
        "shapes",
        "hover_policy wrong obs length",
        lambda: hover_policy(np.zeros(3)),
        ValueError,
        "obs",
    )
    bad(
        "values",
        "probe_errors unknown probe",
        lambda: probe_errors("nope", CAT, VNET, 0.9),
        ValueError,
        "env_id",
    )
    bad(
        "values",
        "probe_errors gamma=2",
        lambda: probe_errors(
            "rlbook/Probe1ConstantReward-v0",
            policies.CategoricalPolicy(1, 2),
            policies.ValueNet(1),
            2.0,
        ),
        ValueError,
        "gamma",
    )

    ls_, sm = numpy_pg.log_softmax, numpy_pg.softmax
    ok(
        "controls",
        "softmax",
        lambda: sm(np.zeros((2, 3))),
        lambda r: np.allclose(r, 1 / 3),
    )
    bad("types", "softmax of a list", lambda: sm([1.0, 2.0]), TypeError, "logits")
    bad(
        "non-finite",
        "log_softmax nan",
        lambda: ls_(np.array([math.nan, 1.0])),
        ValueError,
        "logits",
    )
    bad(
        "types",
        "features of a tensor",
        lambda: numpy_pg.features(torch.zeros(2, 4)),
        TypeError,
        "obs",
    )
    bad(
        "types",
        "vpg_weights rollout=dict",
        lambda: vpg.vpg_weights({}, "return"),
        TypeError,
        "rollout",
    )
    bad(
        "types",
        "check_batch numpy",
        lambda: losses.check_batch(a=np.ones(2)),
        TypeError,
        "a",
    )
    bad(
        "types",
        "check_rewards numpy",
        lambda: returns.check_rewards(np.ones((2, 2)), DONES, 1.0),
        TypeError,
        "rewards",
    )

    graders = {
        "check_ars_update": check_ars_update,
        "check_clip_objective": check_clip_objective,
        "check_conjugate_gradient": check_conjugate_gradient,
        "check_discounted_returns": check_discounted_returns,
        "check_fisher_vector_product": check_fisher_vector_product,
        "check_gae": check_gae,
        "check_gaussian_log_prob": check_gaussian_log_prob,
        "check_gaussian_score": check_gaussian_score,
        "check_grad_log_softmax": check_grad_log_softmax,
        "check_minibatch_advantages": check_minibatch_advantages,
        "check_normalize": check_normalize,
        "check_per_decision_is": check_per_decision_is,
        "check_reward_to_go": check_reward_to_go,
        "check_reward_to_go_estimates": check_reward_to_go_estimates,
        "check_score_categorical": check_score_categorical,
        "check_trajectory_weights": check_trajectory_weights,
        "check_value_loss": check_value_loss,
    }
    for name, grader in graders.items():
        bad(
            "graders",
            f"{name} fn returns a str",
            lambda g=grader: g(lambda *a, **k: "done"),
            ExerciseError,
            "returned a str",
            "got str",
        )
        bad(
            "graders",
            f"{name} fn returns None",
            lambda g=grader: g(lambda *a, **k: None),
            ExerciseError,
            "return",
        )
        bad(
            "graders",
            f"{name} fn raises",
            lambda g=grader: g(lambda *a, **k: 1 / 0),
            ExerciseError,
            "ZeroDivisionError",
        )
        bad("graders", f"{name} fn=None", lambda g=grader: g(None), TypeError, "fn")
    procedures = {
        "check_minibatches": check_minibatches,
        "check_ppo_update": check_ppo_update,
        "check_reinforce_loop": check_reinforce_loop,
        "check_train_ppo": check_train_ppo,
    }
    for name, grader in procedures.items():
        bad(
            "graders",
            f"{name} fn raises",
            lambda g=grader: g(lambda *a, **k: 1 / 0),
            ExerciseError,
            "ZeroDivisionError",
        )
        bad("graders", f"{name} fn=str", lambda g=grader: g("fn"), TypeError, "fn")


# ------------------------------------------------------------------------------ main


def build() -> None:
    torch.manual_seed(0)
    for section in (
        returns_cases,
        loss_cases,
        importance_cases,
        policy_cases,
        rollout_cases,
        config_cases,
        train_cases,
        checkpoint_cases,
        history_cases,
        video_cases,
        claims_utils_cases,
        grader_cases,
        other_module_cases,
    ):
        section()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every row")
    parser.add_argument("-k", default="", help="only cases whose label contains this")
    args = parser.parse_args(argv)
    build()
    cases = [c for c in CASES if args.k in c.label]
    for case in cases:
        run_case(case)
    width = max(len(c.label) for c in cases)
    for case in cases:
        if args.verbose or case.outcome in (CRYPTIC, SILENT):
            print(
                f"{case.outcome:<11} {case.category:<12} {case.label:<{width}}  {case.detail}"
            )
    counts = Counter(c.outcome for c in cases)
    print(
        f"\n{len(cases)} calls: "
        + ", ".join(f"{counts[k]} {k}" for k in (CLEAR, OK, CRYPTIC, SILENT))
    )
    by_cat: dict[str, Counter] = {}
    for case in cases:
        by_cat.setdefault(case.category, Counter())[case.outcome] += 1
    print(
        f"\n{'category':<13}"
        + "".join(f"{k:>12}" for k in (CLEAR, OK, CRYPTIC, SILENT))
    )
    for cat, cnt in sorted(by_cat.items()):
        print(
            f"{cat:<13}"
            + "".join(f"{cnt[k]:>12}" for k in (CLEAR, OK, CRYPTIC, SILENT))
        )
    return 1 if counts[CRYPTIC] or counts[SILENT] else 0


if __name__ == "__main__":
    sys.exit(main())
