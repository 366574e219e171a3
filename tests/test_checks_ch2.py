"""Tests of the chapter-2 graders in rlbook.checks: the scores of a categorical and a Gaussian.

Right answers are written the way a learner would (autograd through torch.distributions, NumPy
formulas), so passing means agreeing with the grader's reference by an independent route; each
known wrong answer must fail with its own diagnosis.
"""

import numpy as np
import pytest
import torch

from rlbook.checks import ExerciseError, check_gaussian_score, check_score_categorical
from rlbook.exact import grad_log_probs, policy_probs

# ---------------------------------------------------------------------------------------------
# Learner-style scores of a categorical distribution, right and wrong
# ---------------------------------------------------------------------------------------------


def autograd_score(logits, actions):
    """Right: differentiate Categorical(logits).log_prob(a) with autograd, one row at a time."""
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_actions = actions.reshape(-1)
    rows = []
    for z, a in zip(flat_logits, flat_actions, strict=True):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(
            torch.distributions.Categorical(logits=z).log_prob(a), z
        )
        rows.append(g)
    return torch.stack(rows).reshape(logits.shape)


def numpy_score(logits, actions):
    """Right: onehot - softmax in NumPy, stabilised by subtracting the largest logit."""
    z = np.asarray(logits)
    z = z - z.max(axis=-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return np.eye(z.shape[-1])[np.asarray(actions)] - probs


def score_sign_flipped(logits, actions):
    """Wrong: softmax - onehot."""
    return -numpy_score(logits, actions)


def score_onehot_only(logits, actions):
    """Wrong: the derivative of z[a] alone; the log-sum-exp term is forgotten."""
    return np.eye(logits.shape[-1])[np.asarray(actions)]


def score_softmax_dim0(logits, actions):
    """Wrong: torch.softmax(logits, dim=0), right for one distribution, wrong for a batch."""
    onehot = torch.nn.functional.one_hot(actions, logits.shape[-1]).double()
    return onehot - torch.softmax(logits, dim=0)


def score_of_probability(logits, actions):
    """Wrong: the gradient of pi(a) itself, by autograd."""
    flat_logits = logits.reshape(-1, logits.shape[-1])
    rows = []
    for z, a in zip(flat_logits, actions.reshape(-1), strict=True):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.softmax(z, dim=-1)[a], z)
        rows.append(g)
    return torch.stack(rows).reshape(logits.shape)


def score_naive_exp(logits, actions):
    """Wrong only for huge logits: exp(z) / sum exp(z) without subtracting the maximum."""
    probs = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    return torch.nn.functional.one_hot(actions, logits.shape[-1]).double() - probs


# ---------------------------------------------------------------------------------------------
# Learner-style scores of a Gaussian, right and wrong
# ---------------------------------------------------------------------------------------------


def autograd_gaussian_score(x, mu, log_std):
    """Right: differentiate Normal(mu, exp(log_std)).log_prob(x) with autograd."""
    mu = mu.clone().requires_grad_(True)
    log_std = log_std.clone().requires_grad_(True)
    log_p = torch.distributions.Normal(mu, log_std.exp()).log_prob(x)
    # each log_p[i] depends on mu[i] and log_std[i] only, so the gradient of the sum is per-sample
    return torch.autograd.grad(log_p.sum(), (mu, log_std))


def numpy_gaussian_score(x, mu, log_std):
    """Right: the formulas, in NumPy, returned as a list."""
    x, mu, sigma = np.asarray(x), np.asarray(mu), np.exp(np.asarray(log_std))
    return [(x - mu) / sigma**2, ((x - mu) / sigma) ** 2 - 1.0]


def finite_difference_gaussian_score(x, mu, log_std, eps=1e-6):
    """Right, approximately: central differences of the log-density (float64)."""

    def log_p(m, s):
        return torch.distributions.Normal(m, s.exp()).log_prob(x)

    d_mu = (log_p(mu + eps, log_std) - log_p(mu - eps, log_std)) / (2 * eps)
    d_log_std = (log_p(mu, log_std + eps) - log_p(mu, log_std - eps)) / (2 * eps)
    return d_mu, d_log_std


def gaussian_no_minus_one(x, mu, log_std):
    d_mu, d_log_std = numpy_gaussian_score(x, mu, log_std)
    return d_mu, d_log_std + 1.0


def gaussian_sigma_not_squared(x, mu, log_std):
    sigma = torch.exp(log_std)
    return (x - mu) / sigma, (x - mu) ** 2 / sigma - 1.0


def gaussian_wrt_sigma(x, mu, log_std):
    """Wrong: d/d sigma of the log-density, by autograd with sigma as the leaf."""
    mu = mu.clone().requires_grad_(True)
    sigma = log_std.exp().requires_grad_(True)
    log_p = torch.distributions.Normal(mu, sigma).log_prob(x)
    return torch.autograd.grad(log_p.sum(), (mu, sigma))


def gaussian_mean_sign_flipped(x, mu, log_std):
    d_mu, d_log_std = numpy_gaussian_score(x, mu, log_std)
    return -d_mu, d_log_std


def gaussian_swapped(x, mu, log_std):
    d_mu, d_log_std = numpy_gaussian_score(x, mu, log_std)
    return d_log_std, d_mu


# ---------------------------------------------------------------------------------------------
# Right answers pass
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn", "edge_cases"),
    [
        (check_score_categorical, autograd_score, 4),
        (check_score_categorical, numpy_score, 4),
        (check_gaussian_score, autograd_gaussian_score, 2),
        (check_gaussian_score, numpy_gaussian_score, 2),
        (check_gaussian_score, finite_difference_gaussian_score, 2),
    ],
    ids=[
        "cat-autograd",
        "cat-numpy",
        "gauss-autograd",
        "gauss-numpy",
        "gauss-finite-diff",
    ],
)
def test_right_answers_pass(check, fn, edge_cases, capsys) -> None:
    assert check(fn, seed=0, n_random=25) is True
    assert f"all {edge_cases + 25} cases passed" in capsys.readouterr().out


def test_right_answers_pass_on_many_random_cases() -> None:
    assert check_score_categorical(autograd_score, seed=1, n_random=200)
    assert check_gaussian_score(autograd_gaussian_score, seed=1, n_random=200)


def test_categorical_reference_agrees_with_the_tabular_score_of_rlbook_exact() -> None:
    # grad_log_probs of a tabular softmax policy is zero outside row s and onehot - pi in it
    seen = []

    def via_exact(logits, actions):
        flat, acts = logits.reshape(-1, logits.shape[-1]), actions.reshape(-1)
        rows = [
            grad_log_probs(flat, torch.tensor(i), a)[i]
            for i, a in enumerate(acts.tolist())
        ]
        seen.append(torch.stack(rows).reshape(logits.shape))
        return seen[-1]

    assert check_score_categorical(via_exact, seed=2, n_random=10)
    # and the rows average to zero under pi: the EGLP lemma, once more
    theta = torch.randn(3, 4, dtype=torch.float64)
    states, actions = torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij")
    scores = grad_log_probs(theta, states, actions)  # (S, A, S, A)
    expected = torch.einsum("sa,sakb->kb", policy_probs(theta), scores)
    assert expected.abs().max() < 1e-14


def test_graders_are_reproducible_with_a_seed() -> None:
    seen: list[list] = [[], []]

    def recorder(k):
        def fn(x, mu, log_std):
            seen[k].append((x.tolist(), mu.tolist(), log_std.tolist()))
            return numpy_gaussian_score(x, mu, log_std)

        return fn

    check_gaussian_score(recorder(0), seed=4, n_random=5)
    check_gaussian_score(recorder(1), seed=4, n_random=5)
    assert seen[0] == seen[1] and len(seen[0]) == 7


# ---------------------------------------------------------------------------------------------
# Known mistakes are named
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn", "diagnosis"),
    [
        (check_score_categorical, score_sign_flipped, "sign is flipped"),
        (check_score_categorical, score_onehot_only, "(- softmax) is missing"),
        (check_score_categorical, score_softmax_dim0, "first (batch) axis"),
        (check_score_categorical, score_of_probability, "not log pi(a)"),
        (check_gaussian_score, gaussian_no_minus_one, "- 1 in d_log_std is missing"),
        (check_gaussian_score, gaussian_sigma_not_squared, "both components"),
        (
            check_gaussian_score,
            gaussian_wrt_sigma,
            "with respect to sigma, not log(sigma)",
        ),
        (check_gaussian_score, gaussian_mean_sign_flipped, "sign of d_mu is flipped"),
        (check_gaussian_score, gaussian_swapped, "swapped"),
    ],
    ids=[
        "cat-flipped",
        "cat-onehot-only",
        "cat-softmax-dim0",
        "cat-grad-of-prob",
        "gauss-no-minus-one",
        "gauss-sigma",
        "gauss-wrt-sigma",
        "gauss-flipped",
        "gauss-swapped",
    ],
)
def test_known_mistakes_are_diagnosed(check, fn, diagnosis: str) -> None:
    with pytest.raises(ExerciseError) as info:
        check(fn, seed=0)
    message = str(info.value)
    assert "It looks like" in message
    assert diagnosis in message.split("It looks like")[1].split("Hint:")[0]
    assert "expected" in message and "got" in message and "Hint:" in message


def test_sigma_in_one_component_only_is_told_apart() -> None:
    def sigma_in_mu_only(x, mu, log_std):
        d_mu, d_log_std = numpy_gaussian_score(x, mu, log_std)
        return (x - mu) / torch.exp(log_std), d_log_std

    with pytest.raises(
        ExerciseError, match="d_mu divides by sigma where sigma\\*\\*2 belongs"
    ):
        check_gaussian_score(sigma_in_mu_only, seed=0)


def test_a_mistake_hidden_by_the_first_cases_is_still_caught() -> None:
    # softmax over dim 0 is right for one distribution: the unbatched cases pass, a batch fails
    with pytest.raises(ExerciseError) as info:
        check_score_categorical(score_softmax_dim0, seed=0)
    assert "logits = array([[" in str(info.value)


def test_overflowing_softmax_fails_on_huge_logits_with_the_stability_hint() -> None:
    with pytest.raises(ExerciseError) as info:
        check_score_categorical(score_naive_exp, seed=0)
    message = str(info.value)
    assert "1000." in message and "nan" in message
    assert "overflows" in message.split("Hint:")[1]


# ---------------------------------------------------------------------------------------------
# Stubs, crashes, None, shapes
# ---------------------------------------------------------------------------------------------


def test_categorical_wrong_shape_is_reported() -> None:
    with pytest.raises(ExerciseError, match="returned shape"):
        check_score_categorical(
            lambda logits, actions: numpy_score(logits, actions).sum(-1)
        )


def test_gaussian_answer_must_be_a_pair() -> None:
    def stacked(x, mu, log_std):
        return torch.stack(autograd_gaussian_score(x, mu, log_std), dim=-1)

    with pytest.raises(ExerciseError, match=r"expected a pair \(d_mu, d_log_std\)"):
        check_gaussian_score(stacked)


def test_gaussian_components_of_the_wrong_shape_are_reported() -> None:
    def column(x, mu, log_std):
        d_mu, d_log_std = numpy_gaussian_score(x, mu, log_std)
        return d_mu[:, None], d_log_std

    with pytest.raises(ExerciseError, match="raised ValueError"):
        check_gaussian_score(column, seed=0)
