"""Graders of section 6.1 (book/06_1_ppo_in_practice.ipynb): the clipped objective."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import ExerciseError, _call, _grade, _try
from rlbook.utils import rng as _seeded_rng


def _clip_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(ratio, advantages, clip_coef):
        return {
            "ratio": torch.tensor(ratio, dtype=torch.float64),
            "advantages": torch.tensor(advantages, dtype=torch.float64),
            "clip_coef": clip_coef,
        }

    # hand-picked first: every region of the two panels (A > 0 and A < 0; ratio below, inside
    # and above [1 - eps, 1 + eps]), so that each known mistake gives its own answer
    yield case(
        [0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 0.9, 1.0, 1.1, 1.5],
        [2.0, 2.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0, -2.0, -2.0],
        0.2,
    )
    yield case([1.0, 3.0, 0.1], [0.0, 0.0, 0.0], 0.1)  # zero advantages: zero objective
    yield case([0.7, 1.3], [0.5, -0.5], 0.3)
    for _ in range(n_random):
        b = int(rng.integers(1, 12))
        ratio = np.exp(rng.normal(0.0, 0.4, b))
        advantages = rng.normal(0.0, 1.5, b)
        yield case(ratio, advantages, float(rng.choice([0.1, 0.2, 0.3])))


def _clip_objective_reference(ratio, advantages, clip_coef):
    return torch.minimum(
        ratio * advantages,
        torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages,
    )


def check_clip_objective(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(ratio, advantages, clip_coef)``, PPO's clipped objective of each sample.

    .. math:: \ell_t = \min\big(\rho_t \hat A_t,\;
              \mathrm{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon)\, \hat A_t\big)

    (Schulman et al., 2017), the quantity PPO *maximises* (its mean over the batch; the
    library's :func:`rlbook.losses.ppo_clip_loss` is minus that mean). Inputs: float64 tensors
    ``ratio`` (positive) and ``advantages``, both ``(B,)``, and a float ``clip_coef``; the answer
    has shape ``(B,)``. After the values, the gradient with respect to ``ratio`` is checked:
    :math:`\hat A_t` where the unclipped term is the minimum, exactly 0 where the clip is
    active. Known mistakes recognised: the maximum instead of the minimum, the clipped term
    alone (the unclipped term forgotten), the product :math:`\rho_t \hat A_t` clipped instead of
    the ratio, the advantage clipped instead of the ratio, the clip range
    :math:`[-\epsilon, \epsilon]` instead of :math:`[1 - \epsilon, 1 + \epsilon]`, the loss
    (minus the objective) returned, the mean over the batch returned.
    See chapter 6.1 of the book (book/06_1_ppo_in_practice.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def clamp(x, clip_coef):
        return torch.clamp(x, 1.0 - clip_coef, 1.0 + clip_coef)

    def maximum(ratio, advantages, clip_coef):
        return torch.maximum(ratio * advantages, clamp(ratio, clip_coef) * advantages)

    def clipped_only(ratio, advantages, clip_coef):
        return clamp(ratio, clip_coef) * advantages

    def product_clipped(ratio, advantages, clip_coef):
        return torch.minimum(ratio * advantages, clamp(ratio * advantages, clip_coef))

    def advantage_clipped(ratio, advantages, clip_coef):
        return torch.minimum(ratio * advantages, ratio * clamp(advantages, clip_coef))

    def epsilon_range(ratio, advantages, clip_coef):
        return torch.minimum(
            ratio * advantages, torch.clamp(ratio, -clip_coef, clip_coef) * advantages
        )

    def loss(ratio, advantages, clip_coef):
        return -_clip_objective_reference(ratio, advantages, clip_coef)

    def loss_of_mean(ratio, advantages, clip_coef):
        return -_clip_objective_reference(ratio, advantages, clip_coef).mean()

    def mean(ratio, advantages, clip_coef):
        return _clip_objective_reference(ratio, advantages, clip_coef).mean()

    name = "clip_objective"
    first = next(iter(_clip_cases(0, 0)))
    got = _try(name, fn, first)  # None: _grade reports the failure
    if got is not None and got.shape == ():
        value = float(got)
        for description, mistake in (
            ("the mean over the batch was returned", mean),
            ("the loss was returned: minus the mean over the batch", loss_of_mean),
        ):
            if abs(value - float(mistake(**first))) < 1e-6:
                raise ExerciseError(
                    f"{name} returned one number, {value:.4f}; expected one objective per "
                    f"sample, shape {tuple(first['ratio'].shape)}.\nIt looks like "
                    f"{description}. Return min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) "
                    "for each sample; the training loop takes the mean."
                )
    _grade(
        name,
        fn,
        _clip_objective_reference,
        _clip_cases(seed, n_random),
        mistakes={
            "you took the maximum of the two terms; PPO takes the minimum, a pessimistic bound "
            "that never rewards moving the ratio beyond the clip range": maximum,
            "only the clipped term is there; without min(unclipped, clipped) a move that makes "
            "the objective worse is clipped too, and its gradient is lost": clipped_only,
            "the product ratio * A was clipped; clip the ratio, then multiply by A": product_clipped,
            "the advantage was clipped; the clip applies to the ratio": advantage_clipped,
            "the ratio was clipped to [-eps, eps]; the range is [1 - eps, 1 + eps], around the "
            "ratio 1 of the unchanged policy": epsilon_range,
            "the sign is flipped: this is the loss, minus the objective; return the objective "
            "(the quantity to maximise)": loss,
        },
        hint="torch.minimum(ratio * A, torch.clamp(ratio, 1 - eps, 1 + eps) * A), elementwise.",
    )

    # the gradient: the unclipped term's where it is the minimum, exactly zero where the clip is
    ratio = torch.tensor([0.5, 0.9, 1.1, 1.5, 0.5, 0.9, 1.1, 1.5], dtype=torch.float64)
    advantages = torch.tensor(
        [2.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0, -2.0], dtype=torch.float64
    )
    leaf = ratio.clone().requires_grad_(True)
    out = _call(name, fn, dict(ratio=leaf, advantages=advantages, clip_coef=0.2))
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(
            f"{name} returned the right values but no gradient with respect to ratio: PPO "
            "differentiates this objective. Compute it with torch operations on the ratio "
            "tensor, without .detach(), .item(), .numpy() or torch.tensor(...) around it."
        )
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    clipped = ((advantages > 0) & (ratio > 1.2)) | ((advantages < 0) & (ratio < 0.8))
    expected = torch.where(clipped, torch.zeros_like(advantages), advantages)
    if not torch.allclose(grad, expected):
        raise ExerciseError(
            f"{name} has the right values but the wrong gradient with respect to ratio:\n"
            f"  ratio = {ratio.numpy()!r}\n  advantages = {advantages.numpy()!r}\n"
            f"expected d/d ratio:\n  {expected.numpy()!r}\ngot:\n  {grad.numpy()!r}\n"
            "Hint: the gradient must be A where the unclipped term is the minimum and exactly 0 "
            "where the clip is active; torch.minimum and torch.clamp give exactly that."
        )
    print(f"{name}: gradient zero exactly where the clip is active.")
    return True
