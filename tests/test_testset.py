from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.jsonl import read_testset, write_testset
from pytest_evalindex.testset.records import Message, Record, ScorerRef

HEADER = {"spec": "demo", "seed": 42, "sampler": "weighted", "count": 2, "selected": 2}


def record(i: int, **overrides: Any) -> Record:
    values: dict[str, Any] = {
        "id": f"faq/{i}",
        "dataset": "faq",
        "subset": "default",
        "task_type": "knowledge",
        "tags": ["zh"],
        "categories": ["demo"],
        "weight": 0.5,
        "input": [Message(role="user", content=f"问题 {i}?")],
        "target": "答案",
        "scorer": ScorerRef(name="includes"),
        "metadata": {"b": 1, "a": [1, 2]},
    }
    values.update(overrides)
    return Record(**values)


def write_lines(path: Path, lines: list[Any]) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path) -> None:
    records = [record(1), record(2, target=["a", "b"], choices=["x", "y"])]
    path = tmp_path / "set.jsonl"
    write_testset(path, records, HEADER)
    header, read = read_testset(path)
    assert header == HEADER
    assert read == records


def test_written_format(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    write_testset(path, [record(1)], HEADER)
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    assert "问题".encode() in data  # UTF-8, not \u escapes
    first, second = data.decode("utf-8").splitlines()
    assert json.loads(first) == {"_evalindex": HEADER}
    assert list(json.loads(second)) == [
        "id", "dataset", "subset", "task_type", "tags", "categories", "weight",
        "input", "target", "choices", "scorer", "metadata",
    ]  # fmt: skip
    assert '"metadata": {"b": 1, "a": [1, 2]}' in second  # insertion order kept


def test_writes_are_byte_identical_and_leave_no_temp_files(tmp_path: Path) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_testset(first, [record(1), record(2)], HEADER)
    write_testset(second, [record(1), record(2)], dict(HEADER))
    write_testset(second, [record(1), record(2)], dict(HEADER))  # replaces in place
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"]


def test_written_file_has_the_usual_mode(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    write_testset(path, [record(1)])
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_no_header(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    write_testset(path, [record(1)])
    assert read_testset(path) == (None, [record(1)])


def test_write_into_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match="cannot write the test set"):
        write_testset(tmp_path / "missing" / "set.jsonl", [record(1)])


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    line = json.dumps(record(1).model_dump(mode="json"))
    path = write_lines(tmp_path / "s.jsonl", ["", line, "  "])
    assert read_testset(path)[1] == [record(1)]


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    good = record(1).model_dump(mode="json")
    path = write_lines(tmp_path / "s.jsonl", [{"_evalindex": {}}, good, '{"id": '])
    with pytest.raises(EvalIndexError) as info:
        read_testset(path)
    assert str(info.value).startswith(f"{path}:3: not valid JSON")


def test_invalid_record_names_the_field(tmp_path: Path) -> None:
    bad = record(1).model_dump(mode="json")
    bad["scorer"] = {"name": "x", "threshold": 2}
    path = write_lines(tmp_path / "s.jsonl", [bad])
    with pytest.raises(EvalIndexError) as info:
        read_testset(path)
    assert (info.value.line, info.value.field) == (1, "scorer.threshold")
    assert "less than or equal to 1" in str(info.value)

    missing = record(1).model_dump(mode="json")
    del missing["input"]
    path = write_lines(tmp_path / "s.jsonl", [missing])
    with pytest.raises(EvalIndexError, match=r"s.jsonl:1: input: Field required"):
        read_testset(path)


def test_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", ["[1, 2]"])
    with pytest.raises(EvalIndexError, match=r":1: expected a JSON object, got list"):
        read_testset(path)


def test_header_only_first(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "s.jsonl", [record(1).model_dump(mode="json"), {"_evalindex": {}}]
    )
    with pytest.raises(EvalIndexError, match=r":2: .*only be the first line"):
        read_testset(path)


def test_header_must_be_an_object(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [{"_evalindex": [1]}])
    with pytest.raises(EvalIndexError, match=r":1: _evalindex: expected an object"):
        read_testset(path)


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    line = record(1).model_dump(mode="json")
    path = write_lines(
        tmp_path / "s.jsonl", [{"_evalindex": {}}, line, record(2).model_dump(mode="json"), line]
    )
    with pytest.raises(EvalIndexError) as info:
        read_testset(path)
    assert str(info.value) == f"{path}:4: duplicate id 'faq/1', first on line 2"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(json.dumps(record(1).model_dump(mode="json")).encode() + b"\n\xff\xfe\n")
    with pytest.raises(EvalIndexError, match="not UTF-8"):
        read_testset(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match="cannot read the test set"):
        read_testset(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------- EvalScope


def evalscope_entry(
    index: int, dataset: str, prompt: dict[str, Any], weight: float, **extra: Any
) -> dict:
    entry = {
        "index": index,
        "prompt": prompt,
        "tags": ["en"],
        "categories": ["Qwen3", "English"],
        "task_type": "exam",
        "weight": weight,
        "dataset_name": dataset,
        "subset_name": "default",
    }
    entry.update(extra)
    return entry


def test_evalscope_current_format(tmp_path: Path) -> None:
    # EvalScope >= 1.0: prompt is a Sample dump, weight is W_d / n_d (the file sums to 1)
    mcq = {"input": "Which is a prime?", "choices": ["4", "6", "7"], "target": "C", "id": 3}
    chat = {
        "input": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "target": ["x", "y"],
        "metadata": {"instruction_id_list": ["punctuation:no_comma"]},
    }
    lines = [
        evalscope_entry(0, "mmlu_redux", mcq, 0.3, subset_name="math"),
        evalscope_entry(1, "mmlu_redux", mcq | {"id": 4}, 0.3),
        evalscope_entry(2, "ifeval", chat, 0.4, task_type="instruction"),
    ]
    path = write_lines(tmp_path / "collection.jsonl", lines)
    header, records = read_testset(path)
    assert header is None
    assert [r.id for r in records] == ["mmlu_redux/0", "mmlu_redux/1", "ifeval/2"]
    first = records[0]
    assert first.weight == pytest.approx(0.6)  # W_d = sum of the dataset's entry weights
    assert records[2].weight == pytest.approx(0.4)
    assert (first.subset, first.task_type, first.tags, first.categories) == (
        "math", "exam", ["en"], ["Qwen3", "English"],
    )  # fmt: skip
    assert first.choices == ["4", "6", "7"] and first.target == "C"
    assert first.scorer.name == "choice"
    assert "A. 4\nB. 6\nC. 7" in first.input[0].content and "ANSWER" in first.input[0].content
    ifeval = records[2]
    assert [(m.role, m.content) for m in ifeval.input] == [("system", "sys"), ("user", "hi")]
    assert ifeval.target == ["x", "y"]
    assert ifeval.task_type == "instruction"
    assert ifeval.metadata == {"instruction_id_list": ["punctuation:no_comma"]}
    assert ifeval.scorer.name == "ifeval"


def test_evalscope_old_format(tmp_path: Path) -> None:
    # older releases: prompt {"data": [...], "system_prompt", "raw_input"}, "task", weight W_d
    prompt = {"data": ["Q: 2+3?"], "system_prompt": "Think.", "raw_input": {"answer": 5}}
    lines = [
        {"index": 0, "prompt": prompt, "tags": ["en"], "task": "math", "weight": 0.7,
         "dataset_name": "gsm8k", "subset_name": "main"},
        {"index": 1, "prompt": {"question": "Name?", "answer": "Bob"}, "tags": [], "task": "qa",
         "weight": 0.3, "dataset_name": "my_qa", "subset_name": ""},
        {"index": 2, "prompt": {"question": "Again?", "answer": ""}, "tags": [], "task": "qa",
         "weight": 0.3, "dataset_name": "my_qa", "subset_name": ""},
    ]  # fmt: skip
    path = write_lines(tmp_path / "old.jsonl", lines)
    _, records = read_testset(path)
    gsm, qa, empty = records
    assert gsm.weight == 0.7 and qa.weight == 0.3  # weights sum to 1.3: each is W_d
    assert [(m.role, m.content) for m in gsm.input] == [("system", "Think."), ("user", "Q: 2+3?")]
    assert gsm.target == "5" and gsm.scorer.name == "numeric" and gsm.task_type == "math"
    assert qa.target == "Bob" and qa.scorer.name == "exact_match" and qa.subset == "default"
    assert empty.target is None


def test_evalscope_entry_without_prompt_text(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [evalscope_entry(0, "x", {"target": "1"}, 1.0)])
    with pytest.raises(EvalIndexError, match=r"c.jsonl:1: prompt: no prompt text"):
        read_testset(path)
    path = write_lines(tmp_path / "c.jsonl", [evalscope_entry(0, "x", "text", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(EvalIndexError, match=r"c.jsonl:1: prompt: expected an object"):
        read_testset(path)
    path = write_lines(tmp_path / "c.jsonl", [evalscope_entry(0, "x", {"input": "q"}, "heavy")])  # type: ignore[arg-type]
    with pytest.raises(EvalIndexError, match=r"c.jsonl:1: weight: expected a number"):
        read_testset(path)


def test_evalscope_duplicate_index(tmp_path: Path) -> None:
    entry = evalscope_entry(0, "x", {"input": "q"}, 0.5)
    path = write_lines(tmp_path / "c.jsonl", [entry, entry])
    with pytest.raises(EvalIndexError, match=r"c.jsonl:2: duplicate id 'x/0', first on line 1"):
        read_testset(path)
