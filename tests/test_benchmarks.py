"""Built-in benchmark adapters: rows in each release's layout become the right records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.data.adapters import get_adapter, known_adapters
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import resolve_scorer
from pytest_evalindex.spec.index import Leaf
from pytest_evalindex.testset.records import Record, ScorerRef

BUILT_IN = [
    "aa_lcr",
    "aime24",
    "aime25",
    "arc",
    "ceval",
    "chinese_simpleqa",
    "cmmlu",
    "gsm8k",
    "math_500",
    "mmlu",
    "simpleqa",
]


def make_leaf(name: str, **overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": name,
        "weight": 0.5,
        "categories": ("my_index",),
        "task_type": "reasoning",
        "tags": ("en",),
        "source": "/data/rows.jsonl",
        "adapter": name,
        "scorer": None,
        "spec_file": None,
        "field_path": "datasets[0]",
    }
    values.update(overrides)
    return Leaf(**values)


def records_of(name: str, rows: list[dict[str, Any]], **leaf_overrides: Any) -> list[Record]:
    leaf = make_leaf(name, **leaf_overrides)
    adapter = get_adapter(leaf.adapter)
    assert adapter is not None
    adapter.check(leaf)
    bound = adapter.for_leaf(leaf)
    return [bound.to_record(row, position, leaf) for position, row in enumerate(rows)]


def subsets_of(name: str, rows: list[dict[str, Any]], **leaf_overrides: Any) -> list[str]:
    leaf = make_leaf(name, **leaf_overrides)
    adapter = get_adapter(name)
    assert adapter is not None
    bound = adapter.for_leaf(leaf)
    return [bound.subset(row) for row in rows]


def user_text(record: Record) -> str:
    return record.input[-1].content


def score(record: Record, response: str) -> float:
    """The record graded by its own scorer (not for judge scorers)."""
    return resolve_scorer(record.scorer)(response, record).value


# --------------------------------------------------------------------------- registry


def test_every_built_in_benchmark_is_registered_and_the_helper_module_is_not() -> None:
    names = known_adapters()
    assert set(BUILT_IN) <= set(names)
    assert "_common" not in names
    assert get_adapter("_common") is None
    for name in BUILT_IN:
        adapter = get_adapter(name)
        assert adapter is not None and adapter.name == name
        assert adapter.default_scorer is not None


@pytest.mark.parametrize(
    ("name", "scorer"),
    [
        ("gsm8k", ScorerRef(name="numeric")),
        ("aime24", ScorerRef(name="math")),
        ("aime25", ScorerRef(name="math")),
        ("math_500", ScorerRef(name="math")),
        ("arc", ScorerRef(name="choice")),
        ("mmlu", ScorerRef(name="choice")),
        ("ceval", ScorerRef(name="choice")),
        ("cmmlu", ScorerRef(name="choice")),
        ("simpleqa", ScorerRef(name="judge", args={"template": "simpleqa"})),
        ("chinese_simpleqa", ScorerRef(name="judge", args={"template": "simpleqa"})),
        ("aa_lcr", ScorerRef(name="judge", args={"template": "binary"})),
    ],
)
def test_default_scorers(name: str, scorer: ScorerRef) -> None:
    adapter = get_adapter(name)
    assert adapter is not None
    assert adapter.default_scorer == scorer


# --------------------------------------------------------------------------- maths


GSM8K_ROWS: list[dict[str, Any]] = [
    {
        "question": "A baker fills 48 boxes with 25 rolls each. How many rolls is that?",
        "answer": "48 boxes of 25 is 48*25=<<48*25=1200>>1200 rolls.\n#### 1,200",
    },
    {
        "question": "Tom has 7 marbles and loses 3. How many are left?",
        "answer": "7-3=<<7-3=4>>4\n#### 4",
    },
]


def test_gsm8k_records() -> None:
    first, second = records_of("gsm8k", GSM8K_ROWS)
    assert (first.id, second.id) == ("gsm8k/0", "gsm8k/1")
    assert first.subset == "main"
    assert first.target == "1200"
    assert first.choices is None
    assert first.scorer == ScorerRef(name="numeric")
    assert "48 boxes with 25 rolls" in user_text(first)
    assert "ANSWER:" in user_text(first)
    assert first.metadata["question"] == GSM8K_ROWS[0]["question"]
    assert (first.weight, first.tags, first.categories) == (0.5, ["en"], ["my_index"])
    assert score(first, "So the total is 1200 rolls.\nANSWER: 1200") == 1.0
    assert score(second, "ANSWER: 5") == 0.0


def test_gsm8k_subset_from_args_and_missing_final_answer() -> None:
    assert subsets_of("gsm8k", GSM8K_ROWS, args={"subset": "socratic"}) == ["socratic"] * 2
    with pytest.raises(EvalIndexError, match=r"row 0 .*'#### <number>'"):
        records_of("gsm8k", [{"question": "q", "answer": "no final line"}])
    with pytest.raises(EvalIndexError, match="no 'question'"):
        records_of("gsm8k", [{"answer": "#### 3"}])


def test_gsm8k_few_shot_takes_the_first_train_rows(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text(
        "".join(
            json.dumps(
                {
                    "question": f"Example {i}: what is {i}+{i}?",
                    "answer": f"<<{i}+{i}>>\n#### {2 * i}",
                }
            )
            + "\n"
            for i in range(1, 5)
        ),
        encoding="utf-8",
    )
    spec_file = tmp_path / "index.yaml"
    args = {"few_shot_num": 2, "few_shot_source": "train.jsonl"}
    record = records_of("gsm8k", GSM8K_ROWS[:1], args=args, spec_file=spec_file)[0]
    prompt = user_text(record)
    assert "Example 1" in prompt and "Example 2" in prompt
    assert "Example 3" not in prompt
    assert "ANSWER: 2" in prompt and "ANSWER: 4" in prompt
    assert "<<" not in prompt
    assert prompt.index("Example 2") < prompt.index("48 boxes")
    assert record.target == "1200"


def test_few_shot_needs_a_source_and_a_whole_number(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match="few_shot_source") as info:
        records_of("gsm8k", GSM8K_ROWS, args={"few_shot_num": 3})
    assert info.value.field == "datasets[0].args.few_shot_source"
    with pytest.raises(EvalIndexError, match="whole number"):
        records_of("gsm8k", GSM8K_ROWS, args={"few_shot_num": "two"})
    with pytest.raises(EvalIndexError, match=r"missing\.jsonl"):
        records_of(
            "gsm8k",
            GSM8K_ROWS,
            args={"few_shot_num": 1, "few_shot_source": "missing.jsonl"},
            spec_file=tmp_path / "index.yaml",
        )


@pytest.mark.parametrize("name", ["aime24", "aime25", "math_500", "simpleqa", "aa_lcr"])
def test_benchmarks_without_a_train_split_reject_few_shot(name: str) -> None:
    with pytest.raises(EvalIndexError, match="zero-shot only") as info:
        records_of(name, [], args={"few_shot_num": 2})
    assert info.value.field == "datasets[0].args.few_shot_num"
    assert records_of(name, [], args={"few_shot_num": 0}) == []


def test_aime24_records() -> None:
    rows = [
        {
            "ID": "2024-I-4",
            "Problem": "Find the remainder when $7^{2024}$ is divided by $1000$.",
            "Solution": "Work modulo 8 and 125 ...",
            "Answer": 801,
        }
    ]
    (record,) = records_of("aime24", rows)
    assert record.id == "aime24/2024-I-4"
    assert record.subset == "default"
    assert record.target == "801"
    assert "7^{2024}" in user_text(record)
    assert "\\boxed{}" in user_text(record)
    assert "Work modulo" not in user_text(record)
    assert record.scorer == ScorerRef(name="math")
    assert score(record, "So the remainder is $\\boxed{801}$.") == 1.0


def test_aime25_records() -> None:
    rows: list[dict[str, Any]] = [
        {"question": "How many ordered pairs $(x, y)$ satisfy the system?", "answer": "117"},
        {"question": "Find the sum of all bases $b > 9$ for which ...", "answer": 70},
    ]
    first, second = records_of("aime25", rows, args={"subset": "AIME2025-I"})
    assert (first.id, second.id) == ("aime25/0", "aime25/1")
    assert first.subset == "AIME2025-I"
    assert (first.target, second.target) == ("117", "70")
    assert "ordered pairs" in user_text(first)
    assert second.scorer.name == "math"


def test_math_500_records() -> None:
    rows = [
        {
            "problem": "Convert the point $(0,3)$ to polar coordinates.",
            "solution": "The radius is 3 and the angle is $\\frac{\\pi}{2}$ ...",
            "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
            "subject": "Precalculus",
            "level": 2,
            "unique_id": "test/precalculus/807.json",
        }
    ]
    (record,) = records_of("math_500", rows)
    assert record.id == "math_500/test/precalculus/807.json"
    assert record.subset == "Precalculus"
    assert record.target == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert record.metadata["level"] == 2
    assert "polar coordinates" in user_text(record)
    assert score(record, "The point is $\\boxed{(3, \\frac{\\pi}{2})}$.") == 1.0
    with pytest.raises(EvalIndexError, match="no answer"):
        records_of("math_500", [{"problem": "p", "unique_id": "x"}])


# --------------------------------------------------------------------------- multiple choice


ARC_ROWS: list[dict[str, Any]] = [
    {
        "id": "Mercury_7175875",
        "question": "Which tool measures the mass of a rock?",
        "choices": {"text": ["ruler", "balance", "thermometer", "beaker"], "label": list("ABCD")},
        "answerKey": "B",
    },
    {
        "id": "NYSEDREGENTS_2015_4_8",
        "question": "Which part of a plant takes in water from soil?",
        "choices": {"text": ["leaf", "flower", "root", "stem"], "label": ["1", "2", "3", "4"]},
        "answerKey": "3",
    },
]


def test_arc_records() -> None:
    first, second = records_of("arc", ARC_ROWS, args={"subset": "ARC-Challenge"})
    assert (first.id, second.id) == ("arc/Mercury_7175875", "arc/NYSEDREGENTS_2015_4_8")
    assert first.subset == "ARC-Challenge"
    assert first.choices == ["ruler", "balance", "thermometer", "beaker"]
    assert (first.target, second.target) == ("B", "C")  # numeric labels are re-lettered
    assert "C. root" in user_text(second)
    assert "ANSWER: X" in user_text(first)
    assert first.scorer == ScorerRef(name="choice")
    assert score(second, "Roots take in water.\nANSWER: C") == 1.0
    assert subsets_of("arc", [{**ARC_ROWS[0], "subset": "ARC-Easy"}]) == ["ARC-Easy"]
    assert subsets_of("arc", ARC_ROWS) == ["default", "default"]


def test_arc_answer_key_must_be_a_label() -> None:
    row = {**ARC_ROWS[0], "answerKey": "E"}
    with pytest.raises(EvalIndexError, match="answerKey 'E'"):
        records_of("arc", [row])


MMLU_ROWS: list[dict[str, Any]] = [
    {
        "question": "Which of these is a prime number?",
        "subject": "elementary_mathematics",
        "choices": ["21", "27", "29", "33"],
        "answer": 2,
    },
    {  # as a CSV export gives it: text cells
        "question": "What is the capital of Australia?",
        "subject": "high_school_geography",
        "choices": '["Sydney", "Canberra", "Melbourne", "Perth"]',
        "answer": "1",
    },
]


def test_mmlu_records() -> None:
    first, second = records_of("mmlu", MMLU_ROWS)
    assert (first.id, second.id) == ("mmlu/0", "mmlu/1")
    assert (first.subset, second.subset) == ("elementary_mathematics", "high_school_geography")
    assert (first.target, second.target) == ("C", "B")
    assert second.choices == ["Sydney", "Canberra", "Melbourne", "Perth"]
    assert "about elementary mathematics" in user_text(first)
    assert "B. Canberra" in user_text(second)
    assert score(first, "29 has no divisors but 1 and itself. ANSWER: C") == 1.0


def test_mmlu_answer_out_of_range() -> None:
    with pytest.raises(EvalIndexError, match="'answer' is 7"):
        records_of("mmlu", [{**MMLU_ROWS[0], "answer": 7}])


def test_mmlu_few_shot_uses_the_same_subject(tmp_path: Path) -> None:
    dev = tmp_path / "dev.jsonl"
    dev_rows = [
        {
            "question": "Geo example?",
            "subject": "high_school_geography",
            "choices": ["a", "b"],
            "answer": 0,
        },
        {
            "question": "Maths example one?",
            "subject": "elementary_mathematics",
            "choices": ["1", "2"],
            "answer": 1,
        },
        {
            "question": "Maths example two?",
            "subject": "elementary_mathematics",
            "choices": ["3", "4"],
            "answer": 0,
        },
    ]
    dev.write_text("".join(json.dumps(r) + "\n" for r in dev_rows), encoding="utf-8")
    args = {"few_shot_num": 2, "few_shot_source": str(dev)}
    record = records_of("mmlu", MMLU_ROWS[:1], args=args)[0]
    prompt = user_text(record)
    assert "Maths example one?" in prompt and "Maths example two?" in prompt
    assert "Geo example" not in prompt
    assert "ANSWER: B" in prompt and "ANSWER: A" in prompt
    assert prompt.rstrip().endswith("one of A, B, C, D.")
    with pytest.raises(EvalIndexError, match="only 1 rows of subset 'high_school_geography'"):
        records_of("mmlu", MMLU_ROWS[1:], args=args)


CEVAL_ROWS: list[dict[str, Any]] = [
    {
        "id": 0,
        "question": "所有的鸟都会飞，企鹅是鸟，所以企鹅会飞。这个推理的问题在于____。",
        "A": "结论错误",
        "B": "大前提错误",
        "C": "小前提错误",
        "D": "推理形式错误",
        "answer": "B",
        "explanation": "",
    },
    {
        "id": 1,
        "question": "下列哪项是有效推理？",
        "A": "甲",
        "B": "乙",
        "C": "丙",
        "D": "丁",
        "answer": "D",
    },
]


def test_ceval_records() -> None:
    first, second = records_of("ceval", CEVAL_ROWS, args={"subset": "logic"})
    assert (first.id, second.id) == ("ceval/logic/0", "ceval/logic/1")
    assert first.subset == "logic"
    assert first.choices == ["结论错误", "大前提错误", "小前提错误", "推理形式错误"]
    assert (first.target, second.target) == ("B", "D")
    assert "企鹅" in user_text(first) and "B. 大前提错误" in user_text(first)
    assert "ANSWER: X" in user_text(first)
    assert score(first, "大前提错误。\n答案：B") == 1.0
    # without a subset the release's own id is the id
    assert records_of("ceval", CEVAL_ROWS[:1])[0].id == "ceval/0"


def test_ceval_test_split_has_no_answers() -> None:
    with pytest.raises(EvalIndexError, match="use the val split"):
        records_of("ceval", [{**CEVAL_ROWS[0], "answer": ""}], args={"subset": "logic"})


def test_cmmlu_records() -> None:
    rows = [
        {
            "": "0",
            "Question": "水稻属于哪一科？",
            "A": "禾本科",
            "B": "豆科",
            "C": "菊科",
            "D": "茄科",
            "Answer": "A",
        },
        {
            "Question": "下列哪种是氮肥？",
            "A": "尿素",
            "B": "磷酸钙",
            "C": "氯化钾",
            "D": "石灰",
            "Answer": "A",
            "subject": "chemistry",
        },
    ]
    first, second = records_of("cmmlu", rows, args={"subset": "agronomy"})
    assert (first.id, second.id) == ("cmmlu/0", "cmmlu/1")
    assert (first.subset, second.subset) == ("agronomy", "chemistry")
    assert first.target == "A"
    assert first.choices == ["禾本科", "豆科", "菊科", "茄科"]
    assert "水稻" in user_text(first)
    with pytest.raises(EvalIndexError, match="1 option column"):
        records_of("cmmlu", [{"Question": "q", "A": "only", "Answer": "A"}])


# --------------------------------------------------------------------------- judged


def test_simpleqa_records() -> None:
    rows = [
        {
            "metadata": "{'topic': 'Science and technology', 'answer_type': 'Person', "
            "'urls': ['https://example.invalid/a']}",
            "problem": "Who first described the bacterium studied in the 1884 report?",
            "answer": "Jane Example",
        },
        {"metadata": "", "problem": "In which year did the bridge open?", "answer": "1932"},
    ]
    first, second = records_of("simpleqa", rows)
    assert (first.id, second.id) == ("simpleqa/0", "simpleqa/1")
    assert (first.subset, second.subset) == ("Science and technology", "default")
    assert user_text(first) == rows[0]["problem"]
    assert first.target == "Jane Example"
    assert first.metadata == {"question": rows[0]["problem"], "answer_type": "Person"}
    assert first.scorer == ScorerRef(name="judge", args={"template": "simpleqa"})
    # an id column, where a mirror has one, is the id
    assert records_of("simpleqa", [{**rows[1], "id": "sq-17"}])[0].id == "simpleqa/sq-17"


def test_chinese_simpleqa_records() -> None:
    rows = [
        {
            "id": "a1b2c3",
            "primary_category": "自然与自然科学",
            "secondary_category": "地理",
            "question": "世界上最长的河流是哪一条？",
            "answer": "尼罗河",
            "urls": ["https://example.invalid/river"],
        }
    ]
    (record,) = records_of("chinese_simpleqa", rows)
    assert record.id == "chinese_simpleqa/a1b2c3"
    assert record.subset == "自然与自然科学"
    assert user_text(record) == "世界上最长的河流是哪一条？"
    assert record.target == "尼罗河"
    assert record.metadata["secondary_category"] == "地理"
    assert record.scorer.args == {"template": "simpleqa"}


AA_LCR_ROW = {
    "document_category": "Company Reports",
    "document_set_id": "set_7",
    "question_id": 12,
    "question": "By how much did revenue grow between the two reports?",
    "answer": "About 14%",
    "data_source_filenames": "report_2022.txt;report_2023.txt",
    "data_source_urls": "https://example.invalid/2022;https://example.invalid/2023",
    "input_tokens": 91234,
}


def test_aa_lcr_reads_documents_from_the_extracted_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lcr" / "Company Reports" / "set_7"
    folder.mkdir(parents=True)
    (folder / "report_2023.txt").write_text("Revenue in 2023 was 114 million.", encoding="utf-8")
    (folder / "report_2022.txt").write_text("Revenue in 2022 was 100 million.", encoding="utf-8")
    (folder / ".DS_Store").write_text("junk", encoding="utf-8")
    args = {"documents_dir": "lcr"}
    (record,) = records_of("aa_lcr", [AA_LCR_ROW], args=args, spec_file=tmp_path / "index.yaml")
    assert record.id == "aa_lcr/12"
    assert record.subset == "Company Reports"
    assert record.target == "About 14%"
    prompt = user_text(record)
    assert prompt.index("2022 was 100") < prompt.index("2023 was 114") < prompt.index("By how much")
    assert "junk" not in prompt
    assert record.metadata["question"] == AA_LCR_ROW["question"]
    assert record.metadata["documents"] == 2
    assert record.scorer == ScorerRef(name="judge", args={"template": "binary"})


def test_aa_lcr_inline_documents_and_missing_ones(tmp_path: Path) -> None:
    row = {**AA_LCR_ROW, "documents": ["First text.", "Second text."]}
    (record,) = records_of("aa_lcr", [row])
    assert "First text." in user_text(record) and "Second text." in user_text(record)
    with pytest.raises(EvalIndexError, match="documents_dir"):
        records_of("aa_lcr", [AA_LCR_ROW])
    with pytest.raises(EvalIndexError, match="is not a folder") as info:
        records_of("aa_lcr", [], args={"documents_dir": "nowhere"}, spec_file=tmp_path / "i.yaml")
    assert info.value.field == "datasets[0].args.documents_dir"


# --------------------------------------------------------------------------- leaf options


def test_prompt_template_replaces_the_built_in_prompt() -> None:
    template = "Q: {question}\n{options}\nReply with one of {letters}."
    (record,) = records_of("mmlu", MMLU_ROWS[:1], prompt_template=template, system="Be brief.")
    assert record.input[0].role == "system" and record.input[0].content == "Be brief."
    assert user_text(record) == (
        "Q: Which of these is a prime number?\nA. 21\nB. 27\nC. 29\nD. 33\n"
        "Reply with one of A, B, C, D."
    )
    with pytest.raises(EvalIndexError, match="no field 'context'"):
        records_of("gsm8k", GSM8K_ROWS[:1], prompt_template="{context}")


def test_fields_do_not_apply_to_built_in_benchmarks() -> None:
    with pytest.raises(EvalIndexError, match="general_qa") as info:
        records_of("gsm8k", [], fields={"input": "q"})
    assert info.value.field == "datasets[0].fields"


def test_leaf_scorer_wins_over_the_default() -> None:
    (record,) = records_of("gsm8k", GSM8K_ROWS[:1], scorer=ScorerRef(name="math"))
    assert record.scorer == ScorerRef(name="math")


# --------------------------------------------------------------------------- end to end


def test_spec_to_sample_index_with_two_benchmarks(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    data = tmp_path / "data"
    data.mkdir()
    gsm_rows = [
        {
            "question": f"What is {i} times 3?",
            "answer": f"{i}*3=<<{i}*3={3 * i}>>{3 * i}\n#### {3 * i}",
        }
        for i in range(12)
    ]
    (data / "gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gsm_rows), "utf-8")
    subjects = ["astronomy", "virology"]
    mmlu_rows = [
        {
            "question": f"Question {i} about {subjects[i % 2]}?",
            "subject": subjects[i % 2],
            "choices": ["w", "x", "y", "z"],
            "answer": i % 4,
        }
        for i in range(20)
    ]
    (data / "mmlu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mmlu_rows), "utf-8")
    spec_path = tmp_path / "index.yaml"
    spec_path.write_text(
        "name: reasoning_index\n"
        "count: 10\n"
        "seed: 7\n"
        "datasets:\n"
        "  - name: gsm8k\n"
        "    weight: 3\n"
        "    task_type: math\n"
        "    source: data/gsm8k.jsonl\n"
        "  - name: mmlu\n"
        "    weight: 2\n"
        "    task_type: knowledge\n"
        "    tags: [en]\n"
        "    source: data/mmlu.jsonl\n"
        "    args: {subset_list: [virology]}\n",
        encoding="utf-8",
    )
    result = sample_index(load_spec(spec_path))
    records = result.records
    by_dataset = {name: [r for r in records if r.dataset == name] for name in ("gsm8k", "mmlu")}
    assert (len(by_dataset["gsm8k"]), len(by_dataset["mmlu"])) == (6, 4)
    for record in by_dataset["gsm8k"]:
        position = int(record.id.split("/")[1])
        assert record.target == str(3 * position)
        assert (record.subset, record.task_type, record.weight) == ("main", "math", 0.6)
        assert record.scorer.name == "numeric"
        assert score(record, f"ANSWER: {record.target}") == 1.0
    for record in by_dataset["mmlu"]:
        position = int(record.id.split("/")[1])
        assert record.subset == "virology"
        assert record.target == "ABCD"[position % 4]
        assert record.scorer.name == "choice"
        assert record.tags == ["en"]
    # the same spec samples the same records
    assert [r.id for r in sample_index(load_spec(spec_path)).records] == [r.id for r in records]


def test_spec_check_names_the_line_of_a_bad_benchmark_argument(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import load_spec

    (tmp_path / "aime.jsonl").write_text('{"ID": "1", "Problem": "p", "Answer": 1}\n', "utf-8")
    spec_path = tmp_path / "index.yaml"
    spec_path.write_text(
        "name: idx\n"
        "datasets:\n"
        "  - name: aime24\n"
        "    source: aime.jsonl\n"
        "    args:\n"
        "      few_shot_num: 3\n",
        encoding="utf-8",
    )
    with pytest.raises(EvalIndexError, match="zero-shot only") as info:
        load_spec(spec_path)
    assert info.value.field == "datasets[0].args.few_shot_num"
    assert info.value.line == 6
