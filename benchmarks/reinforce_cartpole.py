"""Environment steps and wall time REINFORCE needs to solve CartPole-v1, over seeds; and its
Pixelcopter score against a random policy and the hand-written hover controller.

Usage::

    python benchmarks/reinforce_cartpole.py --seeds 10
    python benchmarks/reinforce_cartpole.py --seeds 3 --budget 200000 --pixel-steps 100000

CartPole protocol (the one of benchmarks/ppo_cartpole.py, so that the numbers compare):

* every 2,500 environment steps the policy is evaluated by ``rlbook.rollout.Evaluator``:
  10 episodes, deterministic actions (argmax), fresh start states at each evaluation;
* the figures of a run are the environment step count at the first evaluation whose mean
  return is at least 475 (CartPole-v1's reward threshold), and the wall-clock and CPU time from
  the start of training to that evaluation (set-up and evaluations included; training stops
  there, ``ReinforceConfig.stop_at_eval``). CPU time is the steadier figure on a shared machine;
* a run that has not solved the task within its budget (default 500,000 steps) counts as
  unsolved (steps = inf); medians are over all seeds, so more than half unsolved gives inf.

Variants, each adding one reducer to the previous (``rlbook.algos.reinforce.ReinforceConfig``
defaults otherwise: gamma 0.99, 8 environments with one episode each per batch, Adam 1e-2, one
hidden layer of 32 units):

* ``reward-to-go``: no baseline, no normalisation;
* ``+ value baseline``: a learned ``ValueNet`` baseline;
* ``+ normalisation``: normalised advantages (the defaults).

Pixelcopter protocol: REINFORCE as in section 4.1 (``rlbook/PixelcopterStandardized-v0``, whose
observations are standardised feature by feature; two hidden layers of 64, 16 environments per
batch) for ``--pixel-steps`` steps per seed. Then every policy (the trained ones, a uniform random
policy, ``rlbook.envs.HoverController`` flying the raw game) plays the same 50 caves
(``episode_returns(..., num_episodes=50, seed=2024)``), sampled actions. A trained policy is
compared with the controller cave by cave; the unit of the comparison is the seed: each seed's
mean paired gap, then their mean and spread over seeds.

Results go to ``benchmarks/results/reinforce_cartpole.json`` (gitignored) and to stdout as
markdown tables. Torch runs on one thread.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import save_results

import rlbook.envs  # noqa: F401  (registers rlbook/Pixelcopter-v0)
from rlbook.algos.reinforce import ReinforceConfig, train_reinforce
from rlbook.envs import HoverController
from rlbook.policies import CategoricalPolicy
from rlbook.rollout import episode_returns

EVAL_EVERY = 2_500
THRESHOLD = 475.0
PIXELCOPTER = "rlbook/Pixelcopter-v0"
STANDARDIZED = "rlbook/PixelcopterStandardized-v0"
VARIANTS = {
    "reward-to-go": dict(baseline=None, normalize=False),
    "+ value baseline": dict(baseline="value", normalize=False),
    "+ normalisation": dict(baseline="value", normalize=True),
}


def solve_cartpole(variant: dict, seed: int, budget: int) -> dict:
    """Train until the first evaluation at or above THRESHOLD (or the budget); return the figures."""
    cfg = ReinforceConfig(
        seed=seed,
        total_steps=budget,
        eval_every=EVAL_EVERY,
        stop_at_eval=THRESHOLD,
        **variant,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    history = train_reinforce("CartPole-v1", cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = history.first_reach("eval_mean", THRESHOLD)
    solved = not math.isinf(steps)
    return {
        "seed": seed,
        "steps": steps,
        "wall_s": wall if solved else math.inf,
        "cpu_s": cpu if solved else math.inf,
        "steps_run": float(history["env_steps"][-1]),
    }


def fmt_steps(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x / 1000:.1f}k"


def fmt_time(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1f} s"


def cartpole_table(results: dict, budget: int) -> str:
    lines = [
        f"| variant | solved (≤ {budget // 1000}k steps) | median steps | min–max steps "
        "| median wall time | median CPU time |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for name, runs in results.items():
        steps = [r["steps"] for r in runs]
        solved = [s for s in steps if not math.isinf(s)]
        span = f"{fmt_steps(min(solved))}–{fmt_steps(max(solved))}" if solved else "—"
        lines.append(
            f"| {name} | {len(solved)}/{len(runs)} | {fmt_steps(statistics.median(steps))} | "
            f"{span} | {fmt_time(statistics.median(r['wall_s'] for r in runs))} | "
            f"{fmt_time(statistics.median(r['cpu_s'] for r in runs))} |"
        )
    return "\n".join(lines)


def uniform_policy() -> CategoricalPolicy:
    policy = CategoricalPolicy(7, 2, hidden=(8,))
    for p in policy.net[-1].parameters():
        torch.nn.init.zeros_(p)  # equal logits: each action with probability 1/2
    return policy


def pixelcopter(steps: int, seeds: list[int]) -> dict:
    protocol = dict(num_episodes=50, seed=2024, deterministic=False)
    returns = {
        "uniform random": episode_returns(PIXELCOPTER, uniform_policy(), **protocol),
        "hover_policy": episode_returns(PIXELCOPTER, HoverController(), **protocol),
    }
    train_time = {}
    for seed in seeds:
        cfg = ReinforceConfig(
            seed=seed, total_steps=steps, hidden=(64, 64), num_envs=16
        )
        start = time.perf_counter()
        history = train_reinforce(STANDARDIZED, cfg)
        name = f"REINFORCE seed {seed}"
        train_time[name] = time.perf_counter() - start
        returns[name] = episode_returns(
            STANDARDIZED, history.meta["policy"], **protocol
        )
        print(
            f"  pixelcopter {name}: trained {steps:,} steps in {train_time[name]:.0f} s",
            flush=True,
        )
    hover = returns["hover_policy"]
    return {
        name: {
            "mean": float(r.mean()),
            "std": float(r.std()),
            # the same cave on both sides: the gap per cave, averaged
            "gap_to_hover": float((r - hover).mean()),
            "train_s": train_time.get(name),
        }
        for name, r in returns.items()
    }


def pixel_table(scores: dict, steps: int) -> str:
    lines = [
        "| policy (Pixelcopter, the same 50 caves) | return (mean ± std) "
        "| minus hover_policy, same caves |",
        "|:--|--:|--:|",
    ]
    for name, s in scores.items():
        lines.append(
            f"| {name} | {s['mean']:.1f} ± {s['std']:.1f} | {s['gap_to_hover']:+.1f} |"
        )
    gaps = [s["gap_to_hover"] for n, s in scores.items() if n.startswith("REINFORCE")]
    if gaps:
        spread = (
            f" ± {np.std(gaps, ddof=1):.1f} (std over seeds)" if len(gaps) > 1 else ""
        )
        lines.append(
            f"| REINFORCE, {len(gaps)} seeds ({steps // 1000}k steps each): mean of the "
            f"per-seed gaps | | {np.mean(gaps):+.1f}{spread} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=10, help="CartPole seeds per variant"
    )
    parser.add_argument(
        "--budget", type=int, default=500_000, help="CartPole step budget per run"
    )
    parser.add_argument(
        "--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS)
    )
    parser.add_argument(
        "--pixel-steps", type=int, default=300_000, help="0 skips Pixelcopter"
    )
    parser.add_argument("--pixel-seeds", type=int, default=3)
    parser.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results" / "reinforce_cartpole.json"),
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = {name: [] for name in args.variants}
    # seeds outermost, variants inside: every variant sees the same stretch of machine load
    for seed in range(args.seeds):
        for name in args.variants:
            run = solve_cartpole(VARIANTS[name], seed, args.budget)
            results[name].append(run)
            print(
                f"  {name:18s} seed {seed}: {fmt_steps(run['steps'])} steps, "
                f"{fmt_time(run['wall_s'])} wall, {fmt_time(run['cpu_s'])} CPU",
                flush=True,
            )
    cartpole = cartpole_table(results, args.budget)
    print(
        "\n## REINFORCE on CartPole-v1: steps to a deterministic 10-episode mean ≥ 475\n"
    )
    print(cartpole)

    pixel = None
    if args.pixel_steps > 0:
        pixel = pixelcopter(args.pixel_steps, list(range(args.pixel_seeds)))
        print("\n## REINFORCE on Pixelcopter against two baselines\n")
        print(pixel_table(pixel, args.pixel_steps))

    save_results(
        args.out,
        started,
        args,
        cartpole=results,
        pixelcopter=pixel,
    )


if __name__ == "__main__":
    main()
