from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.data import adapters
from pytest_evalindex.data.adapters import (
    Adapter,
    BaseAdapter,
    get_adapter,
    known_adapters,
    make_record,
)
from pytest_evalindex.data.adapters.general_mcq import answer_letter
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.spec.index import Leaf
from pytest_evalindex.testset.records import Message, ScorerRef


def make_leaf(**overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": "faq",
        "weight": 0.25,
        "categories": ("my_index", "support"),
        "task_type": "knowledge",
        "tags": ("en", "rag"),
        "source": "/data/faq.jsonl",
        "adapter": "general_qa",
        "scorer": None,
        "fields": {"input": "question", "target": "answer"},
        "spec_file": Path("/specs/index.yaml"),
        "field_path": "datasets[1]",
    }
    values.update(overrides)
    return Leaf(**values)


def qa_record(row: dict[str, Any], position: int = 0, **leaf_overrides: Any) -> Any:
    leaf = make_leaf(**leaf_overrides)
    adapter = get_adapter(leaf.adapter)
    assert adapter is not None
    adapter.check(leaf)
    return adapter.for_leaf(leaf).to_record(row, position, leaf)


# --------------------------------------------------------------------------- registry


def test_get_adapter_returns_the_module_adapter() -> None:
    from pytest_evalindex.data.adapters import general_mcq, general_qa

    assert get_adapter("general_qa") is general_qa.ADAPTER
    assert get_adapter("general_mcq") is general_mcq.ADAPTER
    assert isinstance(general_qa.ADAPTER, Adapter)


@pytest.mark.parametrize("name", ["no_such_benchmark", "not-an-identifier", "a.b", "", "__init__"])
def test_get_adapter_unknown_name_is_none(name: str) -> None:
    assert get_adapter(name) is None


@pytest.fixture
def extra_benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A second folder on the package path, for modules written by the test."""
    monkeypatch.setattr(adapters, "__path__", [*adapters.__path__, str(tmp_path)])
    yield tmp_path
    for name in list(sys.modules):
        if name.startswith("pytest_evalindex.data.adapters.tmpbench_"):
            del sys.modules[name]


def test_import_error_inside_an_adapter_module_propagates(extra_benchmarks: Path) -> None:
    (extra_benchmarks / "tmpbench_broken.py").write_text("import tmp_missing_dependency_xyz\n")
    with pytest.raises(ModuleNotFoundError, match="tmp_missing_dependency_xyz"):
        get_adapter("tmpbench_broken")


def test_new_benchmark_is_one_module(extra_benchmarks: Path) -> None:
    (extra_benchmarks / "tmpbench_tiny.py").write_text(
        "from pytest_evalindex.data.adapters import BaseAdapter\n"
        "class Tiny(BaseAdapter):\n"
        "    name = 'tmpbench_tiny'\n"
        "ADAPTER = Tiny()\n"
    )
    (extra_benchmarks / "tmpbench_helper.py").write_text("VALUE = 1\n")
    adapter = get_adapter("tmpbench_tiny")
    assert adapter is not None and adapter.name == "tmpbench_tiny"
    names = known_adapters()
    assert "tmpbench_tiny" in names
    assert "tmpbench_helper" not in names
    assert get_adapter("tmpbench_helper") is None


def test_known_adapters_sorted_and_has_generic_ones() -> None:
    names = known_adapters()
    assert names == sorted(names)
    assert {"general_qa", "general_mcq"} <= set(names)


def test_base_adapter_defaults() -> None:
    adapter = BaseAdapter()
    leaf = make_leaf()
    assert adapter.for_leaf(leaf) is adapter
    assert adapter.record_id({"x": 1}, 7) == "7"
    assert adapter.subset({"x": 1}) == "default"


def test_make_record_without_any_scorer_is_an_error() -> None:
    with pytest.raises(EvalIndexError, match="no default scorer") as info:
        make_record(make_leaf(), "1", user="hi", adapter=BaseAdapter())
    assert info.value.field == "datasets[1].scorer"


def test_make_record_keeps_a_leading_system_message_of_a_conversation() -> None:
    conversation = [Message(role="system", content="own"), Message(role="user", content="q")]
    record = make_record(
        make_leaf(scorer=ScorerRef(name="includes")),
        "1",
        user=conversation,
        adapter=BaseAdapter(),
        system="fixed",
    )
    assert [m.content for m in record.input] == ["own", "q"]


# --------------------------------------------------------------------------- general_qa


def test_general_qa_record_carries_the_leaf() -> None:
    record = qa_record({"question": "Capital of France?", "answer": "Paris"}, position=3)
    assert record.model_dump(mode="json") == {
        "id": "faq/3",
        "dataset": "faq",
        "subset": "default",
        "task_type": "knowledge",
        "tags": ["en", "rag"],
        "categories": ["my_index", "support"],
        "weight": 0.25,
        "input": [{"role": "user", "content": "Capital of France?"}],
        "target": "Paris",
        "choices": None,
        "scorer": {"name": "exact_match", "args": {}, "threshold": 1.0},
        "metadata": {},
    }


def test_general_qa_uses_the_leaf_scorer_over_the_default() -> None:
    record = qa_record({"question": "q", "answer": "a"}, scorer=ScorerRef(name="includes"))
    assert record.scorer.name == "includes"


def test_general_qa_needs_fields_input() -> None:
    leaf = make_leaf(fields={"target": "answer"})
    adapter = get_adapter("general_qa")
    assert adapter is not None
    with pytest.raises(EvalIndexError, match=re.escape("fields: {input: question")) as info:
        adapter.check(leaf)
    assert info.value.field == "datasets[1].fields.input"
    assert info.value.file == str(Path("/specs/index.yaml"))


def test_general_qa_rejects_unknown_fields_key() -> None:
    adapter = get_adapter("general_qa")
    assert adapter is not None
    with pytest.raises(EvalIndexError, match="unknown key 'inputs'") as info:
        adapter.check(make_leaf(fields={"inputs": "q"}))
    assert info.value.field == "datasets[1].fields.inputs"


def test_general_qa_row_without_input_names_field_and_row() -> None:
    with pytest.raises(EvalIndexError) as info:
        qa_record({"answer": "a"}, position=12)
    message = str(info.value)
    assert "row 12" in message and "'question'" in message and "fields.input" in message
    assert message.startswith("/data/faq.jsonl")


def test_general_qa_id_and_subset_fields() -> None:
    fields = {"input": "q", "id": "uid", "subset": "topic"}
    record = qa_record({"q": "hi", "uid": 1042, "topic": "billing"}, position=5, fields=fields)
    assert record.id == "faq/1042"
    assert record.subset == "billing"
    assert record.target is None  # no target field: allowed, the scorer decides


def test_general_qa_missing_id_value_is_an_error() -> None:
    leaf = make_leaf(fields={"input": "q", "id": "uid"})
    adapter = get_adapter("general_qa")
    assert adapter is not None
    with pytest.raises(EvalIndexError, match=r"row 4 .*'uid' \(fields.id\)"):
        adapter.for_leaf(leaf).record_id({"q": "hi"}, 4)


def test_general_qa_missing_subset_value_is_default() -> None:
    leaf = make_leaf(fields={"input": "q", "subset": "topic"})
    adapter = get_adapter("general_qa")
    assert adapter is not None
    assert adapter.for_leaf(leaf).subset({"q": "hi"}) == "default"
    assert adapter.for_leaf(leaf).subset({"q": "hi", "topic": 7}) == "7"


def test_general_qa_converts_values_to_text() -> None:
    record = qa_record({"question": 12, "answer": [1, "two"]})
    assert record.input[0].content == "12"
    assert record.target == ["1", "two"]
    assert qa_record({"question": "q", "answer": 3.5}).target == "3.5"


def test_general_qa_system_prompts() -> None:
    fixed = qa_record({"question": "q", "answer": "a"}, system="Be brief.")
    assert [(m.role, m.content) for m in fixed.input] == [("system", "Be brief."), ("user", "q")]
    fields = {"input": "question", "target": "answer", "system": "sys"}
    own = qa_record({"question": "q", "sys": "Row system."}, system="Be brief.", fields=fields)
    assert own.input[0].content == "Row system."
    empty = qa_record({"question": "q", "sys": ""}, system="Be brief.", fields=fields)
    assert empty.input[0].content == "Be brief."


def test_general_qa_conversation_input() -> None:
    row = {"question": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 1}]}
    record = qa_record(row)
    assert [(m.role, m.content) for m in record.input] == [("user", "hi"), ("assistant", "1")]


def test_general_qa_prompt_template() -> None:
    record = qa_record(
        {"context": "Doc text", "question": "Why?", "answer": "x"},
        prompt_template="Context: {context}\nQ: {question} {{literal}}",
    )
    assert record.input[-1].content == "Context: Doc text\nQ: Why? {literal}"


def test_general_qa_template_replaces_input_requirement() -> None:
    leaf = make_leaf(fields={"target": "answer"}, prompt_template="Q: {question}")
    adapter = get_adapter("general_qa")
    assert adapter is not None
    adapter.check(leaf)  # no fields.input needed
    assert adapter.for_leaf(leaf).to_record({"question": "x"}, 0, leaf).input[0].content == "Q: x"


def test_general_qa_template_missing_column_names_template_and_row() -> None:
    with pytest.raises(EvalIndexError) as info:
        qa_record({"question": "q"}, position=2, prompt_template="{question} / {context}")
    message = str(info.value)
    assert "{context}" in message and "row 2" in message and "'{question} / {context}'" in message


@pytest.mark.parametrize(
    ("template", "expected"),
    [("Answer {question", "expected '}'"), ("{} and {0}", "placeholders name a column")],
)
def test_general_qa_bad_template_rejected_by_check(template: str, expected: str) -> None:
    adapter = get_adapter("general_qa")
    assert adapter is not None
    with pytest.raises(EvalIndexError, match=expected) as info:
        adapter.check(make_leaf(prompt_template=template))
    assert info.value.field == "datasets[1].prompt_template"


def test_leaf_without_field_path_names_the_bare_field() -> None:
    adapter = get_adapter("general_qa")
    assert adapter is not None
    with pytest.raises(EvalIndexError) as info:
        adapter.check(make_leaf(fields={}, field_path=""))
    assert info.value.field == "fields.input"


# --------------------------------------------------------------------------- general_mcq


def mcq_leaf(**overrides: Any) -> Leaf:
    values: dict[str, Any] = {"name": "arc", "adapter": "general_mcq", "fields": {}}
    values.update(overrides)
    return make_leaf(**values)


def mcq_record(row: dict[str, Any], position: int = 0, **overrides: Any) -> Any:
    leaf = mcq_leaf(**overrides)
    adapter = get_adapter("general_mcq")
    assert adapter is not None
    adapter.check(leaf)
    return adapter.for_leaf(leaf).to_record(row, position, leaf)


def test_general_mcq_letter_columns() -> None:
    row = {"question": "2+2?", "A": "3", "B": "4", "C": 5, "E": "skipped", "answer": "B"}
    record = mcq_record(row, position=9)
    assert record.id == "arc/9"
    assert record.choices == ["3", "4", "5"]
    assert record.target == "B"
    assert record.scorer == ScorerRef(name="choice")
    prompt = record.input[-1].content
    assert prompt.startswith("2+2?\n\nA. 3\nB. 4\nC. 5\n\n")
    assert "ANSWER: X" in prompt and "A, B, C" in prompt


@pytest.mark.parametrize(
    ("answer", "letter"),
    [("C", "C"), ("c", "C"), ("(C)", "C"), (2, "C"), ("blue", "C"), (" blue ", "C"), (0, "A")],
)
def test_general_mcq_answer_forms(answer: Any, letter: str) -> None:
    row = {"q": "Sky?", "opts": ["red", "green", "blue"], "gold": answer}
    fields = {"question": "q", "choices": "opts", "answer": "gold"}
    assert mcq_record(row, fields=fields).target == letter


@pytest.mark.parametrize("answer", ["D", 3, -1, "purple", True, None, 1.0])
def test_answer_letter_unresolvable(answer: Any) -> None:
    assert answer_letter(answer, ["red", "green", "blue"]) is None


def test_general_mcq_bad_answer_names_row() -> None:
    row = {"question": "Sky?", "A": "red", "B": "blue", "answer": "Z"}
    with pytest.raises(EvalIndexError, match=r"row 4 .*answer 'Z'"):
        mcq_record(row, position=4)


def test_general_mcq_needs_two_choices() -> None:
    with pytest.raises(EvalIndexError, match=r"row 1 .*1 option\(s\).*at least 2"):
        mcq_record({"question": "q", "A": "only", "answer": "A"}, position=1)
    with pytest.raises(EvalIndexError, match="should hold a list"):
        mcq_record({"question": "q", "opts": "a b", "answer": "A"}, fields={"choices": "opts"})


def test_general_mcq_prompt_template_gets_options() -> None:
    row = {"question": "Sky?", "A": "red", "B": "blue", "answer": "B"}
    record = mcq_record(row, prompt_template="{question}\n{options}\nOne of {letters}.")
    assert record.input[-1].content == "Sky?\nA. red\nB. blue\nOne of A, B."


def test_general_mcq_leaf_scorer_and_system() -> None:
    row = {"question": "Sky?", "A": "red", "B": "blue", "answer": "B"}
    record = mcq_record(row, scorer=ScorerRef(name="regex", args={"pattern": "x"}), system="S")
    assert record.scorer.name == "regex"
    assert record.input[0] == Message(role="system", content="S")


def test_for_leaf_binds_fields_without_touching_the_module_adapter() -> None:
    adapter = get_adapter("general_qa")
    assert adapter is not None
    bound = adapter.for_leaf(make_leaf(fields={"input": "q", "id": "uid"}))
    assert bound is not adapter
    assert bound.record_id({"uid": "x"}, 0) == "x"
    assert adapter.record_id({"uid": "x"}, 0) == "0"


def test_mcq_reads_a_choices_list_column_by_default() -> None:
    from pytest_evalindex.data.adapters import get_adapter
    from pytest_evalindex.spec.index import Leaf

    leaf = Leaf(
        name="quiz", weight=1.0, categories=("idx",), task_type="t", tags=(), source=None,
        adapter="general_mcq", scorer=None,
    )  # fmt: skip
    adapter = get_adapter("general_mcq")
    assert adapter is not None
    bound = adapter.for_leaf(leaf) if hasattr(adapter, "for_leaf") else adapter
    row = {"question": "Pick two", "choices": ["one", "two", "three"], "answer": "two"}
    record = bound.to_record(row, 0, leaf)
    assert record.choices == ["one", "two", "three"]
    assert record.target == "B"
