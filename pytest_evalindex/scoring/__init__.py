"""Scorers: what a score is, the registry of built-in scorers, and loading custom ones.

A scorer is a plain function ``scorer(response: str, record: Record, **args) -> Score``; the
``args`` come from the record's ``ScorerRef.args``. Built-in scorers live one per module in
this package and are imported only when first resolved, so a heavy scorer costs nothing to
runs that do not use it. Adding one is one line in ``BUILTIN_SCORERS``. Another distribution
offers a scorer through an entry point in the group ``pytest_evalindex.scorers`` (see
``pytest_evalindex.entry_points``); a built-in name wins over it.

A custom scorer is named ``package.module:function``. It may return a ``Score``, a number or
bool, a ``(value, explanation)`` tuple or a dict with ``score``/``value`` and
``explanation``; ``coerce_score`` turns each into a ``Score``.

Two error types, on purpose:

- ``EvalIndexError`` (bad input): an unknown scorer name, a reference that does not import,
  an argument the scorer does not accept. Raised by ``resolve_scorer``, before any request.
- ``ScorerError`` (this sample cannot be scored): a bad return value, a record without a
  target, a scorer that raised. It marks one sample as *error* and the run goes on.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

# name -> "module:function", the module relative to this package
BUILTIN_SCORERS: dict[str, str] = {
    "exact_match": "basic:exact_match",
    "includes": "basic:includes",
    "regex": "basic:regex",
    "choice": "choice:choice",
    "numeric": "numeric:numeric",
    "math": "math_scorer:math_answer",
    "json": "json_scorer:json_answer",
    "judge": "judge:judge",
    "ifeval": "ifeval:ifeval",
    "code": "code:code",
}


@dataclass
class Score:
    """One graded answer."""

    value: float  # in [0, 1]; what the index averages
    explanation: str  # short and human: what was compared with what
    extracted: str | None = None  # the answer taken from the response, if any
    metrics: dict[str, float] = field(default_factory=dict)  # secondary metrics

    def to_dict(self) -> dict[str, Any]:
        """Builtins only, so the result can travel between xdist processes."""
        return {
            "score": float(self.value),
            "explanation": str(self.explanation),
            "extracted": self.extracted,
            "metrics": {str(k): float(v) for k, v in self.metrics.items()},
        }


@dataclass(frozen=True)
class ScorerTraits:
    """What the run needs to know about a scorer, declared by the scorer itself: as
    ``function.evalindex_traits = ScorerTraits(...)``, for built-in and custom scorers alike.

    ``scores_outside_interpreter``: its heavy part waits on something outside this Python
    process (a sandbox, a judge endpoint, a helper process), so answers are scored ahead, in
    background threads, the moment they arrive. ``warm_up``: called once per process before
    the first answer, to start such helpers early. ``waits_on_requests``: what it waits on is
    an HTTP endpoint (the judge): its answers are scored ahead in as many threads as the
    process may have requests in flight, each waiting on the run's event loop, instead of
    one thread a core."""

    scores_outside_interpreter: bool = False
    warm_up: Callable[[], None] | None = None
    waits_on_requests: bool = False


PLAIN_SCORER = ScorerTraits()


class ScorerError(Exception):
    """A sample that cannot be scored; it is reported as an error, not as bad input."""


def known_scorers() -> list[str]:
    """The built-in scorer names, sorted."""
    return sorted(BUILTIN_SCORERS)


class BoundScorer:
    """A scorer function with its arguments bound; call it as ``bound(response, record)``."""

    def __init__(self, name: str, function: Callable[..., Any], args: Mapping[str, Any]):
        self.name = name
        self.function = function
        self.args = dict(args)

    @property
    def traits(self) -> ScorerTraits:
        traits = getattr(self.function, "evalindex_traits", PLAIN_SCORER)
        return traits if isinstance(traits, ScorerTraits) else PLAIN_SCORER

    def __call__(self, response: str, record: Record) -> Score:
        return run_scorer(self._call_function, response, record, name=self.name)

    def _call_function(self, response: str, record: Record) -> Any:
        return self.function(response, record, **self.args)

    def __repr__(self) -> str:
        return f"BoundScorer({self.name!r}, args={self.args!r})"


def resolve_scorer(
    ref: ScorerRef,
    *,
    file: str | Path | None = None,
    field: str = "scorer",
    context: Mapping[str, Any] | None = None,
) -> BoundScorer:
    """Find the scorer ``ref`` names and bind its arguments.

    ``context`` holds values of the run that a scorer may ask for by name (``judge_model``):
    each keyword-only parameter of the function that ``ref.args`` does not set is bound to
    the context value of the same name. A required one missing from both is an error here,
    before any request is made.

    Raises EvalIndexError (naming ``file`` and ``field`` when given) for an unknown built-in
    name, a custom reference that cannot be imported, or arguments the function rejects.
    """
    name = ref.name.strip()
    if ":" in name:
        function = _import_reference(name, file=file, field=f"{field}.name")
    else:
        location = BUILTIN_SCORERS.get(name)
        if location is not None:
            module_name, function_name = location.split(":")
            module = importlib.import_module(f"{__name__}.{module_name}")
            function = getattr(module, function_name)
        else:
            function = _installed_scorer(name, file=file, field=f"{field}.name")
    from_context = _context_arguments(name, function, ref.args, context, file=file, field=field)
    args = {**from_context, **ref.args}
    _check_arguments(name, function, args, file=file, field=f"{field}.args")
    return BoundScorer(name, function, args)


# what to tell a user whose scorer needs a run value the run does not have
_CONTEXT_HINTS: dict[str, str] = {
    "judge_model": "the index needs a judge model: add `judge:` to the spec or pass "
    "--index-judge-model and --index-judge-base-url",
}


def _context_arguments(
    name: str,
    function: Callable[..., Any],
    args: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    *,
    file: str | Path | None,
    field: str,
) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` that ``context`` fills (``args`` win)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    bound: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.kind is not parameter.KEYWORD_ONLY or parameter.name in args:
            continue
        if context is not None and parameter.name in context:
            bound[parameter.name] = context[parameter.name]
        elif parameter.default is parameter.empty and parameter.name in _CONTEXT_HINTS:
            hint = _CONTEXT_HINTS[parameter.name]
            raise EvalIndexError(f"scorer {name!r} cannot run: {hint}", file=file, field=field)
    return bound


def _installed_scorer(name: str, *, file: str | Path | None, field: str) -> Callable[..., Any]:
    """A scorer of the ``pytest_evalindex.scorers`` entry points (built-in names win)."""
    from pytest_evalindex import entry_points

    try:
        function: Callable[..., Any] | None = entry_points.load(
            entry_points.SCORERS,
            name,
            builtins=BUILTIN_SCORERS,
            accept=callable,
            expected="a function",
        )
    except EvalIndexError as exc:
        raise EvalIndexError(exc.message, file=file, field=field) from exc
    if function is None:
        raise EvalIndexError(_unknown_name_message(name), file=file, field=field)
    return function


def _unknown_name_message(name: str) -> str:
    from pytest_evalindex import entry_points

    known = known_scorers()
    installed = entry_points.installed_names(entry_points.SCORERS, BUILTIN_SCORERS)
    message = f"unknown scorer {name!r}"
    close = difflib.get_close_matches(name, known + installed, n=3, cutoff=0.6)
    if close:
        message += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    message += f"; built-in scorers are {', '.join(known)}"
    if installed:
        message += f"; installed distributions offer {', '.join(installed)}"
    return message + ", or name your own function as 'package.module:function'"


def _import_reference(reference: str, *, file: str | Path | None, field: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise EvalIndexError(
            f"scorer reference {reference!r} must look like 'package.module:function'",
            file=file,
            field=field,
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure while importing user code is bad input
        raise EvalIndexError(
            f"cannot import module {module_name!r} for scorer {reference!r}: "
            f"{type(exc).__name__}: {exc}",
            file=file,
            field=field,
        ) from exc
    function = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise EvalIndexError(
                f"module {module_name!r} has no attribute {attribute!r} (scorer {reference!r})",
                file=file,
                field=field,
            )
        function = getattr(function, part)
    if not callable(function):
        raise EvalIndexError(
            f"scorer {reference!r} is a {type(function).__name__}, not a function",
            file=file,
            field=field,
        )
    return function


def _check_arguments(
    name: str,
    function: Callable[..., Any],
    args: Mapping[str, Any],
    *,
    file: str | Path | None,
    field: str,
) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some callables cannot be introspected; trust them
        return
    try:
        signature.bind("", None, **args)
    except TypeError as exc:
        accepted = [
            p.name
            for p in list(signature.parameters.values())[2:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        hint = f"; it accepts {', '.join(accepted)}" if accepted else "; it takes no arguments"
        raise EvalIndexError(
            f"scorer {name!r} cannot take arguments {sorted(args)}: {exc}{hint}",
            file=file,
            field=field,
        ) from exc


def run_scorer(
    scorer: Callable[[str, Record], Any],
    response: str,
    record: Record,
    *,
    name: str | None = None,
) -> Score:
    """Call a scorer and return a valid Score; any failure becomes ScorerError."""
    label = name or getattr(scorer, "name", None) or getattr(scorer, "__name__", repr(scorer))
    try:
        result = scorer(response, record)
    except ScorerError:
        raise
    except Exception as exc:  # a scorer bug spoils one sample, not the run
        raise ScorerError(f"scorer {label!r} raised {type(exc).__name__}: {exc}") from exc
    return coerce_score(result, scorer_name=str(label))


def coerce_score(result: Any, *, scorer_name: str | None = None) -> Score:
    """Turn what a scorer returned into a Score, or raise ScorerError saying what was wrong."""
    who = f"scorer {scorer_name!r}" if scorer_name else "scorer"
    if isinstance(result, Score):
        value = _check_value(result.value, who)
        return Score(
            value=value,
            explanation=_check_explanation(result.explanation, who),
            extracted=None if result.extracted is None else str(result.extracted),
            metrics=_check_metrics(result.metrics, who),
        )
    if isinstance(result, tuple):
        if len(result) != 2:
            raise ScorerError(
                f"{who} returned a tuple of {len(result)} items; expected (value, explanation)"
            )
        value, explanation = result
        return Score(
            value=_check_value(value, who), explanation=_check_explanation(explanation, who)
        )
    if isinstance(result, Mapping):
        keys = [k for k in ("score", "value") if k in result]
        if len(keys) != 1:
            raise ScorerError(
                f"{who} returned a dict with keys {sorted(map(str, result))}; "
                "expected exactly one of 'score' or 'value'"
            )
        extracted = result.get("extracted")
        return Score(
            value=_check_value(result[keys[0]], who),
            explanation=_check_explanation(result.get("explanation", ""), who),
            extracted=None if extracted is None else str(extracted),
            metrics=_check_metrics(result.get("metrics", {}), who),
        )
    if isinstance(result, (bool, numbers.Real)):
        return Score(value=_check_value(result, who), explanation="")
    raise ScorerError(
        f"{who} returned {type(result).__name__} {_clip_repr(result)}; expected a Score, "
        "a number in [0, 1], a bool, a (value, explanation) tuple or a dict with 'score'"
    )


def _check_value(value: Any, who: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, numbers.Real):
        raise ScorerError(
            f"{who} returned score {_clip_repr(value)} of type {type(value).__name__}; "
            "expected a number in [0, 1]"
        )
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ScorerError(f"{who} returned score {number!r}; a score must lie in [0, 1]")
    return number


def _check_explanation(explanation: Any, who: str) -> str:
    if not isinstance(explanation, str):
        raise ScorerError(
            f"{who} returned explanation of type {type(explanation).__name__}; expected str"
        )
    return explanation


def _check_metrics(metrics: Any, who: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise ScorerError(f"{who} returned metrics of type {type(metrics).__name__}; expected dict")
    checked: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(value, (bool, numbers.Real)) or math.isnan(float(value)):
            raise ScorerError(
                f"{who} returned metric {key!r} = {_clip_repr(value)}; expected a number"
            )
        checked[str(key)] = float(value)
    return checked


def _clip_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# helpers shared by the scorer modules


def clip(text: str, limit: int = 60) -> str:
    """Shorten text for an explanation: one line, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def target_list(record: Record, scorer_name: str) -> list[str]:
    """The record's acceptable targets as a list; ScorerError if it has none."""
    target = record.target
    if target is None or (isinstance(target, list) and not target):
        raise ScorerError(f"record {record.id!r} has no target for scorer {scorer_name!r}")
    return [target] if isinstance(target, str) else list(target)


def format_targets(targets: list[str]) -> str:
    """``'Paris'`` for one target, ``any of ['Paris', 'paris']`` for several."""
    if len(targets) == 1:
        return repr(clip(targets[0]))
    return "any of [" + ", ".join(repr(clip(t, 30)) for t in targets) + "]"
