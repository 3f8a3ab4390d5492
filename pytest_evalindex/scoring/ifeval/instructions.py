"""The 25 IFEval instruction checkers, keyed by the release's instruction ids.

Each checker reads a response and the instruction's own arguments (one ``kwargs`` entry of
the IFEval row) and returns a ``Verdict``: followed or not, and what was measured. The
rules follow Google's reference implementation (``instruction_following_eval``), quirks
included, because published IFEval numbers come from it: keyword counts are
case-insensitive substring counts, ``---`` lines count as bullets, a ``Section 3`` in
running text opens a section, and so on. Where the reference was ambiguous the choice made
here is noted at the checker.

``bind_instruction(id, kwargs)`` checks the arguments once (``None`` values, which the
Hugging Face copy uses for the keys an instruction does not take, are dropped) and returns
an object whose ``check(response)`` gives the verdict. Unknown ids and missing or malformed
arguments raise ``ScorerError``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_evalindex.scoring import ScorerError, clip
from pytest_evalindex.scoring.ifeval import text

LESS_THAN = "less than"
AT_LEAST = "at least"
RELATIONS = (LESS_THAN, AT_LEAST)


@dataclass(frozen=True)
class Verdict:
    followed: bool
    detail: str  # what was measured, for the explanation of a failure


# ------------------------------------------------------------------------ argument readers
# Each takes an argument's raw value and returns the checked value, or raises ValueError
# saying what was expected; ``bind_instruction`` turns that into a ScorerError.


def count(value: Any) -> int:
    """A whole number, 0 or more (an integral float such as 3.0 from a CSV is accepted)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def position(value: Any) -> int:
    number = count(value)
    if number < 1:
        raise ValueError("expected a position counted from 1")
    return number


def relation(value: Any) -> str:
    normalised = " ".join(value.lower().split()) if isinstance(value, str) else None
    if normalised not in RELATIONS:
        raise ValueError(f"expected {LESS_THAN!r} or {AT_LEAST!r}")
    return normalised


def phrase(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def phrases(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a list of strings")
    return [phrase(item) for item in value]


def letter(value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) != 1:
        raise ValueError("expected a single character")
    return value.strip().lower()


# ------------------------------------------------------------------------------ registry

Reader = Callable[[Any], Any]


@dataclass(frozen=True)
class Instruction:
    id: str
    checker: Callable[..., Verdict]
    arguments: dict[str, Reader]  # every argument is required


INSTRUCTIONS: dict[str, Instruction] = {}


def instruction(
    instruction_id: str, **arguments: Reader
) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Register a checker under ``instruction_id`` with readers for its arguments."""

    def register(checker: Callable[..., Verdict]) -> Callable[..., Verdict]:
        INSTRUCTIONS[instruction_id] = Instruction(instruction_id, checker, dict(arguments))
        return checker

    return register


@dataclass(frozen=True)
class BoundInstruction:
    """One instruction of a prompt with its arguments checked; ``check`` grades a response."""

    id: str
    check: Callable[[str], Verdict]


def bind_instruction(instruction_id: str, kwargs: Mapping[str, Any] | None) -> BoundInstruction:
    """The instruction ``instruction_id`` with ``kwargs`` checked; ScorerError if unusable."""
    found = INSTRUCTIONS.get(instruction_id)
    if found is None:
        message = f"unknown IFEval instruction id {instruction_id!r}"
        close = difflib.get_close_matches(instruction_id, INSTRUCTIONS, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        raise ScorerError(
            f"{message}; the scorer knows the {len(INSTRUCTIONS)} ids of the IFEval release"
        )
    given = {key: value for key, value in (kwargs or {}).items() if value is not None}
    unexpected = sorted(set(given) - set(found.arguments))
    if unexpected:
        raise ScorerError(
            f"instruction {instruction_id!r} takes {_names(found.arguments)}, "
            f"not {', '.join(unexpected)}"
        )
    values: dict[str, Any] = {}
    for name, read in found.arguments.items():
        if name not in given:
            raise ScorerError(
                f"instruction {instruction_id!r} needs argument {name!r} "
                f"(it takes {_names(found.arguments)})"
            )
        try:
            values[name] = read(given[name])
        except ValueError as exc:
            raise ScorerError(
                f"instruction {instruction_id!r}: argument {name!r} is {given[name]!r}; {exc}"
            ) from None
    return BoundInstruction(instruction_id, functools.partial(found.checker, **values))


def _names(arguments: Mapping[str, Reader]) -> str:
    return ", ".join(arguments) if arguments else "no arguments"


def _meets(actual: int, wanted_relation: str, threshold: int) -> bool:
    return actual < threshold if wanted_relation == LESS_THAN else actual >= threshold


def _measured(actual: int, noun: str, wanted_relation: str, threshold: int) -> Verdict:
    """A count compared with a threshold; ``noun`` as for ``_counted``."""
    return Verdict(
        _meets(actual, wanted_relation, threshold),
        f"{_counted(actual, noun)}, wanted {wanted_relation} {threshold}",
    )


def _counted(number: int, noun: str) -> str:
    """``1 word``, ``3 words``: ``{s}`` in ``noun`` marks where a plural takes its s."""
    return f"{number} {noun.replace('{s}', '' if number == 1 else 's')}"


# ------------------------------------------------------------------------------ keywords


@instruction("keywords:existence", keywords=phrases)
def keyword_existence(response: str, *, keywords: list[str]) -> Verdict:
    # case-insensitive and anywhere, inside longer words too
    missing = [k for k in keywords if not re.search(re.escape(k), response, re.IGNORECASE)]
    if missing:
        return Verdict(False, f"missing {', '.join(map(repr, missing))}")
    return Verdict(True, "all keywords present")


@instruction("keywords:frequency", keyword=phrase, frequency=count, relation=relation)
def keyword_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> Verdict:
    found = len(re.findall(re.escape(keyword), response, re.IGNORECASE))
    return _measured(found, f"× {keyword!r}", relation, frequency)


@instruction("keywords:forbidden_words", forbidden_words=phrases)
def forbidden_words(response: str, *, forbidden_words: list[str]) -> Verdict:
    # whole words only, case-insensitive
    used = [
        word
        for word in forbidden_words
        if re.search(rf"\b{re.escape(word)}\b", response, re.IGNORECASE)
    ]
    if used:
        return Verdict(False, f"uses {', '.join(map(repr, used))}")
    return Verdict(True, "no forbidden word")


@instruction("keywords:letter_frequency", letter=letter, let_frequency=count, let_relation=relation)
def letter_frequency(
    response: str, *, letter: str, let_frequency: int, let_relation: str
) -> Verdict:
    found = response.lower().count(letter)
    return _measured(found, f"× {letter!r}", let_relation, let_frequency)


# ------------------------------------------------------------------------------ language


@instruction("language:response_language", language=phrase)
def response_language(response: str, *, language: str) -> Verdict:
    detected = text.detect_language(response)
    if detected is None:
        # the reference counts text without any letters to judge by as followed
        return Verdict(True, "language undetectable")
    wanted = language.lower()
    # langdetect names Chinese zh-cn / zh-tw; a wanted "zh" accepts either
    matches = detected == wanted or ("-" not in wanted and detected.split("-")[0] == wanted)
    return Verdict(matches, f"detected {detected!r}, wanted {language!r}")


# ---------------------------------------------------------------------- length constraints


@instruction("length_constraints:number_sentences", num_sentences=count, relation=relation)
def number_sentences(response: str, *, num_sentences: int, relation: str) -> Verdict:
    return _measured(text.count_sentences(response), "sentence{s}", relation, num_sentences)


@instruction("length_constraints:number_words", num_words=count, relation=relation)
def number_words(response: str, *, num_words: int, relation: str) -> Verdict:
    return _measured(text.count_words(response), "word{s}", relation, num_words)


# paragraphs divided by a markdown rule of three asterisks, with one optional space around
_DIVIDER = re.compile(r"\s?\*\*\*\s?")


@instruction("length_constraints:number_paragraphs", num_paragraphs=count)
def number_paragraphs(response: str, *, num_paragraphs: int) -> Verdict:
    pieces = _DIVIDER.split(response)
    inner = pieces[1:-1]
    if any(not piece.strip() for piece in inner):
        return Verdict(False, "an empty paragraph between two *** dividers")
    # nothing before the first divider or after the last one is not a paragraph
    found = len(inner) + sum(1 for piece in {0, len(pieces) - 1} if pieces[piece].strip())
    return Verdict(
        found == num_paragraphs, f"{_counted(found, 'paragraph{s}')}, wanted {num_paragraphs}"
    )


# a first word ends at the first of these characters
_WORD_END = frozenset(".,?!'\"")


@instruction(
    "length_constraints:nth_paragraph_first_word",
    num_paragraphs=count,
    nth_paragraph=position,
    first_word=phrase,
)
def nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> Verdict:
    # paragraphs are split at every "\n\n"; blank pieces are not counted, but they keep
    # their place when the n-th paragraph is looked up, as in the reference
    pieces = response.split("\n\n")
    found = sum(1 for piece in pieces if piece.strip())
    if nth_paragraph > found or not pieces[nth_paragraph - 1].strip():
        return Verdict(False, f"{_counted(found, 'paragraph{s}')}, so no paragraph {nth_paragraph}")
    first = pieces[nth_paragraph - 1].split()[0].lstrip("'").lstrip('"')
    word = ""
    for character in first:
        if character in _WORD_END:
            break
        word += character.lower()
    wanted = first_word.lower()
    followed = found == num_paragraphs and word == wanted
    return Verdict(
        followed,
        f"{_counted(found, 'paragraph{s}')} (wanted {num_paragraphs}); "
        f"paragraph {nth_paragraph} starts with {word!r} (wanted {wanted!r})",
    )


# ---------------------------------------------------------------------- detectable content

_PLACEHOLDER = re.compile(r"\[.*?\]")


@instruction("detectable_content:number_placeholders", num_placeholders=count)
def number_placeholders(response: str, *, num_placeholders: int) -> Verdict:
    found = len(_PLACEHOLDER.findall(response))
    return _measured(found, "placeholder{s} in [brackets]", AT_LEAST, num_placeholders)


@instruction("detectable_content:postscript", postscript_marker=phrase)
def postscript(response: str, *, postscript_marker: str) -> Verdict:
    # anywhere in the text, case-insensitive; the two usual markers allow a space after
    # each period ("P. S.", "P.P.S" or "p. p. s")
    if postscript_marker == "P.P.S":
        pattern = r"p\.\s?p\.\s?s"
    elif postscript_marker == "P.S.":
        pattern = r"p\.\s?s\."
    else:
        pattern = re.escape(postscript_marker.lower())
    found = re.search(pattern, response.lower()) is not None
    return Verdict(found, f"postscript {postscript_marker!r} {'found' if found else 'missing'}")


# ----------------------------------------------------------------------- detectable format

# a line starting with "*" (not "**") or with "-": so "---" rules count too
_STAR_BULLET = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", re.MULTILINE)


@instruction("detectable_format:number_bullet_lists", num_bullets=count)
def number_bullet_lists(response: str, *, num_bullets: int) -> Verdict:
    found = len(_STAR_BULLET.findall(response)) + len(_DASH_BULLET.findall(response))
    return Verdict(
        found == num_bullets, f"{_counted(found, 'bullet point{s}')}, wanted exactly {num_bullets}"
    )


CONSTRAINED_ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@instruction("detectable_format:constrained_response")
def constrained_response(response: str) -> Verdict:
    # contained anywhere, case-sensitive
    for answer in CONSTRAINED_ANSWERS:
        if answer in response:
            return Verdict(True, f"contains {answer!r}")
    return Verdict(False, "none of " + ", ".join(map(repr, CONSTRAINED_ANSWERS)))


_SINGLE_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")


@instruction("detectable_format:number_highlighted_sections", num_highlights=count)
def number_highlighted_sections(response: str, *, num_highlights: int) -> Verdict:
    # *text* and **text** on one line, not blank inside
    found = sum(1 for match in _SINGLE_HIGHLIGHT.findall(response) if match.strip("*").strip())
    found += sum(1 for match in _DOUBLE_HIGHLIGHT.findall(response) if match[2:-2].strip())
    return _measured(found, "highlighted section{s}", AT_LEAST, num_highlights)


@instruction("detectable_format:multiple_sections", section_spliter=phrase, num_sections=count)
def multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> Verdict:
    # every "<spliter> <number>" opens a section, case-sensitive, wherever it stands
    marker = re.compile(rf"\s?{re.escape(section_spliter)}\s?\d+\s?")
    found = len(marker.findall(response))
    return _measured(
        found, "section{s} marked " + repr(f"{section_spliter} N"), AT_LEAST, num_sections
    )


_JSON_FENCE_OPENINGS = ("```json", "```Json", "```JSON", "```")


@instruction("detectable_format:json_format")
def json_format(response: str) -> Verdict:
    body = response.strip()
    # markdown fences may wrap it; the openings are removed one after the other
    for opening in _JSON_FENCE_OPENINGS:
        body = body.removeprefix(opening)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except ValueError as exc:
        return Verdict(False, f"not JSON: {exc}")
    return Verdict(True, "valid JSON")


_TITLE = re.compile(r"<<[^\n]+>>")


@instruction("detectable_format:title")
def title(response: str) -> Verdict:
    for match in _TITLE.findall(response):
        if match.lstrip("<").rstrip(">").strip():
            return Verdict(True, f"title {clip(match, 40)}")
    return Verdict(False, "no <<title>>")


# ----------------------------------------------------------------------------- combination

_RESPONSE_SEPARATOR = "******"


@instruction("combination:two_responses")
def two_responses(response: str) -> Verdict:
    pieces = response.split(_RESPONSE_SEPARATOR)
    if any(not piece.strip() for piece in pieces[1:-1]):
        return Verdict(False, "an empty response between two ****** separators")
    answers = [piece.strip() for piece in pieces if piece.strip()]
    if len(answers) != 2:
        return Verdict(False, f"{_counted(len(answers), 'response{s}')} between ******, wanted 2")
    if answers[0] == answers[1]:
        return Verdict(False, "the two responses are the same")
    return Verdict(True, "two different responses")


@instruction("combination:repeat_prompt", prompt_to_repeat=phrase)
def repeat_prompt(response: str, *, prompt_to_repeat: str) -> Verdict:
    followed = response.strip().lower().startswith(prompt_to_repeat.lower())
    return Verdict(
        followed,
        "starts with the request" if followed else "does not start with the request verbatim",
    )


# -------------------------------------------------------------------------------- startend


@instruction("startend:end_checker", end_phrase=phrase)
def end_checker(response: str, *, end_phrase: str) -> Verdict:
    # case-insensitive; double quotes wrapped around the whole response are ignored
    ending = response.strip().strip('"').lower()
    followed = ending.endswith(end_phrase.lower())
    return Verdict(
        followed,
        f"ends with {end_phrase!r}" if followed else f"ends with {clip(ending[-40:], 40)!r}",
    )


@instruction("startend:quotation")
def quotation(response: str) -> Verdict:
    body = response.strip()
    followed = len(body) > 1 and body[0] == '"' and body[-1] == '"'
    return Verdict(followed, "wrapped in double quotes" if followed else 'not wrapped in "..."')


# ----------------------------------------------------------------------------- change case


@instruction(
    "change_case:capital_word_frequency", capital_frequency=count, capital_relation=relation
)
def capital_word_frequency(
    response: str, *, capital_frequency: int, capital_relation: str
) -> Verdict:
    found = text.count_capital_words(response)
    return _measured(found, "word{s} in capitals", capital_relation, capital_frequency)


def _english_in_case(response: str, in_case: bool, case_name: str) -> Verdict:
    if not in_case:
        return Verdict(False, f"not all {case_name}")
    detected = text.detect_language(response)
    if detected is None:
        return Verdict(True, f"all {case_name}, language undetectable")
    return Verdict(detected == "en", f"all {case_name}, detected language {detected!r}")


@instruction("change_case:english_capital")
def english_capital(response: str) -> Verdict:
    return _english_in_case(response, response.isupper(), "capitals")


@instruction("change_case:english_lowercase")
def english_lowercase(response: str) -> Verdict:
    return _english_in_case(response, response.islower(), "lowercase")


# ----------------------------------------------------------------------------- punctuation


@instruction("punctuation:no_comma")
def no_comma(response: str) -> Verdict:
    commas = response.count(",")
    return Verdict(commas == 0, _counted(commas, "comma{s}") if commas else "no comma")
