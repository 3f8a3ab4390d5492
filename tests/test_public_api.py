"""The names users import from ``pytest_evalindex``: present, cheap to import, typed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_evalindex

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves() -> None:
    assert sorted(pytest_evalindex.__all__) == sorted(
        [
            "EvalIndexError",
            "FakeOpenAI",
            "Message",
            "ModelAnswer",
            "Record",
            "Score",
            "ScorerRef",
            "__version__",
            "flatten",
            "load_spec",
            "read_testset",
            "sample_index",
            "write_testset",
        ]
    )
    for name in pytest_evalindex.__all__:
        value = getattr(pytest_evalindex, name)
        if name != "__version__":
            # the object itself, re-exported from the module that defines it
            assert value.__name__ == name
    assert set(pytest_evalindex.__all__) <= set(dir(pytest_evalindex))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = pytest_evalindex.nothing_here  # type: ignore[attr-defined]


def test_version_matches_the_distribution() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    assert f'\nversion = "{pytest_evalindex.__version__}"\n' in pyproject


def test_import_stays_cheap() -> None:
    code = (
        "import sys, pytest_evalindex\n"
        "heavy = ['httpx', 'yaml', 'pydantic', 'pytest_evalindex.testset.records']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "pytest_evalindex.Record\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['pydantic', 'pytest_evalindex.testset.records']"]


def test_package_ships_py_typed() -> None:
    assert (ROOT / "pytest_evalindex" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    package_data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert re.search(r'^"pytest_evalindex" = \[.*"py\.typed".*\]$', package_data, re.M)


USER_FILE = """\
from pathlib import Path

from pytest_evalindex import (
    EvalIndexError, FakeOpenAI, Message, ModelAnswer, Record, Score, ScorerRef,
    __version__, flatten, load_spec, read_testset, sample_index, write_testset,
)


def my_scorer(response: str, record: Record, *, strict: bool = False) -> Score:
    return Score(value=float(response == record.target), explanation="compared")


def build(path: Path) -> list[Record]:
    spec = load_spec(path)
    names: list[str] = [leaf.name for leaf in flatten(spec)]
    records = sample_index(spec, count=3, seed=1).records
    write_testset(path.with_suffix(".jsonl"), records)
    header, again = read_testset(path.with_suffix(".jsonl"))
    first = Message(role="user", content=",".join(names))
    ref = ScorerRef(name="exact_match")
    answer = ModelAnswer(content="4")
    version: str = __version__
    with FakeOpenAI(answers={"2+2": "4"}) as server:
        url: str = server.base_url
    try:
        raise EvalIndexError("bad", file=path, line=1)
    except EvalIndexError as exc:
        message: str = exc.message
    return again + [Record(id="x/1", dataset="x", input=[first], scorer=ref)]
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    user = tmp_path / "user_code.py"
    user.write_text(source, "utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-site-packages",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports=silent",
            str(user),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_user_code_type_checks_against_the_public_api(tmp_path: Path) -> None:
    good = _mypy(tmp_path, USER_FILE)
    assert good.returncode == 0, good.stdout + good.stderr
    # the names carry real types, not Any: a misuse is caught
    bad = _mypy(
        tmp_path, USER_FILE + "\nwrong: int = Score(value=1.0, explanation='x').explanation\n"
    )
    assert bad.returncode == 1
    assert (
        'Incompatible types in assignment (expression has type "str", variable has type "int")'
        in bad.stdout
    )
