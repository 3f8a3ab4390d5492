"""Saved runs: numbered results documents to compare later runs against.

Layout, under the results root (``.evalindex`` by default)::

    runs/<index name>/0001_run.json
    runs/<index name>/0002_baseline.json      --index-save baseline
    runs/<index name>/0003_run.json

A saved file is the run's results document with ``run.saved`` added: the name, the number,
when it was saved, the git commit / branch / dirty flag when the working directory is in a
git repository, and the machine. Numbers only grow; the latest is the highest. Writes are
atomic (a temporary file linked into place), so a reader never sees half a file and two
processes saving at once get two numbers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.schema import Results, SavedInfo

RESULTS_SCHEMA_VERSION = 1
_SAVED_FILE = re.compile(r"^(?P<number>\d{4,})_(?P<name>.*)\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` as one path component: runs of other characters become ``-``."""
    cleaned = _UNSAFE.sub("-", name).strip("-.")
    return cleaned or "run"


def runs_dir(root: Path, index_name: str) -> Path:
    return Path(root) / "runs" / safe_name(index_name)


def saved_runs(root: Path, index_name: str) -> list[tuple[int, Path]]:
    """(number, path) of every saved run of an index, oldest first."""
    folder = runs_dir(root, index_name)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SAVED_FILE.match(path.name)
        if match and path.is_file():
            found.append((int(match["number"]), path))
    return sorted(found)


def save_run(results: Results, *, root: Path, name: str | None = None) -> Path:
    """Write ``results`` as the next numbered run of its index; return the file written.

    ``results`` itself is not changed; the file carries ``run.saved``.
    """
    index_name = str((results.get("index") or {}).get("name") or "index")
    folder = runs_dir(root, index_name)
    folder.mkdir(parents=True, exist_ok=True)
    label = safe_name(name) if name else "run"
    document = copy.deepcopy(results)
    run = document["run"]
    fields: dict[str, Any] = {
        "name": label,
        "number": 0,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    git = git_info(folder)
    if git:
        fields["git"] = git
    fields["machine"] = machine_info()
    saved = run["saved"] = cast(SavedInfo, fields)
    while True:
        existing = saved_runs(root, index_name)
        number = existing[-1][0] + 1 if existing else 1
        saved["number"] = number
        target = folder / f"{number:04d}_{label}.json"
        if _write_new(target, document):
            return target


def _write_new(target: Path, document: Mapping[str, Any]) -> bool:
    """Write ``target`` atomically unless it exists; False when another writer took it."""
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, target)  # fails if target exists: the number is taken
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            if target.exists():
                return False
            os.replace(temporary, target)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write a JSON document atomically (replacing ``path`` if it exists)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def git_info(folder: Path) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository holding ``folder``; None outside one."""

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return completed.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "branch": branch, "dirty": dirty}


def machine_info() -> dict[str, str]:
    return {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def load_baseline(
    root: Path, index_name: str, ref: int | str | Path | None = None
) -> tuple[Path, Results]:
    """The saved run to compare against: the latest (``ref`` None), a number (``3``, ``"3"``,
    ``"0003"``) or a path to a results file."""
    folder = runs_dir(root, index_name)
    if isinstance(ref, Path) or (isinstance(ref, str) and not ref.strip().isdigit()):
        path = Path(ref)
        # a saved run may also be named by its file name, with or without ".json"
        candidates = [path, folder / path.name, folder / f"{path.name}.json"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise EvalIndexError(
                "no such results file; --index-compare takes a saved run number, "
                f"a saved run's file name (see {folder}) or a path",
                file=path,
            )
        return found, read_results(found)
    runs = saved_runs(root, index_name)
    if not runs:
        raise EvalIndexError(
            f"no saved runs for index {index_name!r} under {folder}; run with --index-save first"
        )
    if ref is None:
        path = runs[-1][1]
    else:
        number = int(ref)
        matches = [p for n, p in runs if n == number]
        if not matches:
            available = ", ".join(f"{n:04d}" for n, _ in runs)
            raise EvalIndexError(
                f"no saved run number {number:04d} for index {index_name!r} under {folder} "
                f"(saved: {available})"
            )
        path = matches[-1]
    return path, read_results(path)


def revision_refusal(
    base: Results,
    source: Mapping[str, Any] | None,
    *,
    override: str = "--index-compare-intersection",
) -> str | None:
    """Why a run of a shared index is not compared with a baseline that ran another
    revision of it (None when both ran the same revision, or either is no shared index).
    ``override`` is the option that compares the shared samples anyway."""
    base_source: Mapping[str, Any] = (base.get("run") or {}).get("index_source") or {}
    if not source or not base_source.get("revision") or not source.get("revision"):
        return None
    if (base_source.get("hub"), base_source.get("repo")) != (source["hub"], source["repo"]):
        return None
    if base_source["revision"] == source["revision"]:
        return None
    scheme = "hf" if source["hub"] == "hf" else "modelscope"
    return (
        f"the baseline ran {scheme}://{source['repo']} at revision "
        f"{str(base_source['revision'])[:12]}, this run at {str(source['revision'])[:12]}: "
        f"pin the baseline's revision (--index {scheme}://{source['repo']}@"
        f"{base_source['revision']}) or compare the shared samples with {override}"
    )


def read_results(path: Path) -> Results:
    """A results document from a file, checked for the keys comparisons and merges need."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalIndexError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalIndexError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    check_results(document, file=path)
    return cast(Results, document)


def check_results(document: Any, *, file: str | Path | None = None) -> None:
    """Raise EvalIndexError unless ``document`` looks like a results document."""
    expected = "an evalindex results document (the --index-json / .evalindex/last.json file)"
    if not isinstance(document, dict):
        raise EvalIndexError(f"is not {expected}: the top level is not an object", file=file)
    missing = [key for key in ("schema_version", "index", "samples", "run") if key not in document]
    if missing:
        raise EvalIndexError(
            f"is not {expected}: no {', '.join(repr(k) for k in missing)}", file=file
        )
    version = document["schema_version"]
    if not isinstance(version, int) or version > RESULTS_SCHEMA_VERSION:
        raise EvalIndexError(
            f"results schema_version {version!r} is not supported "
            f"(this version reads {RESULTS_SCHEMA_VERSION}); upgrade pytest-evalindex",
            file=file,
            field="schema_version",
        )
    if not isinstance(document["samples"], list):
        raise EvalIndexError("'samples' is not a list", file=file, field="samples")
    for position, sample in enumerate(document["samples"]):
        if not isinstance(sample, dict) or "id" not in sample or "dataset" not in sample:
            raise EvalIndexError(
                "a sample is an object with at least 'id' and 'dataset'",
                file=file,
                field=f"samples[{position}]",
            )
    if not isinstance(document["index"], dict) or not isinstance(document["run"], dict):
        raise EvalIndexError("'index' and 'run' must be objects", file=file)


def environment_differences(base: Results, new: Results) -> list[str]:
    """What differs between the runs besides the answers: model, endpoint, versions, spec.

    One short phrase each, e.g. ``"model: qwen2.5-14b -> qwen3-14b"``, for a warning line.
    """
    base_run: Mapping[str, Any] = base.get("run") or {}
    new_run: Mapping[str, Any] = new.get("run") or {}
    differences = []
    base_name = (base.get("index") or {}).get("name")
    new_name = (new.get("index") or {}).get("name")
    if base_name != new_name:
        differences.append(f"index: {base_name} -> {new_name}")
    for key, label in (
        ("model", "model"),
        ("base_url", "base URL"),
        ("seed", "sampling seed"),
        ("sampler", "sampler"),
    ):
        if base_run.get(key) != new_run.get(key):
            differences.append(f"{label}: {base_run.get(key)} -> {new_run.get(key)}")
    for key, label in (("spec_sha256", "spec"), ("testset_sha256", "test set")):
        before, after = base_run.get(key), new_run.get(key)
        if before != after:
            differences.append(f"{label} sha256: {_short(before)} -> {_short(after)}")
    base_versions: Mapping[str, Any] = base_run.get("versions") or {}
    new_versions: Mapping[str, Any] = new_run.get("versions") or {}
    for package in dict.fromkeys([*base_versions, *new_versions]):
        before, after = base_versions.get(package), new_versions.get(package)
        if before != after:
            differences.append(f"{package}: {before} -> {after}")
    return differences


def _short(digest: Any) -> str:
    return f"{digest[:12]}…" if isinstance(digest, str) else str(digest)
