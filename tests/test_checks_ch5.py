"""Tests of the chapter-5 graders ``check_trajectory_weights`` and ``check_per_decision_is``.

The right answers are written the way a learner would, by routes independent of the graders'
references in ``rlbook.importance``: a loop over steps multiplying ratios computed from
log-probabilities, a NumPy version, and a per-decision return built reward by reward. Each
known wrong answer must fail with its own diagnosis.
"""

import numpy as np
import pytest
import torch

from rlbook.checks import ExerciseError, check_per_decision_is, check_trajectory_weights

# ---------------------------------------------------------------------------------------------
# Learner-style trajectory weights, right and wrong
# ---------------------------------------------------------------------------------------------


def loop_weights(log_p_target, log_p_behaviour):
    """Right: multiply the per-step ratios one step at a time, each from a log-difference."""
    weights = torch.ones(log_p_target.shape[0], dtype=torch.float64)
    for t in range(log_p_target.shape[1]):
        weights = weights * torch.exp(log_p_target[:, t] - log_p_behaviour[:, t])
    return weights


def numpy_weights(log_p_target, log_p_behaviour):
    """Right: NumPy, the log-ratios summed first."""
    return np.exp(
        np.sum(np.asarray(log_p_target) - np.asarray(log_p_behaviour), axis=1)
    )


def naive_weights(log_p_target, log_p_behaviour):
    """Wrong on tiny probabilities: the probabilities themselves, divided."""
    return (torch.exp(log_p_target) / torch.exp(log_p_behaviour)).prod(-1)


def naive_product_first(log_p_target, log_p_behaviour):
    """Wrong on long episodes: the trajectory probabilities, divided."""
    return torch.exp(log_p_target).prod(-1) / torch.exp(log_p_behaviour).prod(-1)


def per_step_ratios(log_p_target, log_p_behaviour):
    """Wrong: one ratio per step, never multiplied."""
    return torch.exp(log_p_target - log_p_behaviour)


def inverted_weights(log_p_target, log_p_behaviour):
    return loop_weights(log_p_behaviour, log_p_target)


def summed_ratios(log_p_target, log_p_behaviour):
    return torch.exp(log_p_target - log_p_behaviour).sum(-1)


def mean_ratio(log_p_target, log_p_behaviour):
    return torch.exp(log_p_target - log_p_behaviour).mean(-1)


def geometric_mean(log_p_target, log_p_behaviour):
    return torch.exp((log_p_target - log_p_behaviour).mean(-1))


def last_ratio(log_p_target, log_p_behaviour):
    return torch.exp(log_p_target[:, -1] - log_p_behaviour[:, -1])


# ---------------------------------------------------------------------------------------------
# Learner-style per-decision returns, right and wrong
# ---------------------------------------------------------------------------------------------


def loop_per_decision(rewards, log_p_target, log_p_behaviour, gamma):
    """Right: walk forward, keeping the running product W_0:t, reward by reward."""
    total = torch.zeros(rewards.shape[0], dtype=torch.float64)
    log_w = torch.zeros(rewards.shape[0], dtype=torch.float64)
    for t in range(rewards.shape[1]):
        log_w = log_w + log_p_target[:, t] - log_p_behaviour[:, t]
        total = total + gamma**t * torch.exp(log_w) * rewards[:, t]
    return total


def numpy_per_decision(rewards, log_p_target, log_p_behaviour, gamma):
    """Right: NumPy, with an explicit (H, H) lower-triangular sum for W_0:t."""
    log_ratio = np.asarray(log_p_target) - np.asarray(log_p_behaviour)
    h = log_ratio.shape[1]
    cumulative = log_ratio @ np.triu(np.ones((h, h)))  # column t sums steps 0..t
    return (gamma ** np.arange(h) * np.exp(cumulative) * np.asarray(rewards)).sum(1)


def ordinary_is(rewards, log_p_target, log_p_behaviour, gamma):
    weight = torch.exp((log_p_target - log_p_behaviour).sum(-1))
    return weight * (gamma ** torch.arange(rewards.shape[1]) * rewards).sum(-1)


def ratios_before_t(rewards, log_p_target, log_p_behaviour, gamma):
    log_ratio = log_p_target - log_p_behaviour
    previous = log_ratio.cumsum(-1) - log_ratio
    return (
        gamma ** torch.arange(rewards.shape[1]) * torch.exp(previous) * rewards
    ).sum(-1)


def ratio_of_step_t(rewards, log_p_target, log_p_behaviour, gamma):
    ratio = torch.exp(log_p_target - log_p_behaviour)
    return (gamma ** torch.arange(rewards.shape[1]) * ratio * rewards).sum(-1)


def ratios_from_t(rewards, log_p_target, log_p_behaviour, gamma):
    later = (log_p_target - log_p_behaviour).flip(-1).cumsum(-1).flip(-1)
    return (gamma ** torch.arange(rewards.shape[1]) * torch.exp(later) * rewards).sum(
        -1
    )


def inverted_per_decision(rewards, log_p_target, log_p_behaviour, gamma):
    return loop_per_decision(rewards, log_p_behaviour, log_p_target, gamma)


def undiscounted(rewards, log_p_target, log_p_behaviour, gamma):
    return loop_per_decision(rewards, log_p_target, log_p_behaviour, 1.0)


def naive_per_decision(rewards, log_p_target, log_p_behaviour, gamma):
    ratio = torch.exp(log_p_target) / torch.exp(log_p_behaviour)
    return (gamma ** torch.arange(rewards.shape[1]) * ratio.cumprod(-1) * rewards).sum(
        -1
    )


def per_step_terms(rewards, log_p_target, log_p_behaviour, gamma):
    cumulative = torch.exp((log_p_target - log_p_behaviour).cumsum(-1))
    return gamma ** torch.arange(rewards.shape[1]) * cumulative * rewards


# ---------------------------------------------------------------------------------------------
# Right answers pass
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn", "edge_cases"),
    [
        (check_trajectory_weights, loop_weights, 5),
        (check_trajectory_weights, numpy_weights, 5),
        (check_per_decision_is, loop_per_decision, 4),
        (check_per_decision_is, numpy_per_decision, 4),
    ],
    ids=["weights-loop", "weights-numpy", "pdis-loop", "pdis-numpy"],
)
def test_right_answers_pass(check, fn, edge_cases, capsys) -> None:
    assert check(fn, seed=0, n_random=25) is True
    assert f"all {edge_cases + 25} cases passed" in capsys.readouterr().out


def test_right_answers_pass_on_many_random_cases() -> None:
    assert check_trajectory_weights(loop_weights, seed=1, n_random=200)
    assert check_per_decision_is(loop_per_decision, seed=1, n_random=200)


def test_per_decision_of_one_step_is_the_trajectory_weight_times_the_reward() -> None:
    # the graders' two references agree where the estimators coincide (H = 1)
    seen = []

    def via_weights(rewards, log_p_target, log_p_behaviour, gamma):
        if rewards.shape[1] == 1:
            seen.append(1)
            return loop_weights(log_p_target, log_p_behaviour) * rewards[:, 0]
        return loop_per_decision(rewards, log_p_target, log_p_behaviour, gamma)

    assert check_per_decision_is(via_weights, seed=0)
    assert seen


# ---------------------------------------------------------------------------------------------
# Known mistakes are named
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn", "diagnosis"),
    [
        (check_trajectory_weights, inverted_weights, "the ratio is inverted"),
        (check_trajectory_weights, summed_ratios, "you added the per-step ratios"),
        (check_trajectory_weights, mean_ratio, "you averaged the per-step ratios"),
        (check_trajectory_weights, geometric_mean, "geometric mean"),
        (check_trajectory_weights, last_ratio, "only the last step's ratio"),
        (check_per_decision_is, ordinary_is, "ordinary importance sampling"),
        (check_per_decision_is, ratios_before_t, "ratios up to step t - 1"),
        (check_per_decision_is, ratio_of_step_t, "ratio of step t alone"),
        (check_per_decision_is, ratios_from_t, "steps t..H-1"),
        (check_per_decision_is, inverted_per_decision, "the ratio is inverted"),
        (check_per_decision_is, undiscounted, "discount gamma**t is missing"),
    ],
    ids=[
        "w-inverted",
        "w-summed",
        "w-mean",
        "w-geometric",
        "w-last",
        "pd-ordinary",
        "pd-before-t",
        "pd-step-t",
        "pd-from-t",
        "pd-inverted",
        "pd-no-discount",
    ],
)
def test_known_mistakes_are_diagnosed(check, fn, diagnosis: str) -> None:
    with pytest.raises(ExerciseError) as info:
        check(fn, seed=0)
    message = str(info.value)
    assert "It looks like" in message
    assert diagnosis in message.split("It looks like")[1].split("Hint:")[0]
    assert "expected" in message and "got" in message and "Hint:" in message


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_trajectory_weights, naive_weights),
        (check_trajectory_weights, naive_product_first),
        (check_per_decision_is, naive_per_decision),
    ],
    ids=["weights-per-step-exp", "weights-probability-of-episode", "pdis-exp"],
)
def test_exponentiating_before_dividing_is_named(check, fn) -> None:
    # right on ordinary numbers: the mistake only shows where exp underflows to 0 and 0 / 0 = NaN
    with pytest.raises(ExerciseError) as info:
        check(fn, seed=0)
    message = str(info.value)
    assert "nan" in message and "exponentiated before dividing" in message
    assert "exp(-800) is 0.0" in message


@pytest.mark.parametrize(
    ("check", "fn", "diagnosis"),
    [
        (check_trajectory_weights, per_step_ratios, "forgot the product over time"),
        (check_per_decision_is, per_step_terms, "forgot the sum over time"),
    ],
    ids=["weights", "pdis"],
)
def test_one_number_per_step_is_named(check, fn, diagnosis) -> None:
    with pytest.raises(ExerciseError, match=diagnosis) as info:
        check(fn, seed=0)
    assert "(3, 4)" in str(info.value)


def test_naive_weights_agree_with_the_grader_away_from_underflow() -> None:
    # the naive route is right on ordinary numbers: the grader fails it only for the underflow
    rng = np.random.default_rng(3)
    log_p, log_q = (torch.tensor(np.log(rng.uniform(0.1, 1, (4, 5)))) for _ in range(2))
    assert torch.allclose(naive_weights(log_p, log_q), loop_weights(log_p, log_q))


# ---------------------------------------------------------------------------------------------
# Stubs, crashes, None, shapes, reproducibility
# ---------------------------------------------------------------------------------------------


def test_graders_are_reproducible_with_a_seed() -> None:
    seen: list[list] = [[], []]

    def recorder(k):
        def fn(log_p_target, log_p_behaviour):
            seen[k].append(log_p_target.tolist())
            return loop_weights(log_p_target, log_p_behaviour)

        return fn

    check_trajectory_weights(recorder(0), seed=4, n_random=5)
    check_trajectory_weights(recorder(1), seed=4, n_random=5)
    assert seen[0] == seen[1] and len(seen[0]) > 5


def test_the_learner_cannot_change_the_cases_in_place() -> None:
    def vandal(log_p_target, log_p_behaviour):
        out = loop_weights(log_p_target, log_p_behaviour)
        log_p_target.zero_()  # must not change what the reference sees
        return out

    with pytest.raises(ExerciseError, match="'log_p_target' in place"):
        check_trajectory_weights(vandal, seed=0, n_random=5)
