"""Environment steps and wall time PPO needs to solve CartPole-v1, over seeds; SB3 alongside.

Usage::

    python benchmarks/ppo_cartpole.py --seeds 10
    python benchmarks/ppo_cartpole.py --seeds 10 --no-sb3

Protocol (the same for every algorithm, in the same run, seeds interleaved so that both see
the same machine load):

* every 2,500 environment steps the policy is evaluated by ``rlbook.rollout.Evaluator``:
  10 episodes, deterministic actions (argmax), fresh start states at each evaluation;
* the figures of a run are the environment step count at the first evaluation whose mean
  return is at least 475 (CartPole-v1's reward threshold), and the wall-clock and CPU time from
  the start of training to that evaluation (network and environment set-up and evaluations
  included; training stops there). CPU time is the steadier figure on a shared machine;
* a run that has not solved the task within its budget counts as unsolved (steps = inf).

Ours is ``rlbook.algos.ppo.train_ppo`` twice, with ``PPOConfig()`` defaults and with the
``PPOConfig.cartpole()`` preset (20 Adam steps per batch instead of 40), budget 50,000 steps.
If stable-baselines3 is importable, SB3's PPO runs with the RL-Zoo hyperparameters for
CartPole-v1 (n_envs 8, n_steps 32, batch_size 256, gae_lambda 0.8, gamma 0.98, n_epochs 20,
ent_coef 0, learning rate and clip range decaying linearly from 1e-3 and 0.2 over the zoo's
100,000 steps, which is also its budget here). Torch runs on one thread for both.

The script prints one line per run and a markdown table: runs solved, median, min and max
steps to solve, median wall and CPU time to solve, and our medians as ratios to SB3's. Raw
results go to ``benchmarks/results/ppo_cartpole.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from _common import save_results
from torch import nn

from rlbook.algos.ppo import PPOConfig, train_ppo
from rlbook.rollout import Evaluator

EVAL_EVERY = 2_500
THRESHOLD = 475.0
SB3_BUDGET = 100_000


def timed(run) -> tuple[float, float, float]:
    """(steps, wall seconds, CPU seconds) of ``run()``, which returns the steps to solve and
    stops training there; (inf, inf, inf) if it did not solve."""
    wall, cpu = time.perf_counter(), time.process_time()
    steps = run()
    if math.isinf(steps):
        return math.inf, math.inf, math.inf
    return steps, time.perf_counter() - wall, time.process_time() - cpu


CONFIGS = {"PPOConfig()": PPOConfig, "PPOConfig.cartpole()": PPOConfig.cartpole}


def run_ours(make_config, seed: int, budget: int) -> float:
    """Steps to solve with rlbook's PPO (inf if unsolved); training stops at the solve."""
    cfg = make_config(
        seed=seed, total_steps=budget, eval_every=EVAL_EVERY, stop_at_eval=THRESHOLD
    )
    history = train_ppo("CartPole-v1", cfg)
    return history.first_reach("eval_mean", THRESHOLD, x="eval_steps")


class SB3Policy(nn.Module):
    """Lets rlbook's Evaluator act with an SB3 policy: ``dist(obs)`` is SB3's Categorical."""

    action_kind = "discrete"

    def __init__(self, sb3_policy: nn.Module, n_actions: int):
        super().__init__()
        self.sb3_policy, self.n_actions = sb3_policy, n_actions

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return self.sb3_policy.get_distribution(obs).distribution


def run_sb3(seed: int) -> float:
    """Steps to solve with SB3's PPO and RL-Zoo hyperparameters; training stops at the solve."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    result = {"steps": math.inf}

    class SolveCallback(BaseCallback):
        def _on_training_start(self) -> None:
            self.evaluator = Evaluator("CartPole-v1", EVAL_EVERY)
            self.adapter = SB3Policy(self.model.policy, 2)

        def _on_step(self) -> bool:
            evaluation = self.evaluator.maybe(self.adapter, self.num_timesteps)
            if evaluation is not None and evaluation["eval_mean"] >= THRESHOLD:
                result["steps"] = evaluation["eval_steps"]
                return False  # stop training
            return True

    def linear(initial: float):
        return lambda progress_remaining: progress_remaining * initial

    envs = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        envs,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=SB3_BUDGET, callback=SolveCallback())
    envs.close()
    return result["steps"]


def summary(
    name: str, runs: list[tuple[float, float, float]]
) -> tuple[str, float, float]:
    steps, wall, cpu = ([r[k] for r in runs] for k in range(3))
    solved = sum(math.isfinite(s) for s in steps)
    med_wall, med_cpu = statistics.median(wall), statistics.median(cpu)
    row = (
        f"| {name} | {solved}/{len(runs)} | {statistics.median(steps):,.0f} | "
        f"{min(steps):,.0f} | {max(steps):,.0f} | {med_wall:.2f} | {med_cpu:.2f} |"
    )
    return row, med_wall, med_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--budget", type=int, default=50_000, help="our PPO's step budget"
    )
    parser.add_argument("--no-sb3", action="store_true", help="skip stable-baselines3")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "ppo_cartpole.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # small networks: extra threads only add synchronisation
    # the first torch.optim.Adam of a process imports torch._dynamo (seconds): pay it here, not
    # inside the first timed run
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])

    use_sb3 = not args.no_sb3
    if use_sb3:
        try:  # imported here, outside the timed runs
            import stable_baselines3  # noqa: F401
            import stable_baselines3.common.env_util  # noqa: F401
        except ImportError:
            print("stable-baselines3 is not installed: skipping the SB3 comparison "
                  "(pip install -r benchmarks/requirements.txt)")  # fmt: skip
            use_sb3 = False

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    ours: dict[str, list] = {name: [] for name in CONFIGS}
    sb3: list = []
    # seeds outermost, algorithms inside: all see the same stretch of machine load
    for seed in range(args.seeds):
        for name, make_config in CONFIGS.items():
            run = timed(lambda m=make_config, s=seed: run_ours(m, s, args.budget))
            ours[name].append(run)
            print(f"seed {seed}: rlbook {name:22s} {fmt(run)}", flush=True)
        if use_sb3:
            sb3.append(timed(lambda s=seed: run_sb3(s)))
            print(
                f"seed {seed}: SB3 PPO (RL Zoo)             {fmt(sb3[-1])}", flush=True
            )

    print()
    print(
        "| algorithm | solved | median steps | min | max | median wall time to solve (s) "
        "| median CPU time to solve (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    medians = {}
    for name, runs in ours.items():
        row, *medians[name] = summary(f"rlbook PPO, `{name}`", runs)
        print(row)
    if use_sb3:
        row, sb3_wall, sb3_cpu = summary("SB3 PPO, RL-Zoo hyperparameters", sb3)
        print(row)
        print()
        for name, (wall, cpu) in medians.items():
            print(
                f"Time to solve, rlbook `{name}` / SB3 (ratio of medians): "
                f"wall {wall / sb3_wall:.2f}, CPU {cpu / sb3_cpu:.2f}"
            )

    keys = ("steps", "wall_s", "cpu_s")
    save_results(
        args.out,
        started,
        args,
        ppo_configs={name: vars(make()) for name, make in CONFIGS.items()},
        rlbook={
            name: [dict(zip(keys, r, strict=True)) for r in runs]
            for name, runs in ours.items()
        },
        sb3=[dict(zip(keys, r, strict=True)) for r in sb3] if use_sb3 else None,
    )


def fmt(run: tuple[float, float, float]) -> str:
    steps, wall, cpu = run
    return f"steps {steps:>8,.0f}   wall {wall:6.2f} s   CPU {cpu:6.2f} s"


if __name__ == "__main__":
    main()
