"""The spread of every check in the book over seed offsets and CPU kernel paths.

Each run executes every chapter top to bottom (nbclient, this environment's kernel) with
``RLBOOK_SEED_OFFSET=k`` and, for half of the runs, ``ATEN_CPU_CAPABILITY=default`` (torch's
plain kernels, which change training numbers the way another CPU does). Before the chapter
runs, an IPython AST transformer turns every ``assert`` into a recording call: it stores the
operands of the comparison and whether it held, and never raises, so one failing check does
not hide the ones after it. Claims (``rlbook.claims.claim``) record themselves, keyed by their
ids, and do not raise either (``RLBOOK_CLAIMS_RECORD``).

For a comparison ``a < b`` the *slack* is ``b - a`` (how far the measured value sits inside
its bound); a chained ``lo < x < hi`` keeps the smaller of its two slacks. Across runs the
report gives, per check, the smallest slack, its mean and standard deviation, and their
ratio: how many observed standard deviations separate the bound from the typical value.

    python benchmarks/claims_spread.py --runs 10 --jobs 2      # about 25 min on 2 cores
    python benchmarks/claims_spread.py --report-only           # rewrite the report

Writes ``benchmarks/results/claims_spread.json`` (raw records) and
``benchmarks/claims_spread.md`` (the committed report).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "claims_spread.json"
REPORT = ROOT / "benchmarks" / "claims_spread.md"

# Runs in the chapter's kernel before its first cell. __rlbook_cell__ is set by the
# driver before every cell, so a record says where its assert stands.
RECORDER = r"""
import ast as _ast, json as _json, math as _math

_RECORD_PATH = {path!r}
__rlbook_cell__ = -1
_OPS = {{_ast.Lt: "<", _ast.LtE: "<=", _ast.Gt: ">", _ast.GtE: ">=",
         _ast.Eq: "==", _ast.NotEq: "!=", _ast.Is: "is", _ast.IsNot: "is not",
         _ast.In: "in", _ast.NotIn: "not in"}}


def _as_float(x):
    try:
        if hasattr(x, "item") and getattr(x, "ndim", 0) == 0:
            x = x.item()
        if isinstance(x, bool):
            return None
        return float(x)
    except Exception:
        return None


def __rlbook_record__(line, text, thunk, ops):
    entry = {{"cell": __rlbook_cell__, "line": line, "text": text}}
    try:
        values = thunk()
    except Exception as exc:
        entry.update(ok=False, error=repr(exc)[:200])
    else:
        if ops is None:
            entry["ok"] = bool(values[0])
        else:
            ok, slacks = True, []
            for op, a, b in zip(ops, values, values[1:]):
                try:
                    held = {{"<": lambda: a < b, "<=": lambda: a <= b,
                             ">": lambda: a > b, ">=": lambda: a >= b,
                             "==": lambda: a == b, "!=": lambda: a != b,
                             "is": lambda: a is b, "is not": lambda: a is not b,
                             "in": lambda: a in b, "not in": lambda: a not in b}}[op]()
                    held = bool(held.all()) if hasattr(held, "all") else bool(held)
                except Exception:
                    held = False
                ok = ok and held
                fa, fb = _as_float(a), _as_float(b)
                if fa is not None and fb is not None and op in ("<", "<=", ">", ">="):
                    slacks.append(fb - fa if op in ("<", "<=") else fa - fb)
            entry["ok"] = ok
            entry["values"] = [_as_float(v) for v in values]
            if slacks:
                entry["slack"] = min(slacks)
    with open(_RECORD_PATH, "a") as f:
        f.write(_json.dumps(entry) + "\n")


class _AssertRecorder(_ast.NodeTransformer):
    def visit_Assert(self, node):
        # "assert a and b" is two checks: each is recorded on its own
        tests = node.test.values if (
            isinstance(node.test, _ast.BoolOp) and isinstance(node.test.op, _ast.And)
        ) else [node.test]
        calls = []
        for part, test in enumerate(tests):
            if isinstance(test, _ast.Compare):
                values = [test.left, *test.comparators]
                ops = _ast.Tuple(
                    [_ast.Constant(_OPS[type(o)]) for o in test.ops], _ast.Load()
                )
            else:
                values, ops = [test], _ast.Constant(None)
            thunk = _ast.Lambda(
                _ast.arguments([], [], None, [], [], None, []),
                _ast.Tuple(values, _ast.Load()),
            )
            call = _ast.Call(
                _ast.Name("__rlbook_record__", _ast.Load()),
                [_ast.Constant(str(node.lineno) + "." + str(part)),
                 _ast.Constant(_ast.unparse(test)[:160]), thunk, ops], [])
            calls.append(_ast.copy_location(_ast.Expr(call), node))
        return calls


get_ipython().ast_transformers.append(_AssertRecorder())
"""


def run_notebook(path: Path, offset: int, kernel_path: str, out_dir: Path) -> dict:
    """Execute one chapter with every assert recorded; return its records and time."""
    record_path = out_dir / f"{path.stem}-k{offset}-{kernel_path}.jsonl"
    record_path.unlink(missing_ok=True)
    nb = nbformat.read(path, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            marker = nbformat.v4.new_code_cell(f"__rlbook_cell__ = {index}")
            cells += [marker, cell]
    nb.cells = [nbformat.v4.new_code_cell(RECORDER.format(path=str(record_path)))]
    nb.cells += cells
    env = dict(
        os.environ,
        RLBOOK_SEED_OFFSET=str(offset),
        RLBOOK_CLAIMS_RECORD=str(record_path),
    )
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernel_path == "default":
        env["ATEN_CPU_CAPABILITY"] = "default"
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=True,
    )
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except Exception as exc:  # a crash is recorded, the sweep goes on
        error = repr(exc)[:300]
    seconds = time.perf_counter() - started
    # kept beside the records: what each rerun printed can be read back afterwards
    nbformat.write(nb, record_path.with_suffix(".ipynb"))
    errors = [
        o.get("ename", "") + ": " + o.get("evalue", "")[:200]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    records = []
    if record_path.exists():
        records = [json.loads(line) for line in record_path.read_text().splitlines()]
    return {
        "notebook": path.name,
        "offset": offset,
        "kernel_path": kernel_path,
        "seconds": round(seconds, 1),
        "errors": errors + ([error] if error else []),
        "records": records,
    }


def current_bounds() -> dict[str, tuple]:
    """(above, below, z_of) of each claim in the chapters now (numbers only), by id.

    Bounds set after a sweep are judged against the values that sweep measured."""
    found = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for call in re.finditer(
                r'claim\(\s*"(ch[^"]+)",(.*?)\n\)', cell.source, re.S
            ):
                bounds = []
                for name in ("above", "below"):
                    m = re.search(rf"\b{name}=([^,\n]+),", call.group(2))
                    try:
                        bounds.append(float(m.group(1)) if m else None)
                    except ValueError:
                        bounds.append("expr")
                z_of = re.search(r"\bz_of=(\d+)", call.group(2))
                if "expr" not in bounds:
                    found[call.group(1)] = (
                        *bounds,
                        int(z_of.group(1)) if z_of else None,
                    )
    return found


def summarize(runs: list[dict]) -> dict:
    """Per check: runs seen, failures, smallest/mean/std slack and the mean/std ratio."""
    checks: dict[str, dict] = {}
    now = current_bounds()
    text = "".join(p.read_text() for p in (ROOT / "book").glob("*.ipynb"))
    in_book = set(re.findall(r'\\"(ch[0-9a-z.]+-[a-z0-9-]+)\\"', text))
    for run in runs:
        seen: dict[str, dict] = {}
        for rec in run["records"]:
            if "claim" in rec:  # rlbook.claims.claim: keyed by its id
                c = dict(rec["claim"])
                if c["id"] in now:  # judged against the bounds the book has now
                    c["above"], c["below"], c["z_of"] = now[c["id"]]
                    c["holds"] = (c["above"] is None or c["value"] > c["above"]) and (
                        c["below"] is None or c["value"] < c["below"]
                    )
                bounds = [c["below"] - c["value"]] if c["below"] is not None else []
                bounds += [c["value"] - c["above"]] if c["above"] is not None else []
                gone = "" if c["id"] in in_book else " (removed from the book since)"
                rec = {"text": c["text"] + gone, "ok": c["holds"], "slack": min(bounds)}
                # ratios, step counts and KLs spread on a log scale: judge them there
                logs = [b for b in (c["above"], c["below"]) if b is not None]
                if c["value"] > 0 and all(b > 0 for b in logs):
                    rec["log_slack"] = min(
                        ([math.log(c["below"] / c["value"])] if c["below"] else [])
                        + ([math.log(c["value"] / c["above"])] if c["above"] else [])
                    )
                if c.get("z_of"):
                    rec["z_of"], rec["bound"] = c["z_of"], c["below"]
                key = f"claim:{c['id']}"
            else:
                key = f"{run['notebook']}:cell{rec['cell']}:{rec['line']}"
            entry = seen.setdefault(
                key, {"text": rec["text"], "ok": True, "slack": math.inf}
            )
            entry["ok"] = entry["ok"] and rec["ok"]
            if "slack" in rec:  # an assert in a loop: its worst occurrence counts
                entry["slack"] = min(entry["slack"], rec["slack"])
            if "log_slack" in rec:
                entry["log_slack"] = rec["log_slack"]
            if "z_of" in rec:
                entry["z_of"], entry["bound"] = rec["z_of"], rec["bound"]
        for key, entry in seen.items():
            check = checks.setdefault(
                key,
                {
                    "text": entry["text"],
                    "runs": 0,
                    "failed": [],
                    "slacks": [],
                    "logs": [],
                },
            )
            if "log_slack" in entry:
                check["logs"].append(entry["log_slack"])
            if "z_of" in entry:
                check["z_of"], check["bound"] = entry["z_of"], entry["bound"]
            check["runs"] += 1
            if not entry["ok"]:
                check["failed"].append(f"k={run['offset']},{run['kernel_path']}")
            if math.isfinite(entry["slack"]):
                check["slacks"].append(entry["slack"])
    for check in checks.values():
        s, logs = check.pop("slacks"), check.pop("logs")
        if len(s) >= 2:
            mean, std = statistics.fmean(s), statistics.stdev(s)
            check.update(min_slack=min(s), mean_slack=mean, std_slack=std)
            check["z"] = mean / std if std > 0 else math.inf
            check["scale"] = "linear"
            if len(logs) == len(s) and statistics.stdev(logs) > 0:
                check["z"] = statistics.fmean(logs) / statistics.stdev(logs)
                check["scale"] = "log"
            # a normal model of the slack (on its scale): the chance that one run fails
            check["p_fail"] = 0.5 * math.erfc(check["z"] / math.sqrt(2))
            if "z_of" in check:
                # the largest |z| of z_of statistics that are N(0, 1) when the claim holds:
                # a union bound on the law, whatever ten runs happened to show
                law = check["z_of"] * math.erfc(check["bound"] / math.sqrt(2))
                check["p_fail"], check["scale"] = (
                    min(1.0, law),
                    f"law, {check['z_of']} z",
                )
    return checks


def write_report(data: dict) -> None:
    checks = summarize(data["runs"])
    runs = data["runs"]
    configs = sorted({(r["offset"], r["kernel_path"]) for r in runs})
    failing = {k: c for k, c in checks.items() if c["failed"]}
    numeric = {k: c for k, c in checks.items() if "z" in c}
    noisy = {k: c for k, c in numeric.items() if c["std_slack"] > 0}
    live = {k: c for k, c in noisy.items() if "(removed from the book" not in c["text"]}
    lines = [
        "# The spread of the book's checks",
        "",
        f"Measured {data['started']} by `benchmarks/claims_spread.py` on "
        f"{data['machine']['platform']} ({data['machine']['cpus']} CPUs, "
        f"Python {data['machine']['python']}, torch {data['machine']['torch']}).",
        "",
        f"- Runs: {len(configs)} (seed offset, kernel path) configurations: "
        + ", ".join(f"k={k} {p}" for k, p in configs)
        + ".",
        f"- Checks (assert statements executed): {len(checks)}; with a numeric "
        f"bound: {len(numeric)}; of those, {len(noisy)} vary between runs.",
        f"- Checks that failed in at least one run: {len(failing)} (claims are judged "
        "against the bounds the book has now; a failed plain assert was changed after "
        "the sweep: see the git log).",
    ]
    if live:
        # the tightest of the checks judged by their spread (|z| claims follow their law)
        spread = {k: c for k, c in live.items() if "z_of" not in c}
        tight = min(spread.items(), key=lambda kv: kv[1]["z"])
        lines.append(
            f"- Tightest margin among varying checks still in the book (judged by their spread): `{tight[0]}` "
            f"(`{tight[1]['text']}`), mean slack = {tight[1]['z']:.1f} standard "
            "deviations of its spread."
        )
        # every varying check still in the book: claims by id, plain asserts by cell (a
        # chapter edited after its sweep must be swept again for its cells to line up)
        claims = live
        p_book = 1 - math.prod(1 - c["p_fail"] for c in claims.values())
        worst = sorted(claims.items(), key=lambda kv: -kv[1]["p_fail"])[:6]
        lines.append(
            f"- Chance that some check fails in a run of the whole book, if each of the "
            f"{len(claims)} varying checks' slack were normal on its scale (log for positive "
            "ratios, counts and KLs, linear otherwise) with the mean and spread measured "
            "here, and each |z|-type claim (`z_of=`) failed with the chance its bound has "
            f"under the normal law: {p_book:.2%}. Checks with more than 1 in 100,000: "
            f"{sum(c['p_fail'] > 1e-5 for c in claims.values())}; the largest: "
            + ", ".join(f"`{k}` ({c['p_fail']:.1e})" for k, c in worst)
            + ". With ten runs per claim the normal model is rough in both directions: "
            "it overstates the risk of skewed quantities and cannot see tails that ten runs "
            "did not reach."
        )
    lines += [
        "",
        "## Chapter times (seconds, each run)",
        "",
        "| chapter | " + " | ".join(f"k={k} {p}" for k, p in configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for name in sorted({r["notebook"] for r in runs}):
        row = {
            (r["offset"], r["kernel_path"]): r for r in runs if r["notebook"] == name
        }
        cells = [
            (
                "part"  # a partial rerun (its note says which cells)
                if "note" in row[c]
                else f"{row[c]['seconds']:.0f}"
                + (" (error)" if row[c]["errors"] else "")
            )
            if c in row
            else "–"
            for c in configs
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Failed checks",
        "",
        "| check | text | failed in |",
        "|---|---|---|",
    ]
    for key, c in sorted(failing.items()):
        text = c["text"].replace("|", "\\|")
        lines.append(f"| `{key}` | `{text}` | {', '.join(c['failed'])} |")
    lines += [
        "",
        "## Varying checks, tightest first",
        "",
        "Slack: distance of the measured value inside its bound (worst occurrence per run).",
        "",
        "| check | text | runs | min slack | mean slack | std | mean/std (scale) | "
        "P(fail), normal model |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for key, c in sorted(noisy.items(), key=lambda kv: (-kv[1]["p_fail"], kv[1]["z"])):
        text = c["text"].replace("|", "\\|")
        lines.append(
            f"| `{key}` | `{text}` | {c['runs']} | {c['min_slack']:.4g} | "
            f"{c['mean_slack']:.4g} | {c['std_slack']:.3g} | {c['z']:.1f} ({c['scale']}) | "
            f"{c['p_fail']:.1e} |"
        )
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"report written to {REPORT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="configurations")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at once")
    parser.add_argument("--first-offset", type=int, default=7, help="k of run 0")
    parser.add_argument("--step", type=int, default=7919, help="k between runs")
    parser.add_argument("--notebooks", nargs="*", help="chapter file names")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these runs to the results, replacing the same chapter and configuration",
    )
    parser.add_argument(
        "--tag", default="", help="a suffix for the output files (a partial sweep)"
    )
    args = parser.parse_args()
    global RESULTS, REPORT
    if args.tag:
        RESULTS = RESULTS.with_name(f"claims_spread-{args.tag}.json")
        REPORT = RESULTS.with_suffix(".md")
    if args.report_only:
        write_report(json.loads(RESULTS.read_text()))
        return
    paths = sorted((ROOT / "book").glob("*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name in args.notebooks]
    configs = [
        (args.first_offset + i * args.step, "default" if i % 2 else "native")
        for i in range(args.runs)
    ]
    out_dir = RESULTS.parent / RESULTS.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "started": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        "runs": [],
    }
    if args.append and RESULTS.exists():
        data = json.loads(RESULTS.read_text())
        redone = {(p.name, k, kp) for k, kp in configs for p in paths}
        data["runs"] = [
            r
            for r in data["runs"]
            if (r["notebook"], r["offset"], r["kernel_path"]) not in redone
        ]
    jobs = [(p, k, kp) for k, kp in configs for p in paths]
    # longest chapters first keeps both workers busy to the end
    with ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda j: run_notebook(*j, out_dir), jobs):
            bad = sum(
                not (r["claim"]["holds"] if "claim" in r else r["ok"])
                for r in result["records"]
            )
            print(
                f"{result['notebook']:32s} k={result['offset']:<6d} "
                f"{result['kernel_path']:8s} {result['seconds']:6.1f} s  "
                f"{len(result['records'])} checks, {bad} failed, "
                f"{len(result['errors'])} errors",
                flush=True,
            )
            data["runs"].append(result)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(data))
    write_report(data)


if __name__ == "__main__":
    main()
