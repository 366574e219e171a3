"""map_runs: runs side by side give the plain loop's results and leave its random state."""

from __future__ import annotations

import pytest
import torch

from rlbook import parallel
from rlbook.algos.ppo import PPOConfig, train_ppo
from rlbook.algos.reinforce import ReinforceConfig, train_reinforce
from rlbook.parallel import map_runs
from rlbook.rollout import evaluate


def fingerprint(history) -> tuple:
    """Everything a run produced except its clock: the logged rows and the final weights."""
    rows = [{k: v for k, v in row.items() if k != "wall_time"} for row in history.rows]
    weights = [w.detach().clone() for w in history.meta["policy"].state_dict().values()]
    return rows, weights


def same(a, b) -> bool:
    rows_a, weights_a = fingerprint(a)
    rows_b, weights_b = fingerprint(b)
    return rows_a == rows_b and all(
        torch.equal(x, y) for x, y in zip(weights_a, weights_b, strict=True)
    )


def ppo_then_sampled_eval(seed):
    h = train_ppo(
        "CartPole-v1", PPOConfig.cartpole(seed=seed, total_steps=1_024, eval_every=512)
    )
    # sampled actions draw from the global torch generator the run left behind
    return h, evaluate("CartPole-v1", h.meta["policy"], 3, deterministic=False)


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setenv("RLBOOK_WORKERS", "2")
    monkeypatch.setattr(parallel, "_forking_helps", lambda n: n > 1)


def test_side_by_side_runs_give_the_loops_numbers_and_random_state(two_workers):
    seeds = [3, 4, 5]
    torch.manual_seed(123)
    loop = [ppo_then_sampled_eval(s) for s in seeds]
    after_loop = torch.rand(4)
    torch.manual_seed(456)  # a different state before: the runs must not depend on it
    mapped = map_runs(ppo_then_sampled_eval, seeds)
    after_map = torch.rand(4)
    assert all(same(a, b) for (a, _), (b, _) in zip(loop, mapped, strict=True))
    assert [score for _, score in loop] == [score for _, score in mapped]
    assert torch.equal(after_loop, after_map)


def test_a_lambda_over_jobs_works_and_keeps_the_order(two_workers):
    def cfg(seed):
        return ReinforceConfig(seed=seed, total_steps=600, steps_per_env=1)

    jobs = [5, 3, 4, 3]
    mapped = map_runs(lambda seed: train_reinforce("CartPole-v1", cfg(seed)), jobs)
    assert [h.meta["seed"] for h in mapped] == jobs
    assert same(mapped[1], mapped[3])
    assert same(mapped[0], train_reinforce("CartPole-v1", cfg(5)))


def test_an_error_in_a_run_reaches_the_caller(two_workers):
    def fails(x):
        if x == 2:
            raise ValueError("run 2 failed")
        return x

    with pytest.raises(ValueError, match="run 2 failed"):
        map_runs(fails, [1, 2, 3])


def test_one_worker_is_the_plain_loop(monkeypatch):
    monkeypatch.setenv("RLBOOK_WORKERS", "1")
    assert not parallel._forking_helps(3)
    calls = []
    assert map_runs(lambda x: calls.append(x) or x * x, [1, 2, 3]) == [1, 4, 9]
    assert calls == [1, 2, 3]  # ran here, in order


def test_bad_input_is_named(monkeypatch):
    with pytest.raises(TypeError, match="fn must be callable"):
        map_runs(3, [1, 2])
    with pytest.raises(TypeError, match="items"):
        map_runs(abs, {1, 2})
    monkeypatch.setenv("RLBOOK_WORKERS", "0")
    with pytest.raises(ValueError, match="RLBOOK_WORKERS must be a positive integer"):
        parallel.workers()
