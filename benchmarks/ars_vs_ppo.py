"""Environment steps and wall time ARS and PPO need to solve CartPole, discrete and continuous.

Usage::

    python benchmarks/ars_vs_ppo.py --seeds 10
    python benchmarks/ars_vs_ppo.py --seeds 10 --envs CartPole-v1

Protocol (the same for both algorithms, seeds interleaved so that both see the same machine
load; chapter 7 runs it on three seeds):

* every 1,000 environment steps the current policy is evaluated by
  ``rlbook.rollout.Evaluator``: 10 episodes, deterministic actions (argmax for a categorical or
  linear-argmax policy, the mean for a Gaussian or clipped-linear one), fresh start states at
  each evaluation. ARS evaluates its central policy M, never a perturbed one;
* the figures of a run are the environment step count at the first evaluation whose mean
  return is at least 475, the wall time from the start of training to that evaluation
  (evaluations included), and whether the success lasts: training goes on to the whole budget
  (50,000 steps), and the run reports the mean of its last five evaluations and the fraction of
  its evaluations after the first success that are at least 475. ARS counts every step of both
  rollouts of every direction;
* a run that has not solved the task within its budget counts as unsolved;
* the seeds (400 onwards) are disjoint from those either algorithm was tuned on (ARS: 0 to 15;
  PPO: 100 to 115, 200 to 223, 300 to 319).

ARS is ``rlbook.algos.ars.train_ars`` with ``ARSConfig()`` defaults (a linear policy, 8
weights; the two episodes of each pair share their start state) on both tasks; PPO is ``rlbook.algos.ppo.train_ppo`` (two 64-64 tanh networks) with
its settings tuned for each task: ``PPOConfig.cartpole()`` on CartPole-v1, ``PPOConfig()`` on
rlbook/ContinuousCartPole-v1. Torch runs on one thread.

The script prints one line per run and a markdown table: runs solved, median, min and max
steps to solve, median wall time to solve (set-up and evaluations included), and the medians of
the two stability measures; raw
results go to ``benchmarks/results/ars_vs_ppo.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
from _common import save_results
from torch import nn

import rlbook.envs  # noqa: F401  (registers rlbook/ContinuousCartPole-v1)
from rlbook.algos.ars import ARSConfig, train_ars
from rlbook.algos.ppo import PPOConfig, train_ppo

EVAL_EVERY = 1_000
THRESHOLD = 475.0
BUDGET = 50_000
ENVS = ("CartPole-v1", "rlbook/ContinuousCartPole-v1")
# PPO's settings tuned for each task (see PPOConfig's docstring)
PPO_SETTINGS = {
    "CartPole-v1": PPOConfig.cartpole,
    "rlbook/ContinuousCartPole-v1": PPOConfig,
}


def run(algo: str, env_id: str, seed: int) -> dict[str, float]:
    """Steps and wall seconds to the first evaluation mean >= 475 (inf if never), and how the
    run ends: the mean of its last five evaluations and the fraction of evaluations >= 475
    after the first one that was."""
    common = dict(seed=seed, total_steps=BUDGET, eval_every=EVAL_EVERY)
    if algo == "ARS":
        history = train_ars(env_id, ARSConfig(**common))
    else:
        history = train_ppo(env_id, PPO_SETTINGS.get(env_id, PPOConfig)(**common))
    steps = history.first_reach("eval_mean", THRESHOLD, x="eval_steps")
    wall = history.first_reach("eval_mean", THRESHOLD, x="wall_time")
    evals = [row["eval_mean"] for row in history if "eval_mean" in row]
    first = next((i for i, e in enumerate(evals) if e >= THRESHOLD), None)
    after = evals[first + 1 :] if first is not None else []
    return {
        "steps": steps,
        "wall_s": wall,
        "last5": statistics.fmean(evals[-5:]),
        "stays": statistics.fmean(e >= THRESHOLD for e in after) if after else math.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=400, help="disjoint from all tuning seeds"
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "ars_vs_ppo.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # small networks: extra threads only add synchronisation
    # the first torch.optim.Adam of a process imports torch._dynamo (seconds): pay it here, not
    # inside PPO's first timed run
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results: dict[str, list[dict]] = {}
    for env_id in args.envs:
        # seeds outside, algorithms inside: both see the same stretch of machine load
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for algo in ("ARS", "PPO"):
                result = {"seed": seed, **run(algo, env_id, seed)}
                results.setdefault(f"{env_id} {algo}", []).append(result)
                print(
                    f"{env_id:30s} {algo} seed {seed}: steps {result['steps']:>8,.0f}   "
                    f"wall {result['wall_s']:6.2f} s   last 5 evaluations "
                    f"{result['last5']:5.1f}   >= 475 after the first "
                    f"{result['stays']:.0%}",
                    flush=True,
                )

    print()
    print(
        "| environment | algorithm | solved | median steps | min | max | median wall time (s) "
        "| median of the last 5 evaluations | median fraction >= 475 after the first |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, runs in results.items():
        env_id, algo = key.rsplit(" ", 1)
        steps = [r["steps"] for r in runs]
        solved = sum(math.isfinite(s) for s in steps)
        print(
            f"| {env_id} | {algo} | {solved}/{len(runs)} | {statistics.median(steps):,.0f} | "
            f"{min(steps):,.0f} | {max(steps):,.0f} | "
            f"{statistics.median(r['wall_s'] for r in runs):.2f} | "
            f"{statistics.median(r['last5'] for r in runs):.0f} | "
            f"{statistics.median(r['stays'] for r in runs if r['stays'] == r['stays']):.0%} |"
        )

    save_results(
        args.out,
        started,
        args,
        ars_config=asdict(ARSConfig()),
        ppo_config={k: asdict(v()) for k, v in PPO_SETTINGS.items()},
        runs=results,
    )


if __name__ == "__main__":
    main()
