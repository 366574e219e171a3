"""Graders of section 5.1 (book/05_1_trust_regions.ipynb): Fisher products and CG."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import _grade
from rlbook.utils import rng as _seeded_rng


def _fisher_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(probs, visits, v):
        return {
            "probs": torch.tensor(probs, dtype=torch.float64),
            "visits": torch.tensor(visits, dtype=torch.float64),
            "v": torch.tensor(v, dtype=torch.float64),
        }

    # one action: the policy cannot change, F = 0
    yield case([[1.0]], [2.0], [[3.0]])
    # a constant v in a state changes no probability: F v = 0 there
    yield case([[0.2, 0.8], [0.5, 0.5]], [1.0, 3.0], [[1.0, 1.0], [2.0, -1.0]])
    for _ in range(n_random):
        s, a = int(rng.integers(1, 6)), int(rng.integers(2, 5))
        logits = rng.normal(scale=1.5, size=(s, a))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        yield case(probs, rng.uniform(0.1, 4.0, s), rng.normal(size=(s, a)))


def _fisher_vector_product_reference(probs, visits, v):
    # block s of F is visits_s (diag pi_s - pi_s pi_s^T)
    return visits[:, None] * probs * (v - (probs * v).sum(-1, keepdim=True))


def check_fisher_vector_product(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(probs, visits, v) -> (S, A)``, the Fisher matrix of a tabular softmax times v.

    .. math:: (F v)_{s,a} = n_s\, \pi_s(a) \Big(v_{s,a} - \sum_b \pi_s(b)\, v_{s,b}\Big)

    for the Fisher matrix ``F`` of :func:`rlbook.exact.fisher_matrix`, whose block ``s`` is
    ``n_s (diag π_s − π_s π_sᵀ)`` with ``n_s`` the expected visits of state ``s``. Inputs:
    float64 tensors ``probs`` (S, A) with rows summing to 1, ``visits`` (S,) and ``v`` (S, A).
    Known mistakes recognised: the ``−π πᵀ`` part of the blocks left out, the visits left out,
    ``v`` centred by its plain mean instead of its ``π``-weighted mean, the correction's sign
    flipped. See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)

    def diagonal_only(probs, visits, v):
        return visits[:, None] * probs * v

    def no_visits(probs, visits, v):
        return probs * (v - (probs * v).sum(-1, keepdim=True))

    def plain_mean(probs, visits, v):
        return visits[:, None] * probs * (v - v.mean(-1, keepdim=True))

    def flipped(probs, visits, v):
        return visits[:, None] * probs * (v + (probs * v).sum(-1, keepdim=True))

    return _grade(
        "fisher_vector_product",
        fn,
        _fisher_vector_product_reference,
        _fisher_cases(seed, n_random),
        mistakes={
            "only the diagonal diag(pi_s) of each block is used; the block is "
            "diag(pi_s) - pi_s pi_s^T": diagonal_only,
            "the expected visits n_s are missing: each state's block is weighted by how "
            "often the policy is there": no_visits,
            "v is centred by its plain mean over the actions; pi_s pi_s^T v_s subtracts "
            "the pi-weighted mean sum_b pi_s(b) v_s,b": plain_mean,
            "the sign of the pi_s pi_s^T term is flipped": flipped,
        },
        hint="in state s, (F v)_s = n_s * pi_s * (v_s - (pi_s * v_s).sum()); no S*A by S*A "
        "matrix is needed.",
    )


class _MatVec:
    """``v ↦ A v`` for a grading case; ``np.asarray`` of it is ``A``, so reports show the matrix."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def __call__(self, v):
        return self.matrix @ torch.as_tensor(v, dtype=self.matrix.dtype)

    def __array__(self, dtype=None, copy=None):
        return self.matrix.numpy()


def _cg_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(matrix, b, iters):
        return {
            "matvec": _MatVec(torch.tensor(matrix, dtype=torch.float64)),
            "b": torch.tensor(b, dtype=torch.float64),
            "iters": iters,
        }

    yield case([[2.0]], [4.0], 1)  # one dimension: one step solves it
    yield case([[3.0, 1.0], [1.0, 2.0]], [1.0, -1.0], 2)
    yield case([[3.0, 1.0], [1.0, 2.0]], [0.0, 0.0], 3)  # b = 0: x = 0, no 0/0
    for _ in range(n_random):
        n = int(rng.integers(2, 9))
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        matrix = q @ np.diag(np.exp(rng.uniform(0.0, 3.0, n))) @ q.T
        yield case(matrix, rng.normal(size=n), int(rng.integers(1, n + 1)))


def _cg_reference(matvec, b, iters):
    from rlbook.optim import conjugate_gradient

    return conjugate_gradient(matvec, b, iters=iters)


def _cg_variant(matvec, b, iters, conjugate=True, x_along_r=False, r_sign=-1.0):
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        if rr < 1e-10:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * (r if x_along_r else p)
        r = r + r_sign * alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p if conjugate else r
        rr = rr_new
    return x


def check_conjugate_gradient(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(matvec, b, iters) -> x``, conjugate gradient for ``A x = b`` from ``x = 0``.

    ``matvec`` is a function ``v ↦ A v`` for a symmetric positive-definite ``A`` (never the
    matrix), ``b`` a float64 tensor (n,), ``iters`` the number of iterations. The answer must
    equal :func:`rlbook.optim.conjugate_gradient` after exactly ``iters`` iterations (the
    iterates of CG are unique), stopping early once ``r·r < 1e-10``. Known mistakes recognised:
    steepest descent (every direction the residual, with no conjugation), ``x`` moved along the
    residual instead of the direction, the residual updated with the wrong sign. See chapter
    5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)

    def steepest(matvec, b, iters):
        return _cg_variant(matvec, b, iters, conjugate=False)

    def along_residual(matvec, b, iters):
        return _cg_variant(matvec, b, iters, x_along_r=True)

    def residual_sign(matvec, b, iters):
        return _cg_variant(matvec, b, iters, r_sign=1.0)

    return _grade(
        "conjugate_gradient",
        fn,
        _cg_reference,
        _cg_cases(seed, n_random),
        mistakes={
            "this is steepest descent: each new direction must be the residual PLUS beta "
            "times the previous direction, beta = (r_new . r_new) / (r . r)": steepest,
            "x moves along the residual r; it must move along the direction p": along_residual,
            "the residual is updated with the wrong sign: r = b - A x, so r -= alpha * A p": (
                residual_sign
            ),
        },
        hint="x = 0, r = p = b; repeat: alpha = (r . r) / (p . A p), x += alpha p, "
        "r -= alpha A p, p = r + ((r_new . r_new) / (r_old . r_old)) p; stop when r . r < "
        "1e-10 (with b = 0 the first alpha would be 0/0).",
    )
