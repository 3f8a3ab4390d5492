"""argparse ``type=`` functions shared by the pytest options and the ``evalindex`` command.

Each turns text into a value or raises ``argparse.ArgumentTypeError`` with a message that
says what was expected; pytest and argparse show it as a usage error.
"""

from __future__ import annotations

import argparse
import math

SAMPLERS = ("weighted", "stratified", "uniform")


def non_negative_int(text: str) -> int:
    value = any_int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def any_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def score_threshold(text: str) -> float:
    """A score in [0, 1]; ``85%`` is accepted as 0.85."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a score like 0.75 or 75%, got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a score between 0 and 1, got {text!r}")
    return value


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 0.05, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def sampler_name(text: str) -> str:
    if text not in SAMPLERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(SAMPLERS)}, got {text!r}")
    return text


SANDBOX_MODES = ("auto", "strict", "basic")  # as pytest_evalindex.scoring.sandbox.SANDBOX_MODES


def sandbox_mode(text: str) -> str:
    if text not in SANDBOX_MODES:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(SANDBOX_MODES)}, got {text!r}"
        )
    return text
