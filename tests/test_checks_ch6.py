"""Tests of the chapter-6 graders ``check_clip_objective`` and ``check_gae``.

The right answers are written the way a learner would, by routes independent of the graders'
references: the clipped objective case by case (which side of the clip range, which sign of the
advantage) and with NumPy; GAE as the explicit sum of discounted TD errors to the end of the
episode, without a recursion, and as a backward loop over Python floats. Each known wrong answer
must fail with its own diagnosis.
"""

import numpy as np
import pytest
import torch

from rlbook.checks import ExerciseError, check_clip_objective, check_gae

# ---------------------------------------------------------------------------------------------
# Learner-style clipped objectives, right and wrong
# ---------------------------------------------------------------------------------------------


def casewise_clip(ratio, advantages, clip_coef):
    """Right: the flat regions written out (A > 0: capped above; A < 0: capped below)."""
    capped_above = torch.where(
        ratio > 1 + clip_coef, (1 + clip_coef) * advantages, ratio * advantages
    )
    capped_below = torch.where(
        ratio < 1 - clip_coef, (1 - clip_coef) * advantages, ratio * advantages
    )
    return torch.where(advantages >= 0, capped_above, capped_below)


def torch_clip(ratio, advantages, clip_coef):
    """Right: the formula, with torch.min and Tensor.clamp."""
    return torch.min(
        ratio * advantages, ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages
    )


def numpy_clip(ratio, advantages, clip_coef):
    """Right values, but computed in NumPy: no gradient."""
    r, a = ratio.detach().numpy(), advantages.numpy()
    return np.minimum(r * a, np.clip(r, 1 - clip_coef, 1 + clip_coef) * a)


def max_clip(ratio, advantages, clip_coef):
    return torch.max(
        ratio * advantages, ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages
    )


def only_clipped(ratio, advantages, clip_coef):
    return ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages


def clipped_product(ratio, advantages, clip_coef):
    return torch.min(
        ratio * advantages, (ratio * advantages).clamp(1 - clip_coef, 1 + clip_coef)
    )


def clipped_advantage(ratio, advantages, clip_coef):
    return torch.min(
        ratio * advantages, ratio * advantages.clamp(1 - clip_coef, 1 + clip_coef)
    )


def eps_range(ratio, advantages, clip_coef):
    return torch.min(
        ratio * advantages, ratio.clamp(-clip_coef, clip_coef) * advantages
    )


def as_loss(ratio, advantages, clip_coef):
    return -torch_clip(ratio, advantages, clip_coef)


def batch_mean(ratio, advantages, clip_coef):
    return torch_clip(ratio, advantages, clip_coef).mean()


def batch_loss(ratio, advantages, clip_coef):
    return -torch_clip(ratio, advantages, clip_coef).mean()


def detached(ratio, advantages, clip_coef):
    return torch_clip(ratio.detach(), advantages, clip_coef)


def hard_zero_gradient_everywhere(ratio, advantages, clip_coef):
    """Right values, but the ratio enters only through a constant: gradient 0 everywhere."""
    return torch_clip(ratio.detach(), advantages, clip_coef) + 0.0 * ratio


@pytest.mark.parametrize("fn", [casewise_clip, torch_clip])
def test_clip_objective_accepts_right_answers(fn, capsys):
    assert check_clip_objective(fn, seed=1)
    assert check_clip_objective(fn, seed=2, n_random=100)
    assert "all" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, diagnosis",
    [
        (max_clip, "maximum"),
        (only_clipped, "only the clipped term"),
        (clipped_product, "product ratio * A was clipped"),
        (clipped_advantage, "advantage was clipped"),
        (eps_range, "[-eps, eps]"),
        (as_loss, "this is the loss"),
        (batch_mean, "the mean over the batch was returned"),
        (batch_loss, "minus the mean over the batch"),
    ],
)
def test_clip_objective_diagnoses_mistakes(fn, diagnosis):
    with pytest.raises(ExerciseError) as info:
        check_clip_objective(fn, seed=0)
    assert diagnosis in str(info.value)


@pytest.mark.parametrize("fn", [numpy_clip, detached])
def test_clip_objective_needs_a_gradient(fn):
    with pytest.raises(ExerciseError, match="no gradient"):
        check_clip_objective(fn, seed=0)


def test_clip_objective_checks_the_gradient():
    with pytest.raises(ExerciseError, match="wrong gradient"):
        check_clip_objective(hard_zero_gradient_everywhere, seed=0)


# ---------------------------------------------------------------------------------------------
# Learner-style GAE, right and wrong
# ---------------------------------------------------------------------------------------------


def explicit_sum_gae(rewards, values, next_values, terminated, dones, gamma, lam):
    """Right: A_t = sum_l (gamma lam)^l delta_t+l up to the end of t's episode, no recursion."""
    T, N = rewards.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[k, i] else float(next_values[k, i])
                delta = float(rewards[k, i]) + gamma * bootstrap - float(values[k, i])
                total += weight * delta
                if dones[k, i]:
                    break
                weight *= gamma * lam
            out[t, i] = total
    return out


def numpy_gae(rewards, values, next_values, terminated, dones, gamma, lam):
    """Right: a backward loop in NumPy, masks as 0/1 floats."""
    r, v, nv = (np.asarray(x, dtype=np.float64) for x in (rewards, values, next_values))
    not_term = 1.0 - np.asarray(terminated, dtype=np.float64)
    not_done = 1.0 - np.asarray(dones, dtype=np.float64)
    deltas = r + gamma * nv * not_term - v
    adv = np.zeros_like(r)
    running = np.zeros(r.shape[1])
    for t in reversed(range(r.shape[0])):
        running = deltas[t] + gamma * lam * not_done[t] * running
        adv[t] = running
    return adv


def learner_loop(
    rewards,
    values,
    next_values,
    terminated,
    dones,
    gamma,
    lam,
    *,
    bootstrap=None,
    cut=None,
    delta_discount=None,
    carry=None,
):
    """A backward loop whose masks and factors a test can get wrong on purpose."""
    bootstrap = ~terminated if bootstrap is None else bootstrap
    cut = dones if cut is None else cut
    delta_discount = gamma if delta_discount is None else delta_discount
    carry = gamma * lam if carry is None else carry
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + delta_discount * next_values[t] * bootstrap[t] - values[t]
        last = delta + carry * (~cut[t]) * last
        adv[t] = last
    return adv


def truncation_is_termination(
    rewards, values, next_values, terminated, dones, gamma, lam
):
    return learner_loop(
        rewards, values, next_values, terminated, dones, gamma, lam, bootstrap=~dones
    )


def bootstraps_everywhere(rewards, values, next_values, terminated, dones, gamma, lam):
    return learner_loop(
        rewards,
        values,
        next_values,
        terminated,
        dones,
        gamma,
        lam,
        bootstrap=torch.ones_like(dones),
    )


def no_cut(rewards, values, next_values, terminated, dones, gamma, lam):
    return learner_loop(
        rewards,
        values,
        next_values,
        terminated,
        dones,
        gamma,
        lam,
        cut=torch.zeros_like(dones),
    )


def cut_on_terminated(rewards, values, next_values, terminated, dones, gamma, lam):
    return learner_loop(
        rewards, values, next_values, terminated, dones, gamma, lam, cut=terminated
    )


def lam_in_delta(rewards, values, next_values, terminated, dones, gamma, lam):
    return learner_loop(
        rewards, values, next_values, terminated, dones, gamma, lam, delta_discount=lam
    )


def gamma_only(rewards, values, next_values, terminated, dones, gamma, lam):
    return learner_loop(
        rewards, values, next_values, terminated, dones, gamma, lam, carry=gamma
    )


def forwards(rewards, values, next_values, terminated, dones, gamma, lam):
    deltas = rewards + gamma * next_values * (~terminated) - values
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0]):
        running = deltas[t] + gamma * lam * running
        adv[t] = running
        running = torch.where(dones[t], torch.zeros_like(running), running)
    return adv


def next_step_flag(rewards, values, next_values, terminated, dones, gamma, lam):
    shifted = torch.zeros_like(dones)
    shifted[:-1] = dones[1:]
    return learner_loop(
        rewards, values, next_values, terminated, dones, gamma, lam, cut=shifted
    )


def value_targets(rewards, values, next_values, terminated, dones, gamma, lam):
    return (
        explicit_sum_gae(rewards, values, next_values, terminated, dones, gamma, lam)
        + values
    )


@pytest.mark.parametrize("fn", [explicit_sum_gae, numpy_gae, learner_loop])
def test_gae_accepts_right_answers(fn, capsys):
    assert check_gae(fn, seed=1)
    assert check_gae(fn, seed=2, n_random=60)
    assert "all" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, diagnosis",
    [
        (truncation_is_termination, "truncation is treated as a termination"),
        (bootstraps_everywhere, "bootstraps from next_values at terminations"),
        (no_cut, "runs on across the end of an episode"),
        (cut_on_terminated, "stops at terminations but runs on through truncations"),
        (lam_in_delta, "lambda and gamma are swapped"),
        (gamma_only, "lambda is missing"),
        (forwards, "runs forwards in time"),
        (next_step_flag, "flag of step t + 1"),
        (value_targets, "value targets"),
    ],
)
def test_gae_diagnoses_mistakes(fn, diagnosis):
    with pytest.raises(ExerciseError) as info:
        check_gae(fn, seed=0)
    assert diagnosis in str(info.value)


def test_graders_let_not_implemented_through():
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_gae(stub)
    with pytest.raises(NotImplementedError):
        check_clip_objective(stub)


def test_graders_report_crashes_and_none():
    def crash(*args, **kwargs):
        raise IndexError("oops")

    def nothing(*args, **kwargs):
        return None

    for grader in (check_gae, check_clip_objective):
        with pytest.raises(ExerciseError, match="IndexError"):
            grader(crash)
        with pytest.raises(ExerciseError, match="returned None"):
            grader(nothing)
    with pytest.raises(TypeError, match="fn must be a function"):
        check_gae(42)
