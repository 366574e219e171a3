"""The GPU path without a GPU: tensors that meet a policy are made on its device.

``RLBOOK_DEVICE=cuda`` puts the policies of ``train_*`` on a GPU; a tensor made without
``device=`` lands on the CPU, and the first layer then fails (or, worse, the code silently
moves data every step). No GPU is needed to find the pattern: it is in the source. These tests
read the library and every chapter and flag each torch tensor factory whose result can reach a
network without saying where it lives.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACTORIES = {
    "as_tensor",
    "tensor",
    "from_numpy",
    "zeros",
    "ones",
    "full",
    "empty",
    "arange",
    "rand",
    "randn",
    "randint",
    "randperm",
    "linspace",
    "zeros_like",
    "ones_like",
}
# modules whose tensors feed policies and value functions (exact.py, importance.py and the
# graders compute on the CPU in float64 by design)
LIBRARY = [
    *sorted((ROOT / "rlbook" / "algos").glob("*.py")),
    ROOT / "rlbook" / "rollout.py",
    ROOT / "rlbook" / "policies.py",
    ROOT / "rlbook" / "losses.py",
    ROOT / "rlbook" / "returns.py",
    ROOT / "rlbook" / "video.py",
    ROOT / "rlbook" / "checkpoint.py",
]


def _is_factory(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
        and node.func.attr in FACTORIES
    )


def _placed(call: ast.Call, parents: dict) -> bool:
    """The factory says where its tensor lives, or its result is moved, or it is a copy."""
    if any(k.arg == "device" for k in call.keywords):
        return True
    if call.func.attr in ("zeros_like", "ones_like"):
        return True  # same device as their argument
    parent = parents.get(call)
    # a module's parameters and buffers move with it (``module.to(device)``)
    holder = parents.get(parent) if isinstance(parent, ast.keyword) else parent
    if isinstance(holder, ast.Call) and (
        getattr(holder.func, "attr", None) in ("Parameter", "register_buffer")
    ):
        return True
    return isinstance(parent, ast.Attribute) and parent.attr in (
        "to",
        "cpu",
        "numpy",
        "item",
        "tolist",
    )


def unplaced_factories(source: str) -> list[str]:
    tree = ast.parse(source)
    parents = {
        child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
    }
    lines = source.splitlines()
    bad = []
    for node in ast.walk(tree):
        if _is_factory(node) and not _placed(node, parents):
            line = lines[node.lineno - 1]
            if (
                "# cpu:" not in line
            ):  # deliberately on the CPU, with the reason on the line
                bad.append(f"line {node.lineno}: {line.strip()}")
    return bad


def unplaced_policy_inputs(source: str) -> list[str]:
    """``net.dist(torch.as_tensor(obs))``-style calls: a new CPU tensor fed to a network."""
    tree = ast.parse(source)
    bad = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("dist", "forward")
            and node.args
            and _is_factory(node.args[0])
            and not any(k.arg == "device" for k in node.args[0].keywords)
        ):
            bad.append(f"line {node.lineno}: {ast.unparse(node)[:90]}")
    return bad


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_tensors_say_where_they_live(path):
    assert unplaced_factories(path.read_text()) == []


def _cells(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text())["cells"]
    return [
        (i, "".join(c["source"]))
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
    ]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name
)
def test_chapters_feed_networks_tensors_on_their_device(path):
    bad = []
    for index, source in _cells(path):
        try:
            bad += [f"cell {index}, {b}" for b in unplaced_policy_inputs(source)]
        except SyntaxError:  # a cell with IPython magics
            continue
    assert bad == []


def test_the_scan_finds_the_pattern():
    assert unplaced_policy_inputs("a = policy.dist(torch.as_tensor(obs)).mode")
    assert not unplaced_policy_inputs("policy.dist(torch.as_tensor(obs, device=d))")
    assert unplaced_factories("x = torch.zeros(3)")
    assert not unplaced_factories("x = torch.zeros(3, device=dev)")
    assert not unplaced_factories("x = torch.from_numpy(a).to(dev)")
    assert not unplaced_factories("u = torch.rand(4)  # cpu: uniforms for NumPy")
