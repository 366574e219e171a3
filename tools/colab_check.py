"""Check the book in replicas of Colab's runtimes, the way a learner on Colab runs it.

For each runtime in ``tools/colab/`` (Colab's own pins, copied from ``shared/colab``):

1. build a replica venv with that Python and exactly those pins (kept between runs in
   ``.venv-colab-NAME``; rebuilt when its ``pip freeze`` no longer matches);
2. dry-run what a chapter's install cell does (``pip install "rlbook @ ..."``) and fail
   unless it would install rlbook and nothing else;
3. install rlbook that way and check that ``pip freeze`` changed by rlbook alone;
4. latest runtime: execute every chapter top to bottom in a kernel of the replica
   (``--chapters``), reporting each chapter's time; every runtime: the unit tests
   (``--unit``; pytest is added to the replica after the checks above).

    python tools/colab_check.py                      # both runtimes, everything
    python tools/colab_check.py --runtime latest --chapters

Exit status 1 on any failure. Needs pyenv's Python 3.13.0 and 3.12 (``pyenv versions``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "tools" / "colab"
SHARED = ROOT.parent / "shared" / "colab"
# runtime -> (pyenv version prefix, what CI runs there by default)
RUNTIMES = {"latest": "3.13", "2026.07": "3.12"}


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, text=True, **kw)


def pyenv_python(prefix: str) -> Path:
    out = subprocess.run(
        ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=True
    ).stdout.split()
    versions = sorted(v for v in out if v.startswith(prefix + "."))
    if not versions:
        sys.exit(f"Python {prefix} is not installed under pyenv (pyenv versions)")
    return Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / (
        f"versions/{versions[0]}/bin/python{prefix}"
    )


def freeze(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = version
        elif " @ " in line:
            name, where = line.split(" @ ", 1)
            pins[name.lower().replace("_", "-")] = where
    return pins


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = version
    return pins


def replica(name: str) -> Path:
    """The replica venv of runtime ``name``, built from Colab's pins if needed."""
    pins_file = PINS / f"colab-{name}.txt"
    shared = SHARED / pins_file.name
    if shared.exists() and shared.read_text() != pins_file.read_text():
        sys.exit(
            f"{pins_file} differs from {shared}: copy Colab's current pins into tools/colab"
        )
    venv = ROOT / f".venv-colab-{name}"
    python = venv / "bin" / "python"
    wanted = read_pins(pins_file)
    if python.exists():
        have = freeze(python)
        have.pop("rlbook", None)
        have.pop("setuptools", None)
        if all(have.get(k) == v for k, v in wanted.items()):
            print(f"== replica {name}: {venv.name} matches Colab's pins, reused")
            if "rlbook" in freeze(python):
                sh(python, "-m", "pip", "uninstall", "-q", "-y", "rlbook")
            return python
        sh("rm", "-rf", venv)
    print(f"== replica {name}: building {venv.name} (torch comes with CUDA libraries)")
    sh(pyenv_python(RUNTIMES[name]), "-m", "venv", venv)
    sh(python, "-m", "pip", "install", "-q", "-r", pins_file)
    return python


def install_cell_changes_nothing(name: str, python: Path) -> None:
    """Dry-run, then run, the install cell's command; only rlbook may change."""
    print(f"== replica {name}: dry run of the install cell's command")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        sh(
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--dry-run",
            "--report",
            report,
            f"rlbook @ file://{ROOT}",
        )
        would = [
            f"{i['metadata']['name']}=={i['metadata']['version']}"
            for i in json.loads(report.read_text())["install"]
        ]
    print("   would install:", ", ".join(would))
    if [w.split("==")[0].lower() for w in would] != ["rlbook"]:
        sys.exit(f"FAIL: on Colab {name}, the install cell would also install {would}")
    before = freeze(python)
    had_build = (ROOT / "build").exists()
    sh(python, "-m", "pip", "install", "-q", f"rlbook @ file://{ROOT}")
    if not had_build:  # pip builds a local directory in place: leave no build/ behind
        sh("rm", "-rf", ROOT / "build")
    after = freeze(python)
    changed = sorted(
        k for k in after.keys() | before.keys() if after.get(k) != before.get(k)
    )
    print("   changed by the install:", changed)
    if changed != ["rlbook"]:
        sys.exit(f"FAIL: on Colab {name}, installing rlbook changed {changed}")


def run_chapter(
    path: Path, kernel: str, env: dict
) -> tuple[str, float, str | None, str]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except Exception as exc:
        error = (
            str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
        )
        error = f"{type(exc).__name__}: {error}"
    slow = []
    for index, cell in enumerate(nb.cells):
        times = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in times and "shell.execute_reply" in times:
            start = datetime.fromisoformat(
                times["iopub.execute_input"].replace("Z", "")
            )
            end = datetime.fromisoformat(times["shell.execute_reply"].replace("Z", ""))
            slow.append(((end - start).total_seconds(), index))
    slow = ", ".join(f"cell {i}: {t:.0f} s" for t, i in sorted(slow)[::-1][:3])
    return path.name, time.perf_counter() - started, error, slow


def chapters(name: str, python: Path, jobs: int) -> None:
    """Every chapter top to bottom in a kernel that runs the replica's Python."""
    print(f"== replica {name}: every chapter in the replica's kernel")
    with tempfile.TemporaryDirectory() as jupyter_path:
        spec = Path(jupyter_path) / "kernels" / f"colab-{name}"
        spec.mkdir(parents=True)
        argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec.joinpath("kernel.json").write_text(
            json.dumps(
                {"argv": argv, "display_name": f"Colab {name}", "language": "python"}
            )
        )
        env = dict(
            os.environ, JUPYTER_PATH=jupyter_path, PYDEVD_DISABLE_FILE_VALIDATION="1"
        )
        os.environ["JUPYTER_PATH"] = jupyter_path  # for the kernel-spec lookup here
        # the kernel must not see this venv's packages, only the replica's
        for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(var, None)
        env["PATH"] = f"{python.parent}:{env['PATH']}"
        paths = sorted((ROOT / "book").glob("*.ipynb"))
        with ThreadPoolExecutor(jobs) as pool:
            results = list(
                pool.map(lambda p: run_chapter(p, f"colab-{name}", env), paths)
            )
    print(
        f"\n| chapter (Colab {name} replica) | seconds | result | slowest cells |"
        "\n|---|--:|---|---|"
    )
    for chapter, seconds, error, slow in results:
        print(f"| {chapter} | {seconds:.0f} | {error or 'ok'} | {slow} |")
    failed = [r for r in results if r[2]]
    if failed:
        sys.exit(f"FAIL: {len(failed)} chapter(s) failed in the Colab {name} replica")


def unit_tests(name: str, python: Path) -> None:
    print(f"== replica {name}: unit tests (pytest added after the install checks)")
    sh(python, "-m", "pip", "install", "-q", "pytest", "PyYAML")
    sh(
        python,
        "-m",
        "pytest",
        ROOT / "tests",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--ignore",
        ROOT / "tests/test_student_edition.py",
        "--ignore",
        ROOT / "tests/test_notebooks.py",
        cwd=ROOT,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", choices=[*RUNTIMES, "all"], default="all")
    parser.add_argument("--chapters", action="store_true", help="run every chapter")
    parser.add_argument("--unit", action="store_true", help="run the unit tests")
    parser.add_argument("--jobs", type=int, default=2, help="chapters at once")
    args = parser.parse_args()
    names = list(RUNTIMES) if args.runtime == "all" else [args.runtime]
    everything = not (args.chapters or args.unit)
    for name in names:
        python = replica(name)
        install_cell_changes_nothing(name, python)
        if args.chapters or (everything and name == "latest"):
            chapters(name, python, args.jobs)
        if args.unit or everything:
            unit_tests(name, python)
    print("== Colab replicas: all checks passed")


if __name__ == "__main__":
    main()
