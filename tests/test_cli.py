from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_evalindex.cli import main
from pytest_evalindex.testset.jsonl import read_testset

SPEC = """\
name: support_index
sampler: weighted
count: 12
seed: 7
datasets:
  - name: faq
    weight: 3
    task_type: knowledge
    tags: [en]
    adapter: general_qa
    fields: {input: question, target: answer, id: uid}
    scorer: {name: includes}
    source: data/faq.jsonl
  - name: quiz
    weight: 1
    task_type: reasoning
    adapter: general_mcq
    source: data/quiz.jsonl
"""


def make_project(folder: Path, *, faq_rows: int = 40, spec: str = SPEC) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    faq = [
        {"uid": f"f{i}", "question": f"Question {i}?", "answer": f"answer {i}"}
        for i in range(faq_rows)
    ]
    quiz = [{"question": f"Pick {i}", "A": "yes", "B": "no", "answer": i % 2} for i in range(20)]
    for name, rows in (("faq", faq), ("quiz", quiz)):
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (data / f"{name}.jsonl").write_text(text, encoding="utf-8")
    spec_path = folder / "index.yaml"
    spec_path.write_text(spec, encoding="utf-8")
    return spec_path


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_flatten_prints_the_weights_table(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import flatten, format_weights_table, load_spec

    spec = make_project(tmp_path)
    result = run_cli("flatten", spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout == format_weights_table(flatten(load_spec(spec))) + "\n"
    assert "faq" in result.stdout and "quiz" in result.stdout


def test_sample_twice_gives_byte_identical_files(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "suite")
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    for out in (first, second):
        result = run_cli("sample", spec, "-o", out)
        assert result.returncode == 0, result.stderr
        # 9 records carry 75% of the index: the small-sample warning, then the summary
        warning, summary = result.stderr.splitlines()
        assert warning.startswith("evalindex: warning: few samples carry much of the index")
        assert summary == f"evalindex: 12 records from 2 datasets -> {out}"
    assert first.read_bytes() == second.read_bytes()

    header, records = read_testset(first)
    assert header is not None
    assert {key: header[key] for key in ("spec", "seed", "sampler", "count", "selected")} == {
        "spec": "support_index",
        "seed": 7,
        "sampler": "weighted",
        "count": 12,
        "selected": 12,
    }
    assert header["sources"]["faq"]["source"] == "data/faq.jsonl"
    assert len(header["sources"]["quiz"]["sha256"]) == 64
    assert [r.dataset for r in records] == ["faq"] * 9 + ["quiz"] * 3
    assert records[0].id.startswith("faq/f") and records[-1].target in ("A", "B")


def test_sample_is_identical_across_checkouts(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "checkout_a")
    shutil.copytree(tmp_path / "checkout_a", tmp_path / "elsewhere" / "checkout_b")
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["sample", str(spec), "-o", str(out_a)]) == 0
    other_spec = tmp_path / "elsewhere" / "checkout_b" / "index.yaml"
    assert main(["sample", str(other_spec), "-o", str(out_b)]) == 0
    assert out_a.read_bytes() == out_b.read_bytes()
    assert str(tmp_path) not in out_a.read_text(encoding="utf-8")


def test_sample_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path)
    out = tmp_path / "out.jsonl"
    args = ["sample", str(spec), "-o", str(out), "--count", "4", "--seed", "1"]
    assert main([*args, "--sampler", "uniform"]) == 0
    header, records = read_testset(out)
    assert header is not None
    assert (header["count"], header["seed"], header["sampler"]) == (4, 1, "uniform")
    assert [r.dataset for r in records] == ["faq", "faq", "quiz", "quiz"]
    assert "4 records from 2 datasets" in capsys.readouterr().err


def test_sample_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path, faq_rows=3)
    assert main(["sample", str(spec), "-o", str(tmp_path / "out.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "evalindex: warning: dataset 'faq': only 3 records" in err
    assert "12 records from 2 datasets" in err


def test_bad_spec_exits_4_without_traceback(tmp_path: Path) -> None:
    spec = make_project(tmp_path, spec=SPEC.replace("source: data/faq.jsonl", "source: nope.jsonl"))
    out = tmp_path / "out.jsonl"
    result = run_cli("sample", spec, "-o", out)
    assert result.returncode == 4
    assert result.stderr.startswith("evalindex: error: ")
    assert "nope.jsonl" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_bad_data_row_exits_4_naming_the_field(tmp_path: Path) -> None:
    spec = make_project(tmp_path, spec=SPEC.replace("input: question", "input: prompt"))
    result = run_cli("sample", spec, "-o", tmp_path / "out.jsonl")
    assert result.returncode == 4
    assert "has no field 'prompt' (fields.input)" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_spec_and_unwritable_output_exit_4(tmp_path: Path) -> None:
    result = run_cli("flatten", tmp_path / "missing.yaml")
    assert result.returncode == 4 and "missing.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    spec = make_project(tmp_path)
    result = run_cli("sample", spec, "-o", tmp_path / "no_such_dir" / "out.jsonl")
    assert result.returncode == 4
    assert "cannot write the test set" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["sample"], ["sample", "x.yaml"], ["sample", "x.yaml", "-o", "o", "--count", "-1"],
     ["sample", "x.yaml", "-o", "o", "--sampler", "random"], ["bogus"]],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage: evalindex" in capsys.readouterr().err


def test_console_script_help_lists_subcommands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "flatten" in result.stdout and "sample" in result.stdout
