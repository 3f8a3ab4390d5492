"""Shared machinery of the built-in benchmarks (this module defines no ``ADAPTER``).

Every built-in benchmark reads rows in its public release layout and understands these
``args``:

- ``subset``: the subset of every row of this source, for releases that ship one file per
  subset without saying so in the rows (ARC-Easy/ARC-Challenge, one C-Eval subject). A
  subset column in the rows wins.
- ``subset_list``: keep only these subsets (applied by the sampler).
- ``few_shot_num`` (default 0) and ``few_shot_source``: worked examples put before the
  question, for the benchmarks with a natural train or dev split (gsm8k, arc, mmlu, ceval,
  cmmlu). The examples are the first ``few_shot_num`` rows of ``few_shot_source`` (a file
  in the same layout, path relative to the spec) in file order — of the same subset when
  the benchmark has subjects — so every run and every process picks the same ones. The
  other benchmarks reject ``few_shot_num`` above 0.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters import Adapter, BaseAdapter, make_record
from pytest_evalindex.data.adapters.general_mcq import (
    LETTERS,
    answer_letter,
    format_options,
    letters_list,
)
from pytest_evalindex.data.adapters.general_qa import _TemplateRow, check_template
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


def field_path(leaf: Leaf, name: str) -> str:
    return f"{leaf.field_path}.{name}" if leaf.field_path else name


def text(value: Any) -> str:
    """A cell as text; whole floats (a CSV or pandas artefact) lose their ``.0``."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def present(value: Any) -> bool:
    """A cell that holds something (not None, not blank text)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def as_list(value: Any) -> list[Any] | None:
    """A list cell: a list or tuple, a numpy array, or JSON list text (CSV exports)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    tolist = getattr(value, "tolist", None)  # numpy arrays from some parquet readers
    if callable(tolist):
        converted = tolist()
        return converted if isinstance(converted, list) else None
    return None


def where(position: int) -> str:
    return f"row {position} (counting from 0)"


class Benchmark(BaseAdapter):
    """A built-in benchmark: fixed layout, ``args.subset`` and few-shot handling."""

    # row columns that name the subset, tried in order
    subset_fields: ClassVar[tuple[str, ...]] = ()
    default_subset: ClassVar[str] = "default"
    # whether few-shot examples make sense (the release has a train or dev split)
    few_shot: ClassVar[bool] = False

    def __init__(self) -> None:
        self.fixed_subset: str | None = None
        self.source: str | None = None
        self.base_dir: Path = Path.cwd()
        self.spec_file: Path | None = None
        self.args: dict[str, Any] = {}

    # --- leaf binding and checks

    def for_leaf(self, leaf: Leaf) -> Adapter:
        bound = copy.copy(self)
        subset = leaf.args.get("subset")
        bound.fixed_subset = None if subset is None else str(subset)
        bound.source = leaf.source
        bound.spec_file = leaf.spec_file
        bound.base_dir = Path(leaf.spec_file).parent if leaf.spec_file else Path.cwd()
        bound.args = dict(leaf.args)
        return bound

    def check(self, leaf: Leaf) -> None:
        if leaf.fields:
            raise EvalIndexError(
                f"{self.name} reads its own release layout, so `fields` does not apply; to "
                "read other columns use `adapter: general_qa` or `adapter: general_mcq`",
                file=leaf.spec_file,
                field=field_path(leaf, "fields"),
            )
        check_template(leaf)
        subset = leaf.args.get("subset")
        if subset is not None and not isinstance(subset, (str, int)):
            raise EvalIndexError(
                f"args.subset is the subset name of every row, e.g. `subset: logic`; got "
                f"{type(subset).__name__}",
                file=leaf.spec_file,
                field=field_path(leaf, "args.subset"),
            )
        count = self.few_shot_count(leaf)
        if count == 0:
            return
        if not self.few_shot:
            raise EvalIndexError(
                f"{self.name} has no train split to draw examples from, so it runs zero-shot "
                "only; remove args.few_shot_num or set it to 0",
                file=leaf.spec_file,
                field=field_path(leaf, "args.few_shot_num"),
            )
        source = leaf.args.get("few_shot_source")
        if not isinstance(source, str) or not source:
            raise EvalIndexError(
                f"args.few_shot_num is {count}, so args.few_shot_source must name the file "
                f"the examples come from (the {self.name} train or dev split, same layout)",
                file=leaf.spec_file,
                field=field_path(leaf, "args.few_shot_source"),
            )
        self._few_shot_path(leaf.args, leaf.spec_file, leaf)

    def few_shot_count(self, leaf: Leaf) -> int:
        count = leaf.args.get("few_shot_num", 0)
        if count is None:
            return 0
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise EvalIndexError(
                f"args.few_shot_num must be a whole number of examples (0 or more), got {count!r}",
                file=leaf.spec_file,
                field=field_path(leaf, "args.few_shot_num"),
            )
        return count

    def _few_shot_path(
        self, args: dict[str, Any], spec_file: Path | None, leaf: Leaf | None = None
    ) -> str:
        from pytest_evalindex.data.sources import resolve_source

        base_dir = Path(spec_file).parent if spec_file else Path.cwd()
        return resolve_source(
            str(args["few_shot_source"]),
            base_dir,
            file=spec_file,
            field=field_path(leaf, "args.few_shot_source") if leaf else "args.few_shot_source",
        )

    # --- rows

    def subset(self, row: dict[str, Any]) -> str:
        for column in self.subset_fields:
            value = row.get(column)
            if present(value):
                return text(value).strip()
        return self.fixed_subset or self.default_subset

    def required(self, row: dict[str, Any], column: str, position: int) -> Any:
        value = row.get(column)
        if not present(value):
            raise EvalIndexError(
                f"{where(position)} has no {column!r}; the {self.name} layout has "
                f"{self.layout_hint()}",
                file=self.source,
            )
        return value

    def layout_hint(self) -> str:
        """The columns a row of this benchmark has, for error messages."""
        return "the columns documented in docs/benchmarks.md"

    def first_present(self, row: dict[str, Any], columns: Sequence[str]) -> Any:
        for column in columns:
            if present(row.get(column)):
                return row[column]
        return None

    def build(
        self,
        leaf: Leaf,
        row: dict[str, Any],
        position: int,
        *,
        prompt: str,
        target: str | list[str] | None,
        choices: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        template_values: dict[str, Any] | None = None,
    ) -> Record:
        """The record of one row. A leaf's ``prompt_template`` replaces ``prompt``; it can
        use the row's columns and ``template_values`` (e.g. ``{options}``)."""
        if leaf.prompt_template is not None:
            values = _TemplateRow(row, leaf.prompt_template, where(position), self.source)
            values.update(template_values or {})
            prompt = leaf.prompt_template.format_map(values)
        return make_record(
            leaf,
            self.record_id(row, position),
            user=prompt,
            adapter=self,
            subset=self.subset(row),
            system=leaf.system,
            target=target,
            choices=choices,
            metadata=metadata,
        )

    # --- few-shot

    def few_shot_rows(self, subset: str | None = None) -> list[dict[str, Any]]:
        """The example rows for one record: the first ``few_shot_num`` of the source."""
        count = self.args.get("few_shot_num") or 0
        if not count:
            return []
        path = self._few_shot_path(self.args, self.spec_file)
        rows = _read_rows(path, self.args.get("few_shot_json_key"))
        if subset is not None and self.subset_fields:
            rows = tuple(row for row in rows if self.subset(row) == subset)
        if len(rows) < count:
            which = f" of subset {subset!r}" if subset is not None and self.subset_fields else ""
            raise EvalIndexError(
                f"args.few_shot_num is {count} but {path} has only {len(rows)} rows{which}",
                file=self.spec_file,
                field="args.few_shot_num",
            )
        return list(rows[:count])


@functools.lru_cache(maxsize=8)
def _read_rows(path: str, json_key: str | None) -> tuple[dict[str, Any], ...]:
    """A few-shot source, read once per process (these splits are small)."""
    from pytest_evalindex.data.sources import iter_rows

    return tuple(iter_rows(path, json_key=json_key))


MATH_INSTRUCTION = "Reason step by step, then put the final answer alone inside \\boxed{}."


class MathProblems(Benchmark):
    """Competition maths: a problem, a short final answer, graded by the ``math`` scorer.

    Each of ``problem_fields``, ``answer_fields`` and ``id_fields`` lists the columns tried
    in order, so mirrors that spell them differently read the same way.
    """

    problem_fields: ClassVar[tuple[str, ...]] = ("problem",)
    answer_fields: ClassVar[tuple[str, ...]] = ("answer",)
    id_fields: ClassVar[tuple[str, ...]] = ("id",)
    metadata_fields: ClassVar[tuple[str, ...]] = ()

    def layout_hint(self) -> str:
        return (
            f"a problem in {' or '.join(map(repr, self.problem_fields))} and its final "
            f"answer in {' or '.join(map(repr, self.answer_fields))}"
        )

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = self.first_present(row, self.id_fields)
        return str(position) if value is None else text(value).strip()

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        problem = self.first_present(row, self.problem_fields)
        answer = self.first_present(row, self.answer_fields)
        if problem is None or answer is None:
            missing = "problem" if problem is None else "answer"
            raise EvalIndexError(
                f"{where(position)} has no {missing}; the {self.name} layout has "
                f"{self.layout_hint()}",
                file=self.source,
            )
        problem_text = text(problem).strip()
        metadata: dict[str, Any] = {"question": problem_text}
        for column in self.metadata_fields:
            if present(row.get(column)):
                metadata[column] = row[column]
        return self.build(
            leaf,
            row,
            position,
            prompt=f"{problem_text}\n\n{MATH_INSTRUCTION}",
            target=text(answer).strip(),
            metadata=metadata,
        )


class MultipleChoice(Benchmark):
    """Single-answer multiple choice, graded by the ``choice`` scorer.

    Subclasses say how a row gives its question, options and answer; this class builds
    the prompt (the question, the options lettered A, B, ..., an instruction to end with
    ``ANSWER: X``, worked examples first when asked) and the record, whose target is the
    answer's letter.
    """

    default_scorer = ScorerRef(name="choice")
    language: ClassVar[str] = "en"

    def question(self, row: dict[str, Any], position: int) -> str:
        raise NotImplementedError

    def options(self, row: dict[str, Any], position: int) -> list[str]:
        raise NotImplementedError

    def answer(self, row: dict[str, Any], position: int, options: list[str]) -> str:
        """The letter of the correct option."""
        raise NotImplementedError

    def introduction(self, subset: str) -> str | None:
        """A first line saying what the questions are about, or None."""
        return None

    def instruction(self, count: int) -> str:
        letters = letters_list(count)
        if self.language == "zh":
            return f"请选出唯一正确的选项，并在回答的最后一行写出“ANSWER: X”，X 是 {letters} 之一。"
        return (
            "Pick the one correct option. Finish your reply with a final line of the form "
            f"'ANSWER: X' where X is one of {letters}."
        )

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        question = self.question(row, position)
        options = self.options(row, position)
        letter = self.answer(row, position, options)
        subset = self.subset(row)
        examples = []
        for example_position, example in enumerate(self.few_shot_rows(subset)):
            try:
                example_options = self.options(example, example_position)
                examples.append(
                    f"{self.question(example, example_position)}\n\n"
                    f"{format_options(example_options)}\n"
                    f"ANSWER: {self.answer(example, example_position, example_options)}"
                )
            except EvalIndexError as exc:
                raise EvalIndexError(
                    f"few-shot example: {exc.message}", file=self.args.get("few_shot_source")
                ) from None
        parts = [line for line in (self.introduction(subset),) if line]
        parts.extend(examples)
        parts.append(f"{question}\n\n{format_options(options)}\n\n{self.instruction(len(options))}")
        return self.build(
            leaf,
            row,
            position,
            prompt="\n\n".join(parts),
            target=letter,
            choices=options,
            metadata={"question": question},
            template_values={
                "options": format_options(options),
                "letters": letters_list(len(options)),
                "examples": "\n\n".join(examples),
            },
        )

    def letter_of(self, answer: Any, options: list[str], position: int, column: str) -> str:
        """The letter of an answer given as a letter, a 0-based index or an option's text."""
        if isinstance(answer, str) and answer.strip().isdigit():
            answer = int(answer.strip())
        elif isinstance(answer, float) and answer.is_integer():
            answer = int(answer)
        letter = answer_letter(answer, options)
        if letter is None:
            raise EvalIndexError(
                f"{where(position)}: {column!r} is {answer!r}, not one of the letters "
                f"{letters_list(len(options))} or a 0-based index below {len(options)}",
                file=self.source,
            )
        return letter

    def lettered_columns(self, row: dict[str, Any], position: int) -> list[str]:
        """Options in columns ``A``, ``B``, ... (read until the first missing letter)."""
        options = []
        for letter in LETTERS:
            if not present(row.get(letter)):
                break
            options.append(text(row[letter]).strip())
        if len(options) < 2:
            raise EvalIndexError(
                f"{where(position)} has {len(options)} option column(s) A, B, ...; the "
                f"{self.name} layout has {self.layout_hint()}",
                file=self.source,
            )
        return options
