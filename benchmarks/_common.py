"""What every benchmark records next to its results: the machine and how busy it was."""

from __future__ import annotations

import os
import platform
import sys

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
