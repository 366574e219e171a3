"""Tests of rlbook.checks: the graders accept right answers written independently of the
library, and name the mistake in each known wrong answer.

The implementations below are written the way a learner would write them (loops, NumPy,
autograd), so that passing a grader means agreeing with the library, not being the library.
"""

import numpy as np
import pytest
import torch

from rlbook.algos.numpy_pg import grad_log_softmax_policy
from rlbook.checks import (
    ExerciseError,
    check_discounted_returns,
    check_grad_log_softmax,
    check_reward_to_go,
)
from rlbook.returns import discounted_returns, reward_to_go

# ---------------------------------------------------------------------------------------------
# Learner-style implementations, right and wrong
# ---------------------------------------------------------------------------------------------


def loop_reward_to_go(rewards, dones, gamma):
    """Right: walk backwards, restarting the sum at every done."""
    r, d = np.asarray(rewards, dtype=float), np.asarray(dones, dtype=bool)
    out = np.zeros_like(r)
    for i in range(r.shape[1]):
        running = 0.0
        for t in reversed(range(r.shape[0])):
            if d[t, i]:
                running = 0.0
            running = r[t, i] + gamma * running
            out[t, i] = running
    return out


def forward_cumsum(rewards, dones, gamma):
    """Wrong: the sum from the start of the episode up to t."""
    out = torch.zeros_like(rewards)
    for i in range(rewards.shape[1]):
        running = 0.0
        for t in range(rewards.shape[0]):
            running += rewards[t, i]
            out[t, i] = running
            if dones[t, i]:
                running = 0.0
    return out


def rtg_ignoring_dones(rewards, dones, gamma):
    """Wrong: one discounted sum per column, running through episode boundaries."""
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def rtg_discounted_from_episode_start(rewards, dones, gamma):
    """Wrong: r_k weighted by gamma ** (k - start of episode) instead of gamma ** (k - t)."""
    out = torch.zeros_like(rewards)
    for i in range(rewards.shape[1]):
        start = 0
        for t in range(rewards.shape[0]):
            end = t
            while not dones[end, i] and end + 1 < rewards.shape[0]:
                end += 1
            out[t, i] = sum(
                gamma ** (k - start) * rewards[k, i] for k in range(t, end + 1)
            )
            if dones[t, i]:
                start = t + 1
    return out


def loop_discounted_returns(rewards, dones, gamma):
    """Right: the reward-to-go of the episode's first step, written at each of its steps."""
    to_go = loop_reward_to_go(rewards, dones, gamma)
    out = np.zeros_like(to_go)
    d = np.asarray(dones, dtype=bool)
    for i in range(to_go.shape[1]):
        first = 0
        for t in range(to_go.shape[0]):
            out[t, i] = to_go[first, i]
            if d[t, i]:
                first = t + 1
    return out


def whole_column_return(rewards, dones, gamma):
    """Wrong: one return per column, ignoring the episode boundaries."""
    total = rtg_ignoring_dones(rewards, dones, gamma)[0]
    return total.expand_as(rewards).clone()


def autograd_grad_log_softmax(theta, x, actions):
    """Right: differentiate log_softmax(x @ theta)[a] with torch, one sample at a time."""
    grads = []
    for b in range(x.shape[0]):
        th = torch.tensor(theta, requires_grad=True)
        log_pi = torch.log_softmax(torch.tensor(x[b]) @ th, dim=-1)[int(actions[b])]
        (g,) = torch.autograd.grad(log_pi, th)
        grads.append(g.numpy())
    return np.stack(grads)


def score_without_minus_pi(theta, x, actions):
    """Wrong: x (1[k = a]), the gradient of the log-sum-exp term forgotten."""
    onehot = np.eye(theta.shape[1])[actions]
    return np.einsum("bj,bk->bjk", x, onehot)


def score_softmax_over_batch(theta, x, actions):
    """Wrong: probabilities normalised over the samples instead of over the actions."""
    logits = x @ theta
    probs = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
    onehot = np.eye(theta.shape[1])[actions]
    return np.einsum("bj,bk->bjk", x, onehot - probs)


def score_flipped(theta, x, actions):
    """Wrong: the sign of the whole gradient."""
    return -autograd_grad_log_softmax(theta, x, actions)


# ---------------------------------------------------------------------------------------------
# Right answers pass
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_reward_to_go, reward_to_go),
        (check_reward_to_go, loop_reward_to_go),
        (check_discounted_returns, discounted_returns),
        (check_discounted_returns, loop_discounted_returns),
        (check_grad_log_softmax, grad_log_softmax_policy),
        (check_grad_log_softmax, autograd_grad_log_softmax),
    ],
    ids=[
        "rtg-reference",
        "rtg-loop",
        "dr-reference",
        "dr-loop",
        "grad-reference",
        "grad-autograd",
    ],
)
def test_right_answers_pass(check, fn, capsys) -> None:
    assert check(fn, seed=0, n_random=20) is True
    out = capsys.readouterr().out
    edge_cases = 2 if check is check_grad_log_softmax else 4
    assert f"all {edge_cases + 20} cases passed" in out


def test_right_answers_pass_on_many_random_cases() -> None:
    assert check_reward_to_go(loop_reward_to_go, seed=1, n_random=200)
    assert check_discounted_returns(loop_discounted_returns, seed=1, n_random=200)


def test_graders_are_reproducible_with_a_seed() -> None:
    seen: list[list] = [[], []]

    def recorder(k):
        def fn(rewards, dones, gamma):
            seen[k].append((rewards.tolist(), dones.tolist(), gamma))
            return reward_to_go(rewards, dones, gamma)

        return fn

    check_reward_to_go(recorder(0), seed=3, n_random=10)
    check_reward_to_go(recorder(1), seed=3, n_random=10)
    assert seen[0] == seen[1]


# ---------------------------------------------------------------------------------------------
# Known mistakes are named
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fn", "diagnosis"),
    [
        (check_reward_to_go, forward_cumsum, "from the start of the episode up to t"),
        (check_reward_to_go, rtg_ignoring_dones, "dones are ignored"),
        (check_reward_to_go, rtg_discounted_from_episode_start, "episode's first step"),
        (check_discounted_returns, reward_to_go, "reward-to-go"),
        (check_discounted_returns, loop_reward_to_go, "reward-to-go"),
        (check_discounted_returns, whole_column_return, "episode boundaries"),
        (check_grad_log_softmax, score_without_minus_pi, "- pi) is missing"),
        (check_grad_log_softmax, score_softmax_over_batch, "batch axis"),
        (check_grad_log_softmax, score_flipped, "sign is flipped"),
    ],
    ids=[
        "rtg-forward-cumsum",
        "rtg-ignores-dones",
        "rtg-discount-from-start",
        "dr-is-rtg",
        "dr-is-rtg-loop",
        "dr-ignores-dones",
        "grad-no-minus-pi",
        "grad-batch-axis",
        "grad-flipped",
    ],
)
def test_known_mistakes_are_diagnosed(check, fn, diagnosis: str) -> None:
    with pytest.raises(ExerciseError) as info:
        check(fn, seed=0)
    message = str(info.value)
    assert "It looks like" in message
    assert diagnosis in message.split("It looks like")[1].split("Hint:")[0]
    assert "expected" in message and "got" in message and "Hint:" in message


def test_exercise_error_is_an_assertion_error() -> None:
    # so that a failing grader fails a notebook cell the same way an assert does
    assert issubclass(ExerciseError, AssertionError)


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (
            check_reward_to_go,
            lambda rewards, dones, gamma: 2 * reward_to_go(rewards, dones, gamma),
        ),
        (check_discounted_returns, lambda rewards, dones, gamma: rewards + 1),
        (
            check_grad_log_softmax,
            lambda theta, x, actions: np.zeros((x.shape[0], *theta.shape)),
        ),
    ],
    ids=["rtg", "dr", "grad"],
)
def test_an_arbitrary_wrong_answer_shows_the_input_expected_and_got(check, fn) -> None:
    with pytest.raises(ExerciseError) as info:
        check(fn, seed=0)
    message = str(info.value)
    assert "wrong answer on the input" in message
    assert "expected:" in message and "got:" in message
    assert "It looks like" not in message
    assert "Hint:" in message


def test_the_message_shows_the_failing_input_and_both_answers() -> None:
    # the first graded case is rewards [[1]], dones [[True]], gamma 1: expected 1
    with pytest.raises(ExerciseError) as info:
        check_reward_to_go(lambda rewards, dones, gamma: rewards + 41, seed=0)
    message = str(info.value)
    assert "rewards = array([[1.]]" in message
    assert "dones = array([[ True]])" in message
    assert "gamma = 1.0" in message
    expected_part, got_part = message.split("expected:")[1].split("got:")
    assert "1." in expected_part and "42." in got_part


# ---------------------------------------------------------------------------------------------
# Stubs, crashes, None, shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", [check_reward_to_go, check_discounted_returns])
def test_not_implemented_error_propagates(check) -> None:
    def stub(rewards, dones, gamma):
        raise NotImplementedError("your code here")

    with pytest.raises(NotImplementedError, match="your code here"):
        check(stub)


def test_not_implemented_error_propagates_for_the_gradient() -> None:
    def stub(theta, x, actions):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_grad_log_softmax(stub)


def test_a_crash_is_reported_with_its_type_and_the_input() -> None:
    def crashes(rewards, dones, gamma):
        return rewards[rewards.shape[0]]

    with pytest.raises(ExerciseError, match="IndexError") as info:
        check_reward_to_go(crashes)
    assert "on the input" in str(info.value)
    assert isinstance(info.value.__cause__, IndexError)


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_reward_to_go, lambda rewards, dones, gamma: None),
        (check_discounted_returns, lambda rewards, dones, gamma: None),
        (check_grad_log_softmax, lambda theta, x, actions: None),
    ],
    ids=["rtg", "dr", "grad"],
)
def test_returning_none_asks_about_return(check, fn) -> None:
    with pytest.raises(ExerciseError, match="return"):
        check(fn)


def test_wrong_shape_is_reported() -> None:
    with pytest.raises(ExerciseError, match="shape") as info:
        check_reward_to_go(lambda rewards, dones, gamma: rewards.sum(0))
    assert "returned shape (1,), expected (1, 1)" in str(info.value)
    with pytest.raises(ExerciseError, match="shape"):
        check_grad_log_softmax(
            lambda theta, x, actions: autograd_grad_log_softmax(theta, x, actions)[0]
        )


def test_an_in_place_edit_of_an_input_is_reported_with_a_hint() -> None:
    # a right answer that overwrites its input would corrupt the caller's rollout
    def in_place(rewards, dones, gamma):
        out = reward_to_go(rewards, dones, gamma)
        rewards.zero_()
        dones.fill_(True)
        return out

    with pytest.raises(ExerciseError, match="changed its argument 'rewards' in place"):
        check_reward_to_go(in_place, seed=0, n_random=10)


def test_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fn"):
        check_reward_to_go(np.zeros((2, 2)))
