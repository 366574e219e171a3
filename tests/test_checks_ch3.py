"""Tests of the chapter-3 grader ``check_reward_to_go_estimates``.

The right answers below are computed in ways independent of the grader's reference (which
multiplies ``exact.estimator_weights`` by ``exact.grad_log_probs``): one by autograd through
``log_softmax``, one loop per episode and step; one by ``exact.gradient_estimates``, which
scatters the weighted scores into rows. The wrong answers are the mistakes a learner makes.
"""

import numpy as np
import pytest
import torch

from rlbook import exact
from rlbook.checks import ExerciseError, check_reward_to_go_estimates

# ---------------------------------------------------------------------------------------------
# Learner-style implementations, right and wrong
# ---------------------------------------------------------------------------------------------


def _autograd_estimates(theta, states, actions, weights):
    """Σ_t weights[m, t] ∇_θ log softmax(θ[s_t])[a_t], one backward pass per episode."""
    out = []
    for m in range(states.shape[0]):
        th = theta.detach().clone().requires_grad_(True)
        log_pi = torch.stack(
            [
                torch.log_softmax(th[states[m, t]], dim=-1)[actions[m, t]]
                for t in range(states.shape[1])
            ]
        )
        (grad,) = torch.autograd.grad((log_pi * weights[m]).sum(), th)
        out.append(grad)
    return torch.stack(out)


def _loop_reward_to_go(rewards):
    """Σ_{k >= t} r_k per row, by a plain Python loop."""
    out = torch.zeros_like(rewards)
    for m in range(rewards.shape[0]):
        for t in range(rewards.shape[1]):
            out[m, t] = sum(rewards[m, k] for k in range(t, rewards.shape[1]))
    return out


def autograd_rtg(theta, states, actions, rewards):
    """Right: autograd of Σ_t G_t log π(a_t|s_t), with G_t summed by a loop."""
    return _autograd_estimates(theta, states, actions, _loop_reward_to_go(rewards))


def via_gradient_estimates(theta, states, actions, rewards):
    """Right: the library's scatter-based estimator, on an MDP of the right shape."""
    num_states, num_actions = theta.shape
    mdp = exact.TabularMDP(
        P=torch.full(
            (num_states, num_actions, num_states), 1.0 / num_states, dtype=torch.float64
        ),
        R=torch.zeros(num_states, num_actions),
        mu0=torch.full((num_states,), 1.0 / num_states, dtype=torch.float64),
        horizon=states.shape[1],
    )
    traj = exact.Trajectories(states=states, actions=actions, rewards=rewards)
    return exact.gradient_estimates(mdp, theta, traj, weights="reward_to_go")


def whole_return(theta, states, actions, rewards):
    """Wrong: chapter 1's weight, R(τ) at every step."""
    weights = rewards.sum(1, keepdim=True).expand_as(rewards)
    return _autograd_estimates(theta, states, actions, weights)


def after_t(theta, states, actions, rewards):
    """Wrong: the sum starts after the action, Σ_{k > t} r_k."""
    return _autograd_estimates(
        theta, states, actions, _loop_reward_to_go(rewards) - rewards
    )


def up_to_t(theta, states, actions, rewards):
    """Wrong: the rewards so far, Σ_{k <= t} r_k."""
    return _autograd_estimates(theta, states, actions, torch.cumsum(rewards, dim=1))


def score_without_minus_pi(theta, states, actions, rewards):
    """Wrong: the score taken as the one-hot of (s_t, a_t) only."""
    weights = _loop_reward_to_go(rewards)
    out = torch.zeros(states.shape[0], *theta.shape, dtype=torch.float64)
    for m in range(states.shape[0]):
        for t in range(states.shape[1]):
            out[m, states[m, t], actions[m, t]] += weights[m, t]
    return out


def flipped(theta, states, actions, rewards):
    """Wrong: the sign of everything."""
    return -autograd_rtg(theta, states, actions, rewards)


# ---------------------------------------------------------------------------------------------
# Right answers pass, wrong ones are named
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [autograd_rtg, via_gradient_estimates], ids=["autograd", "library"]
)
def test_right_answers_pass(fn, capsys) -> None:
    assert check_reward_to_go_estimates(fn, seed=0, n_random=20) is True
    assert "all 24 cases passed" in capsys.readouterr().out  # 4 edge cases + 20 random


def test_right_answer_passes_many_random_cases() -> None:
    assert check_reward_to_go_estimates(via_gradient_estimates, seed=1, n_random=200)


@pytest.mark.parametrize(
    ("fn", "diagnosis"),
    [
        (whole_return, "whole return"),
        (after_t, "leaves out r_t"),
        (up_to_t, "up to t"),
        (score_without_minus_pi, "- pi(.|s_t) term"),
        (flipped, "sign is flipped"),
    ],
    ids=["whole-return", "after-t", "up-to-t", "no-minus-pi", "flipped"],
)
def test_known_mistakes_are_diagnosed(fn, diagnosis: str) -> None:
    with pytest.raises(ExerciseError) as info:
        check_reward_to_go_estimates(fn, seed=0)
    message = str(info.value)
    assert "It looks like" in message
    assert diagnosis in message.split("It looks like")[1].split("Hint:")[0]
    assert "expected" in message and "got" in message and "Hint:" in message


def test_an_arbitrary_wrong_answer_gets_no_diagnosis() -> None:
    def doubled(theta, states, actions, rewards):
        return 2 * autograd_rtg(theta, states, actions, rewards)

    with pytest.raises(ExerciseError) as info:
        check_reward_to_go_estimates(doubled, seed=0)
    message = str(info.value)
    assert "wrong answer on the input" in message and "It looks like" not in message


def test_the_whole_return_passes_where_it_equals_the_reward_to_go() -> None:
    # with a reward only at the last step, G_t = R(τ) at every t (the chapter's exercise 1);
    # the grader's third edge case is such an input, so whole_return fails later, not there
    theta = torch.tensor([[0.5, -0.5], [0.0, 1.0]], dtype=torch.float64)
    states, actions = torch.tensor([[0, 1, 1]]), torch.tensor([[1, 0, 1]])
    rewards = torch.tensor([[0.0, 0.0, 5.0]], dtype=torch.float64)
    assert torch.allclose(
        whole_return(theta, states, actions, rewards),
        autograd_rtg(theta, states, actions, rewards),
    )


def test_the_reference_is_unbiased_for_the_exact_gradient() -> None:
    # the graded quantity, averaged over sampled episodes, is the exact policy gradient
    mdp = exact.random_mdp(num_states=3, num_actions=2, horizon=4, seed=5)
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.0], [-0.5, 0.5]], dtype=torch.float64)
    traj = exact.sample_trajectories(mdp, theta, num_trajectories=50_000, seed=0)
    estimates = via_gradient_estimates(theta, traj.states, traj.actions, traj.rewards)
    stats = exact.estimator_stats(estimates, exact.exact_gradient(mdp, theta))
    assert stats.max_abs_z < 4.5


# ---------------------------------------------------------------------------------------------
# Stubs, None, shapes
# ---------------------------------------------------------------------------------------------


def test_not_implemented_error_propagates() -> None:
    def stub(theta, states, actions, rewards):
        raise NotImplementedError("your code here")

    with pytest.raises(NotImplementedError, match="your code here"):
        check_reward_to_go_estimates(stub)


def test_returning_none_asks_about_return() -> None:
    with pytest.raises(ExerciseError, match="return"):
        check_reward_to_go_estimates(lambda theta, states, actions, rewards: None)


def test_one_estimate_for_the_whole_batch_is_a_shape_error() -> None:
    def summed(theta, states, actions, rewards):
        return autograd_rtg(theta, states, actions, rewards).sum(0)

    with pytest.raises(ExerciseError, match="shape") as info:
        check_reward_to_go_estimates(summed, seed=0)
    assert "returned shape (1, 2), expected (1, 1, 2)" in str(info.value)


def test_numpy_answers_are_accepted() -> None:
    def as_numpy(theta, states, actions, rewards):
        return np.asarray(autograd_rtg(theta, states, actions, rewards))

    assert check_reward_to_go_estimates(as_numpy, seed=2, n_random=5)
