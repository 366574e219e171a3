"""Tests of the chapter-5.1 graders ``check_fisher_vector_product`` and
``check_conjugate_gradient``.

The right answers are written the way a learner would, by routes independent of the graders'
references: the Fisher-vector product by forming each state's block as a matrix, or by autograd
through the KL divergence; conjugate gradient as a NumPy loop, and as a loop over explicit
A-orthogonal directions. Each known wrong answer must fail with its own diagnosis.
"""

import numpy as np
import pytest
import torch

from rlbook.checks import (
    ExerciseError,
    check_conjugate_gradient,
    check_fisher_vector_product,
)

# ---------------------------------------------------------------------------------------------
# Fisher-vector products, right and wrong
# ---------------------------------------------------------------------------------------------


def blocks_fvp(probs, visits, v):
    """Right: form each state's A x A block and multiply."""
    out = torch.empty_like(v)
    for s in range(probs.shape[0]):
        block = visits[s] * (torch.diag(probs[s]) - torch.outer(probs[s], probs[s]))
        out[s] = block @ v[s]
    return out


def autograd_fvp(probs, visits, v):
    """Right: the Hessian of the visit-weighted KL at the current logits, times v."""
    logits = probs.log().clone().requires_grad_(True)
    old = probs.log()

    def kl(z):
        log_new = torch.log_softmax(z, -1)
        return visits @ (probs * (old - log_new)).sum(-1)

    _, hvp = torch.autograd.functional.hvp(kl, logits, v)
    return hvp


def numpy_fvp(probs, visits, v):
    """Right: NumPy, the π-weighted mean of v subtracted row by row."""
    p, n, w = np.asarray(probs), np.asarray(visits), np.asarray(v)
    return n[:, None] * p * (w - np.sum(p * w, axis=1, keepdims=True))


def diagonal_only(probs, visits, v):
    return visits[:, None] * probs * v


def no_visits(probs, visits, v):
    return probs * (v - (probs * v).sum(-1, keepdim=True))


def plain_mean(probs, visits, v):
    return visits[:, None] * probs * (v - v.mean(-1, keepdim=True))


def flipped(probs, visits, v):
    return visits[:, None] * probs * (v + (probs * v).sum(-1, keepdim=True))


def flattened(probs, visits, v):
    return blocks_fvp(probs, visits, v).reshape(-1)


# ---------------------------------------------------------------------------------------------
# Conjugate gradient, right and wrong
# ---------------------------------------------------------------------------------------------


def numpy_cg(matvec, b, iters):
    """Right: a NumPy loop that calls matvec on tensors."""
    b = np.asarray(b)
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(iters):
        if rr < 1e-10:
            break
        Ap = np.asarray(matvec(torch.from_numpy(p)))
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        p, rr = r + (r @ r / rr) * p, r @ r
    return x


def gram_schmidt_cg(matvec, b, iters):
    """Right: conjugate directions built by A-orthogonalising each residual against ALL
    previous directions (what CG's one-term recursion achieves implicitly)."""
    x, r, directions = torch.zeros_like(b), b.clone(), []
    for _ in range(iters):
        if r @ r < 1e-10:
            break
        p = r.clone()
        for q, Aq in directions:
            p = p - (p @ Aq) / (q @ Aq) * q
        Ap = matvec(p)
        directions.append((p, Ap))
        alpha = (p @ r) / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
    return x


def cg(matvec, b, iters, conjugate=True, x_along_r=False, r_sign=-1.0, stop=True):
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        if stop and rr < 1e-10:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * (r if x_along_r else p)
        r = r + r_sign * alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p if conjugate else r
        rr = rr_new
    return x


def steepest_descent(matvec, b, iters):
    return cg(matvec, b, iters, conjugate=False)


def x_along_residual(matvec, b, iters):
    return cg(matvec, b, iters, x_along_r=True)


def residual_plus(matvec, b, iters):
    return cg(matvec, b, iters, r_sign=1.0)


def no_early_stop(matvec, b, iters):
    return cg(matvec, b, iters, stop=False)


def returns_residual(matvec, b, iters):
    return b - matvec(cg(matvec, b, iters))


# ---------------------------------------------------------------------------------------------
# Right answers pass, wrong ones are named
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_fisher_vector_product, blocks_fvp),
        (check_fisher_vector_product, autograd_fvp),
        (check_fisher_vector_product, numpy_fvp),
        (check_conjugate_gradient, numpy_cg),
        (check_conjugate_gradient, gram_schmidt_cg),
    ],
)
def test_right_answers_pass(check, fn, capsys) -> None:
    assert check(fn, seed=0) is True
    assert "cases passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("check", "fn", "diagnosis"),
    [
        (check_fisher_vector_product, diagonal_only, "only the diagonal"),
        (check_fisher_vector_product, no_visits, "expected visits n_s are missing"),
        (check_fisher_vector_product, plain_mean, "plain mean"),
        (check_fisher_vector_product, flipped, "sign of the pi_s pi_s"),
        (check_conjugate_gradient, steepest_descent, "steepest descent"),
        (check_conjugate_gradient, x_along_residual, "x moves along the residual"),
        (check_conjugate_gradient, residual_plus, "wrong sign"),
    ],
)
def test_typical_mistakes_are_named(check, fn, diagnosis) -> None:
    with pytest.raises(ExerciseError, match=diagnosis):
        check(fn, seed=0)


def test_wrong_shape_is_reported() -> None:
    with pytest.raises(ExerciseError, match="shape"):
        check_fisher_vector_product(flattened, seed=0)


def test_conjugate_gradient_without_the_early_stop_fails_on_a_zero_b() -> None:
    with pytest.raises(ExerciseError, match=r"b = 0") as info:
        check_conjugate_gradient(no_early_stop, seed=0)
    assert "nan" in str(info.value)


def test_returning_the_residual_fails_without_a_false_diagnosis() -> None:
    with pytest.raises(ExerciseError) as info:
        check_conjugate_gradient(returns_residual, seed=0)
    assert "It looks like" not in str(info.value)


@pytest.mark.parametrize("seed", [None, 3])
def test_graders_draw_fresh_cases(seed) -> None:
    assert check_fisher_vector_product(blocks_fvp, seed=seed, n_random=5)
    assert check_conjugate_gradient(numpy_cg, seed=seed, n_random=5)
