"""``evalindex compare`` and ``evalindex merge``: output, exit status, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.cli import main
from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.shards import in_shard


def samples(scores: list[int], *, shard: str | None = None) -> list[dict[str, Any]]:
    made = []
    for i, score in enumerate(scores):
        dataset = "faq" if i % 2 else "quiz"
        made.append(
            {
                "id": f"{dataset}/{i}",
                "dataset": dataset,
                "subset": "default",
                "task_type": "knowledge",
                "tags": ["en"],
                "categories": ["support"],
                "weight": 0.5,
                "outcome": "passed" if score else "missed",
                "score": float(score),
                "position": i,
            }
        )
    return made


def write_results(path: Path, scores: list[int], **run: Any) -> Path:
    run = {"model": "m", "testset_sha256": "a" * 64, **run}
    document = build_results(samples(scores), index_name="support", run=run, n_boot=100)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """400 samples; the new run loses 40 that the base run got right."""
    base_scores = [1] * 280 + [0] * 120
    new_scores = [0] * 40 + [1] * 240 + [0] * 120
    base = write_results(tmp_path / "0001_baseline.json", base_scores)
    new = write_results(tmp_path / "last.json", new_scores, model="m2")
    return base, new


def test_compare_prints_rows_and_flips(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    assert main(["compare", str(base), str(new), "--max-flips", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("base: 0001_baseline, model m")
    assert lines[1].startswith("new:  last, model m2")
    assert lines[2] == "paired samples: 400"
    index_line = next(line for line in lines if line.startswith("index"))
    assert index_line.split()[1:5] == ["support", "0.7000", "0.6000", "-0.1000"]
    assert "passed -> missed (40):" in lines
    assert "  ... 38 more (see the comparison JSON)" in lines
    assert "evalindex: warning: the runs differ in more than the answers: model: m -> m2" in (
        captured.err
    )


def test_compare_fail_rule_sets_exit_status_1(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    status = main(["compare", str(base), str(new), "--fail", "index:2pp", "--fail", "tag:en:20pp"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL index:2pp: index dropped 10.0pp (95% CI " in out
    assert "PASS tag:en:20pp: tag:en dropped 10.0pp" in out
    assert main(["compare", str(base), str(new), "--fail", "index:12pp"]) == 0


def test_compare_writes_the_comparison_document(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    out = tmp_path / "cmp" / "comparison.json"
    assert main(["compare", str(base), str(new), "--json", str(out), "--seed", "3"]) == 0
    capsys.readouterr()
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["schema_version"] == 1
    assert document["paired_count"] == 400
    assert document["base"]["label"] == "0001_baseline"
    assert document["rows"][0]["table"] == "index"
    assert len(document["flips"]["passed_to_missed"]) == 40


def test_different_test_sets_exit_4_unless_intersection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_results(tmp_path / "base.json", [1, 0, 1, 1, 0, 1])
    new = write_results(tmp_path / "new.json", [1, 0, 1, 1])
    assert main(["compare", str(base), str(new)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("evalindex: error: the two runs did not sample the same test set")
    assert "2 sample ids only in the base run" in err and "--intersection" in err
    assert "Traceback" not in err
    assert main(["compare", str(base), str(new), "--intersection"]) == 0
    assert "paired samples: 4  only in base: 2" in capsys.readouterr().out


def test_runs_of_two_revisions_of_a_shared_index_exit_4_unless_intersection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def source(revision: str) -> dict[str, Any]:
        return {"id": "hf://team/index", "hub": "hf", "repo": "team/index",
                "requested": None, "revision": revision, "lock_sha256": "b" * 64}  # fmt: skip

    scores = [1, 0, 1, 1, 0, 1]
    base = write_results(tmp_path / "base.json", scores, index_source=source("1" * 40))
    same = write_results(tmp_path / "same.json", scores, index_source=source("1" * 40))
    new = write_results(tmp_path / "new.json", scores, index_source=source("2" * 40))
    assert main(["compare", str(base), str(same)]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(new)]) == 4
    err = capsys.readouterr().err
    assert err.startswith(
        "evalindex: error: the baseline ran hf://team/index at revision 111111111111, "
        "this run at 222222222222"
    )
    assert err.rstrip().endswith("compare the shared samples with --intersection")
    assert main(["compare", str(base), str(new), "--intersection"]) == 0


def test_bad_files_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_results(tmp_path / "good.json", [1, 0])
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1,', encoding="utf-8")
    assert main(["compare", str(good), str(broken)]) == 4
    assert "broken.json:1: not valid JSON" in capsys.readouterr().err
    assert main(["compare", str(good), str(tmp_path / "missing.json")]) == 4
    assert "missing.json: cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail", "index:2"], "compare-fail rule 'index:2': an absolute margin is at most 1"),
        (["--alpha", "1.5"], "expected a number between 0 and 1, got '1.5'"),
    ],
)
def test_bad_options_are_usage_errors(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base, new = runs
    with pytest.raises(SystemExit) as info:
        main(["compare", str(base), str(new), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_merge_gives_the_single_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = [(i * 7) % 3 % 2 for i in range(60)]
    single = build_results(samples(scores), index_name="support", run={}, seed=5)
    paths = []
    for index in (1, 2, 3):
        mine = [s for s in samples(scores) if in_shard(s["id"], index, 3)]
        run = {"model": "m", "testset_sha256": "a" * 64, "shard": f"{index}/3"}
        path = tmp_path / f"shard{index}.json"
        path.write_text(json.dumps(build_results(mine, index_name="support", run=run)), "utf-8")
        paths.append(str(path))
    out = tmp_path / "all.json"
    assert main(["merge", *paths, "-o", str(out), "--seed", "5"]) == 0
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert merged["index"] == single["index"]
    assert merged["tables"] == single["tables"]
    assert merged["run"]["shards"] == 3
    err = capsys.readouterr().err
    assert f"evalindex: merged 3 results files, 60 samples -> {out} (index support: " in err
    assert main(["merge", paths[0], paths[2], "-o", str(out)]) == 4
    assert "shard 2/3 missing" in capsys.readouterr().err


def test_console_script_exit_status(runs: tuple[Path, Path]) -> None:
    base, new = runs
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", "compare", base, new, "--fail", "index:1pp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "FAIL index:1pp" in completed.stdout


def test_gate_command(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _base, new = runs
    assert main(["gate", str(new), "index>=0.55", "count>=400"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[:2] == ["index>=0.55", "0.6000"]
    assert main(["gate", str(new), "index>=0.65", "tag:zh>=0.1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL index>=0.65: index weighted 0.6000 < 0.6500" in out
    assert "FAIL tag:zh>=0.1: no tag named 'zh' in this run (tags: en)" in out
    with pytest.raises(SystemExit) as info:
        main(["gate", str(new), "index=>0.5"])
    assert info.value.code == 2
    assert "gate 'index=>0.5': unknown operator '=>'" in capsys.readouterr().err
