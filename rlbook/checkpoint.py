"""Saving a trained policy to a file and loading it back, safely.

A checkpoint is a plain dictionary written with ``torch.save``: the policy's class name, the
arguments that rebuild it, its ``state_dict``, and a SHA-256 checksum of those tensors, so a
file whose weight bytes were overwritten is refused instead of loaded. Loading uses ``torch.load(...,
weights_only=True)``, which unpickles only tensors and plain Python types, so opening a
checkpoint cannot run code hidden in the file (a full unpickle can). Only the book's own network
classes can be saved this way; rebuilding is done by name from a fixed list, never by importing
whatever the file names.

See chapter 4 of the book (book/04_reinforce.ipynb).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from rlbook import validate
from rlbook.policies import CategoricalPolicy, GaussianPolicy, ValueNet

__all__ = ["save_policy", "load_policy", "CheckpointError"]

FORMAT = "rlbook-policy"
VERSION = 2
_CLASSES = {cls.__name__: cls for cls in (CategoricalPolicy, GaussianPolicy, ValueNet)}


class CheckpointError(ValueError):
    """A file is not a policy checkpoint that :func:`load_policy` can rebuild."""


def _hidden_sizes(net: nn.Sequential, name: str) -> list[int]:
    """Hidden widths of an ``mlp`` with tanh activations; raise for any other network."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    others = [m for m in net if not isinstance(m, nn.Linear | nn.Tanh)]
    if others or not linears:
        kinds = sorted({type(m).__name__ for m in others})
        raise ValueError(
            f"policy.{name} must be an rlbook.policies.mlp of Linear and Tanh layers to be "
            f"saved, found {kinds}"
        )
    return [m.out_features for m in linears[:-1]]


def _device(name: str, value) -> torch.device:
    """A torch device from a ``torch.device`` or its name (``"cpu"``, ``"cuda:0"``)."""
    validate.instance(name, value, (str, torch.device))
    try:
        return torch.device(value)
    except RuntimeError as exc:
        raise ValueError(f"{name} must name a torch device, got {value!r}") from exc


def checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict's names, dtypes, shapes and tensor bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _constructor_args(policy: nn.Module) -> dict:
    if type(policy) not in _CLASSES.values():
        # a subclass may change the constructor or the forward pass: it cannot be rebuilt
        # from the base class's arguments, so refuse now rather than when loading
        raise TypeError(
            f"policy must be exactly a CategoricalPolicy, GaussianPolicy or ValueNet to be "
            f"saved, got {type(policy).__name__}; for a subclass, save its state_dict with "
            "torch.save and rebuild the subclass yourself"
        )
    if isinstance(policy, CategoricalPolicy):
        hidden = _hidden_sizes(policy.net, "net")
        return {
            "obs_dim": policy.obs_dim,
            "n_actions": policy.n_actions,
            "hidden": hidden,
        }
    if isinstance(policy, GaussianPolicy):
        hidden = _hidden_sizes(policy.net, "net")
        return {"obs_dim": policy.obs_dim, "act_dim": policy.act_dim, "hidden": hidden}
    if isinstance(policy, ValueNet):
        return {
            "obs_dim": policy.obs_dim,
            "hidden": _hidden_sizes(policy.net, "net"),
        }
    raise TypeError(
        f"policy must be a CategoricalPolicy, GaussianPolicy or ValueNet, got {type(policy).__name__}"
    )


def save_policy(policy: nn.Module, path: str | os.PathLike) -> Path:
    """Write policy (class, constructor arguments, weights, checksum) to path.

    policy: a CategoricalPolicy, GaussianPolicy or ValueNet of rlbook.policies (tanh
    MLPs), not a subclass; saved on the CPU. Parent folders are created; returns the
    path. The file holds strings, integers, lists and tensors only, which torch.load
    reads with weights_only=True, unpickling no code.
    See chapter 4 (book/04_reinforce.ipynb).
    """
    validate.instance("path", path, (str, os.PathLike))
    kwargs = _constructor_args(policy)
    state = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "class": type(policy).__name__,
            "kwargs": kwargs,
            "state_dict": state,
            "checksum": checksum(state),
        },
        path,
    )
    return path


def load_policy(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the policy saved by :func:`save_policy` at ``path``.

    Parameters
    ----------
    path : str or path-like
    map_location : str or torch.device
        Device to load the weights onto.

    Returns
    -------
    nn.Module
        A new policy of the saved class with the saved weights, in evaluation mode.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError (a ValueError)
        The file is not a checkpoint written by :func:`save_policy`: not a torch file, a torch
        file holding something else (a bare ``state_dict``, a pickled module), an unknown class,
        or weights that do not fit the class.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    path = Path(validate.instance("path", path, (str, os.PathLike)))
    map_location = _device("map_location", map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no policy checkpoint at {str(path)!r}")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{str(path)!r} is empty (0 bytes): not a policy checkpoint"
        )
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (
        Exception
    ) as exc:  # the unpickler raises many kinds of errors on foreign bytes
        # weights_only refuses pickled classes and functions: a whole pickled nn.Module lands
        # here; so does a file cut short (a torch file is a zip archive, its index at the end)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{str(path)!r} is truncated, corrupted or not a policy checkpoint written by "
            f"rlbook.checkpoint.save_policy (torch.load with weights_only=True failed: "
            f"{reason})"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a policy checkpoint written by rlbook.checkpoint.save_policy: "
            f"expected a dict with format={FORMAT!r}, found {found}"
        )
    if data.get("version") not in (1, VERSION):
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {data.get('version')!r}; this rlbook reads "
            f"versions 1 and {VERSION}"
        )
    state = data.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(f"{str(path)!r} holds no state_dict of tensors")
    # version 1 files were written before checksums
    if data["version"] >= 2 and data.get("checksum") != checksum(state):
        raise CheckpointError(
            f"{str(path)!r} is corrupted: its weights do not match the checksum stored "
            "with them (the file was damaged or edited after save_policy wrote it)"
        )
    name = data.get("class")
    if name not in _CLASSES:
        raise CheckpointError(
            f"{str(path)!r} holds a {name!r}; known classes are {sorted(_CLASSES)}"
        )
    try:
        policy = _CLASSES[name](**data["kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{str(path)!r}: cannot rebuild the {name} from its stored arguments: {exc}"
        ) from exc
    try:
        policy.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{str(path)!r} holds weights of another architecture than the {name} its "
            f"arguments describe: {str(exc).strip().splitlines()[0]}"
        ) from exc
    return policy.to(map_location).eval()
