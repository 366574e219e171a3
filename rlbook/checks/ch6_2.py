"""Graders of section 6.2 (book/06_2_building_ppo.ipynb): assembling PPO."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import (
    ExerciseError,
    _as_array,
    _call,
    _copy,
    _fmt,
    _grade,
    _numbers,
    _run_loop,
)
from rlbook.checks.ch4 import _flat_params
from rlbook.utils import rng as _seeded_rng


def _value_loss_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(new_values, old_values, advantages):
        return {
            "new_values": torch.tensor(new_values, dtype=torch.float64),
            "old_values": torch.tensor(old_values, dtype=torch.float64),
            "advantages": torch.tensor(advantages, dtype=torch.float64),
        }

    # hand-picked first: every known mistake gives its own number here
    yield case([1.0, 2.0, 0.5, -1.0], [0.5, 1.0, 2.0, 0.0], [1.0, -2.0, 0.5, 3.0])
    yield case([0.0], [1.0], [2.0])
    for _ in range(n_random):
        b = int(rng.integers(2, 12))
        yield case(
            rng.normal(0, 2, b), rng.normal(0, 2, b), rng.normal(0, 1.5, b).round(2)
        )


def _value_loss_reference(new_values, old_values, advantages):
    # the value targets: GAE's lambda-returns, from the values at collection time
    returns = advantages + old_values
    return 0.5 * ((new_values - returns) ** 2).mean()


def check_value_loss(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(new_values, old_values, advantages) -> scalar``, PPO's value loss.

    .. math:: L_V = \tfrac12\, \mathrm{mean}_t \big(V_\phi(s_t) - \hat R_t\big)^2, \qquad
              \hat R_t = \hat A_t + V_{\phi_\text{old}}(s_t)

    The targets :math:`\hat R_t` are GAE's :math:`\lambda`-returns: the advantages plus the
    values the critic gave when the batch was collected (constants during the update), as in
    :func:`rlbook.returns.ppo_advantages`. Inputs: float64 tensors, ``(B,)`` each;
    ``new_values`` carries the gradient. After the values, the gradient with respect to
    ``new_values`` is checked: :math:`(V_\phi(s_t) - \hat R_t)/B`. Known mistakes recognised:
    the advantages as the targets, targets built from the new values, targets from normalised
    advantages, the factor 1/2 missing, a sum instead of a mean, the sign, the absolute error.
    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    from rlbook.returns import normalize

    def mse(new_values, targets):
        return 0.5 * ((new_values - targets) ** 2).mean()

    def advantage_targets(new_values, old_values, advantages):
        return mse(new_values, advantages)

    def new_value_targets(new_values, old_values, advantages):
        return mse(new_values, advantages + new_values.detach())

    def normalised_targets(new_values, old_values, advantages):
        return mse(new_values, normalize(advantages) + old_values)

    def no_half(new_values, old_values, advantages):
        return 2 * _value_loss_reference(new_values, old_values, advantages)

    def summed(new_values, old_values, advantages):
        n = new_values.numel()
        return n * _value_loss_reference(new_values, old_values, advantages)

    def sign(new_values, old_values, advantages):
        return -_value_loss_reference(new_values, old_values, advantages)

    def absolute(new_values, old_values, advantages):
        return 0.5 * (new_values - advantages - old_values).abs().mean()

    mistakes = {
        "the advantages are the targets; the critic predicts the return, so its target "
        "is advantages + old_values": advantage_targets,
        "the targets were built from the NEW values (advantages + new_values): the error "
        "is then minus the advantage whatever the critic does; build them from "
        "old_values, the values at collection": new_value_targets,
        "the targets were built from normalised advantages; normalisation is for the "
        "policy loss only, the value targets use the raw advantages": normalised_targets,
        "the factor 1/2 is missing (train_ppo's vf_coef = 0.5 assumes it)": no_half,
        "this is a sum over the samples; take the mean": summed,
        "the sign is flipped: minimising this pushes the values AWAY from their "
        "targets": sign,
        "this is the mean absolute error; square the errors": absolute,
    }
    name = "value_loss"
    first = next(iter(_value_loss_cases(0, 0)))
    try:
        got = fn(**{k: _copy(v) for k, v in first.items()})
    except NotImplementedError:
        raise
    except Exception:
        got = None  # _grade reports the crash with its input
    if got is not None and _as_array(got).shape == first["new_values"].shape:
        raise ExerciseError(
            f"{name} returned one loss per sample, shape {_as_array(got).shape}; return "
            "one number, the mean over the batch."
        )
    _grade(
        name,
        fn,
        _value_loss_reference,
        _value_loss_cases(seed, n_random),
        mistakes=mistakes,
        hint="returns = advantages + old_values; "
        "0.5 * ((new_values - returns) ** 2).mean().",
    )
    new = first["new_values"].clone().requires_grad_(True)
    args = dict(first, new_values=new)
    out = _call(name, fn, args)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(
            f"{name} gives the right number but no gradient with respect to new_values: "
            "compute it with torch operations, without .item(), .detach() or .numpy()."
        )
    (grad,) = torch.autograd.grad(out, new)
    returns = first["advantages"] + first["old_values"]
    expected = (first["new_values"] - returns) / returns.numel()
    if not torch.allclose(grad, expected):
        raise ExerciseError(
            f"{name} has the right value but the wrong gradient with respect to "
            f"new_values:\nexpected {expected.numpy()!r}\ngot {grad.numpy()!r}\n"
            "Hint: the targets are constants; only new_values carries a gradient."
        )
    print(f"{name}: gradient (V - R) / B with respect to the new values.")
    return True


def _minibatches_reference(batch_size, num_minibatches, update_epochs):
    size = -(-batch_size // num_minibatches)  # ceil: the last minibatch may be smaller
    out = []
    for _ in range(update_epochs):
        order = torch.randperm(batch_size)
        out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
    return out


def check_minibatches(fn: Callable) -> bool:
    r"""Grade ``fn(batch_size, num_minibatches, update_epochs) -> list of index tensors``.

    The minibatches of one PPO update, in the order they are used: for each of
    ``update_epochs`` epochs, a fresh ``torch.randperm(batch_size)`` cut into pieces of
    :math:`\lceil B / M \rceil` indices (the last may be smaller), exactly as
    :func:`rlbook.algos.ppo.train_ppo` does, so that a loop built on it reproduces the library's
    numbers. Each case seeds torch, then calls ``fn`` on the CPU (an optional fourth argument,
    ``device``, is left out; ``train_ppo`` shuffles on the batch's device, and a GPU's random
    stream is not the CPU's). Known mistakes recognised: one epoch
    only, one shuffle reused by every epoch, no shuffle, sampling with replacement, the
    minibatch size from a floor division, ``num_minibatches`` taken as the minibatch size.
    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def shuffled_once(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        order = torch.randperm(batch_size)
        one = [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return one * update_epochs

    def not_shuffled(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        order = torch.arange(batch_size)
        return [order[lo : lo + size] for lo in range(0, batch_size, size)] * (
            update_epochs
        )

    def with_replacement(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        out = []
        for _ in range(update_epochs):
            order = torch.randint(batch_size, (batch_size,))
            out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return out

    def floor_size(batch_size, num_minibatches, update_epochs):
        size = batch_size // num_minibatches
        out = []
        for _ in range(update_epochs):
            order = torch.randperm(batch_size)
            out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return out

    def size_as_count(batch_size, num_minibatches, update_epochs):
        out = []
        for _ in range(update_epochs):
            order = torch.randperm(batch_size)
            out += [
                order[lo : lo + num_minibatches]
                for lo in range(0, batch_size, num_minibatches)
            ]
        return out

    def one_epoch(batch_size, num_minibatches, update_epochs):
        return _minibatches_reference(batch_size, num_minibatches, 1)

    mistakes = {
        "there is one epoch only: repeat the shuffle-and-cut update_epochs times": one_epoch,
        "every epoch reuses the first shuffle; draw a new torch.randperm at the start of "
        "each epoch": shuffled_once,
        "the indices are not shuffled: minibatches of consecutive steps are correlated "
        "(the same environment, neighbouring times); use torch.randperm": not_shuffled,
        "the indices are drawn with replacement (some steps twice, some never); an epoch "
        "is one pass over every step: torch.randperm": with_replacement,
        "the minibatch size is a floor division: with a remainder that makes an extra, "
        "tiny minibatch; use ceil(batch_size / num_minibatches)": floor_size,
        "num_minibatches was taken as the minibatch SIZE; the size is "
        "ceil(batch_size / num_minibatches)": size_as_count,
    }
    name = "minibatches"
    cases = [(8, 2, 2), (10, 4, 3), (9, 4, 2), (256, 4, 10), (7, 7, 1), (5, 1, 3)]
    for i, (batch_size, num_minibatches, update_epochs) in enumerate(cases):
        args = dict(
            batch_size=batch_size,
            num_minibatches=num_minibatches,
            update_epochs=update_epochs,
        )
        torch.manual_seed(100 + i)
        expected = _minibatches_reference(**args)
        torch.manual_seed(100 + i)
        try:
            got = fn(**args)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise ExerciseError(
                f"{name} raised {type(exc).__name__}: {exc}\non the input {args}"
            ) from exc
        if not isinstance(got, list | tuple) or not all(
            isinstance(mb, torch.Tensor) for mb in got
        ):
            raise ExerciseError(
                f"{name} must return a list of index tensors, got {type(got).__name__}"
            )
        if len(got) == len(expected) and all(
            torch.equal(g.long().cpu(), e) for g, e in zip(got, expected, strict=True)
        ):
            continue
        diagnosis = ""
        for description, mistake in mistakes.items():
            torch.manual_seed(100 + i)
            wrong = mistake(**args)
            if len(wrong) == len(got) and all(
                torch.equal(g.long().cpu(), w) for g, w in zip(got, wrong, strict=True)
            ):
                diagnosis = f"\nIt looks like {description}."
                break
        if not diagnosis:
            counts = torch.bincount(
                torch.cat([g.long().cpu() for g in got]), minlength=batch_size
            )
            if torch.all(counts == update_epochs):
                diagnosis = (
                    "\nEvery step is used once per epoch, but in another random order: "
                    "draw torch.randperm(batch_size) once at the start of each epoch, with "
                    "no other random call in between, and cut it in order."
                )
        sizes = [len(g) for g in got]
        raise ExerciseError(
            f"{name} gave other minibatches on the input {args} (after "
            f"torch.manual_seed({100 + i})):\n{len(got)} minibatches of sizes {sizes}, "
            f"expected {len(expected)} of sizes {[len(e) for e in expected]}.{diagnosis}"
        )
    print(f"{name}: all {len(cases)} cases give train_ppo's minibatches.")
    return True


def _minibatch_advantage_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(advantages, mb):
        return {
            "b_advantages": torch.tensor(advantages, dtype=torch.float32),
            "mb": torch.tensor(mb, dtype=torch.int64),
        }

    # hand-picked: a minibatch whose statistics differ from the batch's
    yield case([3.0, -1.0, 0.5, 2.0, -4.0, 1.0], [0, 3, 5])
    yield case([1.0, 2.0, 3.0], [1])  # one sample: std 0
    yield case([0.5, 0.5, 0.5, 2.0], [0, 1, 2])  # equal advantages in the minibatch
    for _ in range(n_random):
        b = int(rng.integers(4, 40))
        m = int(rng.integers(2, b + 1))
        yield case(rng.normal(1.0, 3.0, b), rng.permutation(b)[:m])


def _minibatch_advantages_reference(b_advantages, mb):
    from rlbook.returns import normalize

    return normalize(b_advantages[mb])


def check_minibatch_advantages(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(b_advantages, mb) -> Tensor``, the normalised advantages of one minibatch.

    .. math:: \tilde A_i = \frac{A_i - \bar A_{\text{mb}}}{\mathrm{std}(A_{\text{mb}})
              + \epsilon}, \qquad i \in \text{mb}

    with the mean and the population standard deviation of the *minibatch*
    (:func:`rlbook.returns.normalize`, :math:`\epsilon = 10^{-8}`), as CleanRL and
    :func:`rlbook.algos.ppo.train_ppo` do. Inputs: float32 ``b_advantages`` ``(B,)``, the
    whole batch, and ``mb``, a tensor of indices; the answer has shape ``mb.shape``. Known
    mistakes recognised: the whole batch's statistics, the sample standard deviation, the mean
    not subtracted, a division by the variance, no normalisation, NaN where the standard
    deviation is 0 (no epsilon), the whole batch returned.
    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    from rlbook.returns import normalize

    def whole_batch(b_advantages, mb):
        return normalize(b_advantages)[mb]

    def sample_std(b_advantages, mb):
        x = b_advantages[mb]
        return (x - x.mean()) / (x.std() + 1e-8) if len(x) > 1 else x * 0

    def no_mean(b_advantages, mb):
        x = b_advantages[mb]
        return x / (x.std(correction=0) + 1e-8)

    def variance(b_advantages, mb):
        x = b_advantages[mb]
        return (x - x.mean()) / (x.var(correction=0) + 1e-8)

    def raw(b_advantages, mb):
        return b_advantages[mb]

    name = "minibatch_advantages"
    for args in _minibatch_advantage_cases(0, 0):
        try:
            got = fn(**{k: _copy(v) for k, v in args.items()})
        except NotImplementedError:
            raise
        except Exception:
            break  # _grade reports the crash with its input
        got = _numbers(name, got)
        if got.shape == args["b_advantages"].shape != args["mb"].shape:
            raise ExerciseError(
                f"{name} returned one advantage per step of the whole batch, shape "
                f"{got.shape}; return the minibatch's, shape {tuple(args['mb'].shape)}."
            )
        if np.isnan(got).any():
            raise ExerciseError(
                f"{name} returned NaN on the input\n{_fmt(args)}\nA minibatch of one "
                "sample, or of equal advantages, has standard deviation 0: add "
                "eps = 1e-8 to it before dividing."
            )
    return _grade(
        name,
        fn,
        _minibatch_advantages_reference,
        _minibatch_advantage_cases(seed, n_random),
        mistakes={
            "the advantages were normalised over the whole batch, then indexed; train_ppo "
            "normalises each minibatch with its own mean and std (CleanRL's choice)": (
                whole_batch
            ),
            "this is the sample standard deviation (divide by n - 1); use the population "
            "one, std(correction=0)": sample_std,
            "the mean is not subtracted": no_mean,
            "you divided by the variance; divide by the standard deviation": variance,
            "the advantages are not normalised": raw,
        },
        hint="x = b_advantages[mb]; (x - x.mean()) / (x.std(correction=0) + 1e-8).",
    )


def _ppo_update(policy, value_fn, optimizer, batch, cfg, mistake: str | None = None):
    """The update of :func:`rlbook.algos.ppo.train_ppo` written out (epochs of shuffled
    minibatches, each one Adam step on the joint loss), or with one known ``mistake``."""
    from torch import nn

    from rlbook.losses import ppo_clip_loss, value_loss
    from rlbook.returns import normalize

    params = [*policy.parameters(), *value_fn.parameters()]
    b_obs, b_actions, b_log_probs = batch["obs"], batch["actions"], batch["log_probs"]
    b_advantages, b_values = batch["advantages"], batch["values"]
    b_returns = b_advantages + b_values
    batch_size = b_obs.shape[0]
    size = -(-batch_size // cfg.num_minibatches)
    clip_coef = (
        float("inf") if mistake == "unclipped" or not cfg.clip else cfg.clip_coef
    )
    if mistake == "whole-batch normalisation":
        b_advantages = normalize(b_advantages)
    order = None
    for _ in range(cfg.update_epochs):
        if order is None or mistake != "shuffled once":
            order = torch.randperm(batch_size, device=b_obs.device)
        for lo in range(0, batch_size, size):
            mb = order[lo : lo + size]
            dist = policy.dist(b_obs[mb])
            new_log_probs = dist.log_prob(b_actions[mb])
            entropy = dist.entropy().mean()
            mb_advantages = b_advantages[mb]
            if cfg.norm_adv and mistake not in (
                "no advantage normalisation",
                "whole-batch normalisation",
            ):
                mb_advantages = normalize(mb_advantages)
            if mistake == "undetached old log-probs":
                # "old" log-probabilities recomputed from the policy being optimised
                ratio = torch.exp(new_log_probs - new_log_probs)
                pg = -(ratio * mb_advantages).mean()
            else:
                pg = ppo_clip_loss(
                    new_log_probs, b_log_probs[mb], mb_advantages, clip_coef
                )
            if mistake == "policy loss sign":
                pg = -pg
            v_loss = value_loss(value_fn(b_obs[mb]), b_returns[mb])
            ent_coef = -cfg.ent_coef if mistake == "entropy sign" else cfg.ent_coef
            vf_coef = {"value loss left out": 0.0, "vf_coef missing": 1.0}.get(
                mistake, cfg.vf_coef
            )
            loss = pg - ent_coef * entropy + vf_coef * v_loss
            if mistake != "no zero_grad":
                optimizer.zero_grad()
            loss.backward()
            if mistake != "no gradient clipping":
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()


# the mistakes of one gradient step (the loss), then those of the loop around it
_UPDATE_STEP_MISTAKES = {
    "undetached old log-probs": "the ratio's 'old' log-probabilities come from the policy "
    "being optimised, with gradient: the ratio is then exactly 1 and its gradient 0, so "
    "the policy never moves. Use batch['log_probs'], stored at collection",
    "policy loss sign": "the policy loss has the wrong sign: PPO MAXIMISES the clipped "
    "objective, so the loss to minimise is minus its mean (ppo_clip_loss is already that)",
    "entropy sign": "the entropy bonus has the wrong sign: loss = policy loss - ent_coef "
    "* entropy + vf_coef * value loss (a bonus for entropy lowers the loss)",
    "value loss left out": "the value loss is not in the loss: the critic never learns",
    "vf_coef missing": "the value loss is not weighted by cfg.vf_coef",
    "no advantage normalisation": "the advantages were not normalised (cfg.norm_adv)",
    "no gradient clipping": "the gradients were not clipped to norm cfg.max_grad_norm "
    "(nn.utils.clip_grad_norm_ over the parameters of BOTH networks, between backward() "
    "and step(); after step() is too late)",
}


_UPDATE_LOOP_MISTAKES = {
    "no zero_grad": "optimizer.zero_grad() is missing: gradients accumulate over the "
    "minibatches",
    "unclipped": "the ratio is not clipped: use cfg.clip_coef in the clipped objective",
    "shuffled once": "every epoch reuses the first shuffle",
    "whole-batch normalisation": "the advantages were normalised over the whole batch; "
    "train_ppo normalises each minibatch",
}


def _flat_batch(rollout, values, advantages, real) -> dict:
    """The steps of ``rollout`` where ``real`` holds, as the flat batch a PPO update takes."""
    return {
        "obs": rollout.obs[real],
        "actions": rollout.actions[real],
        "log_probs": rollout.log_probs[real],
        "advantages": advantages[real],
        "values": values[real],
    }


def _ppo_update_case(cfg):
    """A batch of CartPole steps from a fresh agent, and a way to rebuild that agent."""
    from rlbook.policies import actor_critic
    from rlbook.returns import ppo_advantages
    from rlbook.rollout import collect, make_envs
    from rlbook.utils import set_seed

    set_seed(cfg.seed)
    envs = make_envs("CartPole-v1", cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy, value_fn = actor_critic(obs_space, act_space, cfg.hidden, ortho_init=True)
    rollout = collect(envs, policy, cfg.num_steps, seed=cfg.seed)
    envs.close()
    values, advantages, _ = ppo_advantages(rollout, value_fn, cfg.gamma, cfg.gae_lambda)
    batch = _flat_batch(rollout, values, advantages, rollout.mask)
    states = (policy.state_dict(), value_fn.state_dict())

    def agent():
        import copy

        p, v = copy.deepcopy(policy), copy.deepcopy(value_fn)
        p.load_state_dict(states[0])
        v.load_state_dict(states[1])
        return (
            p,
            v,
            torch.optim.Adam([*p.parameters(), *v.parameters()], cfg.lr, eps=1e-5),
        )

    return batch, agent


def check_ppo_update(fn: Callable) -> bool:
    """Grade ``fn(policy, value_fn, optimizer, batch, cfg)``, one whole PPO update, in place.

    ``batch`` is a dict of flat tensors over the batch's ``B`` real steps: ``obs``,
    ``actions``, ``log_probs`` (at collection), ``advantages`` (GAE, not normalised) and
    ``values`` (at collection); ``cfg`` a :class:`rlbook.algos.ppo.PPOConfig`. ``fn`` runs
    ``cfg.update_epochs`` epochs of shuffled minibatches, each one step of ``optimizer`` (Adam
    over both networks) on ``policy loss - ent_coef * entropy + vf_coef * value loss``,
    with the gradients clipped to ``cfg.max_grad_norm``, exactly as
    :func:`rlbook.algos.ppo.train_ppo` does. The grader runs it twice on a batch of CartPole
    steps, from the same networks and the same torch seed as its reference: first with one
    epoch of one minibatch (a single gradient step: the loss), then with several epochs and
    minibatches (the loop), and compares the weights after. Known mistakes recognised: the
    signs of the policy loss and of the entropy bonus, the value loss left out or unweighted,
    no advantage normalisation, no gradient clipping; old log-probabilities that are not the
    stored constants, a missing ``zero_grad``, no clip, one shuffle for every epoch, advantages
    normalised over the whole batch.
    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    from dataclasses import replace

    from rlbook.algos.ppo import PPOConfig

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    name = "ppo_update"
    full = PPOConfig(seed=0, ent_coef=0.01, update_epochs=3, num_minibatches=4)
    one = replace(full, update_epochs=1, num_minibatches=1)
    batch, agent = _ppo_update_case(full)

    def run(update, cfg, mistake=None):
        policy, value_fn, optimizer = agent()
        torch.manual_seed(1234)
        args = (
            policy,
            value_fn,
            optimizer,
            {k: v.clone() for k, v in batch.items()},
            cfg,
        )
        if mistake is None:
            update(*args)
        else:
            update(*args, mistake=mistake)
        return torch.cat([_flat_params(policy), _flat_params(value_fn)])

    for cfg, what, mistakes in (
        (
            one,
            "one epoch of one minibatch (a single gradient step)",
            _UPDATE_STEP_MISTAKES,
        ),
        # some mistakes hardly show in one step (the entropy's gradient is ~0 at the
        # uniform policy): after 12 steps every known mistake is tried
        (
            full,
            "3 epochs of 4 minibatches",
            {**_UPDATE_STEP_MISTAKES, **_UPDATE_LOOP_MISTAKES},
        ),
    ):
        expected = run(_ppo_update, cfg)
        try:
            got = run(fn, cfg)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise ExerciseError(
                f"{name} raised {type(exc).__name__}: {exc}\non the input: {what}"
            ) from exc
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            continue
        start = run(lambda *args: None, cfg)
        if torch.equal(got, start):
            raise ExerciseError(
                f"{name} did not change the networks ({what}). Call optimizer.zero_grad(), "
                "loss.backward(), optimizer.step() for every minibatch."
            )
        message = f"{name}: with {what} the weights differ from train_ppo's"
        if cfg is one:
            message += "; the loss of a gradient step is wrong"
        else:
            message += " (a single gradient step matched)"
        for mistake, diagnosis in mistakes.items():
            if torch.allclose(
                got, run(_ppo_update, cfg, mistake), rtol=1e-4, atol=1e-5
            ):
                raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
        raise ExerciseError(
            f"{message}.\nHint: for each epoch, a fresh torch.randperm(B) cut into "
            "minibatches; for each, normalise its advantages, ppo_clip_loss with the "
            "stored log_probs, value loss towards advantages + values, loss = pg - "
            "ent_coef * entropy + vf_coef * v_loss, zero_grad, backward, "
            "clip_grad_norm_, step."
        )
    print(
        f"{name}: the same weights as train_ppo's update, after one step and after 12."
    )
    return True


def _ppo_loop(env_id, cfg, record, mistake: str | None = None):
    """:func:`rlbook.algos.ppo.train_ppo` written out (no evaluation, no logging), or with one
    known ``mistake``; calls ``record(rollout, advantages, policy, value_fn)`` per iteration."""
    from rlbook.policies import actor_critic
    from rlbook.returns import ppo_advantages
    from rlbook.rollout import collect, make_envs
    from rlbook.utils import set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy, value_fn = actor_critic(
        obs_space, act_space, cfg.hidden, ortho_init=mistake != "no orthogonal init"
    )
    params = [*policy.parameters(), *value_fn.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    env_steps, rollout = 0, None
    try:
        while env_steps < cfg.total_steps:
            if cfg.anneal_lr and mistake != "no annealing":
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * (1.0 - env_steps / cfg.total_steps)
            previous = None if mistake == "reset every iteration" else rollout
            rollout = collect(
                envs, policy, cfg.num_steps, previous=previous, seed=cfg.seed
            )
            values, advantages, _ = ppo_advantages(
                rollout, value_fn, cfg.gamma, cfg.gae_lambda
            )
            real = (
                torch.ones_like(rollout.mask)
                if mistake == "padding kept"
                else rollout.mask
            )
            batch = _flat_batch(rollout, values, advantages, real)
            _ppo_update(policy, value_fn, optimizer, batch, cfg)
            env_steps += rollout.num_steps
            record(rollout, advantages, policy, value_fn)
    finally:
        envs.close()
    return policy, value_fn


_PPO_LOOP_MISTAKES = {
    "rollout": {
        "reset every iteration": "the environments are reset at every iteration: pass "
        "previous=rollout to collect, so that episodes run on across rollouts (a reset "
        "every 32 steps means CartPole never sees a long episode)",
        "no orthogonal init": "the networks keep PyTorch's default initialisation: apply "
        "orthogonal_init(policy.net, 0.01) and orthogonal_init(value_fn.net, 1.0)",
    },
    "update": {
        "no annealing": "the learning rate is not annealed: set lr = cfg.lr * (1 - "
        "env_steps / cfg.total_steps) in every parameter group before each rollout",
        "padding kept": "the batch keeps the padding slots of the rollout (the reset steps "
        "of NEXT_STEP autoreset, which are no transitions): index every tensor with "
        "rollout.mask",
    },
}


def check_train_ppo(
    fn: Callable, env_id: str = "CartPole-v1", iterations: int = 3, seed: int = 0
) -> bool:
    """Grade ``fn(env_id, cfg, record)``, a whole PPO training loop, against ``train_ppo``.

    ``cfg`` is a :class:`rlbook.algos.ppo.PPOConfig` with ``total_steps`` for ``iterations``
    rollouts. After each iteration's update ``fn`` calls ``record(rollout, advantages, policy,
    value_fn)``. The grader runs the reference loop on the same seed, checks that it gives
    :func:`rlbook.algos.ppo.train_ppo`'s weights, and compares each iteration's rollout,
    advantages (``(T, N)``, on the real steps) and weights after the update, naming the first
    that differs. Known mistakes recognised: environments reset at every iteration, no
    orthogonal initialisation, no learning-rate annealing, padding slots kept in the batch.
    See chapter 6.2 of the book (book/06_2_building_ppo.ipynb).
    """
    from rlbook.algos.ppo import PPOConfig, train_ppo

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    iterations = validate.integer("iterations", iterations, low=2)
    cfg = PPOConfig(seed=seed, total_steps=iterations * 8 * 32)
    name = "train_ppo"

    def recorder(store):
        def record(rollout, advantages, policy, value_fn):
            store.append(
                {
                    "rollout": rollout,
                    "advantages": advantages.detach().cpu().double().clone(),
                    "update": torch.cat([_flat_params(policy), _flat_params(value_fn)]),
                }
            )

        return record

    ref: list[dict] = []
    policy, _ = _ppo_loop(env_id, cfg, recorder(ref))
    library = train_ppo(env_id, cfg)
    if not torch.allclose(
        _flat_params(policy), _flat_params(library.meta["policy"]), rtol=1e-4, atol=1e-5
    ):  # a defect of the book, not of the learner's loop
        raise RuntimeError("the grader's reference loop no longer matches train_ppo")

    got = _run_loop(name, fn, env_id, cfg, recorder)
    if len(got) != len(ref):
        raise ExerciseError(
            f"{name} called record {len(got)} times; expected {len(ref)}, one per "
            f"rollout of cfg.num_envs * cfg.num_steps steps until cfg.total_steps real "
            "steps are collected (count rollout.num_steps, not the padded slots)."
        )

    def differs(stage, g, r):
        if stage == "rollout":
            a, b = g["rollout"], r["rollout"]
            return a.obs.shape != b.obs.shape or not (
                torch.equal(a.obs, b.obs)
                and torch.equal(a.actions, b.actions)
                and torch.equal(a.mask, b.mask)
            )
        if stage == "advantages":
            mask = r["rollout"].mask
            if g["advantages"].shape != r["advantages"].shape:
                return True
            return not torch.allclose(
                g["advantages"][mask], r["advantages"][mask], rtol=1e-4, atol=1e-5
            )
        return not torch.allclose(g["update"], r["update"], rtol=1e-4, atol=1e-5)

    for it, (g, r) in enumerate(zip(got, ref, strict=True)):
        for stage in ("rollout", "advantages", "update"):
            if not differs(stage, g, r):
                continue
            matched = {0: "", 1: "iteration 0 matches train_ppo; "}.get(
                it, f"iterations 0 to {it - 1} match train_ppo; "
            )
            message = f"{name}: {matched}iteration {it} differs first at the {stage}"
            for mistake, diagnosis in _PPO_LOOP_MISTAKES.get(stage, {}).items():
                variant: list[dict] = []
                _ppo_loop(env_id, cfg, recorder(variant), mistake)
                stages = ("rollout", "advantages", "update")
                upto = stages[: stages.index(stage) + 1]
                if it < len(variant) and not any(
                    differs(s, g, variant[it]) for s in upto
                ):
                    raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
            hints = {
                "rollout": "set_seed(cfg.seed); make the environments, the policy and the "
                "value network in that order, with orthogonal_init; collect(envs, policy, "
                "cfg.num_steps, previous=rollout, seed=cfg.seed)",
                "advantages": "values, advantages, returns = ppo_advantages(rollout, "
                "value_fn, cfg.gamma, cfg.gae_lambda), before the update",
                "update": "anneal the learning rate, keep the real steps (rollout.mask), "
                "and run the update of the previous exercise with Adam(eps=1e-5) over both "
                "networks",
            }
            raise ExerciseError(f"{message}.\nHint: {hints[stage]}.")
    print(
        f"{name}: {len(ref)} iterations identical to rlbook's train_ppo "
        "(rollout, advantages, update)."
    )
    return True
