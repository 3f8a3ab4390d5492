"""The frozen test set file: JSONL, one record a line, an optional header line.

Our format: the first line may be ``{"_evalindex": {...header...}}``; every other line is a
:class:`~pytest_evalindex.testset.records.Record` as ``Record.model_dump(mode="json")`` (keys in the
model's field order), UTF-8, ``\\n`` line ends. Writing the same records twice gives
byte-identical files.

EvalScope collection files are read and written too. EvalScope's collection sampler writes
one ``DatasetEntry`` a line: ``index`` (position in the file), ``prompt`` (a ``Sample`` dump
without its empty fields: ``input``, ``choices``, ``target``, ``id``, ``metadata`` ...),
``tags``, ``categories`` (the path of group names from the root, as ours), ``task_type``,
``weight``, ``dataset_name`` and ``subset_name``; releases before 0.11 wrote ``task`` instead
of ``task_type`` and had no ``categories``. Reading maps an entry onto a record:

- ``id`` = ``"<dataset_name>/<index>"``; ``subset`` = ``subset_name``; ``task_type`` =
  ``task_type`` or ``task``; empty strings become ``"default"``.
- ``input``: from ``prompt``: ``input`` (chat messages, already formatted with the
  benchmark's prompt template, EvalScope ≥ 1.0; or text), ``messages``, ``data`` (list of
  prompts, older releases; with ``system_prompt``), or a ``question``/``query``/``prompt``
  text. A message's content given as parts keeps its text parts. With ``choices`` and a
  text input the question is formatted as a lettered multiple-choice prompt, as EvalScope
  does at run time.
- ``target``: ``prompt.target``, else ``answer``, else the same keys in ``raw_input``; an
  empty target is None. EvalScope benchmarks that compute their gold answer in code (from
  fields only that benchmark knows) leave it empty; scorers that need a target then fail on
  those records.
- ``choices`` = ``prompt.choices``; ``metadata`` = ``prompt.metadata`` (e.g. IFEval's
  instruction ids).
- ``weight``: EvalScope ≥ 1.3 writes ``W_d / n_d`` on every entry (``n_d`` = the entries of
  dataset ``d``), so a whole file's weights sum to at most 1; then a dataset's ``W_d`` is the
  sum of its entries' weights (for a file cut short, that is the weight EvalScope's own
  weighted average gives the dataset). Releases 0.11 to 1.2 wrote ``W_d`` itself on every
  entry: a file whose weights sum to more than 1, or that uses ``task``, is read that way.
- ``scorer``: the default scorer of the built-in adapter of that name when there is one;
  else ``choice`` when the entry has choices; else by dataset name from ``EVALSCOPE_SCORERS``;
  else ``exact_match``. Benchmarks graded in EvalScope by custom code (e.g. code execution
  details, judge rubrics) are only approximated by these scorers.

:func:`write_evalscope_collection` writes records in the layout of EvalScope ≥ 1.3, so that
EvalScope's ``data_collection`` benchmark can run a test set sampled here:

- ``index`` = the record's position in the file; ``dataset_name`` = ``dataset``;
  ``subset_name`` = ``subset``; ``tags``, ``categories``, ``task_type`` as they are.
- ``prompt.input`` = the record's messages (``role``, ``content``); ``prompt.choices`` (only
  when the record has choices); ``prompt.target`` (``""`` for none); ``prompt.metadata`` =
  the record's metadata.
- ``weight`` = ``W_d / n_d`` with ``n_d`` the records of that dataset in the file.
- What the layout has no place for rides in ``prompt.metadata["_evalindex"]``: the record's
  ``id``, its exact ``weight`` (``W_d``) and ``scorer``, and on the first entry the header.
  Reading such a file takes them from there, so a test set survives the round trip; EvalScope
  keeps the key as opaque metadata.

No header line is written (EvalScope would read it as an entry).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Message, Record, ScorerRef

HEADER_KEY = "_evalindex"

# EvalScope dataset name → our scorer, for datasets without a built-in adapter
EVALSCOPE_SCORERS: dict[str, str] = {
    "gsm8k": "math",
    "math_500": "math",
    "competition_math": "math",
    "aime24": "math",
    "aime25": "math",
    "amc": "math",
    "ifeval": "ifeval",
    "humaneval": "code",
    "live_code_bench": "code",
    "simple_qa": "judge",
    "simpleqa": "judge",
    "chinese_simpleqa": "judge",
    "aa_lcr": "judge",
}

_EVALSCOPE_KEYS = frozenset({"prompt", "dataset_name"})


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _record_line(record: Record) -> str:
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=False)


def write_testset(
    path: str | Path, records: Iterable[Record], header: dict[str, Any] | None = None
) -> None:
    """Write ``records`` (and the header line when given) atomically to ``path``."""
    lines = []
    if header is not None:
        lines.append(json.dumps({HEADER_KEY: header}, ensure_ascii=False, sort_keys=False))
    lines.extend(_record_line(record) for record in records)
    _write_lines(Path(path), lines)


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to ``path`` atomically: readers see the old file or the whole new one."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    directory = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise EvalIndexError(f"cannot write the test set: {exc.strerror}", file=path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private; give it the mode a plain open() would
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _validation_error(exc: ValidationError, path: Path, line: int, prefix: str = "") -> Exception:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return EvalIndexError(
        f"{first['msg']}", file=path, line=line, field=f"{prefix}{where}" if where else None
    )


def read_testset(path: str | Path) -> tuple[dict[str, Any] | None, list[Record]]:
    """The header (None if the file has none) and the records of a test set file."""
    path = Path(path)
    header: dict[str, Any] | None = None
    records: list[tuple[int, Record]] = []
    evalscope: list[tuple[int, dict[str, Any]]] = []
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise EvalIndexError(f"cannot read the test set: {exc.strerror}", file=path) from None
    with fh:
        line_number = 0
        try:
            for line_number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvalIndexError(
                        f"not valid JSON: {exc.msg} (column {exc.colno})",
                        file=path,
                        line=line_number,
                    ) from None
                if not isinstance(obj, dict):
                    raise EvalIndexError(
                        f"expected a JSON object, got {type(obj).__name__}",
                        file=path,
                        line=line_number,
                    )
                if HEADER_KEY in obj:
                    if records or evalscope or header is not None:
                        raise EvalIndexError(
                            f"the {HEADER_KEY!r} header may only be the first line",
                            file=path,
                            line=line_number,
                        )
                    if not isinstance(obj[HEADER_KEY], dict):
                        raise EvalIndexError(
                            "expected an object", file=path, line=line_number, field=HEADER_KEY
                        )
                    header = obj[HEADER_KEY]
                elif obj.keys() >= _EVALSCOPE_KEYS and "input" not in obj:
                    evalscope.append((line_number, obj))
                else:
                    try:
                        records.append((line_number, Record.model_validate(obj)))
                    except ValidationError as exc:
                        raise _validation_error(exc, path, line_number) from None
        except UnicodeDecodeError as exc:
            raise EvalIndexError(
                f"not UTF-8 text ({exc.reason})", file=path, line=line_number + 1
            ) from None
    if evalscope:
        converted, carried_header = _from_evalscope(evalscope, path)
        records.extend(converted)
        records.sort(key=lambda item: item[0])
        if header is None:
            header = carried_header
    seen: dict[str, int] = {}
    for line_number, record in records:
        if record.id in seen:
            raise EvalIndexError(
                f"duplicate id {record.id!r}, first on line {seen[record.id]}",
                file=path,
                line=line_number,
            )
        seen[record.id] = line_number
    return header, [record for _, record in records]


# --------------------------------------------------------------------------- EvalScope


def _content_text(content: Any) -> str:
    """A message content as text; multimodal content keeps its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return "" if content is None else str(content)


def _messages(value: Any) -> list[Message] | None:
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and "role" in m for m in value):
        return None
    return [Message(role=str(m["role"]), content=_content_text(m.get("content"))) for m in value]


def _evalscope_input(prompt: dict[str, Any]) -> list[Message] | None:
    from pytest_evalindex.data.adapters.general_mcq import format_mcq_prompt

    choices = prompt.get("choices")
    system = prompt.get("system_prompt")
    for key in ("input", "messages"):
        messages = _messages(prompt.get(key))
        if messages is not None:
            return messages
    text: str | None = None
    data = prompt.get("data")
    if isinstance(data, list) and data:
        text = _content_text(data[0])
    elif isinstance(data, str):
        text = data
    else:
        for key in ("input", "question", "query", "prompt"):
            if isinstance(prompt.get(key), str):
                text = prompt[key]
                break
    if text is None:
        return None
    if isinstance(choices, list) and len(choices) >= 2 and "data" not in prompt:
        text = format_mcq_prompt(text, [str(c) for c in choices])
    messages = [Message(role="system", content=system)] if isinstance(system, str) else []
    messages.append(Message(role="user", content=text))
    return messages


def _evalscope_target(prompt: dict[str, Any]) -> str | list[str] | None:
    raw = prompt.get("raw_input")
    for source in (prompt, raw if isinstance(raw, dict) else {}):
        for key in ("target", "answer"):
            value = source.get(key)
            if value is None or value == "":
                continue
            if isinstance(value, list):
                return [str(v) for v in value]
            return str(value)
    return None


def _evalscope_scorer(dataset: str, has_choices: bool) -> ScorerRef:
    from pytest_evalindex.data.adapters import get_adapter

    adapter = get_adapter(dataset)
    if adapter is not None and adapter.default_scorer is not None:
        return adapter.default_scorer
    if has_choices:
        return ScorerRef(name="choice")
    return ScorerRef(name=EVALSCOPE_SCORERS.get(dataset, "exact_match"))


def _number(value: Any, path: Path, line: int, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvalIndexError(f"expected a number, got {value!r}", file=path, line=line, field=key)
    return float(value)


def _carried(prompt: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    """What a file written by write_evalscope_collection carries in prompt.metadata."""
    metadata = prompt.get("metadata")
    carried = metadata.get(HEADER_KEY) if isinstance(metadata, dict) else None
    if carried is None:
        return {}
    if not isinstance(carried, dict):
        raise EvalIndexError(
            "expected an object", file=path, line=line, field=f"prompt.metadata.{HEADER_KEY}"
        )
    return carried


def _per_sample_weights(entries: list[tuple[int, dict[str, Any]]], weights: list[float]) -> bool:
    """Whether the file stores W_d / n_d on every entry (EvalScope >= 1.3), not W_d."""
    if any("task" in obj and "task_type" not in obj for _, obj in entries):
        return False  # a release before 0.11
    # W_d / n_d over the entries sums to the W_d of the datasets present: at most 1
    return sum(weights) <= 1.0 + 1e-6


def _from_evalscope(
    entries: list[tuple[int, dict[str, Any]]], path: Path
) -> tuple[list[tuple[int, Record]], dict[str, Any] | None]:
    weights = [_number(obj.get("weight", 0.0), path, line, "weight") for line, obj in entries]
    per_sample = _per_sample_weights(entries, weights)
    dataset_weight: dict[str, float] = {}
    if per_sample:
        for (_, obj), weight in zip(entries, weights, strict=True):
            name = str(obj["dataset_name"])
            dataset_weight[name] = dataset_weight.get(name, 0.0) + weight

    header: dict[str, Any] | None = None
    records = []
    for (line, obj), weight in zip(entries, weights, strict=True):
        prompt = obj["prompt"]
        if not isinstance(prompt, dict):
            raise EvalIndexError(
                f"expected an object, got {type(prompt).__name__}",
                file=path,
                line=line,
                field="prompt",
            )
        dataset = str(obj["dataset_name"])
        messages = _evalscope_input(prompt)
        if messages is None:
            raise EvalIndexError(
                "no prompt text found (looked for input, messages, data, question, query)",
                file=path,
                line=line,
                field="prompt",
            )
        carried = _carried(prompt, path, line)
        if header is None and isinstance(carried.get("header"), dict):
            header = carried["header"]
        choices = prompt.get("choices")
        choices = [str(c) for c in choices] if isinstance(choices, list) else None
        metadata = prompt.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata.pop(HEADER_KEY, None)
        fields = {
            "id": carried.get("id", f"{dataset}/{obj.get('index', line)}"),
            "dataset": dataset,
            "subset": str(obj.get("subset_name") or "default"),
            "task_type": str(obj.get("task_type") or obj.get("task") or "default"),
            "tags": obj.get("tags") or [],
            "categories": obj.get("categories") or [],
            "weight": carried.get("weight", dataset_weight[dataset] if per_sample else weight),
            "input": messages,
            "target": _evalscope_target(prompt),
            "choices": choices,
            "scorer": carried.get("scorer") or _evalscope_scorer(dataset, bool(choices)),
            "metadata": metadata,
        }
        try:
            records.append((line, Record.model_validate(fields)))
        except ValidationError as exc:
            raise _validation_error(exc, path, line) from None
    return records, header


def evalscope_entries(
    records: Iterable[Record], header: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The records as EvalScope collection entries (see the module docstring)."""
    records = list(records)
    per_dataset: dict[str, int] = {}
    for record in records:
        per_dataset[record.dataset] = per_dataset.get(record.dataset, 0) + 1
    entries = []
    for index, record in enumerate(records):
        carried: dict[str, Any] = {
            "id": record.id,
            "weight": record.weight,
            "scorer": record.scorer.model_dump(mode="json"),
        }
        if index == 0 and header is not None:
            carried["header"] = header
        prompt: dict[str, Any] = {
            "input": [message.model_dump(mode="json") for message in record.input]
        }
        if record.choices is not None:
            prompt["choices"] = list(record.choices)
        prompt["target"] = "" if record.target is None else record.target
        prompt["metadata"] = {**record.metadata, HEADER_KEY: carried}
        entries.append(
            {
                "index": index,
                "prompt": prompt,
                "tags": list(record.tags),
                "categories": list(record.categories),
                "task_type": record.task_type,
                "weight": record.weight / per_dataset[record.dataset],
                "dataset_name": record.dataset,
                "subset_name": record.subset,
            }
        )
    return entries


def write_evalscope_collection(
    path: str | Path, records: Iterable[Record], header: dict[str, Any] | None = None
) -> None:
    """Write ``records`` atomically as an EvalScope collection file (one entry a line)."""
    lines = [
        json.dumps(entry, ensure_ascii=False, sort_keys=False)
        for entry in evalscope_entries(records, header)
    ]
    _write_lines(Path(path), lines)
