"""``evalindex publish``: a frozen test set as a dataset folder a hub accepts as it is.

The folder holds:

- ``testset.jsonl``: the test set in this project's layout (header line first);
- ``evalscope/collection.jsonl``: the same records as an EvalScope collection file;
- ``spec.yaml``: the spec, when one was published;
- ``README.md``: the dataset card: YAML front matter the hubs read (``license``,
  ``language``, ``tags``, ``task_categories``, ``configs`` naming the data files) and a body
  with the weights table, the task types and tags, the sampling header and how to run it;
- ``evalindex.lock.json``: the test set's file name, sha256 and record count, the spec's
  sha256 and the version that wrote it (see :mod:`pytest_evalindex.data.published`).

Licenses are never guessed: a source whose license was not stated (``--license`` for all,
``--source-license DATASET=ID`` for one) is listed as "not stated" and warned about.
Publishing the same test set twice writes byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_evalindex.data.published import LOCK_FILE, file_sha256
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record

TESTSET_FILE = "testset.jsonl"
EVALSCOPE_FILE = "evalscope/collection.jsonl"
SPEC_FILE = "spec.yaml"
CARD_FILE = "README.md"
OUR_FILES = (TESTSET_FILE, EVALSCOPE_FILE, SPEC_FILE, CARD_FILE, LOCK_FILE)
NOT_STATED = "not stated"


@dataclass
class Published:
    folder: Path
    lock: dict[str, Any]
    records: int
    warnings: list[str] = field(default_factory=list)


def _load(index: Path) -> tuple[list[Record], dict[str, Any] | None, str | None, Any]:
    """(records, header, spec sha256, spec or None) of a spec or a test set."""
    if index.suffix.lower() in (".yaml", ".yml"):
        from pytest_evalindex.data.sources import source_sha256
        from pytest_evalindex.spec.index import load_spec
        from pytest_evalindex.testset.sampling import sample_index

        spec = load_spec(index)
        result = sample_index(spec)
        return result.records, result.header, source_sha256(str(index)), spec
    if index.is_dir():
        from pytest_evalindex.data.published import folder_testset

        index = folder_testset(index)
    from pytest_evalindex.testset.jsonl import read_testset

    header, records = read_testset(index)
    return records, header, (header or {}).get("spec_sha256"), None


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise EvalIndexError("--to names a file, not a folder", file=folder)
    if folder.is_dir():
        others = [
            p.name for p in folder.iterdir() if p.name not in {*OUR_FILES, "evalscope", ".git"}
        ]
        if others and not (folder / LOCK_FILE).exists():
            shown = ", ".join(sorted(others)[:4])
            raise EvalIndexError(
                f"--to is a folder that already holds other files ({shown}); publish into an "
                "empty or new folder",
                file=folder,
            )


def publish(
    index: Path,
    to: Path,
    *,
    license: str | None = None,
    source_licenses: Mapping[str, str] | None = None,
    languages: Sequence[str] = (),
    repo: str | None = None,
) -> Published:
    """Write the published folder of ``index`` (a spec, a test set or a published folder)."""
    from pytest_evalindex.testset.jsonl import write_evalscope_collection, write_testset

    records, header, spec_sha, spec = _load(index)
    if not records:
        raise EvalIndexError("the test set has no records to publish", file=index)
    source_licenses = dict(source_licenses or {})
    datasets = list(dict.fromkeys(r.dataset for r in records))
    unknown = sorted(set(source_licenses) - set(datasets))
    if unknown:
        raise EvalIndexError(
            f"--source-license names datasets the test set does not have: {', '.join(unknown)}"
        )
    _check_target(to)
    (to / "evalscope").mkdir(parents=True, exist_ok=True)
    write_testset(to / TESTSET_FILE, records, header)
    write_evalscope_collection(to / EVALSCOPE_FILE, records, header)
    if spec is not None:
        shutil.copyfile(index, to / SPEC_FILE)
    elif (to / SPEC_FILE).exists():
        (to / SPEC_FILE).unlink()  # a spec from an earlier publish would not match

    licenses = {d: source_licenses.get(d) or license or NOT_STATED for d in datasets}
    warnings = []
    missing = [d for d, lic in licenses.items() if lic == NOT_STATED]
    if missing:
        warnings.append(
            f"the license of {len(missing)} source(s) was not stated ({', '.join(missing)}): "
            "the card says license: unknown. State it with --license ID (all sources) or "
            "--source-license DATASET=ID; check each source's own terms first"
        )
    import pytest_evalindex

    lock: dict[str, Any] = {
        "testset": TESTSET_FILE,
        "sha256": file_sha256(to / TESTSET_FILE),
        "records": len(records),
        "spec_sha256": spec_sha,
        "version": pytest_evalindex.__version__,
        "evalscope": {"path": EVALSCOPE_FILE, "sha256": file_sha256(to / EVALSCOPE_FILE)},
    }
    card = dataset_card(
        records,
        header,
        licenses=licenses,
        languages=languages,
        repo=repo,
        spec=spec,
        lock=lock,
    )
    (to / CARD_FILE).write_text(card, encoding="utf-8")
    (to / LOCK_FILE).write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return Published(folder=to, lock=lock, records=len(records), warnings=warnings)


# --------------------------------------------------------------------------- the card


def _task_category(record: Record) -> str:
    """The hub task category a record belongs to (the hubs' fixed vocabulary)."""
    if record.choices:
        return "multiple-choice"
    if record.scorer.name == "code":
        return "text-generation"
    return "question-answering"


def _size_category(count: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if count < limit:
            return name
    return "100K<n<1M"


def _front_matter(
    records: Sequence[Record],
    name: str,
    licenses: Mapping[str, str],
    languages: Sequence[str],
) -> dict[str, Any]:
    stated = set(licenses.values())
    if NOT_STATED in stated:
        license_value = "unknown"
    elif len(stated) == 1:
        license_value = stated.pop()
    else:
        license_value = "other"  # several licenses: the body lists each source's
    tags = ["evalindex", "evaluation"]
    for record in records:
        for tag in (record.task_type, *record.tags):
            if tag not in tags and tag != "default":
                tags.append(tag)
    matter: dict[str, Any] = {"license": license_value}
    if languages:
        matter["language"] = list(languages)
    matter.update(
        {
            "pretty_name": name,
            "tags": tags,
            "task_categories": sorted({_task_category(r) for r in records}),
            "size_categories": [_size_category(len(records))],
            "configs": [
                {
                    "config_name": "default",
                    "data_files": [{"split": "test", "path": TESTSET_FILE}],
                },
                {
                    "config_name": "evalscope",
                    "data_files": [{"split": "test", "path": EVALSCOPE_FILE}],
                },
            ],
        }
    )
    return matter


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return lines


def dataset_card(
    records: Sequence[Record],
    header: Mapping[str, Any] | None,
    *,
    licenses: Mapping[str, str],
    languages: Sequence[str] = (),
    repo: str | None = None,
    spec: Any = None,
    lock: Mapping[str, Any],
) -> str:
    """The ``README.md`` of a published folder."""
    header = dict(header or {})
    name = str(header.get("spec") or (spec.name if spec is not None else "evalindex test set"))
    matter = _front_matter(records, name, licenses, languages)
    lines = ["---", yaml.safe_dump(matter, sort_keys=False, allow_unicode=True).rstrip(), "---"]
    lines += ["", f"# {name}", ""]
    description = getattr(spec, "description", None)
    if description:
        lines += [description.strip(), ""]
    lines += [
        f"A frozen evaluation test set of {len(records)} records, published with "
        "[pytest-evalindex](https://pypi.org/project/pytest-evalindex/). Each record is "
        "one pytest test; the index score is the weighted mean over its datasets.",
        "",
        "## Weights",
        "",
    ]
    per_dataset: dict[str, list[Record]] = {}
    for record in records:
        per_dataset.setdefault(record.dataset, []).append(record)
    lines += _table(
        ("dataset", "weight", "records", "task type", "tags", "scorer", "license"),
        [
            (
                dataset,
                f"{group[0].weight:.4f}",
                len(group),
                group[0].task_type,
                ", ".join(group[0].tags) or "-",
                group[0].scorer.name,
                licenses.get(dataset, NOT_STATED),
            )
            for dataset, group in per_dataset.items()
        ],
    )
    task_types = Counter(r.task_type for r in records)
    tags = Counter(tag for r in records for tag in r.tags)
    lines += ["", "## Task types and tags", ""]
    lines += _table(
        ("kind", "name", "records"),
        [("task type", k, v) for k, v in task_types.items()]
        + [("tag", k, v) for k, v in tags.items()],
    )
    lines += ["", "## Sampling", ""]
    sampling = [
        (key, header[key])
        for key in ("seed", "sampler", "count", "selected", "version")
        if header.get(key) is not None
    ]
    lines += _table(("setting", "value"), sampling) if sampling else ["Not recorded."]
    sources = header.get("sources") or {}
    if isinstance(sources, dict) and sources:
        lines += [""]
        lines += _table(
            ("dataset", "source", "sha256"),
            [
                (d, s.get("source", "?"), f"`{s.get('sha256', '?')}`")
                for d, s in sources.items()
                if isinstance(s, dict)
            ],
        )
    index_id = f"hf://{repo}" if repo else "hf://OWNER/NAME"
    lines += [
        "",
        "## Run it",
        "",
        "```bash",
        "pip install 'pytest-evalindex[hf]'",
        f"pytest --index {index_id} --index-base-url http://localhost:8000/v1 --index-model MODEL",
        "```",
        "",
        f"Add `@REVISION` to the id to pin a commit. The first run downloads `{TESTSET_FILE}` "
        f"and checks it against `{LOCK_FILE}`; later runs work offline. A downloaded folder "
        f"runs as it is too: `pytest --index path/to/folder`.",
        "",
        f"EvalScope runs `{EVALSCOPE_FILE}` with its `data_collection` benchmark "
        "(`dataset_args: {data_collection: {local_path: ...}}`).",
        "",
        "## Files",
        "",
    ]
    files = [(TESTSET_FILE, lock["sha256"], "this project's test set (header line first)")]
    evalscope = lock.get("evalscope") or {}
    files.append((EVALSCOPE_FILE, evalscope.get("sha256", "?"), "EvalScope collection layout"))
    if spec is not None:
        files.append((SPEC_FILE, lock.get("spec_sha256") or "?", "the spec it was sampled from"))
    files.append((LOCK_FILE, "-", "file name, sha256 and record count of the test set"))
    lines += _table(("file", "sha256", "what"), [(f, f"`{h}`", w) for f, h, w in files])
    return "\n".join(lines) + "\n"
