"""How fast ``rlbook.rollout.collect`` steps CartPole, next to gymnasium's raw vectorized CartPole.

Usage::

    python benchmarks/rollout_speed.py                 # N = 64 environments
    python benchmarks/rollout_speed.py --num-envs 8 64 256

For each ``N`` the script measures, interleaved so that both see the same machine load:

* **raw**: ``envs.step`` of gymnasium's NumPy CartPole with uniformly random actions, nothing else;
* **collect**: ``rlbook.rollout.collect`` with a ``CategoricalPolicy`` (a tanh MLP, by default
  (64, 64) as in PPO; ``--hidden 32`` is chapter 1's), rollouts of 64 steps chained with
  ``previous=``;
* **collect + V**: the same with a ``ValueNet`` of the same size computed at every step
  (``rlbook.algos.ppo`` does not need this: it computes values after collection, in one call);
* **policy forward only**: the policy network alone on ``N`` observations per step, no
  environment: collect can never be faster than this and the raw environment together.

It prints a markdown table of environment steps per second, by wall clock and by the process's
CPU time (the CPU-time figure is the steadier one on a shared machine), and the ratio of
``collect`` to raw. Torch runs on one thread. Every rate is the median over ``--repeats``.
Raw results go to ``benchmarks/results/rollout_speed.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import save_results

from rlbook.policies import CategoricalPolicy, ValueNet
from rlbook.rollout import collect, make_envs


def measure(run, steps_per_call: int, min_seconds: float) -> tuple[float, float]:
    """Steps per second (wall, CPU) of ``run`` called repeatedly for at least ``min_seconds``."""
    run()  # warm-up
    calls, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < min_seconds:
        run()
        calls += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return calls * steps_per_call / wall, calls * steps_per_call / max(cpu, 1e-9)


def bench(
    num_envs: int,
    num_steps: int,
    hidden: tuple[int, ...],
    repeats: int,
    min_seconds: float,
) -> dict[str, tuple]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    policy = CategoricalPolicy(4, 2, hidden=hidden)
    value_fn = ValueNet(4, hidden=hidden)

    raw_envs = make_envs("CartPole-v1", num_envs)
    raw_envs.reset(seed=0)
    random_actions = rng.integers(0, 2, size=(1024, num_envs))

    def raw() -> None:
        for t in range(num_steps):
            raw_envs.step(random_actions[t % 1024])

    envs = make_envs("CartPole-v1", num_envs)
    state = {"last": collect(envs, policy, num_steps, seed=0)}

    def run_collect(v=None):
        def run() -> None:
            state["last"] = collect(
                envs, policy, num_steps, previous=state["last"], value_fn=v
            )

        return run

    obs = torch.zeros(num_envs, 4)

    @torch.no_grad()
    def forward_only() -> None:
        for _ in range(num_steps):
            policy(obs)

    runs = {
        "raw": raw,
        "policy forward only": forward_only,
        "collect": run_collect(),
        "collect + V": run_collect(value_fn),
    }
    results: dict[str, list] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(measure(run, num_steps * num_envs, min_seconds))
    raw_envs.close()
    envs.close()
    return {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64])
    parser.add_argument(
        "--num-steps", type=int, default=64, help="steps per collect call"
    )
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=[64, 64],
        help="hidden widths of the MLPs",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="per measurement"
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "rollout_speed.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny networks: more threads only add synchronisation

    print(
        f"MLPs with hidden widths {tuple(args.hidden)}, tanh; torch {torch.__version__}"
    )
    print()
    print(
        "| N | what | steps/s (wall) | steps/s (CPU) | ratio to raw (wall) | ratio to raw (CPU) |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = {}
    for n in args.num_envs:
        rates = bench(
            n, args.num_steps, tuple(args.hidden), args.repeats, args.min_seconds
        )
        results[n] = {
            name: {"wall": wall, "cpu": cpu} for name, (wall, cpu) in rates.items()
        }
        raw_wall, raw_cpu = rates["raw"]
        for name, (wall, cpu) in rates.items():
            print(
                f"| {n} | {name} | {wall:,.0f} | {cpu:,.0f} | {wall / raw_wall:.2f} | "
                f"{cpu / raw_cpu:.2f} |",
                flush=True,
            )

    save_results(
        args.out,
        started,
        args,
        steps_per_second=results,
    )


if __name__ == "__main__":
    main()
