"""Math answers: find the final answer, settle what is provably equal, ask math-verify the rest.

Registered as the scorer ``math``. (The module is not called ``math.py``: importing a
submodule sets it as an attribute of its package, and ``pytest_evalindex.scoring`` itself
uses the standard library's ``math`` under that name.)

The final answer of a response, in order (the name in parentheses is what the explanation
says):

1. the contents of the last ``\\boxed{...}`` or ``\\fbox{...}``, braces balanced (``box``);
2. the plain number after the last ``####``, GSM8K's answer line (``gsm8k ####``);
3. a plain number (``1,234``, ``-0.5``, ``x = 5``) that is all that follows the last ``answer is`` /
   ``answer:`` / ``答案是`` on its line, or on the next non-empty line (``answer phrase``);
4. the whole response when it is a plain number (``whole response``);
5. otherwise math-verify's own extraction (``parse`` with ``LatexExtractionConfig`` and
   ``ExprExtractionConfig``): "final answer is" and "answer:" phrasing first, then the last
   math span (``$...$``, ``\\(...\\)``, display math) or expression that SymPy can read; the
   explanation names which (``math-verify: math span $…$, the last in the text``). When
   nothing can be read, there is no answer: the scorer never guesses from the last number
   of a text. Without math-verify installed, step 5 is skipped and such a response misses,
   saying how to install it.

A target is its own last ``\\boxed{}`` when it has one, else what follows its last ``####``,
else the whole target (MATH-500 and AIME answers are given bare).

Comparison:

- both answers are *cleaned* of notation that does not change their value: ``$`` and
  ``\\(...\\)`` delimiters, ``\\left``/``\\right``, LaTeX spacing (not the row break
  ``\\\\``), ``\\displaystyle``, a trailing ``.``, the thousands separators of a lone number
  (``1,000``, ``1{,}000``; ``0,5`` is left to math-verify, which reads a decimal comma),
  ``^{\\circ}``/``°``, ``\\%``, ``\\$``, and unit words after a number (``5\\text{ cm}^2``,
  ``5 inches``; only known unit words, never a single letter); ``\\dfrac``/``\\tfrac``
  become ``\\frac``, ``\\frac12`` becomes ``\\frac{1}{2}``, ``\\sqrt2`` becomes
  ``\\sqrt{2}``, ``\\mathrm{e}``/``\\mathrm{i}`` become ``e``/``i``, other ``\\text{...}`` is
  unwrapped; a leading ``x =`` is dropped from the prediction when the target has no ``=``;
- an answer with digits separated only by a space (``1 2``) is ambiguous: it scores 0;
- the *fast path* settles only what it can prove: the cleaned forms are identical (spaces
  aside), or both are exact numbers (``0.5``, ``1/2``, ``\\frac{1}{2}``) of the same value
  (equal), or both are integers of different values (not equal);
- every other pair goes to ``math_verify`` (PyPI ``math-verify``, the optional extra
  ``math``): both cleaned answers are parsed with SymPy (math-verify's LaTeX reading, its
  unit stripping switched off: it would read ``\\frac{1}{\\mathrm{e}}`` as ``\\frac{1}{``),
  and ``verify`` compares the two expressions. An answer math-verify cannot read, or one
  that is undefined (a division by zero, ``nan``), is not equal to anything.

A test checks a large table of pairs both ways: wherever the fast path settles, math-verify
on the same cleaned answers agrees. A target written as text (``\\text{Evelyn}``) is
compared as text, case-insensitively: SymPy would read a word as a product of symbols.

Determinism: undefined answers are refused before comparing (with them, SymPy's result
hung on the order of terms, which follows the hash seed and what was computed before);
every math-verify call starts with SymPy's and math-verify's caches empty, the helpers
run with a fixed ``PYTHONHASHSEED``. So an answer gets the same verdict in every run, in
every process, whatever was scored before.

Bounding the calls: math-verify's own timeout uses ``signal.alarm``, which only works in
the main thread of the main interpreter, so its timeouts are switched off and the calls
run instead in a small pool of worker processes (plain ``python -c`` children talking JSON
lines over pipes, so no user script is re-imported; at most ``MAX_WORKERS`` a process,
SymPy imported before the first call; the scorer's first call in a process starts one in
the background, while the answers settled cheaply go on). A call that takes longer than
``timeout_s`` (default 5 s) kills its worker, scores 0 and says so in the explanation; the
next call starts a fresh worker. This works from any thread and under pytest-xdist.
``timeout_s: null`` runs the calls in the calling thread instead, without any bound.
``symbolic_calls()`` counts the math-verify calls of this process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pytest_evalindex.scoring import Score, ScorerError, ScorerTraits, clip, target_list
from pytest_evalindex.testset.records import Record

INSTALL_HINT = "pip install 'pytest-evalindex[math]'"
DEFAULT_TIMEOUT_S = 5.0
MAX_WORKERS = 2  # worker processes per test process, started only when calls overlap
STARTUP_TIMEOUT_S = 120.0  # a cold start imports SymPy; slow machines need a while
VERIFY_FUNCTION = f"{__name__}:math_verify_task"
WORKER_HASH_SEED = "0"  # SymPy orders some terms by hash: one seed, one verdict


class MathVerifyMissingWarning(UserWarning):
    """math-verify is not installed: answers are compared without symbolic equivalence."""


# --------------------------------------------------------------------------- extraction

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed\s+([^\s$]+)")
_ANSWER_PHRASE = re.compile(
    r"(?:(?i:\banswer(?:\s+(?:is|was|would\s+be)\s*[:：=]?|\s*[:：=]))"
    r"|答案\s*(?:是|为|[:：]))"
)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_PLAIN_NUMBER = r"[-+−]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?"
# a plain number (or "x = number"), maybe in $...$, bold or \$, maybe with a full stop:
# nothing else
_LONE_NUMBER = re.compile(
    r"^[\s*_]*\$?\s*(?:\\\$)?\s*((?:[A-Za-z]\s*=\s*)?"
    + _PLAIN_NUMBER
    + r")\s*\$?[\s*_]*[.。]?[\s*_]*$"
)


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}``/``\\fbox{...}`` in order, braces balanced."""
    contents = []
    for match in _BOX_COMMAND.finditer(text):
        depth = 1
        for position in range(match.end(), len(text)):
            if text[position] == "{":
                depth += 1
            elif text[position] == "}":
                depth -= 1
                if depth == 0:
                    contents.append(text[match.end() : position])
                    break
    return contents


def lone_number(text: str) -> str | None:
    """The number when ``text`` is one plain number and nothing else (module docstring)."""
    match = _LONE_NUMBER.match(re.sub(r"(?<=\d)\{,\}(?=\d{3})", ",", text))
    return match.group(1) if match else None


def extract_final_answer(text: str) -> tuple[str, str] | None:
    """The final answer of a response by the scorer's own rules (1-4 of the module
    docstring) and the rule's name; None when they do not apply and math-verify decides."""
    boxed = boxed_contents(text)
    if boxed:
        return boxed[-1].strip(), "box"
    bare = _BOX_BARE.findall(text)
    if bare:
        return bare[-1], "box"
    # GSM8K's answer line; a markdown heading (#### Step 1) is no answer
    hashes = [lone_number(h) for h in _HASHES.findall(text)]
    if hashes and hashes[-1] is not None:
        return hashes[-1], "gsm8k ####"
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        rest = text[phrases[-1].end() :]
        first_line, _, after = rest.partition("\n")
        if not first_line.strip(" \t*_"):
            first_line = next((line for line in after.split("\n") if line.strip(" \t*_")), "")
        number = lone_number(first_line)
        # anything but a plain number after the phrase is math-verify's to read
        return (number, "answer phrase") if number is not None else None
    number = lone_number(text)
    return (number, "whole response") if number is not None else None


def target_answer(target: str) -> str:
    """The answer part of a target: its last box, else after its last ``####``, else all."""
    boxed = boxed_contents(target)
    if boxed:
        return boxed[-1].strip()
    hashes = _HASHES.findall(target)
    if hashes:
        return hashes[-1].strip()
    return target.strip()


# --------------------------------------------------------------------------- cleaning

_UNIT_WORDS = (
    r"(?:square|sq\.?|cubic)\s+[a-z]+|"
    r"centimeters?|centimetres?|cm|millimeters?|millimetres?|mm|kilometers?|kilometres?|km|"
    r"meters?|metres?|inches|inch|feet|foot|ft|yards?|miles?|mph|units?|"
    r"degrees?|dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|months?|years?|"
    r"pounds?|ounces?|grams?|kilograms?|kg|liters?|litres?|gallons?"
)
_TEXT_COMMAND = r"\\(?:text|textbf|textrm|textit|mbox|mathrm)\s*"
_EXPONENT = r"(?:\s*\^\s*(?:\d|\{\s*\d\s*\}))?"
# a unit after a number (or a closing brace), at the end, with its exponent: 5\text{ cm}^2
_TEXT_UNIT = re.compile(
    r"(?<=[\d}\s])\s*" + _TEXT_COMMAND + r"\{\s*(?:" + _UNIT_WORDS + r")\s*\}" + _EXPONENT + r"\s*$"
)
_TRAILING_UNIT = re.compile(
    r"(?<=[\d}])\s*(?:" + _UNIT_WORDS + r")(?![A-Za-z])" + _EXPONENT + r"\s*$"
)
_UPRIGHT_CONSTANT = re.compile(r"\\(?:mathrm|text|textrm|operatorname)\s*\{\s*([ei])\s*\}")
_TEXT_WRAPPED = re.compile(_TEXT_COMMAND + r"\{([^{}]*)\}")
_LONE_GROUPED_NUMBER = re.compile(r"^[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*(?=\S)")
_TEXT_ANSWER = re.compile(r"^" + _TEXT_COMMAND + r"\{\s*([A-Za-z][A-Za-z .'-]*[A-Za-z.])\s*\}$")
_SPACED_DIGITS = re.compile(r"\d\s+\d")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])")


def clean_answer(text: str) -> str:
    """An answer without the notation that does not change its value (module docstring)."""
    s = text.strip().replace("−", "-")
    s = re.sub(r"^\\[\[(]|\\[\])]$", "", s.strip())
    s = s.replace("\\$", "").replace("$", "")
    # \left( but not \leftarrow
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)
    s = re.sub(r"\\displaystyle(?![A-Za-z])", "", s)
    # LaTeX thousands separators first: 1{,}000 and 1\,000
    s = re.sub(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3}(?!\d))", ",", s)
    # spacing commands go, the row break \\ of a matrix stays
    s = "\\\\".join(_SPACING.sub(" ", part) for part in s.split("\\\\"))
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s).replace("°", "")
    s = s.replace("\\%", "").replace("%", "")
    s = _UPRIGHT_CONSTANT.sub(r"\1", s)
    s = _TEXT_UNIT.sub("", s)
    s = _TEXT_WRAPPED.sub(r"\1", s)
    s = _TRAILING_UNIT.sub("", s)
    s = " ".join(s.split()).rstrip(".。").strip()
    if _LONE_GROUPED_NUMBER.match(s):
        s = s.replace(",", "")
    return s


def comparison_key(cleaned: str) -> str:
    """A cleaned answer without spaces, keeping ``\\pi r`` apart from ``\\pir``. (Digits
    separated by a space never get here: they are refused as ambiguous.)"""
    s = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", r"\1{}", cleaned)
    return re.sub(r"\s+", "", s)


_DECIMAL = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_SLASH = re.compile(r"^([-+]?\d+)/(\d+)$")
_FRAC = re.compile(r"^([-+]?)\\frac\{([-+]?\d+)\}\{(\d+)\}$")


def exact_value(key: str) -> Fraction | None:
    """The exact value of an answer that is a plain number or a fraction of integers."""
    try:
        if _DECIMAL.match(key):
            return Fraction(key)
        match = _SLASH.match(key)
        if match:
            return Fraction(int(match.group(1)), int(match.group(2)))
        match = _FRAC.match(key)
        if match:
            value = Fraction(int(match.group(2)), int(match.group(3)))
            return -value if match.group(1) == "-" else value
    except (ValueError, ZeroDivisionError):
        return None
    return None


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Match:
    """Whether two answers agree, and how that was decided."""

    equal: bool
    how: str


@dataclass(frozen=True)
class Cleaned:
    """A pair of answers as the comparison sees them: cleaned, or refused with a reason."""

    predicted: str
    gold: str
    refused: str = ""


def clean_pair(predicted: str, gold: str) -> Cleaned:
    """Both answers cleaned for comparison; ``refused`` says why the pair cannot match."""
    gold_clean = clean_answer(gold)
    predicted_clean = clean_answer(predicted)
    if "=" not in gold_clean:
        predicted_clean = _ASSIGNMENT.sub("", predicted_clean)
    refused = ""
    if not predicted_clean:
        refused = "empty answer"
    elif _SPACED_DIGITS.search(predicted_clean):
        refused = "digits separated by a space are ambiguous"
    elif _SPACED_DIGITS.search(gold_clean):
        refused = "the target's digits separated by a space are ambiguous"
    return Cleaned(predicted_clean, gold_clean, refused)


def fast_match(cleaned: Cleaned) -> Match | None:
    """The fast path's verdict, only where it is provable; None leaves it to math-verify."""
    if cleaned.refused:
        return Match(False, cleaned.refused)
    gold_key, predicted_key = comparison_key(cleaned.gold), comparison_key(cleaned.predicted)
    if gold_key == predicted_key:
        return Match(True, "same after normalisation")
    gold_value, predicted_value = exact_value(gold_key), exact_value(predicted_key)
    if gold_value is not None and gold_value == predicted_value:
        return Match(True, "same number")
    if _INTEGER.match(gold_key) and _INTEGER.match(predicted_key):
        return Match(False, "different numbers")
    return None


def answers_match(
    predicted: str,
    gold: str,
    *,
    shortcut: bool = True,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> Match:
    """Compare a predicted answer with the gold one (both already extracted).

    ``shortcut=False`` skips the fast path and asks math-verify directly (when it is
    installed). ``timeout_s`` bounds the math-verify call (None or 0: no bound, run in the
    calling thread).
    """
    text_gold = _TEXT_ANSWER.match(gold.strip())
    if text_gold is not None:
        wanted = " ".join(text_gold.group(1).split()).rstrip(".").lower()
        got = " ".join(clean_answer(predicted).split()).rstrip(".").lower()
        return Match(got == wanted, "compared as text")
    cleaned = clean_pair(predicted, gold)
    if cleaned.refused:
        return Match(False, cleaned.refused)
    if shortcut or not math_verify_available():
        settled = fast_match(cleaned)
        if settled is not None:
            return settled
    if not math_verify_available():
        _warn_missing_once()
        return Match(False, f"differs after normalisation (no symbolic check: {INSTALL_HINT})")
    reply = symbolic_call(("verify", cleaned.gold, cleaned.predicted), timeout_s)
    if reply is None:
        return Match(False, f"symbolic check gave up after {timeout_s:g}s")
    equal, how = reply
    return Match(bool(equal), str(how))


def math_verify_available() -> bool:
    try:
        return importlib.util.find_spec("math_verify") is not None
    except (ImportError, ValueError):
        return False


class OnceWarning:
    """A warning issued the first time ``warn`` is called in a process, never again until
    ``reset``; safe to share between threads."""

    def __init__(self, category: type[Warning], message: str) -> None:
        self.category = category
        self.message = message
        self._issued = False
        self._lock = threading.Lock()

    @property
    def issued(self) -> bool:
        with self._lock:
            return self._issued

    def warn(self, stacklevel: int = 2) -> None:
        with self._lock:
            if self._issued:
                return
            self._issued = True
        # counted as warnings.warn counts, from the function that calls warn()
        warnings.warn(self.message, self.category, stacklevel=stacklevel + 1)

    def reset(self) -> None:
        """Issue the warning again on the next ``warn``."""
        with self._lock:
            self._issued = False


missing_math_verify = OnceWarning(
    MathVerifyMissingWarning,
    "math-verify is not installed, so the math scorer compares normalised answers only, "
    "misses equivalent forms such as 3x+2 and 2+3x and reads no unboxed answer but a "
    f"plain number after 'answer is'; {INSTALL_HINT}",
)


def _warn_missing_once() -> None:
    missing_math_verify.warn(stacklevel=3)


_calls = 0
_calls_lock = threading.Lock()


def symbolic_calls() -> int:
    """How many math-verify calls (comparisons and extractions) this process has made."""
    with _calls_lock:
        return _calls


def symbolic_call(args: tuple[str, ...], timeout_s: float | None) -> Any:
    """``math_verify_task(*args)``: in a worker bounded by ``timeout_s``, or in this thread
    when it is None or 0. None when the worker gave up."""
    global _calls
    with _calls_lock:
        _calls += 1
    if not timeout_s:
        return math_verify_task(*args)
    return _pool().call(args, timeout_s)


# --------------------------------------------------------------------------- math-verify

# These functions run in the worker process (or in the calling thread with no time bound).


class _QuietTimeoutNotice(logging.Filter):
    """Drop math-verify's notice that its own timeout is off: this module bounds the call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


_quieted = False


def _quiet() -> None:
    global _quieted
    if not _quieted:
        for name in ("math_verify.parser", "math_verify.grader", "math_verify.utils"):
            logging.getLogger(name).addFilter(_QuietTimeoutNotice())
        _quieted = True


def _fresh_state() -> None:
    """Empty SymPy's and math-verify's caches, so that no verdict depends on what was
    computed before: SymPy hands back cached objects, math-verify cached parses. (On
    answers seen once, as in a run, this costs little: the caches rarely hit.)"""
    from math_verify import parser
    from sympy.core.cache import clear_cache

    clear_cache()
    for cached in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        function = getattr(parser, cached, None)
        if function is not None and hasattr(function, "cache_clear"):
            function.cache_clear()


def extraction_configs() -> list[Any]:
    """math-verify's extraction configs as the scorer uses them: its defaults, with its unit
    stripping off (it removes any trailing ``\\text{...}``, ``\\mathrm{e}`` included)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, LatexNormalizationConfig

    normalization = LatexNormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all"
    )
    return [LatexExtractionConfig(normalization_config=normalization), ExprExtractionConfig()]


def undefined(expression: Any) -> bool:
    """True when a parsed answer holds a division by zero or an undefined value."""
    import sympy

    if isinstance(expression, sympy.MatrixBase):
        return any(undefined(element) for element in expression)
    if not isinstance(expression, sympy.Basic):
        return False
    for node in sympy.preorder_traversal(expression):
        if node in (sympy.nan, sympy.zoo):
            return True
        if isinstance(node, sympy.Pow) and node.base.is_zero and node.exp.is_negative:
            return True
    try:
        evaluated = expression.doit()
    except Exception:  # evaluation is only a probe here
        return False
    return isinstance(evaluated, sympy.Basic) and evaluated.has(sympy.nan, sympy.zoo)


def _read(answer: str) -> tuple[Any, str]:
    """An answer parsed by math-verify's LaTeX reading, or (None, why not)."""
    import sympy
    from math_verify import parse

    parsed = parse(f"${answer}$", extraction_config=extraction_configs()[:1], parsing_timeout=None)
    value = parsed[0] if parsed else None
    if not isinstance(value, (sympy.Basic, sympy.MatrixBase)):
        return None, "cannot read {}"
    normalised = parsed[-1] if isinstance(parsed[-1], str) else answer
    if normalised.count("{") != normalised.count("}"):
        return None, "cannot read {}"  # normalisation cut the answer: not what was written
    if undefined(value):
        return None, "{} is undefined (a division by zero)"
    return value, ""


def verify_cleaned(gold: str, predicted: str) -> tuple[bool, str]:
    """math-verify's verdict on two cleaned answers, and how it was reached."""
    from math_verify import verify

    _quiet()
    _fresh_state()
    predicted_value, why = _read(predicted)
    if predicted_value is None:
        return False, "math-verify: " + why.format("the answer")
    gold_value, why = _read(gold)
    if gold_value is None:
        return False, "math-verify: " + why.format("the target")
    equal = bool(verify(gold_value, predicted_value, timeout_seconds=None))
    return equal, "equivalent (math-verify)" if equal else "not equivalent (math-verify)"


_LATEX_KINDS = {
    "latexDisplayDollar": "display math $$…$$",
    "latexDisplayBracket": "display math \\[…\\]",
    "latexInlineDollar": "math span $…$",
    "latexInlineParenthesis": "math span \\(…\\)",
    "latexInlineBracket": "math span […]",
    "latexFraction": "fraction",
    "latexBoxed": "box",
}
_ANCHORS = {0: "after 'final answer is'", 50: "after 'final answer is'", 100: "after 'answer:'",
            200: "after 'answer'"}  # fmt: skip


def _answer_of(match: re.Match[str], config: Any, text: str) -> tuple[str, str]:
    """What a math-verify match found, as the response wrote it, and its kind."""
    from math_verify import ExprExtractionConfig

    groups = match.groupdict()
    if isinstance(config, ExprExtractionConfig):
        kind = "expression" if groups.get("expr") else "number"
        return text + ("%" if groups.get("percent") else ""), kind
    pieces, kinds = [], []
    for prefix in ["first"] + [f"next{i}" for i in range(1, 6)]:
        for name, value in groups.items():
            if value and name.startswith(prefix + "_latex"):
                percent = "\\%" if groups.get(prefix + "_percent") else ""
                pieces.append(value.strip() + percent)
                kinds.append(_LATEX_KINDS.get(name.partition("_")[2], "math span"))
                break
    if any("\\boxed" in p or "\\fbox" in p for p in pieces):
        return text, "box"  # math-verify's normalisation took the box's contents
    return ", ".join(pieces), kinds[0] if kinds else "math span"


def mv_extraction(response: str) -> tuple[Any, str, str] | None:
    """math-verify's extraction from a response: (parsed value or None, the answer as
    written, how it was found); None when nothing looks like an answer.

    The same search as ``math_verify.parse`` with ``extraction_configs()``: by priority
    (phrases first, then any math), within one the rightmost match first, the first that
    SymPy reads wins; when none reads anywhere, the first match tried, unread.
    """
    from math_verify.parser import extract_match, get_extraction_regexes

    by_priority: dict[int, list[tuple[re.Pattern[str], Any]]] = {}
    for patterns, config in get_extraction_regexes(extraction_configs()):
        for pattern, priority in patterns:
            by_priority.setdefault(priority, []).append((pattern, config))
    unread: tuple[Any, str, str] | None = None
    for priority in sorted(by_priority):
        found = [(m, c) for pattern, c in by_priority[priority] for m in pattern.finditer(response)]
        found.sort(key=lambda pair: (pair[0].end(), -pair[0].start()), reverse=True)
        unreadable: list[tuple[int, int, tuple[Any, str, str]]] = []
        for match, config in found:
            value, text = extract_match(match, config)
            answer, kind = _answer_of(match, config, text)
            where = _ANCHORS.get(priority, "the last in the text")
            if kind == "box":
                where = "math-verify's box reading"
            how = f"math-verify: {kind}, {where}"
            if value is None:
                unreadable.append((*match.span(), (None, answer, how + ", not readable as math")))
                if unread is None and text:
                    unread = unreadable[-1][2]
                continue
            for start, end, whole in unreadable:
                if start <= match.start() and match.end() <= end:
                    # a number out of an expression SymPy cannot read ("-4 0/0") is a
                    # guess, not an answer: the unreadable whole is the answer
                    return whole
            return value, answer, how
    return unread


def extract_with_math_verify(response: str) -> tuple[str, str] | None:
    """The final answer math-verify finds in a response and how, or None."""
    _quiet()
    _fresh_state()
    found = mv_extraction(response)
    return None if found is None else (found[1], found[2])


def math_verify_task(operation: str, *args: str) -> Any:
    """What the worker process serves: ``verify`` (gold, predicted) or ``extract``
    (response); JSON-friendly results."""
    if operation == "verify":
        return list(verify_cleaned(*args))
    if operation == "extract":
        found = extract_with_math_verify(*args)
        return [] if found is None else list(found)  # None is the pool's "gave up"
    raise ValueError(f"unknown math-verify operation {operation!r}")


# --------------------------------------------------------------------------- worker pool

# A worker is a bare interpreter running this loop: it imports only the function it serves
# (and the modules to preload), so it starts fast and never re-runs the user's script.
# Protocol: each stdin line is a JSON list of arguments; each reply is one stdout line,
# ["ok", result] or ["error", text]; the first line out is ["ready", null].
_WORKER_PROGRAM = """
import importlib, json, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
protocol, sys.stdout = sys.stdout, sys.stderr  # a stray print must not break the protocol
def reply(status, value):
    protocol.write(json.dumps([status, value]) + "\\n")
    protocol.flush()
try:
    for module in sys.argv[2:]:
        importlib.import_module(module)
    module_name, _, name = sys.argv[1].partition(":")
    function = getattr(importlib.import_module(module_name), name)
except Exception as exc:
    reply("error", f"{type(exc).__name__}: {exc}")
    sys.exit(0)
reply("ready", None)
for line in sys.stdin:
    try:
        reply("ok", function(*json.loads(line)))
    except Exception as exc:
        reply("error", f"{type(exc).__name__}: {exc}")
"""


class _Worker:
    """One worker process (``python -c``, so no user script is re-run) and its pipes.

    A reader thread moves reply lines into a queue, which gives a timeout that works from
    any thread and on every platform.
    """

    def __init__(self, reference: str, preload: tuple[str, ...], startup_timeout_s: float) -> None:
        if not sys.executable:
            raise ScorerError("cannot start the math worker: sys.executable is unknown")
        env = dict(os.environ)
        # the worker imports this package from where this process found it
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env["PYTHONIOENCODING"] = "utf-8"
        env["PYTHONHASHSEED"] = WORKER_HASH_SEED
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_PROGRAM, reference, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.replies: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(
            target=self._read, name="evalindex-math-worker-reader", daemon=True
        )
        self.reader.start()
        try:
            status, detail = self._next_reply(startup_timeout_s)
        except TimeoutError:
            self.stop()
            raise ScorerError(
                f"the math worker process did not start in {startup_timeout_s:g}s"
            ) from None
        except EOFError:
            self.stop()
            raise ScorerError("the math worker process exited while starting") from None
        if status != "ready":
            self.stop()
            raise ScorerError(f"the math worker process cannot start: {detail}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def _next_reply(self, timeout_s: float) -> tuple[str, Any]:
        try:
            line = self.replies.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            raise EOFError
        status, value = json.loads(line)
        return str(status), value

    def ask(self, args: tuple[Any, ...], timeout_s: float) -> tuple[str, Any] | None:
        """The worker's reply, or None when it did not come within ``timeout_s``.

        Raises EOFError or OSError when the worker is gone.
        """
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(list(args)) + "\n")
        self.process.stdin.flush()
        try:
            return self._next_reply(timeout_s)
        except TimeoutError:
            return None

    def stop(self) -> None:
        """Kill the process and release its pipes and reader thread."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class WorkerPool:
    """Calls ``module:function`` in worker processes, each call bounded by a timeout.

    A worker that overruns is killed (the only way to stop SymPy mid-computation) and
    replaced on demand. Safe to share between threads; at most ``max_workers`` processes.
    """

    def __init__(
        self,
        function: str = VERIFY_FUNCTION,
        *,
        preload: tuple[str, ...] = (),
        max_workers: int = MAX_WORKERS,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.function = function
        self.preload = preload
        self.startup_timeout_s = startup_timeout_s
        self.max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)
        self._idle: list[_Worker] = []
        self._starting: Future[_Worker] | None = None  # a worker started ahead of need
        self._lock = threading.Lock()
        self._closed = False
        self._started = 0

    def prestart(self) -> None:
        """Start one worker in the background unless one is idle or already starting, so
        the first call does not wait for its imports (SymPy takes about a second)."""
        with self._lock:
            if self._closed or self._idle or self._starting is not None:
                return
            starting = self._starting = Future()

        def start() -> None:
            try:
                starting.set_result(self._start_worker())
            except BaseException as exc:  # handed to the call that takes this worker
                starting.set_exception(exc)

        threading.Thread(target=start, name="evalindex-math-worker-start", daemon=True).start()

    def call(self, args: tuple[Any, ...], timeout_s: float) -> Any:
        """``function(*args)`` in a worker; None when it took longer than ``timeout_s``.

        Raises ScorerError when the function raised or the worker died.
        """
        with self._slots:
            worker = self._take()
            try:
                reply = worker.ask(args, timeout_s)
            except (EOFError, OSError):
                worker.stop()
                raise ScorerError("the math worker process died during the check") from None
            except BaseException:
                worker.stop()
                raise
            if reply is None:
                worker.stop()
                return None
            self._give_back(worker)
        status, value = reply
        if status != "ok":
            raise ScorerError(f"math-verify failed: {value}")
        return value

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ScorerError("the math worker pool is closed")
            if self._idle:
                return self._idle.pop()
            starting, self._starting = self._starting, None
        if starting is not None:
            return starting.result()  # the one starting in the background: it is nearer
        return self._start_worker()

    def _start_worker(self) -> _Worker:
        with self._lock:
            self._started += 1
        return _Worker(self.function, self.preload, self.startup_timeout_s)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_workers:
                self._idle.append(worker)
                return
        worker.stop()

    @property
    def idle_workers(self) -> int:
        with self._lock:
            return len(self._idle)

    @property
    def started_workers(self) -> int:
        """How many worker processes this pool has started (or tried to), replacements
        of killed ones included."""
        with self._lock:
            return self._started

    def close(self) -> None:
        """Stop the idle workers; a call under way stops its own worker when it ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            starting, self._starting = self._starting, None
        if starting is not None:
            with contextlib.suppress(Exception):
                idle.append(starting.result())
        for worker in idle:
            worker.stop()


_shared_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def _pool() -> WorkerPool:
    global _shared_pool
    with _pool_lock:
        if _shared_pool is None:
            # SymPy is imported before the worker says it is ready, so the first check's
            # time bound is not spent on imports
            _shared_pool = WorkerPool(VERIFY_FUNCTION, preload=("math_verify",))
            atexit.register(_shared_pool.close)
        return _shared_pool


# --------------------------------------------------------------------------- the scorer


_warmed_up = False


def warm_up() -> None:
    """Start a worker in the background, once per process, so the first symbolic check
    finds SymPy imported; the answers settled cheaply meanwhile pay nothing. The plugin
    calls it when a process has math records to run, and the scorer's first call does
    too. (The price, when every answer of a process turns out cheap: one idle worker,
    about half a CPU second.)"""
    global _warmed_up
    with _pool_lock:
        if _warmed_up:
            return
        _warmed_up = True
    if math_verify_available():
        _pool().prestart()


def final_answer(response: str, timeout_s: float | None) -> tuple[str, str] | str | None:
    """The response's final answer and how it was found; None when there is none; a
    sentence (str) when it could not be looked for."""
    found = extract_final_answer(response)
    if found is not None:
        return found
    if not math_verify_available():
        _warn_missing_once()
        return (
            "no \\boxed{}, '####' or plain number after 'answer is'; reading other answers "
            f"needs math-verify ({INSTALL_HINT})"
        )
    reply = symbolic_call(("extract", response), timeout_s)
    if reply is None:
        return f"answer extraction (math-verify) gave up after {timeout_s:g}s"
    if not reply:
        return None
    answer, how = reply
    return str(answer), str(how)


def math_answer(
    response: str, record: Record, *, timeout_s: float | None = DEFAULT_TIMEOUT_S
) -> Score:
    """1 when the response's final answer is mathematically equal to a target."""
    if timeout_s is not None and (isinstance(timeout_s, bool) or not timeout_s >= 0):
        raise ScorerError(f"args.timeout_s must be seconds (0 or more) or null, got {timeout_s!r}")
    if timeout_s and not _warmed_up:
        warm_up()
    golds = [target_answer(target) for target in target_list(record, "math")]
    if not any(golds):
        raise ScorerError(f"record {record.id!r} has an empty target")
    shown = " / ".join(repr(clip(gold, 40)) for gold in golds)
    found = final_answer(response, timeout_s)
    if found is None:
        return Score(0.0, f"no final answer found in {clip(response)!r}; target {shown}")
    if isinstance(found, str):
        return Score(0.0, f"{found}: {clip(response)!r}; target {shown}")
    predicted, rule = found
    match = Match(False, "")
    for gold in golds:
        match = answers_match(predicted, gold, timeout_s=timeout_s)
        if match.equal:
            break
    return Score(
        1.0 if match.equal else 0.0,
        f"extracted {clip(predicted, 40)!r} ({rule}); target {shown}: {match.how}",
        extracted=predicted,
    )


# math-verify runs in helper processes: score ahead, and start one before the first answer
math_answer.evalindex_traits = ScorerTraits(  # type: ignore[attr-defined]
    scores_outside_interpreter=True, warm_up=warm_up
)
