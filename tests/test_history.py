"""Run history: ``evalindex runs`` and ``evalindex report --history`` over saved runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import make_results, make_sample

from pytest_evalindex.cli import main
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.report.history import render_history
from pytest_evalindex.results.baselines import save_run
from pytest_evalindex.results.history import leaderboard, list_runs
from pytest_evalindex.results.schema import Results
from pytest_evalindex.testing import FakeOpenAI

SET_A, SET_B = "a" * 64, "b" * 64


def results_of(
    passed: set[int] | range,
    *,
    model: str,
    testset: str | None = SET_A,
    count: int = 60,
    index: str = "idx",
    prefix: str = "qa",
    cost: float | None = None,
) -> Results:
    """A results document of ``count`` samples, ``passed`` the ones answered right; even
    samples are task type ``math``, odd ones ``qa``."""
    samples = [
        make_sample(
            f"{prefix}/{i}",
            float(i in passed),
            task_type="math" if i % 2 == 0 else "qa",
            position=i,
        )
        for i in range(count)
    ]
    results = make_results(samples, index_name=index, model=model, testset_sha256=testset)
    if cost is not None:
        results["usage"]["cost"] = {"model": cost, "judge": None, "total": cost, "by_dataset": {}}
    return results


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def table_rows(out: str) -> list[list[str]]:
    """The rows of the first table printed (below its rule), split on runs of 2+ spaces."""
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if set(line) == {"-"}) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Five saved runs of two indexes: idx has models m1 (twice), m2, and m3 on another test
    set; other has one run."""
    root = tmp_path / ".evalindex"
    save_run(results_of(range(0, 50), model="m1", cost=0.25), root=root, name="first")
    save_run(results_of(range(0, 30), model="m2"), root=root, name=None)
    save_run(results_of(range(0, 54), model="m1", cost=0.5), root=root, name="second")
    save_run(results_of(range(0, 40), model="m3", testset=SET_B), root=root, name=None)
    save_run(results_of(range(5), model="m1", index="other", count=10), root=root, name=None)
    return root


# --------------------------------------------------------------------------- the listing


def test_runs_are_listed_newest_first_with_comparable_marks(root: Path) -> None:
    listing = list_runs(root)
    assert [run.key for run in listing.runs] == [
        "other/0001", "idx/0004", "idx/0003", "idx/0002", "idx/0001",
    ]  # fmt: skip
    marks = {run.key: run.comparable for run in listing.runs}
    # idx/0004 ran test set B, alone; the others of idx ran A (as did other/0001)
    assert marks == {
        "other/0001": "A", "idx/0004": None, "idx/0003": "A", "idx/0002": "A", "idx/0001": "A",
    }  # fmt: skip
    first = next(run for run in listing.runs if run.key == "idx/0001")
    assert first.label == "first" and first.model == "m1"
    assert first.score == pytest.approx(50 / 60)
    assert first.task_types == {"math": pytest.approx(25 / 30), "qa": pytest.approx(25 / 30)}
    assert first.cost == 0.25
    assert first.commit is None  # tmp_path is not in a git repository


def test_saved_times_order_runs_across_indexes(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for index, stamp in (("b", "2026-01-03T00:00:00+00:00"), ("a", "2026-01-01T00:00:00+00:00")):
        path = save_run(results_of(range(3), model="m", index=index, count=4), root=root)
        document = json.loads(path.read_text("utf-8"))
        document["run"]["saved"]["saved_at"] = stamp
        path.write_text(json.dumps(document), "utf-8")
    newer = save_run(results_of(range(3), model="m", index="a", count=4), root=root)
    document = json.loads(newer.read_text("utf-8"))
    document["run"]["saved"]["saved_at"] = "2026-01-02T00:00:00+00:00"
    newer.write_text(json.dumps(document), "utf-8")
    assert [run.key for run in list_runs(root).runs] == ["b/0001", "a/0002", "a/0001"]


def test_cli_lists_every_column_and_filters_by_index(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "idx", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["run", "saved", "(UTC)", "model"]
    assert header[-3:] == ["math", "qa", "cost"]
    rows = table_rows(out)
    assert [row[0] for row in rows] == [
        "idx/0004_run", "idx/0003_second", "idx/0002_run", "idx/0001_first",
    ]  # fmt: skip
    by_run = {row[0]: row for row in rows}
    # run, saved, model, commit, test set, cmp, index, CI, math, qa, cost
    second = by_run["idx/0003_second"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", second[1])
    assert second[2:6] == ["m1", "-", "a" * 12, "A"]
    assert second[6] == f"{54 / 60:.4f}" and second[7].startswith("[")
    assert second[8:] == [f"{27 / 30:.4f}", f"{27 / 30:.4f}", "$0.5000"]
    assert by_run["idx/0004_run"][4:6] == ["b" * 12, "-"]
    assert by_run["idx/0002_run"][-1] == "-"  # no cost in the document
    assert "same letter ran the same test set" in out
    assert "other/" not in out


def test_commit_comes_from_the_saved_git_facts(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return completed.stdout.strip()

    git("init", "-q", "-b", "main")
    (tmp_path / "spec.yaml").write_text("name: x\n", encoding="utf-8")
    git("add", "spec.yaml")
    git("commit", "-q", "-m", "spec")
    commit = git("rev-parse", "HEAD")
    save_run(results_of(range(3), model="m", count=4), root=tmp_path / ".evalindex")
    (tmp_path / "spec.yaml").write_text("name: y\n", encoding="utf-8")
    save_run(results_of(range(3), model="m", count=4), root=tmp_path / ".evalindex")
    result = run_cli("runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    commits = [row[3] for row in table_rows(result.stdout)]
    assert commits == [f"{commit[:10]}-dirty", commit[:10]]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: None, [], r"no saved runs: .*runs does not exist; save one with: pytest"),
        (lambda p: (p / "runs").mkdir(parents=True), [], r"no saved runs under .*runs; save"),
        (
            lambda p: save_run(results_of(range(2), model="m", count=3), root=p),
            ["nope"],
            r"no saved runs of index 'nope' under .*runs \(indexes with saved runs: idx\)",
        ),
    ],
    ids=["missing-root", "empty-root", "unknown-index"],
)
def test_nothing_to_list_is_one_message_and_status_4(
    tmp_path: Path, make: Any, args: list[str], message: str
) -> None:
    results_root = tmp_path / ".evalindex"
    make(results_root)
    for command in (["runs", *args], ["report", "--history", *args, "--html", "h.html"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 4, result
        assert result.stdout == ""
        assert re.fullmatch(f"evalindex: error: {message}.*\n", result.stderr), result.stderr
    assert not (tmp_path / "h.html").exists()


def test_a_broken_saved_file_is_left_out_with_a_warning(root: Path) -> None:
    broken = root / "runs" / "idx" / "0009_broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = run_cli("runs", "idx", "--dir", root, cwd=root.parent)
    assert result.returncode == 0
    assert "0009" not in result.stdout
    assert result.stderr.startswith(f"evalindex: warning: left out: {broken}:1: not valid JSON")
    with pytest.raises(EvalIndexError):
        list_runs(root, "no-such-index")


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_takes_each_models_latest_run_and_pairs_it_with_the_best(
    root: Path,
) -> None:
    runs = [run for run in list_runs(root).runs if run.index == "idx"]
    standings = leaderboard(runs, n_boot=500)
    assert [(s.rank, s.run.model, s.run.key) for s in standings] == [
        (1, "m1", "idx/0003"), (2, "m3", "idx/0004"), (3, "m2", "idx/0002"),
    ]  # fmt: skip
    best, m3, m2 = standings
    assert best.best and best.verdict == "best" and best.delta is None
    # m2 misses 24 of the 54 that m1 gets right and gets none right that m1 misses
    assert m2.verdict == "below"
    assert m2.paired_count == 60
    assert m2.delta == pytest.approx(30 / 60 - 54 / 60)
    assert m2.p_value is not None and m2.p_value < 0.05
    assert m2.ci95 is not None and m2.ci95[1] < 0
    # m3 ran another test set with the same ids: paired on the shared ones all the same
    assert m3.paired_count == 60 and m3.verdict == "below"


def test_a_close_model_is_not_significantly_below(tmp_path: Path) -> None:
    save_run(results_of(range(0, 50), model="best"), root=tmp_path)
    # one sample fewer: a difference no test can call
    save_run(results_of(range(1, 50), model="close"), root=tmp_path)
    # a run sharing no sample id with the best cannot be paired
    save_run(results_of(range(0, 10), model="apart", prefix="other"), root=tmp_path)
    standings = leaderboard(list_runs(tmp_path).runs, n_boot=500)
    verdicts = {s.run.model: s.verdict for s in standings}
    assert verdicts == {"best": "best", "close": "not below", "apart": "no pairs"}
    close = next(s for s in standings if s.run.model == "close")
    assert close.p_value is not None and close.p_value > 0.05
    apart = next(s for s in standings if s.run.model == "apart")
    assert apart.note is not None and apart.note.startswith("no sample is scored in both runs")


def test_history_usage_errors_exit_2(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["report"], "give a RESULTS.json file, or --history"),
        (["report", "--history", "idx"], "--history needs --html OUT.html"),
        (["report", "x.json", "--history", "--html", "h.html"], "not a results file (x.json)"),
        (
            ["report", "--history", "--html", "h.html", "--compare", "b.json"],
            "--history does not take --compare",
        ),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as info:
            main([*args, "--dir", str(root)])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_page_payload_links_are_relative_to_the_page(root: Path, tmp_path: Path) -> None:
    listing = list_runs(root, "idx")
    (root / "runs" / "idx" / "0003_second.html").write_text("<p>case page</p>", "utf-8")
    page = render_history(listing, page_dir=tmp_path / "site", n_boot=200)
    match = re.search(r'id="evalindex-history">(.*?)</script>', page.text, re.S)
    assert match is not None
    data = json.loads(match.group(1))
    runs = {run["key"]: run for run in data["indexes"][0]["runs"]}
    assert runs["idx/0003"]["json_href"] == "../.evalindex/runs/idx/0003_second.json"
    assert runs["idx/0003"]["html_href"] == "../.evalindex/runs/idx/0003_second.html"
    assert runs["idx/0002"]["html_href"] is None
    assert [s["verdict"] for s in data["indexes"][0]["leaderboard"]] == [
        "best", "below", "below",
    ]  # fmt: skip
    assert list(page.leaderboards) == ["idx"]


def test_page_is_self_contained_and_its_script_builds_no_markup(root: Path) -> None:
    from importlib import resources

    page = render_history(list_runs(root, "idx"), n_boot=200).text
    assert page.count("<script") == 2 and "<link " not in page
    # no address but the SVG namespace, which names and loads nothing
    assert re.findall(r"https?://[^\s\"']*", page) == ["http://www.w3.org/2000/svg"]
    assert "default-src 'none'" in page
    script = (resources.files("pytest_evalindex.report") / "assets" / "history.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert not re.search(r"new\s+Function", script)
    assert "textContent" in script


# --------------------------------------------------------------------------- end to end

N = 40
SPEC = f"""
name: upgrade
sampler: uniform
count: {N}
seed: 3
datasets:
  - name: facts
    task_type: knowledge
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
  - name: sums
    task_type: arithmetic
    adapter: general_qa
    source: sums.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""


def reply_by_model(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """``strong`` answers every record right; ``weak`` every third one only."""
    number = int(messages[-1]["content"].split()[-1])
    right = body["model"] == "strong" or number % 3 == 0
    return f"A{number}" if right else "wrong"


def test_runs_and_history_page_from_real_runs_of_two_models(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    pytester.makefile(".yaml", upgrade=SPEC)
    for name in ("facts", "sums"):
        rows = [json.dumps({"id": i, "q": f"{name} {i}", "a": f"A{i}"}) for i in range(N)]
        (pytester.path / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    with FakeOpenAI(responder=reply_by_model) as fake:
        for model in ("weak", "strong", "weak"):
            result = pytester.runpytest(
                "--index", "upgrade.yaml", "--index-base-url", fake.base_url,
                "--index-model", model, "--index-no-cache", "-p", "no:cacheprovider",
                "--index-save", model, *run_mode,
            )  # fmt: skip
            assert result.ret in (0, 1), result.stdout.str()
    saved = sorted(p.name for p in (pytester.path / ".evalindex" / "runs" / "upgrade").iterdir())
    assert saved == ["0001_weak.json", "0002_strong.json", "0003_weak.json"]

    listing = run_cli("runs", cwd=pytester.path)
    assert listing.returncode == 0, listing.stderr
    rows = table_rows(listing.stdout)
    assert [row[0] for row in rows] == [
        "upgrade/0003_weak", "upgrade/0002_strong", "upgrade/0001_weak",
    ]  # fmt: skip
    assert [row[2] for row in rows] == ["weak", "strong", "weak"]
    assert len({row[4] for row in rows}) == 1 and {row[5] for row in rows} == {"A"}
    header = listing.stdout.splitlines()[0].split()
    assert header[-3:] == ["knowledge", "arithmetic", "cost"]
    assert rows[1][6] == "1.0000"

    page = run_cli("report", "--history", "upgrade", "--html", "site/history.html",
                   cwd=pytester.path)  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert page.stderr == "evalindex: history page -> site/history.html\n"
    board = page.stdout.splitlines()
    assert board[0] == "leaderboard of upgrade (the latest run of each model):"
    board_rows = table_rows(page.stdout)
    assert [row[1:4] for row in board_rows] == [
        ["strong", "upgrade/0002_strong", "best"],
        ["weak", "upgrade/0003_weak", "significantly below the best"],
    ]
    text = (pytester.path / "site" / "history.html").read_text("utf-8")
    assert "../.evalindex/runs/upgrade/0003_weak.json" in text
