"""The frozen test set file (DESIGN §3): JSONL, one record a line, an optional header line.

Our format: the first line may be ``{"_evalindex": {...header...}}``; every other line is a
:class:`~pytest_evalindex.records.Record` as ``Record.model_dump(mode="json")`` (keys in the
model's field order), UTF-8, ``\\n`` line ends. Writing the same records twice gives
byte-identical files.

EvalScope collection files are read too: each line is a sampled entry with ``index``,
``prompt``, ``tags``, ``categories`` (``task`` instead of ``task_type`` in old releases),
``task_type``, ``weight``, ``dataset_name`` and ``subset_name``. The mapping:

- ``id`` = ``"<dataset_name>/<index>"``; ``subset`` = ``subset_name``.
- ``input``: from ``prompt``: ``input`` (text or chat messages, EvalScope ≥ 1.0),
  ``messages``, ``data`` (list of prompts, older releases; with ``system_prompt``), or a
  ``question``/``query``/``prompt`` text. With ``choices`` and a text input the question is
  formatted as a lettered multiple-choice prompt, as EvalScope does at run time.
- ``target``: ``prompt.target``, else ``answer``, else the same keys in ``raw_input``.
  EvalScope benchmarks that compute their gold answer in code (from fields only that
  benchmark knows) leave it empty; scorers that need a target then fail on those records.
- ``choices`` = ``prompt.choices``; ``metadata`` = ``prompt.metadata`` (e.g. IFEval's
  instruction ids).
- ``weight``: EvalScope ≥ 1.0 writes ``W_d / n_d`` on every entry, so the weights of a whole
  file sum to 1; then a dataset's ``W_d`` is the sum of its entries' weights. Otherwise (older
  releases wrote ``W_d`` itself) each entry's weight is taken as ``W_d``.
- ``scorer``: the default scorer of the built-in adapter of that name when there is one;
  else ``choice`` when the entry has choices; else by dataset name from ``EVALSCOPE_SCORERS``;
  else ``exact_match``. Benchmarks graded in EvalScope by custom code (e.g. code execution
  details, judge rubrics) are only approximated by these scorers.
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
from pytest_evalindex.records import Message, Record, ScorerRef

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
    path = Path(path)
    lines = []
    if header is not None:
        lines.append(json.dumps({HEADER_KEY: header}, ensure_ascii=False, sort_keys=False))
    lines.extend(_record_line(record) for record in records)
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
        records.extend(_from_evalscope(evalscope, path))
        records.sort(key=lambda item: item[0])
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
    from pytest_evalindex.benchmarks.general_mcq import format_mcq_prompt

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
    from pytest_evalindex.benchmarks import get_adapter

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


def _from_evalscope(
    entries: list[tuple[int, dict[str, Any]]], path: Path
) -> list[tuple[int, Record]]:
    weights = [_number(obj.get("weight", 0.0), path, line, "weight") for line, obj in entries]
    # EvalScope >= 1.0 stores W_d / n_d, so a whole file's weights sum to 1
    per_sample = math.isclose(sum(weights), 1.0, rel_tol=1e-6)
    dataset_weight: dict[str, float] = {}
    if per_sample:
        for (_, obj), weight in zip(entries, weights, strict=True):
            name = str(obj["dataset_name"])
            dataset_weight[name] = dataset_weight.get(name, 0.0) + weight

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
        choices = prompt.get("choices")
        choices = [str(c) for c in choices] if isinstance(choices, list) else None
        metadata = prompt.get("metadata")
        fields = {
            "id": f"{dataset}/{obj.get('index', line)}",
            "dataset": dataset,
            "subset": str(obj.get("subset_name") or "default"),
            "task_type": str(obj.get("task_type") or obj.get("task") or "default"),
            "tags": obj.get("tags") or [],
            "categories": obj.get("categories") or [],
            "weight": dataset_weight[dataset] if per_sample else weight,
            "input": messages,
            "target": _evalscope_target(prompt),
            "choices": choices,
            "scorer": _evalscope_scorer(dataset, bool(choices)),
            "metadata": metadata if isinstance(metadata, dict) else {},
        }
        try:
            records.append((line, Record.model_validate(fields)))
        except ValidationError as exc:
            raise _validation_error(exc, path, line) from None
    return records
