"""Multiple choice: find the answer letter in a free-form response.

Rules, tried in order; the first rule that finds a letter wins, and inside a rule the last
occurrence wins (a model that restates its answer means the restatement):

1. label          ``ANSWER: C``, ``Answer: (C)``, ``**Answer:** C``, ``答案：C``
2. answer-is      ``the answer is C``, ``the correct answer is (C)``, ``答案是C``, ``答案为C``
3. boxed          ``\\boxed{C}``
4. whole          the response is just ``C``, ``C.``, ``(C)``, ``**C**``; or one line ``C) text``
5. bold           ``**C**``, ``**C. text**``
6. choice-text    the response equals one choice's text (normalised)
7. line-start     a line starting with ``C.`` or ``C)``
8. last-letter    the last standalone uppercase letter in the final 200 characters

Valid letters are A.. up to the number of choices, else A-J. Only uppercase letters count,
except a lone lowercase letter after an explicit label (``answer: c``), so the English words
"a" and "I" are not mistaken for answers; the last-letter rule also skips "A"/"I" used as a
word ("A good start", "I think").
"""

from __future__ import annotations

import functools
import re

from pytest_evalindex.scoring import Score, ScorerError, clip, target_list
from pytest_evalindex.scoring.basic import normalise_text
from pytest_evalindex.testset.records import Record

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_LETTERS = LETTERS[:10]
FALLBACK_WINDOW = 200

# after "A"/"I" these words show the letter names an option ("A is wrong"), not an article
# or the pronoun ("A good idea", "I think")
_OPTION_VERBS = frozenset(
    {"is", "was", "would", "could", "should", "seems", "seemed", "appears", "looks", "must"}
    | {"can", "might", "and", "or", "are", "has", "had", "correctly"}
)


def valid_letters(record: Record) -> str:
    """A.. up to the number of choices (at most Z); A-J when the record has no choices."""
    if record.choices:
        return LETTERS[: min(len(record.choices), len(LETTERS))]
    return DEFAULT_LETTERS


@functools.lru_cache(maxsize=64)
def _rules(letters: str) -> list[tuple[str, re.Pattern[str]]]:
    upper = f"[{letters}]"
    both = f"[{letters}{letters.lower()}]"
    opening = r"[\s*_]*[\(\[（【]?\s*"
    closing = r"\s*[\)\]）】]?[*_]*"
    # the letter must not run on into a word: "Answer: Cats" has no letter
    end = r"(?![A-Za-z0-9])"
    return [
        (
            "label",
            re.compile(
                r"(?:(?i:\banswer)|答案)[\s*_]*[:：]"
                + opening
                + f"(?P<letter>{both})"
                + closing
                + end
            ),
        ),
        (
            "answer-is",
            re.compile(
                r"(?:(?i:\b(?:answer|option|choice)\s+(?:is|would\s+be|should\s+be|must\s+be))"
                r"|答案(?:应该|应|就)?(?:是|为|选))"
                r"[\s*_]*[:：]?[\s*_]*(?:(?i:option|choice)\s+|选项)?"
                + opening
                + f"(?P<letter>{upper})"
                + closing
                + end
            ),
        ),
        (
            "boxed",
            re.compile(
                r"\\boxed\s*\{\s*(?:\\text(?:bf)?\s*\{)?\s*\(?\s*"
                + f"(?P<letter>{upper})"
                + r"\s*\)?\s*\}?\s*\}"
            ),
        ),
        (
            "whole",
            re.compile(
                r"\A[\s*_#>]*[\(\[（]?\s*"
                + f"(?P<letter>{upper})"
                + r"(?:\s*[\)\]）]?\s*[.:)]?[\s*_]*\Z|\s*[\)\]）.:]\s+[^\n]*\Z)"
            ),
        ),
        (
            "bold",
            re.compile(
                r"\*\*\s*\(?" + f"(?P<letter>{upper})" + r"\)?\s*(?:[.):][^*\n]{0,200})?\*\*"
            ),
        ),
        (
            "line-start",
            re.compile(r"^[ \t*_#>-]*[\(\[]?" + f"(?P<letter>{upper})" + r"[\)\].:](?:\s|$)", re.M),
        ),
    ]


def _lowercase_allowed(text: str, match: re.Match[str]) -> bool:
    """A lowercase letter counts only when nothing but punctuation follows on its line."""
    rest = text[match.end() :].split("\n", 1)[0]
    return not rest.strip(" \t.,;:!?)*_")


def _normalise_choice(text: str) -> str:
    return normalise_text(text, ignore_case=True).rstrip(".。!！ ")


def extract_choice(
    response: str, letters: str = DEFAULT_LETTERS, choices: list[str] | None = None
) -> tuple[str, str, str] | None:
    """Find the answer letter: ``(letter, rule, matched text)`` or None."""
    response = response.strip()
    for rule, pattern in _rules(letters):
        if rule == "line-start" and choices:
            found = _match_choice_text(response, letters, choices)
            if found is not None:
                return found
        matches = [
            m
            for m in pattern.finditer(response)
            if m.group("letter").isupper() or _lowercase_allowed(response, m)
        ]
        if matches:
            last = matches[-1]
            return last.group("letter").upper(), rule, last.group(0).strip()
    return _last_standalone_letter(response, letters)


def _match_choice_text(
    response: str, letters: str, choices: list[str]
) -> tuple[str, str, str] | None:
    wanted = _normalise_choice(response)
    if not wanted:
        return None
    for letter, text in zip(letters, choices, strict=False):
        if _normalise_choice(text) == wanted:
            return letter, "choice-text", clip(text)
    return None


def _last_standalone_letter(response: str, letters: str) -> tuple[str, str, str] | None:
    start = max(0, len(response) - FALLBACK_WINDOW)
    pattern = re.compile(f"(?<![A-Za-z0-9'’])[{letters}](?![A-Za-z0-9'’])")
    for match in reversed(list(pattern.finditer(response, start))):
        letter = match.group(0)
        if letter in "AI" and _is_word(response, match, letter):
            continue
        context = response[max(0, match.start() - 20) : match.end() + 20]
        return letter, "last-letter", context.strip()
    return None


def _is_word(text: str, match: re.Match[str], letter: str) -> bool:
    """True for "A" as an article at a sentence start, or "I" as the pronoun."""
    following = re.match(r"\s+([a-z]+)", text[match.end() :])
    if following is None or following.group(1) in _OPTION_VERBS:
        return False
    if letter == "I":
        return True
    before = text[: match.start()].rstrip(" \t*_\"'“")
    return not before or before[-1] in ".!?:;\n"


def _target_letters(record: Record, letters: str) -> list[str]:
    wanted: list[str] = []
    for target in target_list(record, "choice"):
        text = target.strip().strip("()[]").rstrip(".").strip()
        if len(text) == 1 and text.upper() in LETTERS:
            wanted.append(text.upper())
            continue
        found = _match_choice_text(target, letters, record.choices or [])
        if found is None:
            raise ScorerError(
                f"target {clip(target)!r} of record {record.id!r} is neither a letter "
                "nor the text of one of its choices"
            )
        wanted.append(found[0])
    return wanted


def choice(response: str, record: Record) -> Score:
    """1 when the answer letter found in the response is the target letter (any of a list)."""
    letters = valid_letters(record)
    wanted = _target_letters(record, letters)
    shown = "/".join(wanted)
    found = extract_choice(response, letters, record.choices)
    if found is None:
        return Score(0.0, f"no answer letter found in {clip(response)!r}; target {shown}")
    letter, rule, matched = found
    value = 1.0 if letter in wanted else 0.0
    return Score(
        value,
        f"extracted {letter!r} from {clip(matched)!r} ({rule}); target {shown}",
        extracted=letter,
    )
