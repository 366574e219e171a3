"""Graders of chapter 4 (book/04_reinforce.ipynb): normalisation and the REINFORCE loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import (
    ExerciseError,
    _as_array,
    _fmt,
    _grade,
    _run_loop,
    _try,
)
from rlbook.returns import reward_to_go
from rlbook.utils import rng as _seeded_rng


def _normalize_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(x):
        return {"x": torch.tensor(x, dtype=torch.float64)}

    # hand-picked edge cases: all entries equal (std 0; the mean is exact, so the answer is 0),
    # two entries, a (T, N) batch whose columns have very different scales
    yield case([3.0, 3.0, 3.0, 3.0])
    yield case([1.0, 2.0])
    yield case([[1.0, 100.0], [2.0, 300.0], [3.0, 200.0]])
    for _ in range(n_random):
        shape = tuple(int(n) for n in rng.integers(2, 7, size=int(rng.integers(1, 3))))
        loc, scale = rng.uniform(-50, 50), rng.uniform(0.1, 20.0)
        yield case(rng.normal(loc, scale, size=shape))


def _normalize_reference(x):
    # local: keeps the module's imports as they were
    from rlbook.returns import (
        normalize,
    )

    return normalize(x)


def check_normalize(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(x) -> x.shape``: shift and scale a batch of weights to mean 0 and std 1.

    .. math:: \tilde x = \frac{x - \bar x}{\mathrm{std}(x) + \epsilon}, \qquad
              \bar x, \ \mathrm{std}(x) \text{ over all entries}, \ \epsilon = 10^{-8}

    with the population standard deviation (divisor ``n``). Inputs: a float64 tensor ``x`` of
    shape ``(B,)`` or ``(T, N)``. Reference: :func:`rlbook.returns.normalize`. The first case has
    all entries equal, where a division by the bare standard deviation gives NaN. Known mistakes
    recognised: no ``ε`` (NaN), the mean not subtracted, the statistics taken per column or per
    row instead of over the whole batch, the sample standard deviation (divisor ``n - 1``), a
    division by the variance, no division at all.
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    constant = next(iter(_normalize_cases(seed, 0)))
    got = _try("normalize", fn, constant)  # None: _grade below reports the failure
    if got is not None and not np.all(np.isfinite(got)):
        raise ExerciseError(
            f"normalize returned {_as_array(got)!r} on the input\n{_fmt(constant)}\n"
            "whose entries are all equal: their standard deviation is 0 and 0 / 0 is NaN.\n"
            "It looks like the eps is missing: divide by (std + eps), as one batch of equal "
            "returns (every episode lasted 500 steps) would otherwise stop training with NaN."
        )

    def center(x, dim=None):
        return x - x.mean(dim=dim, keepdim=dim is not None)

    def std(x, dim=None, correction=0):
        if dim is None:
            return x.std(correction=correction)
        return x.std(dim=dim, correction=correction, keepdim=True)

    def no_mean(x):
        return x / (std(x) + 1e-8)

    def per_column(x):
        return center(x, 0) / (std(x, 0) + 1e-8)

    def per_row(x):
        return center(x, -1) / (std(x, -1) + 1e-8)

    def std_per_column(x):
        return center(x) / (std(x, 0) + 1e-8)

    def sample_std(x):
        return center(x) / (std(x, correction=1) + 1e-8)

    def by_variance(x):
        return center(x) / (x.var(correction=0) + 1e-8)

    def only_centered(x):
        return center(x)

    return _grade(
        "normalize",
        fn,
        _normalize_reference,
        _normalize_cases(seed, n_random),
        mistakes={
            "the mean is not subtracted: only the scale changed, every weight keeps its sign": no_mean,
            "the mean and std are taken per column (axis 0) instead of over the whole batch": per_column,
            "the mean and std are taken per row (last axis) instead of over the whole batch": per_row,
            "the std is taken per column (axis 0) instead of over the whole batch": std_per_column,
            "you used the sample standard deviation (divisor n - 1); use the population one, "
            "x.std(correction=0), as rlbook.returns.normalize does": sample_std,
            "you divided by the variance instead of the standard deviation": by_variance,
            "the weights are centred but not divided by their standard deviation": only_centered,
        },
        hint="one mean and one standard deviation over all entries: "
        "(x - x.mean()) / (x.std(correction=0) + 1e-8).",
    )


_LOOP_STAGES = ("rollout", "weights", "loss", "policy update", "value update")


def _reinforce_loop(env_id, cfg, record, mistake: str | None = None):
    """The REINFORCE loop of chapter 4 written out (train_reinforce with baseline="value",
    reward-to-go and normalisation), or with one known ``mistake``."""
    from rlbook.losses import pg_loss, value_loss
    from rlbook.policies import ValueNet, make_policy
    from rlbook.returns import discounted_returns, normalize
    from rlbook.rollout import collect_episodes, make_envs
    from rlbook.utils import device, set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy = make_policy(obs_space, act_space, cfg.hidden).to(device())
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden).to(device())
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_lr)
    gamma = 1.0 if mistake == "no discount" else cfg.gamma

    def fit_value(batch, targets):
        steps = 1 if mistake == "one value step" else cfg.value_steps
        for _ in range(steps):
            v_loss = value_loss(value_fn(batch.obs), targets, batch.mask)
            if mistake != "value grads accumulate":
                value_optimizer.zero_grad()
            v_loss.backward()
            value_optimizer.step()

    try:
        for it in range(cfg.iterations):
            batch = collect_episodes(envs, policy, cfg.steps_per_env, cfg.seed, it)
            to_go = reward_to_go(batch.rewards, batch.dones, gamma)
            if mistake == "value fitted first":
                fit_value(batch, to_go)
            with torch.no_grad():
                values = value_fn(batch.obs)
            if mistake == "whole return":
                to_go = discounted_returns(
                    batch.rewards, batch.dones, gamma, batch.mask
                )
            advantages = to_go if mistake == "no baseline" else to_go - values
            if mistake == "not normalised":
                weights = advantages * batch.mask
            elif mistake == "padding normalised":
                weights = normalize(advantages)
            else:
                weights = normalize(advantages, batch.mask)
            log_probs = policy.dist(batch.obs).log_prob(batch.actions)
            if mistake == "loss sign":
                loss = -pg_loss(log_probs, weights, batch.mask)
            elif mistake == "padding in the mean":
                loss = -(log_probs * weights * batch.mask).mean()
            elif mistake == "sum":
                loss = -(log_probs * weights)[batch.mask].sum()
            elif mistake == "mean over time first":
                per_env = (log_probs * weights * batch.mask).sum(0) / batch.mask.sum(0)
                loss = -per_env.mean()
            else:
                loss = pg_loss(log_probs, weights, batch.mask)
            if mistake != "no zero_grad":
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if mistake == "value fitted to the weights":
                fit_value(batch, weights)
            elif mistake not in ("no value fit", "value fitted first"):
                fit_value(batch, to_go)
            record(batch, weights, loss, policy, value_fn)
    finally:
        envs.close()
    return policy, value_fn


# stage -> {mistake switch of _reinforce_loop: diagnosis}
_REINFORCE_MISTAKES = {
    "weights": {
        "whole return": "every step is weighted by the whole return of its episode; "
        "REINFORCE weights a step by its reward-to-go, the rewards from that step on "
        "(reward_to_go(batch.rewards, batch.dones, cfg.gamma))",
        "no baseline": "V(s_t) was not subtracted: the weights must be reward-to-go minus "
        "the value network's prediction (computed under torch.no_grad())",
        "not normalised": "the weights were not normalised: shift and scale them to mean 0, "
        "std 1 over the real steps, normalize(weights, batch.mask)",
        "padding normalised": "the normalisation ran over every slot of the (T, N) tensors, "
        "padding included; pass batch.mask so the mean and std are over real steps only",
        "no discount": "the discount is missing: use cfg.gamma in the reward-to-go",
        "value fitted first": "the value network was fitted on this batch BEFORE the weights "
        "were computed; the baseline must come from V as it was before it saw the batch "
        "(fit it after the policy step)",
    },
    "loss": {
        "loss sign": "the loss has the wrong sign: it is MINUS the mean of log-probability "
        "times weight; with this sign the optimiser makes the good actions less likely",
        "padding in the mean": "the mean runs over every (T, N) slot, padding included; "
        "average over the real steps only (pg_loss(log_probs, weights, batch.mask))",
        "sum": "the loss is a sum over steps, not a mean: its size then grows with the "
        "batch; take the mean over the real steps",
        "mean over time first": "the mean is taken over time within each environment, "
        "then over environments (the wrong axis first): that weights each episode "
        "equally instead of each step; take one mean over all real steps",
    },
    "policy update": {
        "no zero_grad": "optimizer.zero_grad() is missing: loss.backward() ADDS to the "
        ".grad of every parameter, so each step followed the sum of all the gradients "
        "so far",
    },
    "value update": {
        "value fitted to the weights": "the value network was fitted to the normalised "
        "weights; its target is the reward-to-go",
        "one value step": "the value network took one step per batch; take cfg.value_steps "
        "steps",
        "value grads accumulate": "value_optimizer.zero_grad() is missing in the value "
        "steps: their gradients accumulate",
        "no value fit": "the value network was never fitted: take cfg.value_steps steps "
        "of value_loss(value_fn(batch.obs), to_go, batch.mask) after the policy step",
    },
}


def _flat_params(module) -> torch.Tensor:
    return torch.cat(
        [p.detach().reshape(-1).cpu().double() for p in module.parameters()]
    )


def _loop_recorder(store: list):
    """A ``record(batch, weights, loss, policy, value_fn)`` that keeps copies in ``store``."""

    def record(batch, weights, loss, policy, value_fn):
        if not isinstance(weights, torch.Tensor) or not isinstance(loss, torch.Tensor):
            raise TypeError("record(batch, weights, loss, ...) expects tensors")
        store.append(
            {
                "batch": batch,
                "weights": weights.detach().cpu().double().clone(),
                "loss": float(loss.detach()),
                "policy update": _flat_params(policy),
                "value update": _flat_params(value_fn),
            }
        )

    return record


def _rollout_differs(got, ref) -> str | None:
    """Why two rollouts differ (None when they agree)."""
    a, b = got["batch"], ref["batch"]
    if a.obs.shape != b.obs.shape or not torch.equal(a.mask, b.mask):
        if torch.equal(a.obs[0], b.obs[0]):
            return (
                "the batch has another length: collect with cfg.steps_per_env steps and "
                "complete_episodes=True, so that every environment finishes its episode"
            )
    elif torch.equal(a.obs, b.obs) and torch.equal(a.actions, b.actions):
        if torch.equal(a.rewards, b.rewards):
            return None
    if not torch.equal(a.obs[0], b.obs[0]):
        return (
            "the environments start from other states: reset them through collect(envs, "
            "policy, cfg.steps_per_env, seed=cfg.seed * 10_000 + it, "
            "complete_episodes=True), a new seed each iteration"
        )
    return (
        "the same start states but other actions: the policy's weights or the random "
        "stream differ. Call set_seed(cfg.seed) first, then make the environments, the "
        "policy and the value network in that order, as train_reinforce does"
    )


def _stage_differs(stage: str, got: dict, ref: dict) -> bool:
    if stage == "weights":
        mask = ref["batch"].mask
        if got["weights"].shape != ref["weights"].shape:
            return True
        return not torch.allclose(
            got["weights"][mask], ref["weights"][mask], rtol=1e-4, atol=1e-5
        )
    if stage == "loss":
        return abs(got["loss"] - ref["loss"]) > max(1e-6, 1e-4 * abs(ref["loss"]))
    return got[stage].shape != ref[stage].shape or not torch.allclose(
        got[stage], ref[stage], rtol=1e-4, atol=1e-5
    )


def check_reinforce_loop(
    fn: Callable, env_id: str = "CartPole-v1", iterations: int = 3, seed: int = 0
) -> bool:
    """Grade ``fn(env_id, cfg, record)``, a REINFORCE training loop, against ``train_reinforce``.

    ``cfg`` is a :class:`rlbook.algos.reinforce.ReinforceConfig` (reward-to-go, a learned
    value baseline, normalised weights: chapter 4's algorithm). At the end of every iteration
    ``fn`` calls ``record(batch, weights, loss, policy, value_fn)`` with the rollout, the
    ``(T, N)`` weights, the loss tensor, and the two networks after their updates. The grader
    runs the reference loop on the same seed, checks that it reproduces
    :func:`~rlbook.algos.reinforce.train_reinforce`, and compares the records in the order of
    the algorithm: rollout, weights, loss, policy update, value update. The first stage that
    differs is reported, with the mistake it matches where it matches a known one: the whole
    return instead of the reward-to-go, no baseline, no normalisation or one over the padding,
    no discount, the value network fitted before the weights; the loss's sign, a sum, a mean
    over the padding or over time first; a missing ``zero_grad``; the value network fitted to
    the weights, for one step, or not at all.
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    from rlbook.algos.reinforce import ReinforceConfig, train_reinforce

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    iterations = validate.integer("iterations", iterations, low=2)
    cfg = ReinforceConfig(iterations=iterations, seed=seed)
    name = "reinforce_loop"

    ref: list[dict] = []
    policy, _ = _reinforce_loop(env_id, cfg, _loop_recorder(ref))
    library = train_reinforce(env_id, cfg)
    if not (
        torch.equal(_flat_params(policy), _flat_params(library.meta["policy"]))
        and np.allclose([r["loss"] for r in ref], library["loss"])
    ):  # a defect of the book, not of the learner's loop
        raise RuntimeError(
            "the grader's reference loop no longer matches train_reinforce"
        )

    got = _run_loop(name, fn, env_id, cfg, _loop_recorder)
    if len(got) != iterations:
        raise ExerciseError(
            f"{name} called record {len(got)} times in {iterations} iterations; call "
            "record(batch, weights, loss, policy, value_fn) once at the end of every "
            "iteration, for it in range(cfg.iterations)."
        )
    for it, (g, r) in enumerate(zip(got, ref, strict=True)):
        why = _rollout_differs(g, r)
        if why is not None:
            raise ExerciseError(
                f"{name}: iteration {it} differs first at the rollout: {why}."
            )
        for stage in _LOOP_STAGES[1:]:
            if not _stage_differs(stage, g, r):
                continue
            matched = {0: "", 1: "iteration 0 matches train_reinforce; "}.get(
                it, f"iterations 0 to {it - 1} match train_reinforce; "
            )
            message = f"{name}: {matched}iteration {it} differs first at the {stage}"
            if stage == "weights" and g["weights"].shape != r["weights"].shape:
                raise ExerciseError(
                    f"{message}: weights have shape {tuple(g['weights'].shape)}, expected "
                    f"{tuple(r['weights'].shape)}, the (T, N) shape of batch.rewards."
                )
            before = got[it - 1] if it else None
            if stage.endswith("update") and (
                (before is not None and torch.equal(g[stage], before[stage]))
                or (before is None and _stage_unmoved(stage, g, env_id, cfg))
            ):
                net = "policy" if stage == "policy update" else "value network"
                raise ExerciseError(
                    f"{message}: the {net} did not change in this iteration. Call "
                    "zero_grad(), then backward(), then the optimizer's step(), in this "
                    "order, with the optimizer of this network."
                )
            for mistake, diagnosis in _REINFORCE_MISTAKES.get(stage, {}).items():
                variant: list[dict] = []
                _reinforce_loop(env_id, cfg, _loop_recorder(variant), mistake)
                rest = _LOOP_STAGES[: _LOOP_STAGES.index(stage) + 1]
                if _rollout_differs(g, variant[it]) is None and not any(
                    _stage_differs(s, g, variant[it]) for s in rest[1:]
                ):
                    raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
            detail = (
                f" (loss {g['loss']:.6f}, expected {r['loss']:.6f})"
                if stage == "loss"
                else ""
            )
            raise ExerciseError(
                f"{message}{detail}. Compare that step with algorithm alg4-reinforce: "
                "weights = normalize(reward_to_go - V(s_t), batch.mask), loss = "
                "pg_loss(log_probs, weights, batch.mask), one Adam step on the policy, then "
                "cfg.value_steps Adam steps of value_loss towards the reward-to-go."
            )
    print(
        f"{name}: {iterations} iterations identical to train_reinforce "
        "(rollout, weights, loss, policy update, value update)."
    )
    return True


def _stage_unmoved(stage: str, got: dict, env_id: str, cfg) -> bool:
    """Whether the learner's network after iteration 0 still has its initial weights."""
    from rlbook.policies import ValueNet, make_policy
    from rlbook.rollout import make_envs
    from rlbook.utils import set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    envs.close()
    policy = make_policy(obs_space, act_space, cfg.hidden)
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden)
    net = policy if stage == "policy update" else value_fn
    return torch.allclose(got[stage], _flat_params(net))
