"""Numeric answers: find the final number in a response and compare it with the target's.

Where the final answer is looked for, in order:

1. ``#### 72``                   (GSM8K style; the last such line)
2. ``\\boxed{72}``               (the last one; nested braces are fine)
3. ``answer is 72``, ``answer: 72``, ``答案是72``, ``答案：72``   (the last such phrase)
4. the last number anywhere in the text

What counts as a number: an optional sign (``-``, ``+``, ``−``), digits with optional
thousands separators in groups of three (``1,234,567``; ``1,2`` is two numbers), an optional
decimal part and exponent; a simple fraction ``3/4``; LaTeX ``\\frac{3}{4}``. Currency
signs, units and ``%`` around it are ignored (``15%`` is 15). The target is parsed the same
way, so a GSM8K solution ending in ``#### 72`` is a valid target.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pytest_evalindex.scoring import Score, ScorerError, clip, target_list
from pytest_evalindex.testset.records import Record

_SIGN = r"[-+−]"
_PLAIN = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"
_EXPONENT = r"(?:[eE][-+]?\d+(?![A-Za-z]))?"
# letters, digits and "_" before a number make it part of a word ("x2", "step_3")
_NOT_AFTER_WORD = r"(?<![A-Za-z0-9_.])"

_NUMBER_TOKEN = re.compile(
    # LaTeX fraction, e.g. -\frac{3}{4} or \dfrac{10}{3}
    rf"(?P<frac_sign>{_SIGN})?\s*\\[dt]?frac\s*\{{\s*(?P<frac_num>\d+(?:\.\d+)?)\s*\}}"
    rf"\s*\{{\s*(?P<frac_den>\d+(?:\.\d+)?)\s*\}}"
    # plain fraction 3/4, not part of a date or path like 12/25/2023
    rf"|{_NOT_AFTER_WORD}(?<!/)(?P<slash_num>{_SIGN}?\d+)/(?P<slash_den>\d+)(?![\d/])"
    # decimal number with optional thousands separators and exponent
    rf"|{_NOT_AFTER_WORD}(?P<number>{_SIGN}?(?:{_PLAIN}){_EXPONENT})"
)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
# the separator is required: "the answer to question 3 is 5" must not give 3
_ANSWER_PHRASE = re.compile(
    r"(?:(?i:\banswer(?:\s+(?:is|was|would\s+be)\s*[:：=]?|\s*[:：=]))|答案\s*(?:是|为|[:：]))"
)


@dataclass(frozen=True)
class FoundNumber:
    value: float
    text: str  # the number as written
    context: str  # the text it was found in, e.g. "#### 72" or "\\boxed{72}"


def parse_numbers(text: str) -> list[tuple[float, str]]:
    """Every number in ``text`` in order, as ``(value, text as written)``."""
    text = _untex_separators(text)
    found: list[tuple[float, str]] = []
    for match in _NUMBER_TOKEN.finditer(text):
        value = _token_value(match)
        if value is not None:
            found.append((value, match.group(0).strip()))
    return found


def _untex_separators(text: str) -> str:
    """``1{,}000`` and ``1\\,000`` (LaTeX thousands separators) become ``1,000``."""
    return re.sub(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3})", ",", text)


def _token_value(match: re.Match[str]) -> float | None:
    try:
        if match.group("frac_num") is not None:
            value = float(match.group("frac_num")) / float(match.group("frac_den"))
            return -value if match.group("frac_sign") in ("-", "−") else value
        if match.group("slash_num") is not None:
            numerator = float(match.group("slash_num").replace("−", "-"))
            return numerator / float(match.group("slash_den"))
        number = match.group("number").replace(",", "").replace("−", "-")
        value = float(number)
    except (ZeroDivisionError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}``, balancing nested braces."""
    contents = []
    for match in re.finditer(r"\\boxed\s*\{", text):
        depth, start = 1, match.end()
        for position in range(start, len(text)):
            if text[position] == "{":
                depth += 1
            elif text[position] == "}":
                depth -= 1
                if depth == 0:
                    contents.append(text[start:position])
                    break
    return contents


def extract_number(text: str) -> FoundNumber | None:
    """The final answer number of ``text`` by the rules in the module docstring, or None."""
    for line in reversed(_HASHES.findall(text)):
        numbers = parse_numbers(line)
        if numbers:
            return FoundNumber(numbers[0][0], numbers[0][1], f"#### {line.strip()}")
    for content in reversed(_boxed_contents(text)):
        numbers = parse_numbers(content)
        if numbers:
            return FoundNumber(numbers[-1][0], numbers[-1][1], f"\\boxed{{{content}}}")
    for phrase in reversed(list(_ANSWER_PHRASE.finditer(text))):
        rest = text[phrase.end() :].split("\n", 1)[0]
        numbers = parse_numbers(rest)
        if numbers:
            return FoundNumber(numbers[0][0], numbers[0][1], phrase.group(0) + rest)
    numbers = parse_numbers(text)
    if numbers:
        return FoundNumber(numbers[-1][0], numbers[-1][1], numbers[-1][1])
    return None


def format_number(value: float) -> str:
    """72.0 -> '72', 0.75 -> '0.75'."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def numeric(
    response: str, record: Record, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9
) -> Score:
    """1 when the response's final number equals the target's within the tolerances."""
    wanted: list[float] = []
    for target in target_list(record, "numeric"):
        found_target = extract_number(target)
        if found_target is None:
            raise ScorerError(f"target {clip(target)!r} of record {record.id!r} has no number")
        wanted.append(found_target.value)
    shown = "/".join(format_number(v) for v in wanted)
    found = extract_number(response)
    if found is None:
        return Score(0.0, f"no number found in {clip(response)!r}; target {shown}")
    right = any(math.isclose(found.value, w, rel_tol=rel_tol, abs_tol=abs_tol) for w in wanted)
    return Score(
        1.0 if right else 0.0,
        f"extracted {format_number(found.value)} (from {clip(found.context.strip())!r}); "
        f"target {shown}",
        extracted=format_number(found.value),
    )
