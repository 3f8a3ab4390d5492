"""The index spec: loading, validation messages, leaf checks, flatten and the weights table."""

from __future__ import annotations

import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.data import adapters
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.spec.index import (
    IndexSpec,
    Leaf,
    check_leaves,
    flatten,
    format_weights_table,
    load_spec,
)
from pytest_evalindex.testset.records import ScorerRef

BASE = """\
name: demo_index
description: a small index for tests
datasets:
  - name: faq
    weight: 0.3
    task_type: knowledge
    tags: [rag, zh]
    adapter: general_qa
    fields: {input: question, target: answer}
    scorer: includes
    source: data/faq.jsonl
  - name: logic
    weight: 0.7
    task_type: reasoning
    tags: en
    datasets:
      - name: mcq
        tags: [en, hard]
        adapter: general_mcq
        source: data/mcq.csv
      - name: qa2
        task_type: lookup
        adapter: general_qa
        fields: {input: question}
        scorer: {name: includes, threshold: 0.5}
        source: data/faq.jsonl
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding the data files BASE names."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.jsonl").write_text('{"question": "q?", "answer": "a"}\n')
    (data / "mcq.csv").write_text("question,A,B,answer\nq?,x,y,A\n")
    return tmp_path


def write_spec(folder: Path, text: str, name: str = "index.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def edited(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} should occur once in the spec"
    return text.replace(old, new)


def line_with(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based number of the line holding ``fragment`` (its n-th occurrence)."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if fragment in line]
    return hits[occurrence - 1]


def load_error(path: Path) -> EvalIndexError:
    with pytest.raises(EvalIndexError) as info:
        load_spec(path)
    error = info.value
    # one paragraph, no pydantic boilerplate
    assert "\n" not in str(error)
    assert "pydantic" not in str(error).lower()
    assert "http" not in str(error)
    return error


# --- loading and flattening --------------------------------------------------------------


def test_load_and_flatten_the_base_spec(project: Path) -> None:
    spec = load_spec(write_spec(project, BASE))
    assert spec.name == "demo_index"
    assert spec.description == "a small index for tests"
    assert (spec.sampler, spec.count, spec.seed) == ("weighted", 100, 42)
    assert spec.strip_thinking is True
    assert spec.gates == []
    assert spec.model is None and spec.judge is None
    assert spec.path == project / "index.yaml"
    assert spec.base_dir == project

    leaves = flatten(spec)
    assert [leaf.name for leaf in leaves] == ["faq", "mcq", "qa2"]
    assert [leaf.weight for leaf in leaves] == pytest.approx([0.3, 0.35, 0.35], abs=1e-12)
    assert abs(math.fsum(leaf.weight for leaf in leaves) - 1.0) < 1e-12
    assert [leaf.categories for leaf in leaves] == [
        ("demo_index",),
        ("demo_index", "logic"),
        ("demo_index", "logic"),
    ]
    faq, mcq, qa2 = leaves
    assert faq.source == str(project / "data" / "faq.jsonl")
    assert mcq.source == str(project / "data" / "mcq.csv")
    assert (faq.adapter, mcq.adapter, qa2.adapter) == ("general_qa", "general_mcq", "general_qa")
    assert faq.fields == {"input": "question", "target": "answer"}
    assert [leaf.field_path for leaf in leaves] == [
        "datasets[0]",
        "datasets[1].datasets[0]",
        "datasets[1].datasets[1]",
    ]
    assert all(leaf.spec_file == project / "index.yaml" for leaf in leaves)


def test_task_type_and_tags_are_inherited(project: Path) -> None:
    faq, mcq, qa2 = flatten(load_spec(write_spec(project, BASE)))
    assert faq.task_type == "knowledge"
    assert mcq.task_type == "reasoning"  # from its group
    assert qa2.task_type == "lookup"  # its own wins
    assert faq.tags == ("rag", "zh")
    assert mcq.tags == ("en", "hard")  # group's "en" first, not repeated
    assert qa2.tags == ("en",)  # `tags: en` on the group is a one-item list


def test_inheritance_through_nested_groups() -> None:
    spec = IndexSpec.from_dict(
        {
            "name": "root",
            "datasets": [
                {
                    "name": "outer",
                    "task_type": "outer_type",
                    "tags": ["a", "b"],
                    "datasets": [
                        {
                            "name": "inner",
                            "task_type": "inner_type",
                            "tags": "c",
                            "datasets": [
                                {"name": "deep", "tags": ["b", "d", "c"], "source": "x.jsonl"}
                            ],
                        },
                        {"name": "shallow", "source": "y.jsonl"},
                    ],
                },
                {"name": "plain", "source": "z.jsonl"},
            ],
        }
    )
    deep, shallow, plain = flatten(spec)
    assert (deep.task_type, deep.tags) == ("inner_type", ("a", "b", "c", "d"))
    assert deep.categories == ("root", "outer", "inner")
    assert (shallow.task_type, shallow.tags) == ("outer_type", ("a", "b"))
    assert (plain.task_type, plain.tags, plain.categories) == ("default", (), ("root",))


def test_weights_normalise_per_level_and_sum_to_one() -> None:
    spec = IndexSpec.from_dict(
        {
            "name": "root",
            "datasets": [
                {"name": "a", "weight": 2, "source": "a.jsonl"},
                {
                    "name": "g",
                    "weight": 3,
                    "datasets": [
                        {"name": "b", "weight": 1, "source": "b.jsonl"},
                        {"name": "c", "weight": 1, "source": "c.jsonl"},
                        {
                            "name": "h",
                            "weight": 2,
                            "datasets": [
                                {"name": "d", "weight": 0.1, "source": "d.jsonl"},
                                {"name": "e", "weight": 0.3, "source": "e.jsonl"},
                            ],
                        },
                    ],
                },
                {"name": "f", "weight": 5, "source": "f.jsonl"},
            ],
        }
    )
    weights = {leaf.name: leaf.weight for leaf in flatten(spec)}
    assert list(weights) == ["a", "b", "c", "d", "e", "f"]
    expected = {
        "a": 0.2,
        "b": 0.3 * 0.25,
        "c": 0.3 * 0.25,
        "d": 0.3 * 0.5 * 0.25,
        "e": 0.3 * 0.5 * 0.75,
        "f": 0.5,
    }
    for name, weight in expected.items():
        assert weights[name] == pytest.approx(weight, abs=1e-12)
    assert abs(math.fsum(weights.values()) - 1.0) < 1e-12


def test_root_weight_of_a_single_dataset_is_ignored() -> None:
    spec = IndexSpec.from_dict(
        {"name": "r", "datasets": [{"name": "only", "weight": 7.5, "source": "a.jsonl"}]}
    )
    assert [leaf.weight for leaf in flatten(spec)] == [1.0]


def test_scorer_shorthand_and_full_form(project: Path) -> None:
    spec = load_spec(write_spec(project, BASE))
    faq, mcq, qa2 = flatten(spec)
    assert faq.scorer == ScorerRef(name="includes")
    assert mcq.scorer is None  # general_mcq's default applies later
    assert qa2.scorer == ScorerRef(name="includes", threshold=0.5)


def test_model_judge_gates_and_settings(project: Path) -> None:
    text = edited(
        "description: a small index for tests\n",
        "sampler: stratified\ncount: 7\nseed: -3\nstrip_thinking: false\n"
        "gates: ['index >= 0.5']\n"
        "model: {name: m, base_url: 'http://127.0.0.1:1/v1', api_key_env: KEY,\n"
        "        generation: {temperature: 0.0, max_tokens: 64}}\n"
        "judge: {name: j}\n",
    )
    spec = load_spec(write_spec(project, text))
    assert (spec.sampler, spec.count, spec.seed, spec.strip_thinking) == (
        "stratified",
        7,
        -3,
        False,
    )
    assert spec.gates == ["index >= 0.5"]
    assert spec.model is not None and spec.judge is not None
    assert spec.model.api_key_env == "KEY"
    assert spec.model.generation == {"temperature": 0.0, "max_tokens": 64}
    assert (spec.judge.name, spec.judge.base_url, spec.judge.generation) == ("j", None, {})


def test_sources_resolve_against_the_spec_folder_not_cwd(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    spec = load_spec(write_spec(project, BASE))
    assert flatten(spec)[0].source == str(project / "data" / "faq.jsonl")


def test_from_dict_resolves_against_cwd_or_the_given_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"name": "r", "datasets": [{"name": "a", "source": "d/a.jsonl"}]}
    monkeypatch.chdir(tmp_path)
    without_path = IndexSpec.from_dict(data)
    assert without_path.path is None
    assert flatten(without_path)[0].source == str(tmp_path / "d" / "a.jsonl")
    with_path = IndexSpec.from_dict(data, path="/srv/specs/index.yaml")
    assert flatten(with_path)[0].source == "/srv/specs/d/a.jsonl"
    assert flatten(with_path)[0].spec_file == Path("/srv/specs/index.yaml")


def test_home_and_absolute_sources(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(project / "data"))
    text = edited("source: data/faq.jsonl\n  - name: logic", "source: ~/faq.jsonl\n  - name: logic")
    text = edited("source: data/mcq.csv", f"source: {project / 'data' / 'mcq.csv'}", text)
    faq, mcq, _ = flatten(load_spec(write_spec(project, text)))
    assert faq.source == str(project / "data" / "faq.jsonl")
    assert mcq.source == str(project / "data" / "mcq.csv")


def test_remote_sources_pass_unchanged(project: Path) -> None:
    text = edited("source: data/mcq.csv", "source: hf://datasets/org/mcq")
    assert flatten(load_spec(write_spec(project, text)))[1].source == "hf://datasets/org/mcq"


# --- the weights table -------------------------------------------------------------------


def test_format_weights_table(project: Path) -> None:
    table = format_weights_table(flatten(load_spec(write_spec(project, BASE))))
    lines = table.splitlines()
    assert lines[0].split() == ["dataset", "categories", "task_type", "tags", "weight"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["faq", "demo_index", "knowledge", "rag,zh", "0.3000"]
    assert lines[3].split() == ["mcq", "demo_index/logic", "reasoning", "en,hard", "0.3500"]
    assert lines[4].split() == ["qa2", "demo_index/logic", "lookup", "en", "0.3500"]
    assert lines[-1].split() == ["TOTAL", "1.0000"]
    # the weight column is right-aligned
    assert len({len(line) for line in lines if line.endswith(("0", "t"))}) == 1


def test_format_weights_table_marks_missing_tags() -> None:
    leaf = Leaf(
        name="x",
        weight=1.0,
        categories=("r",),
        task_type="default",
        tags=(),
        source=None,
        adapter="general_qa",
        scorer=None,
    )
    assert format_weights_table([leaf]).splitlines()[2].split() == [
        "x",
        "r",
        "default",
        "-",
        "1.0000",
    ]


# --- validation errors -------------------------------------------------------------------

# (old text, new text, field path, text on the expected line [, which occurrence], message)
REJECTIONS = [
    pytest.param(
        "    weight: 0.3\n",
        "    wieght: 0.3\n",
        "datasets[0].wieght",
        "wieght",
        r"unknown key 'wieght'; did you mean 'weight'\?",
        id="typo-weight",
    ),
    pytest.param(
        "description: a small index for tests",
        "sampel: weighted",
        "sampel",
        "sampel",
        r"unknown key 'sampel'; did you mean 'sampler'\?",
        id="typo-root-key",
    ),
    pytest.param(
        "threshold: 0.5",
        "threshhold: 0.5",
        "datasets[1].datasets[1].scorer.threshhold",
        "threshhold",
        r"unknown key 'threshhold'; did you mean 'threshold'\?",
        id="typo-in-scorer",
    ),
    pytest.param(
        "        source: data/mcq.csv",
        "        source: data/mcq.csv\n        colour: blue",
        "datasets[1].datasets[0].colour",
        "colour",
        r"unknown key 'colour'; expected one of: name, weight, task_type, tags, source",
        id="unknown-key-lists-keys",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: 0",
        "datasets[1].weight",
        ("weight: 0", 2),
        r"weight must be a positive, finite number, got 0",
        id="weight-zero",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: -1",
        "datasets[1].weight",
        "weight: -1",
        r"positive, finite number, got -1",
        id="weight-negative",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: .nan",
        "datasets[1].weight",
        "weight: .nan",
        r"positive, finite number, got nan",
        id="weight-nan",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: .inf",
        "datasets[1].weight",
        "weight: .inf",
        r"positive, finite number, got inf",
        id="weight-inf",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: true",
        "datasets[1].weight",
        "weight: true",
        r"weight must be a positive number, got the boolean true",
        id="weight-bool",
    ),
    pytest.param(
        "    weight: 0.7",
        "    weight: heavy",
        "datasets[1].weight",
        "weight: heavy",
        r"weight must be a positive number, got the string 'heavy'",
        id="weight-text",
    ),
    pytest.param(
        "      - name: mcq",
        "      - name: mc/q",
        "datasets[1].datasets[0].name",
        "mc/q",
        r"dataset name 'mc/q' contains '/'",
        id="name-slash",
    ),
    pytest.param(
        "      - name: mcq",
        "      - name: 'mc::q'",
        "datasets[1].datasets[0].name",
        "mc::q",
        r"contains '::'",
        id="name-colons",
    ),
    pytest.param(
        "      - name: mcq",
        "      - name: mc q",
        "datasets[1].datasets[0].name",
        "mc q",
        r"contains whitespace",
        id="name-space",
    ),
    pytest.param(
        "      - name: mcq",
        "      - name: ''",
        "datasets[1].datasets[0].name",
        "name: ''",
        r"a dataset name cannot be empty",
        id="name-empty",
    ),
    pytest.param(
        "      - name: mcq",
        "      - name: 2024",
        "datasets[1].datasets[0].name",
        "2024",
        r"expected text, got the number 2024; put it in quotes",
        id="name-number",
    ),
    pytest.param(
        "      - name: mcq\n",
        "      - task_type: x\n",
        "datasets[1].datasets[0].name",
        "task_type: x",
        r"missing required key 'name'",
        id="name-missing",
    ),
    pytest.param(
        "    tags: en\n",
        "    tags: en\n    source: data/faq.jsonl\n",
        "datasets[1].source",
        ("source: data/faq.jsonl", 2),
        r"'logic' is a group \(it has `datasets`\), so it cannot also have `source`",
        id="group-with-source",
    ),
    pytest.param(
        "    tags: en\n",
        "    tags: en\n    adapter: general_qa\n    scorer: includes\n",
        "datasets[1].adapter",
        ("adapter: general_qa", 2),
        r"cannot also have `adapter`, `scorer`",
        id="group-with-adapter-and-scorer",
    ),
    pytest.param(
        "  - name: logic\n",
        "  - name: empty\n    datasets: []\n  - name: logic\n",
        "datasets[1].datasets",
        "datasets: []",
        r"empty group: 'empty' has `datasets: \[\]`",
        id="empty-group",
    ),
    pytest.param(
        "  - name: logic\n",
        "  - name: empty\n    datasets:\n  - name: logic\n",
        "datasets[1].datasets",
        "    datasets:",
        r"empty group: 'empty' has `datasets:` with nothing under it",
        id="empty-group-null",
    ),
    pytest.param(
        "      - name: qa2",
        "      - name: mcq",
        "datasets[1].datasets[1].name",
        ("- name: mcq", 2),
        r"two datasets in the same list are both named 'mcq' \(datasets\[1\]\.datasets\[0\] "
        r"and datasets\[1\]\.datasets\[1\]\)",
        id="duplicate-siblings",
    ),
    pytest.param(
        "  - name: logic",
        "  - name: faq",
        "datasets[1].name",
        ("- name: faq", 2),
        r"two datasets in the same list are both named 'faq' \(datasets\[0\] and datasets\[1\]\)",
        id="duplicate-sibling-group",
    ),
    pytest.param(
        "      - name: qa2",
        "      - name: faq",
        "datasets[1].datasets[1].name",
        ("- name: faq", 2),
        r"dataset name 'faq' is used twice \(datasets\[0\] and datasets\[1\]\.datasets\[1\]\); "
        r"dataset names must be unique across the whole index because sample ids read "
        r"'<dataset>/<id>'\. Rename one \(e\.g\. `name: faq_2`\) and add `adapter: general_qa`",
        id="duplicate-leaves-across-groups",
    ),
    pytest.param(
        "description: a small index for tests",
        "sampler: wieghted",
        "sampler",
        "sampler:",
        r"expected 'weighted', 'stratified' or 'uniform', got the string 'wieghted'; "
        r"did you mean 'weighted'\?",
        id="sampler",
    ),
    pytest.param(
        "description: a small index for tests",
        "count: 0",
        "count",
        "count: 0",
        r"must be greater than 0, got 0",
        id="count-zero",
    ),
    pytest.param(
        "description: a small index for tests",
        "count: true",
        "count",
        "count: true",
        r"expected a whole number, got the boolean true",
        id="count-bool",
    ),
    pytest.param(
        "description: a small index for tests",
        "seed: 1.5",
        "seed",
        "seed: 1.5",
        r"expected a whole number, got the number 1.5",
        id="seed-float",
    ),
    pytest.param(
        "description: a small index for tests",
        "model: qwen",
        "model",
        "model: qwen",
        r"expected a mapping \(key: value pairs\), got the string 'qwen'",
        id="model-not-mapping",
    ),
    pytest.param(
        "description: a small index for tests",
        "judge: {name: j, base_ulr: x}",
        "judge.base_ulr",
        "judge:",
        r"unknown key 'base_ulr'; did you mean 'base_url'\?",
        id="typo-in-judge",
    ),
    pytest.param(
        "    tags: [rag, zh]",
        "    tags: [rag, [zh]]",
        "datasets[0].tags[1]",
        "tags: [rag, [zh]]",
        r"expected text, got a list",
        id="tag-not-text",
    ),
    pytest.param(
        "    fields: {input: question, target: answer}",
        "    fields: [question, answer]",
        "datasets[0].fields",
        "fields: [question",
        r"expected a mapping",
        id="fields-not-mapping",
    ),
    pytest.param(
        "    task_type: knowledge",
        "    task_type: yes",
        "datasets[0].task_type",
        "task_type: yes",
        r"expected text, got the boolean true; put it in quotes",
        id="task-type-bool",
    ),
    pytest.param(
        "    scorer: includes",
        "    scorer: 5",
        "datasets[0].scorer",
        "scorer: 5",
        r"expected a scorer name \(`scorer: includes`\) or a mapping with `name:`, got the "
        r"number 5",
        id="scorer-not-name-or-mapping",
    ),
    pytest.param(
        "name: demo_index",
        "name: demo/index",
        "name",
        "name: demo/index",
        r"index name 'demo/index' cannot contain '/'",
        id="root-name-slash",
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "line_fragment", "message"), REJECTIONS)
def test_rejections_name_file_line_and_field(
    project: Path,
    old: str,
    new: str,
    field: str,
    line_fragment: str | tuple[str, int],
    message: str,
) -> None:
    text = edited(old, new)
    if isinstance(line_fragment, str):
        line_fragment = (line_fragment, 1)
    path = write_spec(project, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.field == field
    assert error.line == line_with(text, *line_fragment)
    assert re.search(message, error.message), error.message
    assert str(error).startswith(f"{path}:{error.line}: {field}: ")


def test_error_names_the_path_as_given(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_spec(project, edited("    weight: 0.3\n", "    wieght: 0.3\n"))
    monkeypatch.chdir(project)
    error = load_error(Path("index.yaml"))
    assert str(error).startswith("index.yaml:5: datasets[0].wieght: unknown key 'wieght'")


def test_typo_of_a_required_key_reports_the_typo(project: Path) -> None:
    text = edited("      - name: mcq", "      - nmae: mcq")
    error = load_error(write_spec(project, text))
    assert error.field == "datasets[1].datasets[0].nmae"
    assert error.message == "unknown key 'nmae'; did you mean 'name'?"


def test_several_problems_report_the_first_and_count_the_rest(project: Path) -> None:
    text = edited("    weight: 0.3", "    weight: -2")
    text = edited("    weight: 0.7", "    wieght: 0.7", text)
    text = edited("description: a small index for tests", "count: 0", text)
    error = load_error(write_spec(project, text))
    assert error.field == "count"
    assert error.line == 2
    assert error.message == "must be greater than 0, got 0 (and 2 other problems)"


def test_missing_spec_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.yaml")
    assert error.file == str(tmp_path / "nope.yaml")
    assert "no such file" in str(error)


def test_yaml_syntax_error_gives_the_line(project: Path) -> None:
    text = edited("    tags: [rag, zh]", "    tags: [rag, zh")
    path = write_spec(project, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.line == line_with(text, "adapter: general_qa")
    assert error.message.startswith("invalid YAML at column")
    assert "flow sequence" in error.message


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [
        ("- name: a\n- name: b\n", "should be a mapping with at least `name:` and `datasets:`", 1),
        ("just text\n", "not the string 'just text'", 1),
        ("# only a comment\n", "the spec is empty", None),
        ("", "the spec is empty", None),
    ],
)
def test_top_level_must_be_a_mapping(
    tmp_path: Path, text: str, expected: str, line: int | None
) -> None:
    error = load_error(write_spec(tmp_path, text))
    assert expected in error.message
    assert error.line == line


def test_root_without_datasets(tmp_path: Path) -> None:
    error = load_error(write_spec(tmp_path, "name: x\n"))
    assert (error.field, error.line) == ("datasets", 1)
    assert error.message == "missing required key 'datasets'"
    error = load_error(write_spec(tmp_path, "name: x\ndatasets: []\n"))
    assert (error.field, error.line) == ("datasets", 2)
    assert "lists no datasets" in error.message


def test_duplicate_yaml_keys_are_rejected(project: Path) -> None:
    text = edited("    scorer: includes\n", "    scorer: includes\n    weight: 2\n")
    error = load_error(write_spec(project, text))
    assert error.field == "datasets[0].weight"
    assert error.line == line_with(text, "weight: 2")
    assert f"lines {line_with(text, 'weight: 0.3')} and {error.line}" in error.message


def test_from_dict_errors_name_the_path_but_no_line() -> None:
    with pytest.raises(EvalIndexError) as info:
        IndexSpec.from_dict(
            {"name": "r", "datasets": [{"name": "a", "weight": 0}]}, path="spec.yaml"
        )
    assert (info.value.file, info.value.line, info.value.field) == (
        "spec.yaml",
        None,
        "datasets[0].weight",
    )
    with pytest.raises(EvalIndexError, match="should be a mapping"):
        IndexSpec.from_dict(["not", "a", "mapping"])


# --- leaf checks -------------------------------------------------------------------------


def test_leaf_that_is_no_benchmark_and_names_no_adapter(project: Path) -> None:
    text = edited("    adapter: general_qa\n    fields: {input: question, target: answer}\n", "")
    text = edited("  - name: faq", "  - name: my_faq", text)
    error = load_error(write_spec(project, text))
    assert error.field == "datasets[0].name"
    assert error.line == line_with(text, "name: my_faq")
    assert error.message == (
        "dataset 'my_faq' is not a built-in benchmark and names no adapter; add "
        "`adapter: general_qa` with `fields: {input: ..., target: ...}` or "
        "`adapter: general_mcq`"
    )


def test_leaf_name_close_to_a_benchmark_suggests_it(project: Path) -> None:
    text = edited("        adapter: general_mcq\n", "")
    text = edited("      - name: mcq", "      - name: general_mcqq", text)
    error = load_error(write_spec(project, text))
    assert "(did you mean 'general_mcq'?)" in error.message


def test_unknown_adapter_lists_the_known_ones(project: Path) -> None:
    text = edited("        adapter: general_mcq", "        adapter: general_mqc")
    error = load_error(write_spec(project, text))
    assert error.field == "datasets[1].datasets[0].adapter"
    assert error.line == line_with(text, "general_mqc")
    known = adapters.known_adapters()
    assert {"general_qa", "general_mcq"} <= set(known)
    assert error.message == (
        f"unknown adapter 'general_mqc'; did you mean 'general_mcq'? known adapters: "
        f"{', '.join(known)}"
    )


def test_missing_source_names_the_resolved_path(project: Path) -> None:
    text = edited("source: data/mcq.csv", "source: data/../data/missing.csv")
    path = write_spec(project, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.field == "datasets[1].datasets[0].source"
    assert error.line == line_with(text, "missing.csv")
    assert error.message == f"source not found: {project / 'data' / 'missing.csv'}"


def test_leaf_without_source(project: Path) -> None:
    text = edited("        source: data/mcq.csv\n", "")
    error = load_error(write_spec(project, text))
    assert error.field == "datasets[1].datasets[0]"
    assert error.line == line_with(text, "- name: mcq")
    assert "dataset 'mcq' has no source; add `source:`" in error.message


def test_adapter_check_errors_get_the_spec_line(project: Path) -> None:
    # general_qa needs fields.input; its error names the field but not the line
    text = edited("        fields: {input: question}", "        fields: {target: answer}")
    path = write_spec(project, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.field == "datasets[1].datasets[1].fields.input"
    assert error.line == line_with(text, "fields: {target: answer}")
    assert "general_qa needs the column that holds the prompt" in error.message


def test_check_leaves_on_a_dict_spec(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{}\n")
    spec = IndexSpec.from_dict(
        {
            "name": "r",
            "datasets": [
                {
                    "name": "a",
                    "adapter": "general_qa",
                    "fields": {"input": "q"},
                    "source": "a.jsonl",
                },
                {"name": "b", "adapter": "general_qa", "source": "b.jsonl"},
            ],
        },
        path=tmp_path / "spec.yaml",
    )
    with pytest.raises(EvalIndexError) as info:
        check_leaves(spec)
    assert info.value.message == f"source not found: {tmp_path / 'b.jsonl'}"
    assert (info.value.line, info.value.field) == (None, "datasets[1].source")


class FakeBenchmark(adapters.BaseAdapter):
    """A built-in benchmark stand-in: a default source, maybe no default scorer."""

    def __init__(
        self,
        name: str,
        default_source: str | None,
        default_scorer: ScorerRef | None,
        problem: EvalIndexError | None = None,
    ) -> None:
        self.name = name
        self.default_source = default_source
        self.default_scorer = default_scorer
        self.problem = problem
        self.checked: list[Leaf] = []

    def check(self, leaf: Leaf) -> None:
        self.checked.append(leaf)
        if self.problem is not None:
            raise self.problem


class InstalledBenchmarks(dict[str, Any]):
    """Adapters of a distribution installed for the test: setting one declares its entry point."""

    def __init__(self, site: Path, module: types.ModuleType) -> None:
        super().__init__()
        self.module = module
        info = site / "fake_benchmarks-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: fake-benchmarks\nVersion: 1.0\n"
        )
        self.entry_points = info / "entry_points.txt"

    def __setitem__(self, name: str, adapter: Any) -> None:
        super().__setitem__(name, adapter)
        setattr(self.module, name, adapter)
        lines = [f"{n} = {self.module.__name__}:{n}\n" for n in self]
        self.entry_points.write_text("[pytest_evalindex.adapters]\n" + "".join(lines))


@pytest.fixture
def fake_benchmarks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InstalledBenchmarks:
    """Extra adapters, found through the ``pytest_evalindex.adapters`` entry points."""
    module = types.ModuleType("evalindex_fake_benchmarks")
    # the entry points name objects the test changes, so the module lives in memory only
    monkeypatch.setitem(sys.modules, module.__name__, module)
    site = tmp_path / "fake_site"
    installed = InstalledBenchmarks(site, module)
    monkeypatch.syspath_prepend(str(site))
    return installed


FAKE_SPEC = """\
name: bench_index
datasets:
  - name: fakebench
    tags: [en]
  - name: other
    weight: 3
    adapter: general_qa
    fields: {input: question}
    source: data/faq.jsonl
"""


def test_builtin_benchmark_by_name_with_default_source(
    project: Path, fake_benchmarks: dict[str, Any]
) -> None:
    fake = FakeBenchmark("fakebench", str(project / "data" / "faq.jsonl"), ScorerRef(name="em"))
    fake_benchmarks["fakebench"] = fake
    spec = load_spec(write_spec(project, FAKE_SPEC))
    assert [leaf.name for leaf in fake.checked] == ["fakebench"]
    bench, other = flatten(spec)
    assert bench.adapter == "fakebench"
    assert bench.source == str(project / "data" / "faq.jsonl")
    assert bench.scorer is None
    assert (bench.weight, other.weight) == (0.25, 0.75)
    assert fake.checked[0] == bench


def test_builtin_benchmark_renamed_with_adapter(
    project: Path, fake_benchmarks: dict[str, Any]
) -> None:
    fake_benchmarks["fakebench"] = FakeBenchmark(
        "fakebench", str(project / "data" / "faq.jsonl"), ScorerRef(name="em")
    )
    text = edited(
        "  - name: fakebench\n", "  - name: fakebench_hard\n    adapter: fakebench\n", FAKE_SPEC
    )
    leaves = flatten(load_spec(write_spec(project, text)))
    assert (leaves[0].name, leaves[0].adapter) == ("fakebench_hard", "fakebench")


def test_builtin_default_source_in_a_package(
    project: Path, fake_benchmarks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = project / "site" / "evalindex_fake_release"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "rows.jsonl").write_text("{}\n")
    monkeypatch.syspath_prepend(str(project / "site"))
    uri = "pkg://evalindex_fake_release/data/rows.jsonl"
    fake_benchmarks["fakebench"] = FakeBenchmark("fakebench", uri, ScorerRef(name="em"))
    assert flatten(load_spec(write_spec(project, FAKE_SPEC)))[0].source == uri
    fake_benchmarks["fakebench"].default_source = "pkg://evalindex_fake_release/data/gone.jsonl"
    error = load_error(write_spec(project, FAKE_SPEC))
    assert (error.field, error.line) == ("datasets[0]", 3)
    assert "has no file 'data/gone.jsonl'" in error.message


def test_leaf_without_scorer_when_the_adapter_has_no_default(
    project: Path, fake_benchmarks: dict[str, Any]
) -> None:
    fake_benchmarks["fakebench"] = FakeBenchmark(
        "fakebench", str(project / "data" / "faq.jsonl"), None
    )
    error = load_error(write_spec(project, FAKE_SPEC))
    assert (error.field, error.line) == ("datasets[0]", 3)
    assert error.message == (
        "dataset 'fakebench' names no scorer and adapter 'fakebench' has none by default; "
        "add one, e.g. `scorer: includes`"
    )
    text = edited("    tags: [en]\n", "    tags: [en]\n    scorer: includes\n", FAKE_SPEC)
    assert flatten(load_spec(write_spec(project, text)))[0].scorer == ScorerRef(name="includes")


@pytest.mark.parametrize(
    ("problem", "field", "line"),
    [
        (EvalIndexError("needs args.subset"), "datasets[0]", 3),
        (EvalIndexError("bad tag", field="tags"), "datasets[0].tags", 4),
        (EvalIndexError("bad tag", field="datasets[0].tags[0]"), "datasets[0].tags[0]", 4),
        (EvalIndexError("told", line=99, field="datasets[0]"), "datasets[0]", 99),
    ],
)
def test_adapter_check_error_is_completed(
    project: Path,
    fake_benchmarks: dict[str, Any],
    problem: EvalIndexError,
    field: str,
    line: int,
) -> None:
    fake_benchmarks["fakebench"] = FakeBenchmark(
        "fakebench", str(project / "data" / "faq.jsonl"), ScorerRef(name="em"), problem
    )
    path = write_spec(project, FAKE_SPEC)
    error = load_error(path)
    assert (error.file, error.field, error.line) == (str(path), field, line)
    assert error.message == problem.message


def test_adapter_check_error_about_another_file_is_kept(
    project: Path, fake_benchmarks: dict[str, Any]
) -> None:
    problem = EvalIndexError("row 3 is broken", file="/data/rows.jsonl", line=3)
    fake_benchmarks["fakebench"] = FakeBenchmark(
        "fakebench", str(project / "data" / "faq.jsonl"), ScorerRef(name="em"), problem
    )
    with pytest.raises(EvalIndexError) as info:
        load_spec(write_spec(project, FAKE_SPEC))
    assert info.value is problem
