"""Exercise graders: run a learner's function on fresh random cases and say what went wrong.

Each ``check_*`` function calls the learner's implementation on a few hand-picked edge cases
and many random ones, compares with the library's reference, and on the first mismatch raises
:class:`ExerciseError` naming the input, the expected output, what came back, and, where the
answer matches a known mistake, a hint. When all cases pass it prints a short report and
returns True.

One module per chapter (``rlbook.checks.ch6`` holds chapter 6's graders, ``ch6_2``
section 6.2's); ``_harness`` holds what they share. Import the graders from here.
"""

from __future__ import annotations

from rlbook.checks._harness import PROCEDURES, ExerciseError
from rlbook.checks.ch1 import check_discounted_returns, check_grad_log_softmax
from rlbook.checks.ch2 import check_gaussian_score, check_score_categorical
from rlbook.checks.ch3 import check_reward_to_go, check_reward_to_go_estimates
from rlbook.checks.ch4 import check_normalize, check_reinforce_loop
from rlbook.checks.ch4_1 import check_gaussian_log_prob
from rlbook.checks.ch5 import check_per_decision_is, check_trajectory_weights
from rlbook.checks.ch5_1 import check_conjugate_gradient, check_fisher_vector_product
from rlbook.checks.ch6 import check_gae
from rlbook.checks.ch6_1 import check_clip_objective
from rlbook.checks.ch6_2 import (
    check_minibatch_advantages,
    check_minibatches,
    check_ppo_update,
    check_train_ppo,
    check_value_loss,
)
from rlbook.checks.ch7 import check_ars_update

__all__ = [
    "ExerciseError",
    "PROCEDURES",
    "check_ars_update",
    "check_clip_objective",
    "check_conjugate_gradient",
    "check_discounted_returns",
    "check_fisher_vector_product",
    "check_gae",
    "check_gaussian_log_prob",
    "check_gaussian_score",
    "check_grad_log_softmax",
    "check_minibatch_advantages",
    "check_minibatches",
    "check_normalize",
    "check_per_decision_is",
    "check_ppo_update",
    "check_reinforce_loop",
    "check_reward_to_go",
    "check_reward_to_go_estimates",
    "check_score_categorical",
    "check_train_ppo",
    "check_trajectory_weights",
    "check_value_loss",
]
