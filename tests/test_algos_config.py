"""One scaffold for the algorithms' configs: every field checked when the config is made, and
one meaning of eval_every and stop_at_eval for every algorithm."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlbook.algos.ars import ARSConfig, train_ars
from rlbook.algos.config import Config
from rlbook.algos.numpy_pg import NumpyPGConfig
from rlbook.algos.ppo import PPOConfig
from rlbook.algos.reinforce import ReinforceConfig
from rlbook.algos.vpg import VPGConfig

CONFIGS = [ARSConfig, NumpyPGConfig, PPOConfig, ReinforceConfig, VPGConfig]
EVALUATING = [ARSConfig, PPOConfig, ReinforceConfig]


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_field_of_every_config_is_checked(cls) -> None:
    assert issubclass(cls, Config)
    unchecked = {
        f.name for f in dataclasses.fields(cls) if f.name not in cls.CHECKS
    } - {"eval_every", "stop_at_eval"}
    assert not unchecked, f"{cls.__name__} does not check {sorted(unchecked)}"
    assert not set(cls.CHECKS) - {f.name for f in dataclasses.fields(cls)}
    cls()  # the defaults pass


@pytest.mark.parametrize("cls", CONFIGS)
def test_a_bool_is_not_a_count_and_a_negative_rate_is_refused(cls) -> None:
    count = next(
        n for n in ("num_envs", "num_episodes", "num_directions") if hasattr(cls(), n)
    )
    with pytest.raises(TypeError, match=f"{count} must be an integer, got True"):
        cls(**{count: True})
    rate = "lr" if hasattr(cls(), "lr") else "step_size"
    with pytest.raises(ValueError, match=rate):
        cls(**{rate: -0.2})


@pytest.mark.parametrize("cls", EVALUATING)
def test_eval_every_none_means_never_and_zero_is_refused(cls) -> None:
    assert cls().eval_every is None
    assert cls(eval_every=1000).eval_every == 1000
    with pytest.raises(ValueError, match="eval_every must be a positive integer"):
        cls(eval_every=0)


@pytest.mark.parametrize("cls", EVALUATING)
def test_stop_at_eval_without_evaluations_is_refused_for_every_algorithm(cls) -> None:
    with pytest.raises(ValueError, match="stop_at_eval needs evaluations"):
        cls(stop_at_eval=475.0)
    assert cls(eval_every=500, stop_at_eval=475.0).stop_at_eval == 475.0


def test_a_run_without_evaluations_logs_none() -> None:
    history = train_ars("CartPole-v1", ARSConfig(total_steps=300, seed=1))
    assert "eval_mean" not in history.keys()


def test_the_training_functions_log_one_vocabulary():
    # iteration from 0, cumulative env_steps, wall_time; eval_* in the rows that evaluated
    from rlbook.algos.ars import ARSConfig, train_ars
    from rlbook.algos.ppo import PPOConfig, train_ppo
    from rlbook.algos.reinforce import ReinforceConfig, train_reinforce
    from rlbook.algos.trpo import TRPOConfig, train_trpo

    runs = {
        "reinforce": train_reinforce(
            "CartPole-v1", ReinforceConfig(total_steps=600, eval_every=300)
        ),
        "ppo": train_ppo(
            "CartPole-v1", PPOConfig(num_steps=16, total_steps=600, eval_every=300)
        ),
        "trpo": train_trpo(
            "CartPole-v1", TRPOConfig(num_steps=16, total_steps=600, eval_every=300)
        ),
        "ars": train_ars("CartPole-v1", ARSConfig(total_steps=600, eval_every=300)),
    }
    for name, history in runs.items():
        assert history["iteration"][0] == 0, name
        np.testing.assert_array_equal(history["iteration"], np.arange(len(history)))
        assert np.all(np.diff(history["env_steps"]) > 0), name
        assert np.all(np.diff(history["wall_time"]) >= 0), name
        evaluated = ~np.isnan(history["eval_mean"])
        assert evaluated.any() and np.isfinite(history["eval_steps"][evaluated]).all()
