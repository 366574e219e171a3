"""What every benchmark records next to its results, and how it writes them."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch


def machine_info() -> dict:
    """Platform, Python and torch versions, CPU count and load average at the time of the call."""
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def save_results(path: str | Path, started: str, args, **payload) -> Path:
    """Write ``payload`` as JSON with the start and end times, the machine and the arguments."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "args": vars(args),
        **payload,
    }
    out.write_text(json.dumps(record, indent=1, default=str))
    print(f"\nresults written to {out}")
    return out
