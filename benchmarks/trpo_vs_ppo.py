"""TRPO against PPO on CartPole-v1: steps and wall time to solve, and stability, over seeds.

Usage::

    python benchmarks/trpo_vs_ppo.py --seeds 10
    python benchmarks/trpo_vs_ppo.py --seeds 3 --budget 30000     # a quick look

Protocol (the book's, as in ``ppo_cartpole.py``; both algorithms in the same run, seeds
interleaved so that both see the same machine load):

* every 2,500 environment steps the policy is evaluated by ``rlbook.rollout.Evaluator``:
  10 episodes, deterministic actions (argmax), fresh start states at each evaluation;
* *steps to solve*: the environment step count at the first evaluation whose mean return is at
  least 475 (CartPole-v1's reward threshold), inf if none within the budget; *wall time to
  solve*: the History's ``wall_time`` at that evaluation (seconds from the start of training,
  set-up and evaluations included);
* unlike ``ppo_cartpole.py``, training does NOT stop at the solve: every run uses the whole
  budget (50,000 steps), and *stability* is the mean of its last five evaluations (the last
  12,500 steps): a run that solves and then collapses scores low;
* seeds 1000 to 1009 by default: disjoint from the seeds either algorithm was tuned on (TRPO
  100 to 111, PPO 100 to 115, 200 to 223 and 300 to 319) and from those of the tests and the
  chapters.

TRPO is ``rlbook.algos.trpo.train_trpo`` with ``TRPOConfig()`` defaults (8 x 64 steps per batch,
delta 0.03, 10 CG iterations, damping 0.1); PPO is ``rlbook.algos.ppo.train_ppo`` with
``PPOConfig.cartpole()`` (8 x 32 steps per batch, 20 Adam steps on each, learning rate annealed
over the budget). Torch runs on one thread. The script prints one line per run, a markdown
table (median, min and max over seeds) and the ratios TRPO / PPO of the medians, writes the raw
results to ``benchmarks/results/trpo_vs_ppo.json`` (gitignored) and the report to
``--report`` (default ``benchmarks/trpo_vs_ppo.md``, committed).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_info, save_results
from torch import nn

from rlbook.algos.ppo import PPOConfig, train_ppo
from rlbook.algos.trpo import TRPOConfig, train_trpo

EVAL_EVERY = 2_500
THRESHOLD = 475.0
HERE = Path(__file__).parent


def run(algo: str, seed: int, budget: int) -> dict:
    """One training run over the whole budget; its steps and wall time to solve, stability."""
    common = dict(seed=seed, total_steps=budget, eval_every=EVAL_EVERY)
    if algo == "TRPO":
        history = train_trpo("CartPole-v1", TRPOConfig(**common))
    else:
        history = train_ppo("CartPole-v1", PPOConfig.cartpole(**common))
    evaluated = ~np.isnan(history["eval_mean"])
    evals = history["eval_mean"][evaluated]
    solved = np.flatnonzero(evals >= THRESHOLD)
    steps = (
        float(history["eval_steps"][evaluated][solved[0]]) if solved.size else math.inf
    )
    wall = (
        float(history["wall_time"][evaluated][solved[0]]) if solved.size else math.inf
    )
    return {
        "steps": steps,
        "wall_s": wall,
        "stability": float(evals[-5:].mean()),
        "total_wall_s": float(history["wall_time"][-1]),
    }


def table(results: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| algorithm | solved | median steps to solve | min | max | median wall time to "
        "solve (s) | stability: median of the mean of the last 5 evaluations | min |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, runs in results.items():
        steps = [r["steps"] for r in runs]
        stab = [r["stability"] for r in runs]
        lines.append(
            f"| {name} | {sum(math.isfinite(s) for s in steps)}/{len(runs)} | "
            f"{statistics.median(steps):,.0f} | {min(steps):,.0f} | {max(steps):,.0f} | "
            f"{statistics.median(r['wall_s'] for r in runs):.2f} | "
            f"{statistics.median(stab):.1f} | {min(stab):.1f} |"
        )
    return lines


def ratios(results: dict[str, list[dict]]) -> str:
    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    return (
        f"Ratios TRPO / PPO of the medians: steps to solve "
        f"{med('TRPO', 'steps') / med('PPO', 'steps'):.2f}, wall time to solve "
        f"{med('TRPO', 'wall_s') / med('PPO', 'wall_s'):.2f}, stability "
        f"{med('TRPO', 'stability') / med('PPO', 'stability'):.2f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=50_000, help="steps per run")
    parser.add_argument("--out", default=str(HERE / "results" / "trpo_vs_ppo.json"))
    parser.add_argument("--report", default=str(HERE / "trpo_vs_ppo.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # small networks: extra threads only add synchronisation
    # the first torch.optim.Adam of a process imports torch._dynamo (seconds): pay it here
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results: dict[str, list[dict]] = {"TRPO": [], "PPO": []}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:  # seeds outermost: both algorithms see the same stretch of load
        for algo in results:
            r = run(algo, seed, args.budget)
            results[algo].append({"seed": seed, **r})
            print(
                f"seed {seed}: {algo:4s} steps {r['steps']:>8,.0f}  wall {r['wall_s']:6.2f} s"
                f"  stability {r['stability']:6.1f}  (whole run {r['total_wall_s']:.1f} s)",
                flush=True,
            )
    lines = table(results)
    print("\n" + "\n".join(lines) + "\n\n" + ratios(results))
    save_results(args.out, started, args, **results)

    machine = machine_info()
    report = [
        "# TRPO against PPO on CartPole-v1",
        "",
        f"`python benchmarks/trpo_vs_ppo.py --seeds {args.seeds} --first-seed "
        f"{args.first_seed} --budget {args.budget}`, run {started} to "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} on {machine['platform']}, Python "
        f"{machine['python']}, torch {machine['torch']} (one thread), {machine['cpus']} CPUs, "
        f"load average at the end {machine['load_average'][0]:.1f} (other work shared the "
        "machine: wall times are inflated, for both algorithms alike, since seeds interleave).",
        "",
        "Protocol: see the docstring of `benchmarks/trpo_vs_ppo.py`. Seeds "
        f"{seeds.start} to {seeds.stop - 1}, disjoint from every tuning seed. TRPO: "
        "`TRPOConfig()`; PPO: `PPOConfig.cartpole()`. Steps and wall time are to the first "
        "evaluation (10 greedy episodes, every 2,500 steps) with a mean return of at least 475; "
        "stability is the mean of the last five evaluations of a run that always uses the whole "
        "budget.",
        "",
        *lines,
        "",
        ratios(results),
        "",
        "Per seed (steps to solve, wall time to solve in s, stability):",
        "",
        "| seed | TRPO | PPO |",
        "|--:|:--|:--|",
        *[
            f"| {t['seed']} | {t['steps']:,.0f}, {t['wall_s']:.2f}, {t['stability']:.1f} | "
            f"{p['steps']:,.0f}, {p['wall_s']:.2f}, {p['stability']:.1f} |"
            for t, p in zip(results["TRPO"], results["PPO"], strict=True)
        ],
        "",
    ]
    Path(args.report).write_text("\n".join(report))
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()
