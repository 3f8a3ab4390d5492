"""EvalScope collection files: reading EvalScope's exact layout, writing it, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers import assert_outcomes
from pydantic import BaseModel, ConfigDict, Field

from pytest_evalindex.cli import main
from pytest_evalindex.results.aggregate import build_tables
from pytest_evalindex.spec.index import load_spec
from pytest_evalindex.testset.jsonl import (
    HEADER_KEY,
    evalscope_entries,
    read_testset,
    write_evalscope_collection,
    write_testset,
)
from pytest_evalindex.testset.records import Record
from pytest_evalindex.testset.sampling import sample_index

# The keys of EvalScope's DatasetEntry, in the order its sampler writes them
ENTRY_KEYS = [
    "index",
    "prompt",
    "tags",
    "categories",
    "task_type",
    "weight",
    "dataset_name",
    "subset_name",
]
# The fields of EvalScope's Sample (the prompt is a dump of one without its empty fields)
SAMPLE_FIELDS = {
    "input",
    "choices",
    "target",
    "id",
    "group_id",
    "tools",
    "subset_key",
    "metadata",
    "sandbox",
    "files",
    "setup",
}


class ChatMessage(BaseModel):
    """The types EvalScope's chat messages accept (its id is generated when absent)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]]
    id: str | None = None


class Sample(BaseModel):
    """The types of EvalScope's Sample: what its reader validates ``prompt`` against."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input: str | list[ChatMessage]
    choices: list[str] | None = None
    target: str | list[str] = ""
    id: int | None = None
    group_id: int | None = None
    subset_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DatasetEntry(BaseModel):
    """The types of EvalScope's DatasetEntry, one line of a collection file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    index: int
    prompt: Sample
    tags: list[str]
    categories: list[str]
    task_type: str
    weight: float
    dataset_name: str
    subset_name: str


# An imagined schema: assist_index {knowledge 0.6 {faq_zh 3, trivia 1}, instruction 0.4
# {ifeval}}, so W_faq_zh = 0.45, W_trivia = 0.15, W_ifeval = 0.4; sampled 3, 2 and 2 entries.
LEAF_WEIGHTS = {"faq_zh": 0.45, "trivia": 0.15, "ifeval": 0.4}
SAMPLED = {"faq_zh": 3, "trivia": 2, "ifeval": 2}
CATEGORIES = {
    "faq_zh": ["assist_index", "knowledge"],
    "trivia": ["assist_index", "knowledge"],
    "ifeval": ["assist_index", "instruction"],
}
TASK_TYPES = {"faq_zh": "knowledge", "trivia": "exam", "ifeval": "instruction"}
TAGS = {"faq_zh": ["zh", "rag"], "trivia": ["en"], "ifeval": ["en"]}


def user(content: Any, message_id: str) -> dict[str, Any]:
    return {"id": message_id, "content": content, "role": "user"}


PROMPTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "faq_zh",
        "账户",
        {
            "input": [user("请回答问题：\n\n如何重置登录密码？", "0f3a9c21")],
            "target": "在设置页点击“忘记密码”",
            "id": 41,
            "group_id": 41,
            "subset_key": "账户",
            "metadata": {"source_page": "help/login"},
        },
    ),
    (
        "ifeval",
        "default",
        {
            "input": [user("Describe a lighthouse in exactly two sentences.", "6b20de4e")],
            "target": "",
            "id": 7,
            "group_id": 7,
            "metadata": {
                "key": 3107,
                "instruction_id_list": ["length_constraints:number_sentences"],
                "kwargs": [{"num_sentences": 2, "relation": "exactly"}],
                "prompt": "Describe a lighthouse in exactly two sentences.",
            },
        },
    ),
    (
        "trivia",
        "geography",
        {
            "input": [
                {"id": "a1b2c3d4", "content": "Answer with one letter.", "role": "system"},
                user(
                    "Which river flows through Vienna?\n\nA) Danube\nB) Rhine\nC) Elbe\n\n"
                    "ANSWER: [LETTER]",
                    "9e8d7c6b",
                ),
            ],
            "choices": ["Danube", "Rhine", "Elbe"],
            "target": "A",
            "id": 3,
            "group_id": 3,
            "subset_key": "geography",
            "metadata": {},
        },
    ),
    (
        "faq_zh",
        "账单",
        {
            "input": [user([{"type": "text", "text": "发票在哪里下载？"}], "5c4b3a29")],
            "target": ["账单页", "发票中心"],
            "id": 8,
            "group_id": 8,
            "subset_key": "账单",
            "metadata": {},
        },
    ),
    (
        "trivia",
        "history",
        {
            "input": [user("In which year did the Berlin Wall fall?\n\nA) 1987\nB) 1989", "77aa")],
            "choices": ["1987", "1989"],
            "target": "B",
            "id": 15,
            "group_id": 15,
            "subset_key": "history",
            "metadata": {},
        },
    ),
    (
        "ifeval",
        "default",
        {
            "input": [user("List three fruits without using any commas.", "c0ffee11")],
            "target": "",
            "id": 19,
            "group_id": 19,
            "metadata": {
                "key": 2290,
                "instruction_id_list": ["punctuation:no_comma"],
                "kwargs": [{}],
                "prompt": "List three fruits without using any commas.",
            },
        },
    ),
    (
        "faq_zh",
        "账户",
        {
            "input": [user("请回答问题：\n\n可以修改用户名吗？", "d15ea5e0")],
            "target": "可以，每月一次",
            "id": 2,
            "group_id": 2,
            "subset_key": "账户",
            "metadata": {"source_page": "help/profile"},
        },
    ),
]


def evalscope_file(
    path: Path, *, per_sample: bool = True, lines: int | None = None
) -> tuple[Path, list[dict[str, Any]]]:
    """Entries as EvalScope's collection sampler writes them (>= 1.3: W_d / n_d each)."""
    entries = []
    for index, (dataset, subset, prompt) in enumerate(PROMPTS):
        weight = LEAF_WEIGHTS[dataset]
        entries.append(
            {
                "index": index,
                "prompt": prompt,
                "tags": TAGS[dataset],
                "categories": CATEGORIES[dataset],
                "task_type": TASK_TYPES[dataset],
                "weight": weight / SAMPLED[dataset] if per_sample else weight,
                "dataset_name": dataset,
                "subset_name": subset,
            }
        )
    entries = entries[:lines]
    path.write_text(
        "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries),
        encoding="utf-8",
    )
    return path, entries


# --------------------------------------------------------------------------- reading


def test_reads_the_layout_evalscope_writes(tmp_path: Path) -> None:
    path, entries = evalscope_file(tmp_path / "collection.jsonl")
    for entry in entries:
        assert list(entry) == ENTRY_KEYS
        DatasetEntry.model_validate(entry)
    header, records = read_testset(path)
    assert header is None
    assert [r.id for r in records] == [
        "faq_zh/0", "ifeval/1", "trivia/2", "faq_zh/3", "trivia/4", "ifeval/5", "faq_zh/6",
    ]  # fmt: skip
    faq, ifeval, trivia, faq_list = records[:4]
    assert (faq.dataset, faq.subset, faq.task_type, faq.tags, faq.categories) == (
        "faq_zh", "账户", "knowledge", ["zh", "rag"], ["assist_index", "knowledge"],
    )  # fmt: skip
    assert [(m.role, m.content) for m in faq.input] == [
        ("user", "请回答问题：\n\n如何重置登录密码？")
    ]
    assert faq.target == "在设置页点击“忘记密码”" and faq.choices is None
    assert faq.metadata == {"source_page": "help/login"}
    assert faq_list.input[0].content == "发票在哪里下载？"
    assert faq_list.target == ["账单页", "发票中心"]

    # chat messages are used as they are: EvalScope already formatted the options into them
    assert [m.role for m in trivia.input] == ["system", "user"]
    assert trivia.input[1].content == PROMPTS[2][2]["input"][1]["content"]
    assert (trivia.choices, trivia.target, trivia.scorer.name) == (
        ["Danube", "Rhine", "Elbe"], "A", "choice",
    )  # fmt: skip

    assert ifeval.target is None  # IFEval has no gold text
    assert ifeval.metadata["instruction_id_list"] == ["length_constraints:number_sentences"]
    assert ifeval.scorer.name == "ifeval"


def test_per_sample_weights_become_leaf_weights(tmp_path: Path) -> None:
    path, entries = evalscope_file(tmp_path / "collection.jsonl")
    assert sum(entry["weight"] for entry in entries) == pytest.approx(1.0)
    _, records = read_testset(path)
    for record in records:
        assert record.weight == pytest.approx(LEAF_WEIGHTS[record.dataset], rel=1e-12)
    weights = {r.dataset: r.weight for r in records}
    assert weights["faq_zh"] / weights["trivia"] == pytest.approx(3.0)


@pytest.mark.parametrize("lines", [None, 4, 2], ids=["whole", "cut_to_4", "cut_to_2"])
def test_index_equals_evalscopes_weighted_average(tmp_path: Path, lines: int | None) -> None:
    # EvalScope >= 1.3 scores a collection as sum(w_i * s_i) / sum(w_i) over its entries; the
    # leaf weights read from the file must give the same index, for a file cut short too
    path, entries = evalscope_file(tmp_path / "collection.jsonl", lines=lines)
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0][: len(entries)]
    expected = sum(e["weight"] * s for e, s in zip(entries, scores, strict=True)) / sum(
        e["weight"] for e in entries
    )
    _, records = read_testset(path)
    samples = [
        record.model_dump(mode="json") | {"score": score, "outcome": "passed"}
        for record, score in zip(records, scores, strict=True)
    ]
    index = build_tables(samples, n_boot=0)["index"]
    assert index["score"] == pytest.approx(expected, rel=1e-12)


def test_reads_releases_that_wrote_the_leaf_weight_on_every_entry(tmp_path: Path) -> None:
    # EvalScope 0.11 to 1.2 wrote W_d itself: the file's weights sum to more than 1
    path, entries = evalscope_file(tmp_path / "collection.jsonl", per_sample=False)
    assert sum(entry["weight"] for entry in entries) > 1
    _, records = read_testset(path)
    assert {r.dataset: r.weight for r in records} == LEAF_WEIGHTS


# --------------------------------------------------------------------------- writing

SPEC = """\
name: support_index
count: 9
seed: 3
datasets:
  - name: help
    weight: 2
    datasets:
      - name: faq
        weight: 3
        task_type: knowledge
        tags: [en]
        adapter: general_qa
        fields: {input: question, target: answer, id: uid, subset: area}
        scorer: {name: includes}
        source: data/faq.jsonl
      - name: quiz
        weight: 1
        task_type: reasoning
        adapter: general_mcq
        source: data/quiz.jsonl
  - name: lists
    weight: 1
    task_type: instruction
    adapter: general_qa
    fields: {input: prompt, target: answers}
    system: Answer briefly.
    scorer: {name: exact_match}
    source: data/lists.jsonl
"""


PRIMES = (2, 3, 5, 7)


def make_project(folder: Path) -> Path:
    rows: dict[str, list[dict[str, Any]]] = {
        "faq": [
            {"uid": f"q{i}", "question": f"How do I change option {i}?", "answer": f"menu {i}",
             "area": "billing" if i % 3 else "account"}
            for i in range(20)
        ],
        "quiz": [
            {"question": f"Is {i} prime?", "choices": ["yes", "no"], "answer": int(i not in PRIMES)}
            for i in range(10)
        ],
        "lists": [
            {"prompt": f"Name a colour starting with {c}", "answers": [f"{c}1", f"{c}2"]}
            for c in "bgry"
        ],
    }  # fmt: skip
    (folder / "data").mkdir(parents=True)
    for name, data in rows.items():
        text = "".join(json.dumps(row) + "\n" for row in data)
        (folder / "data" / f"{name}.jsonl").write_text(text, encoding="utf-8")
    spec = folder / "index.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return spec


def test_written_file_has_evalscopes_layout(tmp_path: Path) -> None:
    result = sample_index(load_spec(make_project(tmp_path)))
    records = result.records
    path = tmp_path / "collection.jsonl"
    write_evalscope_collection(path, records, result.header)
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == len(records) == 9  # no header line: EvalScope would read it as data
    per_dataset = {d: sum(r.dataset == d for r in records) for d in {r.dataset for r in records}}
    for index, (entry, record) in enumerate(zip(entries, records, strict=True)):
        assert list(entry) == ENTRY_KEYS
        DatasetEntry.model_validate(entry)  # the types EvalScope's reader expects
        assert set(entry["prompt"]) <= SAMPLE_FIELDS
        assert entry["index"] == index
        assert entry["dataset_name"] == record.dataset
        assert entry["subset_name"] == record.subset
        assert entry["task_type"] == record.task_type
        assert (entry["tags"], entry["categories"]) == (record.tags, record.categories)
        assert entry["weight"] == record.weight / per_dataset[record.dataset]
        prompt = entry["prompt"]
        assert prompt["input"] == [{"role": m.role, "content": m.content} for m in record.input]
        assert prompt["target"] == ("" if record.target is None else record.target)
        assert prompt.get("choices") == record.choices
        carried = prompt["metadata"].pop(HEADER_KEY)
        assert prompt["metadata"] == record.metadata
        assert carried["id"] == record.id and carried["weight"] == record.weight
        assert carried.get("header") == (result.header if index == 0 else None)
    assert sum(entry["weight"] for entry in entries) == pytest.approx(1.0)

    again = tmp_path / "again.jsonl"
    write_evalscope_collection(again, records, result.header)
    assert again.read_bytes() == path.read_bytes()


def test_round_trip_keeps_the_test_set(tmp_path: Path) -> None:
    result = sample_index(load_spec(make_project(tmp_path)))
    assert {r.dataset for r in result.records} == {"faq", "quiz", "lists"}
    path = tmp_path / "collection.jsonl"
    write_evalscope_collection(path, result.records, result.header)
    header, records = read_testset(path)
    assert header == result.header
    assert [r.model_dump() for r in records] == [r.model_dump() for r in result.records]


def test_round_trip_through_what_evalscope_keeps(tmp_path: Path) -> None:
    # without the carried fields (an EvalScope tool that rewrote the metadata), the file still
    # gives the same prompts, targets and leaf weights; ids fall back to <dataset>/<index>
    result = sample_index(load_spec(make_project(tmp_path)))
    entries = evalscope_entries(result.records, result.header)
    for entry in entries:
        del entry["prompt"]["metadata"][HEADER_KEY]
    path = tmp_path / "bare.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    header, records = read_testset(path)
    assert header is None
    originals = result.records
    assert [r.id for r in records] == [f"{r.dataset}/{i}" for i, r in enumerate(originals)]
    for record, original in zip(records, originals, strict=True):
        assert record.input == original.input
        assert record.target == original.target
        assert record.choices == original.choices
        assert (record.subset, record.task_type, record.tags, record.categories) == (
            original.subset, original.task_type, original.tags, original.categories,
        )  # fmt: skip
        assert record.weight == pytest.approx(original.weight, rel=1e-12)


def test_cli_sample_format_evalscope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path)
    ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    assert main(["sample", str(spec), "-o", str(ours)]) == 0
    assert main(["sample", str(spec), "-o", str(theirs), "--format", "evalscope"]) == 0
    assert "9 records from 3 datasets" in capsys.readouterr().err
    first = json.loads(theirs.read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == ENTRY_KEYS and first["index"] == 0
    our_header, our_records = read_testset(ours)
    their_header, their_records = read_testset(theirs)
    assert their_header == our_header
    assert [r.model_dump() for r in their_records] == [r.model_dump() for r in our_records]


def test_cli_rejects_an_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["sample", str(spec), "-o", str(tmp_path / "x.jsonl"), "--format", "opencompass"])
    assert info.value.code == 2
    assert "invalid choice: 'opencompass'" in capsys.readouterr().err


def test_writing_records_without_choices_or_target(tmp_path: Path) -> None:
    record = Record.model_validate(
        {
            "id": "open/1",
            "dataset": "open",
            "weight": 1.0,
            "input": [{"role": "user", "content": "Write a haiku."}],
            "scorer": {"name": "judge", "args": {"rubric": "a haiku"}},
        }
    )
    path = tmp_path / "one.jsonl"
    write_evalscope_collection(path, [record])
    (entry,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert "choices" not in entry["prompt"] and entry["prompt"]["target"] == ""
    assert entry["weight"] == 1.0
    header, (back,) = read_testset(path)
    assert header is None and back == record
    # the same records in our own format read back the same
    ours = tmp_path / "ours.jsonl"
    write_testset(ours, [record])
    assert read_testset(ours)[1] == [back]


def test_a_folder_holding_a_collection_runs_as_an_index(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    from pytest_evalindex.testing import FakeOpenAI

    folder = pytester.mkdir("collection")
    entries = [
        {"index": i, "prompt": {"input": [{"role": "user", "content": f"What is {i} + {i}?"}],
                                "target": str(2 * i)},
         "tags": ["en"], "categories": ["mini"], "task_type": "math", "weight": 0.25,
         "dataset_name": "general_qa", "subset_name": "default"}
        for i in range(4)
    ]  # fmt: skip
    (folder / "test.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))

    def add(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return str(2 * int(messages[-1]["content"].split()[2]))

    with FakeOpenAI(responder=add) as fake:
        result = pytester.runpytest(
            "--index", "collection", "--index-base-url", fake.base_url, "-p", "no:cacheprovider",
            "-rA", *run_mode,
        )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    assert_outcomes(result, passed=4)
    # the records keep the collection file as their path, in both modes
    assert sorted(line for line in result.stdout.lines if line.startswith("PASSED ")) == [
        f"PASSED collection/test.jsonl::general_qa::general_qa/{i}" for i in range(4)
    ]
    result.stdout.fnmatch_lines(["*= evalindex: test =*"])
