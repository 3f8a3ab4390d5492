"""String scorers: exact_match, includes, regex.

A list target means "any of these is right". Thinking blocks are removed before a scorer
sees the response, so none of these look for them.
"""

from __future__ import annotations

import re
import unicodedata

from pytest_evalindex.scoring import Score, ScorerError, clip, format_targets, target_list
from pytest_evalindex.testset.records import Record


def normalise_text(
    text: str, *, ignore_case: bool = False, ignore_punctuation: bool = False
) -> str:
    """Strip, collapse runs of whitespace to one space; optionally casefold, drop punctuation.

    Punctuation is every Unicode ``P*`` character, so Chinese full-width marks go too.
    """
    if ignore_punctuation:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if ignore_case:
        text = text.casefold()
    return " ".join(text.split())


def exact_match(
    response: str, record: Record, *, ignore_case: bool = False, ignore_punctuation: bool = False
) -> Score:
    """1 when the normalised response equals the normalised target (any of a list)."""
    targets = target_list(record, "exact_match")
    answer = normalise_text(
        response, ignore_case=ignore_case, ignore_punctuation=ignore_punctuation
    )
    for target in targets:
        wanted = normalise_text(
            target, ignore_case=ignore_case, ignore_punctuation=ignore_punctuation
        )
        if answer == wanted:
            return Score(
                1.0, f"response {clip(answer)!r} equals target {clip(wanted)!r}", extracted=answer
            )
    return Score(
        0.0,
        f"response {clip(answer)!r} does not equal target {format_targets(targets)}",
        extracted=answer,
    )


def includes(response: str, record: Record, *, ignore_case: bool = True) -> Score:
    """1 when the target (any of a list) occurs in the response, whitespace-normalised."""
    targets = target_list(record, "includes")
    haystack = normalise_text(response, ignore_case=ignore_case)
    for target in targets:
        needle = normalise_text(target, ignore_case=ignore_case)
        if needle and needle in haystack:
            return Score(1.0, f"found {clip(target)!r} in the response", extracted=target)
    return Score(0.0, f"{format_targets(targets)} not found in response {clip(response)!r}")


_REGEX_MODES = ("search", "fullmatch")


def regex(
    response: str,
    record: Record,
    *,
    pattern: str | None = None,
    flags: list[str] | str | None = None,
    mode: str = "search",
) -> Score:
    """1 when the pattern matches the response.

    ``pattern`` defaults to the target (any of a list). ``flags`` are ``re`` flag names such
    as ``IGNORECASE`` or ``I``. ``mode`` is ``search`` (anywhere) or ``fullmatch`` (the whole
    response, stripped). The matched text is the score's ``extracted``.
    """
    if mode not in _REGEX_MODES:
        raise ScorerError(f"regex mode must be one of {', '.join(_REGEX_MODES)}, not {mode!r}")
    patterns = [pattern] if pattern is not None else target_list(record, "regex")
    compiled = [_compile(p, _parse_flags(flags)) for p in patterns]
    text = response.strip() if mode == "fullmatch" else response
    for source, expression in zip(patterns, compiled, strict=True):
        match = expression.fullmatch(text) if mode == "fullmatch" else expression.search(text)
        if match is not None:
            return Score(
                1.0,
                f"pattern {clip(source)!r} matched {clip(match.group(0))!r}",
                extracted=match.group(0),
            )
    shown = format_targets(patterns)
    verb = "fully match" if mode == "fullmatch" else "match"
    return Score(0.0, f"pattern {shown} did not {verb} response {clip(response)!r}")


def _parse_flags(flags: list[str] | str | None) -> re.RegexFlag:
    names = [flags] if isinstance(flags, str) else list(flags or [])
    combined = re.RegexFlag(0)
    for name in names:
        flag = getattr(re.RegexFlag, str(name).upper(), None)
        if not isinstance(flag, re.RegexFlag):
            raise ScorerError(
                f"unknown regex flag {name!r}; use names like IGNORECASE, MULTILINE, DOTALL"
            )
        combined |= flag
    return combined


def _compile(pattern: str, flags: re.RegexFlag) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except (re.error, TypeError) as exc:
        raise ScorerError(f"invalid regular expression {pattern!r}: {exc}") from exc
