"""Tests of rlbook.losses.pg_loss: its gradient is the policy-gradient estimate.

The gradient through pg_loss is compared with the hand-derived score of a linear softmax
policy, x (1[k = a] - pi_k), and, sampled many times on a bandit, with the exact gradient
of the expected reward.
"""

import math

import pytest
import torch

from rlbook.losses import pg_loss


def linear_softmax_case(seed: int, shape=(12,), d: int = 3, k: int = 4):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(d, k, generator=gen, dtype=torch.float64)
    x = torch.randn(*shape, d, generator=gen, dtype=torch.float64)
    actions = torch.randint(k, shape, generator=gen)
    weights = torch.randn(shape, generator=gen, dtype=torch.float64)
    return theta, x, actions, weights


def log_probs_of(theta, x, actions):
    return (
        torch.log_softmax(x @ theta, dim=-1).gather(-1, actions[..., None]).squeeze(-1)
    )


def hand_score(theta, x, actions):
    """d log pi(a|x) / d theta[j, k] = x_j (1[k = a] - pi_k), per sample: (..., d, K)."""
    probs = torch.softmax(x @ theta, dim=-1)
    onehot = torch.nn.functional.one_hot(actions, theta.shape[1]).to(theta.dtype)
    return x[..., :, None] * (onehot - probs)[..., None, :]


@pytest.mark.parametrize("shape", [(12,), (5, 3)])
@pytest.mark.parametrize("seed", range(4))
def test_minus_gradient_is_mean_of_weight_times_score(seed: int, shape) -> None:
    theta, x, actions, weights = linear_softmax_case(seed, shape)
    theta.requires_grad_(True)
    loss = pg_loss(log_probs_of(theta, x, actions), weights)
    assert loss.ndim == 0
    (grad,) = torch.autograd.grad(loss, theta)
    scores = hand_score(theta.detach(), x, actions)
    expected = (weights[..., None, None] * scores).reshape(-1, *theta.shape).mean(0)
    torch.testing.assert_close(-grad, expected)


def test_value_is_minus_mean_of_log_prob_times_weight() -> None:
    log_probs = torch.tensor([-0.5, -1.0, -2.0, -0.1])
    weights = torch.tensor([2.0, -1.0, 0.5, 4.0])
    expected = -(-0.5 * 2.0 + -1.0 * -1.0 + -2.0 * 0.5 + -0.1 * 4.0) / 4
    assert pg_loss(log_probs, weights).item() == pytest.approx(expected)


def test_gradient_with_respect_to_each_log_prob_is_minus_weight_over_count() -> None:
    log_probs = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(6, 4, dtype=torch.float64)
    mask = torch.rand(6, 4) < 0.5
    mask[0, 0] = True
    pg_loss(log_probs, weights, mask).backward()
    expected = torch.where(mask, -weights / mask.sum(), torch.zeros_like(weights))
    torch.testing.assert_close(log_probs.grad, expected)


def test_sampled_gradient_matches_the_exact_bandit_gradient() -> None:
    # a 3-armed bandit with a softmax policy: J(theta) = sum_a pi_a r_a, differentiated exactly
    # by autograd, against pg_loss on many sampled arms (within 4 standard errors)
    theta = torch.tensor([0.3, -0.4, 0.1], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64)
    (exact,) = torch.autograd.grad((torch.softmax(theta, 0) * r).sum(), theta)

    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(theta.detach(), 0)
    actions = torch.multinomial(probs, 200_000, replacement=True, generator=gen)
    log_probs = torch.log_softmax(theta, 0)[actions]
    (grad,) = torch.autograd.grad(pg_loss(log_probs, r[actions]), theta)
    per_sample = r[actions, None] * (torch.eye(3, dtype=torch.float64)[actions] - probs)
    se = per_sample.std(0) / math.sqrt(len(actions))
    assert torch.all((-grad - exact).abs() < 4 * se), (-grad, exact, se)


def test_weights_are_treated_as_constants() -> None:
    theta, x, actions, _ = linear_softmax_case(7)
    theta.requires_grad_(True)
    log_probs = log_probs_of(theta, x, actions)
    # weights that depend on theta (as a careless "advantage" computed from the policy would)
    weights = 5.0 * log_probs.exp()
    (grad,) = torch.autograd.grad(pg_loss(log_probs, weights), theta, retain_graph=True)
    (grad_detached,) = torch.autograd.grad(pg_loss(log_probs, weights.detach()), theta)
    torch.testing.assert_close(grad, grad_detached)

    leaf_weights = torch.randn(12, dtype=torch.float64, requires_grad=True)
    pg_loss(log_probs_of(theta, x, actions), leaf_weights).backward()
    assert leaf_weights.grad is None
    assert theta.grad is not None


def test_mask_excludes_steps() -> None:
    theta, x, actions, weights = linear_softmax_case(3, shape=(6, 4))
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(6, 4, generator=gen) < 0.6
    theta.requires_grad_(True)
    log_probs = log_probs_of(theta, x, actions)
    loss = pg_loss(log_probs, weights, mask)

    # the mean runs over the masked-in steps only
    assert loss.item() == pytest.approx(pg_loss(log_probs[mask], weights[mask]).item())
    (grad,) = torch.autograd.grad(loss, theta)
    scores = hand_score(theta.detach(), x, actions)
    expected = (weights[..., None, None] * scores)[mask].mean(0)
    torch.testing.assert_close(-grad, expected)

    # whatever sits in the masked-out slots does not matter
    other_weights = weights.clone()
    other_weights[~mask] = torch.randn(int((~mask).sum()), dtype=torch.float64) * 100
    other_log_probs = log_probs.detach().clone()
    other_log_probs[~mask] = -50.0
    assert pg_loss(other_log_probs, other_weights, mask).item() == pytest.approx(
        loss.item()
    )


def test_all_true_mask_is_the_plain_mean() -> None:
    log_probs, weights = torch.randn(5, 3), torch.randn(5, 3)
    mask = torch.ones(5, 3, dtype=torch.bool)
    assert pg_loss(log_probs, weights, mask).item() == pytest.approx(
        pg_loss(log_probs, weights).item()
    )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_shape_mismatch_names_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        pg_loss(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="weights"):
        pg_loss(torch.zeros(4, 2), torch.zeros(2, 4))


def test_bad_mask_is_named() -> None:
    with pytest.raises(ValueError, match="mask"):
        pg_loss(torch.zeros(4, 2), torch.zeros(4, 2), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        pg_loss(
            torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.bool)
        )


def test_nan_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="weights"):
        pg_loss(torch.zeros(3), torch.tensor([1.0, math.nan, 0.0]))


def test_nan_log_probs_are_rejected() -> None:
    # a NaN log-probability would silently turn the loss, then every parameter, into NaN
    with pytest.raises(ValueError, match="log_probs"):
        pg_loss(torch.tensor([-1.0, math.nan, -0.5]), torch.ones(3))


def test_non_tensors_are_rejected() -> None:
    with pytest.raises(TypeError, match="log_probs"):
        pg_loss([-1.0, -2.0], torch.ones(2))
    with pytest.raises(TypeError, match="weights"):
        pg_loss(torch.zeros(2), [1.0, 2.0])
