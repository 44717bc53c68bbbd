"""Numbers on the command line: one argparse type for --limit, --speed, --max-wait."""

from __future__ import annotations

import argparse
import math


def at_least(low: float, kind: type = float, *, strictly: bool = False):
    """An argparse type: a finite number of kind (int or float) that is low or more
    (more than low when strictly); anything else is a usage error (exit 2)."""
    what = "a whole number" if kind is int else "a number"
    bound = f"above {low:g}" if strictly else f"of {low:g} or more"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (strictly and value == low):
            raise argparse.ArgumentTypeError(f"'{text}' is not {what} {bound}")
        return value

    return parse
