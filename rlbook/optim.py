"""Second-order tools for policy optimisation: conjugate gradient and Fisher-vector products.

TRPO and the natural policy gradient need ``F⁻¹ g`` for a Fisher matrix ``F`` with as many rows
as the network has parameters, far too many to form. Conjugate gradient solves ``F x = g``
using only products ``F v``, and each product costs two backward passes through the KL
divergence (double backpropagation), never the matrix itself.

See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from rlbook import validate

__all__ = [
    "conjugate_gradient",
    "fisher_vector_product",
    "flat_grad",
    "get_flat_params",
    "set_flat_params",
]


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iters: int = 10,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive-definite ``A`` given as ``v ↦ A v``.

    Starting from ``x = 0``, each iteration moves along a direction ``p`` that is
    ``A``-conjugate to the previous ones (``pᵢᵀ A pⱼ = 0``), by the step that minimises
    ``½ xᵀ A x − bᵀ x`` along it. In exact arithmetic ``n`` iterations solve an ``n × n``
    system; a few already capture the directions of the largest eigenvalues, which is why TRPO
    stops after about 10 (Hestenes and Stiefel, 1952; Nocedal and Wright, 2006, ch. 5).

    Parameters
    ----------
    matvec : callable
        ``v ↦ A v`` for a 1-D tensor ``v`` shaped like ``b``.
    b : torch.Tensor, shape (n,)
    iters : int
        At most this many products with ``A``.
    residual_tol : float
        Stop once ``‖b − A x‖²`` falls below it (a zero ``b`` returns zero at once).

    Returns
    -------
    torch.Tensor, shape (n,)

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    matvec, b, iters = _cg_args(matvec, b, iters)
    x = torch.zeros_like(b)
    r = b.clone()  # the residual b - A x, with x = 0
    p = r.clone()  # the first direction is the steepest one
    rr = r @ r
    for _ in range(iters):
        if rr < residual_tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)  # exact minimiser along p
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p  # the next direction, A-conjugate to all before
        rr = rr_new
    return x


def _cg_args(matvec, b, iters):
    """Validated arguments of :func:`conjugate_gradient`; ``matvec`` checks what it returns."""
    if not callable(matvec):
        raise TypeError(
            f"matvec must be a function v -> A v, got {type(matvec).__name__}"
        )
    b = validate.float_tensor("b", b, ndim=1, check_finite=True)
    iters = validate.positive_int("iters", iters)

    def checked(v: torch.Tensor) -> torch.Tensor:
        out = matvec(v)
        if not isinstance(out, torch.Tensor) or out.shape != v.shape:
            raise ValueError(
                f"matvec must return a tensor shaped like its input {tuple(v.shape)}, got "
                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
            )
        return out

    return checked, b, iters


def flat_grad(
    output: torch.Tensor, params: Sequence[torch.Tensor], **kwargs
) -> torch.Tensor:
    """The gradient of a scalar ``output`` with respect to ``params``, as one flat vector.

    Parameters that do not influence ``output`` get zeros. ``kwargs`` go to
    ``torch.autograd.grad`` (e.g. ``create_graph=True``).
    """
    grads = torch.autograd.grad(output, params, allow_unused=True, **kwargs)
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def fisher_vector_product(
    kl_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    vector: torch.Tensor,
    damping: float = 0.0,
) -> torch.Tensor:
    r"""``(F + damping · I) v`` without forming ``F``, by differentiating the KL twice.

    ``kl_fn()`` must return the mean ``KL(π_old ‖ π_params)`` with the old policy held fixed
    (detached) at the current parameters. Its gradient is zero there and its Hessian is the
    Fisher matrix, so

    .. math:: F v = \nabla_\theta \big( (\nabla_\theta \mathrm{KL})^\top v \big)

    costs one backward pass for the gradient (keeping its graph) and one for the product.
    ``damping`` adds a multiple of ``v``, which keeps conjugate gradient well behaved where
    ``F`` is (nearly) singular.

    Parameters
    ----------
    kl_fn : callable
        ``() -> scalar tensor``, differentiable in ``params``.
    params : sequence of torch.Tensor
        The parameters ``θ``, each with ``requires_grad``.
    vector : torch.Tensor, shape (n,)
        ``v``, with ``n`` the total number of entries of ``params``.
    damping : float
        Non-negative.

    Returns
    -------
    torch.Tensor, shape (n,)

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    params = list(params)
    n = sum(p.numel() for p in params)
    if not isinstance(vector, torch.Tensor) or vector.shape != (n,):
        raise ValueError(
            f"vector: expected shape ({n},), one entry per parameter, "
            f"got {tuple(getattr(vector, 'shape', ()))}"
        )
    if not damping >= 0:
        raise ValueError(f"damping: expected a number >= 0, got {damping!r}")
    grad_kl = flat_grad(kl_fn(), params, create_graph=True)
    product = flat_grad(grad_kl @ vector, params)
    return product + damping * vector


def get_flat_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """All parameters concatenated into one detached vector."""
    params = _param_list(params)
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy the entries of ``flat`` into ``params`` in order (the inverse of get_flat_params)."""
    params = _param_list(params)
    flat = validate.tensor("flat", flat, ndim=1)
    n = sum(p.numel() for p in params)
    if flat.shape != (n,):
        raise ValueError(f"flat: expected shape ({n},), got {tuple(flat.shape)}")
    with torch.no_grad():
        start = 0
        for p in params:
            p.copy_(flat[start : start + p.numel()].view_as(p))
            start += p.numel()


def _param_list(params) -> list[torch.Tensor]:
    """``params`` as a list of tensors: a bare tensor or anything else is refused."""
    if isinstance(params, torch.Tensor) or not isinstance(params, Iterable):
        raise TypeError(
            "params must be a sequence of tensors (model.parameters()), got "
            f"{type(params).__name__}"
        )
    params = list(params)
    for i, p in enumerate(params):
        validate.tensor(f"params[{i}]", p)
    return params
