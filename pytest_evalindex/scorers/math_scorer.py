"""Math answers: extract the final answer, compare cheaply, confirm symbolically.

Registered as the scorer ``math``. (The module is not called ``math.py``: importing a
submodule sets it as an attribute of its package, and ``pytest_evalindex.scorers`` itself
uses the standard library's ``math`` under that name.)

The final answer of a response is, in order:

1. the contents of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces allowed;
2. what follows the last ``answer is`` / ``answer:`` / ``答案是`` on its line (or the next
   non-empty line when nothing follows on it);
3. the last number in the text.

A target is its own last ``\\boxed{}`` when it has one, else what follows its last ``####``,
else the whole target (MATH-500 and AIME answers are given bare).

Comparison, cheapest first:

- both answers are *cleaned*: ``$`` and ``\\(...\\)`` delimiters, ``\\left``/``\\right``,
  LaTeX spacing, ``\\displaystyle``, a trailing ``.``, thousands separators of a lone
  number, ``^{\\circ}``/``°``, ``\\%``/``%``, ``\\$`` and unit words (``\\text{ cm}``,
  ``5 inches``) go; ``\\dfrac``/``\\tfrac`` become ``\\frac``, ``\\frac12`` becomes
  ``\\frac{1}{2}``, ``\\sqrt2`` becomes ``\\sqrt{2}``, other ``\\text{...}`` is unwrapped;
  a leading ``x =`` is dropped from the prediction when the target has no ``=``;
- equal once spaces are removed, or both exact numbers (``0.5``, ``1/2``, ``\\frac{1}{2}``)
  of the same value: equal, without further work;
- otherwise the cleaned answers go to ``math_verify`` (PyPI ``math-verify``, the optional
  extra ``math``), which parses them with SymPy and tests equivalence: ``3x+2`` and
  ``2+3x``, ``\\sqrt{2}/2`` and ``\\frac{\\sqrt{2}}{2}``, intervals, sets, equations.

The cheap step only ever says "equal" where ``math_verify`` would too, so it changes the
cost, never the result (``shortcut=False`` skips it; the tests compare both ways).
A target written as text (``\\text{Evelyn}``) is compared as text, case-insensitively:
SymPy would read a word as a product of symbols.

Bounding the symbolic check: math_verify's own timeout uses ``signal.alarm``, which only
works in the main thread of the main interpreter, so its timeouts are switched off and the
check runs instead in a small pool of worker processes (plain ``python -c`` children
talking JSON lines over pipes, so no user script is re-imported; at most ``MAX_WORKERS``
a process, SymPy imported before the first call; the scorer's first call in a process
starts one in the background, while the answers settled cheaply go on). A call that
takes longer than ``timeout_s`` (default 5 s) kills its worker, scores 0 and says so in
the explanation; the next call starts a fresh worker. This works from any thread and
under pytest-xdist.

Measured on a 2-core machine: the cheap path costs 25-60 µs a call; a symbolic check
1-7 ms for numbers and expressions and about 40 ms for intervals, plus 0.08 ms for the
round trip to the worker; starting a worker (Python, then SymPy) about 1 s, once per
process, before the first call's bound starts. ``timeout_s: null`` runs the check in the
calling thread instead, without any bound.

Without math-verify installed the comparison is the cheap one alone, and one warning per
process says how to install it.
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

from pytest_evalindex.records import Record
from pytest_evalindex.scorers import Score, ScorerError, clip, target_list
from pytest_evalindex.scorers.numeric import parse_numbers

INSTALL_HINT = "pip install 'pytest-evalindex[math]'"
DEFAULT_TIMEOUT_S = 5.0
MAX_WORKERS = 2  # worker processes per test process, started only when calls overlap
STARTUP_TIMEOUT_S = 120.0  # a cold start imports SymPy; slow machines need a while
VERIFY_FUNCTION = f"{__name__}:verify_in_process"


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


def extract_final_answer(text: str) -> tuple[str, str] | None:
    """The final answer of a response and the rule that found it, or None."""
    boxed = boxed_contents(text)
    if boxed:
        return boxed[-1].strip(), "boxed"
    bare = _BOX_BARE.findall(text)
    if bare:
        return bare[-1], "boxed"
    for phrase in reversed(list(_ANSWER_PHRASE.finditer(text))):
        rest = text[phrase.end() :]
        lines = [line for line in rest.split("\n") if line.strip(" \t*_")]
        first_line = rest.split("\n", 1)[0]
        candidate = first_line if first_line.strip(" \t*_") else (lines[0] if lines else "")
        candidate = candidate.strip().strip("*_").strip()
        if candidate:
            return candidate, "answer-is"
    numbers = parse_numbers(text)
    if numbers:
        return numbers[-1][1], "last-number"
    return None


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
_TEXT_UNIT = re.compile(_TEXT_COMMAND + r"\{\s*(?:" + _UNIT_WORDS + r"|[a-z]{1,2})\s*\}")
_TEXT_WRAPPED = re.compile(_TEXT_COMMAND + r"\{([^{}]*)\}")
_TRAILING_UNIT = re.compile(r"(?<=[\d}])\s*(?:" + _UNIT_WORDS + r")\s*$")
_LONE_GROUPED_NUMBER = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*(?=\S)")
_TEXT_ANSWER = re.compile(r"^" + _TEXT_COMMAND + r"\{\s*([A-Za-z][A-Za-z .'-]*[A-Za-z.])\s*\}$")


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
    s = re.sub(r"\\[,;:! ]|\\q?quad(?![A-Za-z])", " ", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s).replace("°", "")
    s = s.replace("\\%", "").replace("%", "")
    s = _TEXT_UNIT.sub("", s)
    s = _TEXT_WRAPPED.sub(r"\1", s)
    s = _TRAILING_UNIT.sub("", s)
    s = " ".join(s.split()).rstrip(".。").strip()
    if _LONE_GROUPED_NUMBER.match(s):
        s = s.replace(",", "")
    return s


def comparison_key(cleaned: str) -> str:
    """A cleaned answer without spaces, keeping ``\\pi r`` apart from ``\\pir``."""
    s = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", r"\1{}", cleaned)
    return re.sub(r"\s+", "", s)


_DECIMAL = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")
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


def answers_match(
    predicted: str,
    gold: str,
    *,
    shortcut: bool = True,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> Match:
    """Compare a predicted answer with the gold one (both already extracted).

    ``shortcut=False`` skips the cheap comparison and asks math-verify directly (when it is
    installed); the result is the same, only slower. ``timeout_s`` bounds the symbolic
    check (None or 0: no bound, run in the calling thread).
    """
    text_gold = _TEXT_ANSWER.match(gold.strip())
    if text_gold is not None:
        wanted = " ".join(text_gold.group(1).split()).rstrip(".").lower()
        got = " ".join(clean_answer(predicted).split()).rstrip(".").lower()
        return Match(got == wanted, "compared as text")
    gold_clean = clean_answer(gold)
    predicted_clean = clean_answer(predicted)
    if "=" not in gold_clean:
        predicted_clean = _ASSIGNMENT.sub("", predicted_clean)
    if not predicted_clean:
        return Match(False, "empty answer")
    if shortcut:
        gold_key, predicted_key = comparison_key(gold_clean), comparison_key(predicted_clean)
        if gold_key == predicted_key:
            return Match(True, "same after normalisation")
        gold_value, predicted_value = exact_value(gold_key), exact_value(predicted_key)
        if gold_value is not None and gold_value == predicted_value:
            return Match(True, "same number")
    if not math_verify_available():
        _warn_missing_once()
        if not shortcut:  # without math-verify the cheap comparison is all there is
            return answers_match(predicted, gold, shortcut=True, timeout_s=timeout_s)
        return Match(False, f"differs after normalisation (no symbolic check: {INSTALL_HINT})")
    if not timeout_s:
        equal = verify_in_process(gold_clean, predicted_clean)
    else:
        result = _pool().call((gold_clean, predicted_clean), timeout_s)
        if result is None:
            return Match(False, f"symbolic check gave up after {timeout_s:g}s")
        equal = bool(result)
    return Match(equal, "equivalent (math-verify)" if equal else "not equivalent (math-verify)")


def math_verify_available() -> bool:
    try:
        return importlib.util.find_spec("math_verify") is not None
    except (ImportError, ValueError):
        return False


_warned_missing = False
_warn_lock = threading.Lock()


def _warn_missing_once() -> None:
    global _warned_missing
    with _warn_lock:
        if _warned_missing:
            return
        _warned_missing = True
    warnings.warn(
        "math-verify is not installed, so the math scorer compares normalised answers only "
        f"and misses equivalent forms such as 3x+2 and 2+3x; {INSTALL_HINT}",
        MathVerifyMissingWarning,
        stacklevel=3,
    )


class _QuietTimeoutNotice(logging.Filter):
    """Drop math-verify's notice that its own timeout is off: this module bounds the call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


_quieted = False


def verify_in_process(gold: str, predicted: str) -> bool:
    """math-verify's verdict on two cleaned answers, in this thread, without a time bound."""
    global _quieted
    import math_verify

    if not _quieted:
        for name in ("math_verify.parser", "math_verify.grader", "math_verify.utils"):
            logging.getLogger(name).addFilter(_QuietTimeoutNotice())
        _quieted = True
    gold_parsed = math_verify.parse(f"${gold}$", parsing_timeout=None)
    predicted_parsed = math_verify.parse(f"${predicted}$", parsing_timeout=None)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(math_verify.verify(gold_parsed, predicted_parsed, timeout_seconds=None))


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

    def prestart(self) -> None:
        """Start one worker in the background unless one is idle or already starting, so
        the first call does not wait for its imports (SymPy takes about a second)."""
        with self._lock:
            if self._closed or self._idle or self._starting is not None:
                return
            starting = self._starting = Future()

        def start() -> None:
            try:
                starting.set_result(_Worker(self.function, self.preload, self.startup_timeout_s))
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
        # a stand-in pool (tests replace _pool) need not know how to start ahead
        prestart = getattr(_pool(), "prestart", None)
        if prestart is not None:
            prestart()


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
    found = extract_final_answer(response)
    if found is None:
        return Score(0.0, f"no final answer found in {clip(response)!r}; target {shown}")
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
