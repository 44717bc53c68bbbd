"""Times on the command line: '90s', '15m', '2h', '3d', '1w' ago, or an ISO date."""

from __future__ import annotations

import argparse
import time
from datetime import datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def point_in_time(text: str) -> float:
    """argparse type: Unix seconds."""
    unit = text[-1:].lower()
    if unit in UNITS and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * UNITS[unit]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time: use 30m, 2h, 3d, 1w, or a date like 2026-11-24"
        ) from None
