"""Checks made at the start of a run, before the first request is paid for.

Whatever can be known to be wrong before the model is asked anything is reported then, as
one usage error (exit status 4): a gate or compare-fail rule naming a row the test set does
not have, a compare-fail rule without a comparison, a baseline of another test set, an output
file that cannot be written, a judge without an endpoint, the embedded model asked for but
not installed, a budget without prices or without max_tokens. The checks are plain
functions of plain values; :func:`check_run` gathers the values from the run's session.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_evalindex.errors import EvalIndexError

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Results
    from pytest_evalindex.run.loading import LoadedIndex
    from pytest_evalindex.session import EvalIndexSession
    from pytest_evalindex.testset.records import Record

# The files a run writes at its end: (option, RunOptions attribute holding the path).
# A new output option is one line here; its path is then checked before the first request.
OUTPUT_OPTIONS: list[tuple[str, str]] = [
    ("--index-json", "json_path"),
    ("--index-html", "html_path"),
    ("--index-markdown", "markdown_path"),
]

ROW_TABLES = ("task_type", "tag", "dataset", "subset", "category")
_PLURALS = {
    "task_type": "task types",
    "tag": "tags",
    "dataset": "datasets",
    "subset": "subsets",
    "category": "categories",
}
_LISTED = 20  # known rows named in a message


# --------------------------------------------------------------------------- options


def protect_optional_values(
    args: list[str], optional: Mapping[str, str], is_positional: Callable[[str], bool]
) -> list[str]:
    """Keep an option whose value may be left out from swallowing the argument after it.

    ``pytest --index s.yaml --index-compare s.yaml::d::d/1`` hands the node id to
    ``--index-compare`` as its value. Each ``OPTION TOKEN`` of ``optional`` (option -> the
    value it takes when given bare) whose token ``is_positional`` is rewritten in place to
    ``OPTION=<bare value>``, leaving the token a positional argument. Returns those tokens.
    """
    rescued: list[str] = []
    for position, token in enumerate(args):
        if token == "--":
            break
        if token in optional and position + 1 < len(args):
            following = args[position + 1]
            if not following.startswith("-") and is_positional(following):
                args[position] = f"{token}={optional[token]}"
                rescued.append(following)
    return rescued


def looks_positional(token: str, invocation: Path, index_paths: Iterable[Path]) -> bool:
    """Whether a token is something to run rather than an option's value: a node id, one
    of the index files, or an existing folder or test/index file."""
    if "::" in token:
        return True
    path = (invocation / token).resolve()
    if path in {Path(p).resolve() for p in index_paths}:
        return True
    if path.is_dir():
        return True
    return path.is_file() and path.suffix.lower() in (".py", ".yaml", ".yml", ".jsonl")


# --------------------------------------------------------------------------- rows


def known_rows(records: Iterable[Record]) -> dict[str, set[str]]:
    """The rows of each table a run of ``records`` can produce (aggregate.py's grouping)."""
    from pytest_evalindex.results.compare import memberships

    rows: dict[str, set[str]] = {table: set() for table in ROW_TABLES}
    seen: set[tuple[Any, ...]] = set()
    for record in records:
        # records of one leaf share their grouping: look at each kind once
        key = (record.dataset, record.subset, record.task_type, *record.tags, "|",
               *record.categories)  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        sample = {
            "dataset": record.dataset,
            "subset": record.subset,
            "task_type": record.task_type,
            "tags": record.tags,
            "categories": record.categories,
        }
        for table, names in memberships(sample).items():
            rows[table].update(names)
    return rows


def unknown_row(table: str, name: str | None, rows: Mapping[str, set[str]]) -> str | None:
    """Why ``table:name`` is not a row of this test set, or None when it is (or is the
    index, which always exists)."""
    if table not in ROW_TABLES or name is None:
        return None
    known = rows.get(table, set())
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    ordered = sorted(known)
    listed = ", ".join(ordered[:_LISTED]) + (", ..." if len(ordered) > _LISTED else "")
    return (
        f"the test set has no {table} named {name!r}{hint} ({_PLURALS[table]}: {listed or 'none'})"
    )


def target_problems(
    gates: Sequence[tuple[str, Any]],
    rules: Sequence[Any],
    rows: Mapping[str, set[str]],
) -> list[str]:
    """Gates (each with where it came from) and compare-fail rules naming missing rows."""
    problems = []
    for where, gate in gates:
        why = unknown_row(gate.table, gate.name, rows)
        if why:
            problems.append(f"{where}: gate {gate.text!r}: {why}")
    for rule in rules:
        why = unknown_row(rule.table, rule.name, rows)
        if why:
            problems.append(f"--index-compare-fail {rule.text!r}: {why}")
    return problems


def compare_fail_problem(rules: Sequence[Any], compare: str | None) -> str | None:
    """A compare-fail rule is checked against a comparison: without one it would pass."""
    if not rules or compare is not None:
        return None
    shown = ", ".join(repr(str(rule)) for rule in rules)
    return (
        f"--index-compare-fail {shown} needs a comparison: add --index-compare (the latest "
        "saved run), --index-compare NUM or --index-compare PATH (ini: evalindex_compare)"
    )


def baseline_problem(
    base_path: Path,
    base: Results,
    testset_sha256: str,
    ids: Iterable[str],
    *,
    intersection: bool,
) -> str | None:
    """Whether a comparison with ``base`` would be refused after the run: a different set
    of sample ids (unless ``intersection``), or no shared sample at all."""
    base_sha = (base.get("run") or {}).get("testset_sha256")
    if base_sha and base_sha == testset_sha256:
        return None
    new_ids = list(ids)
    new_set = set(new_ids)
    base_ids = [str(s["id"]) for s in base.get("samples") or ()]
    base_set = set(base_ids)
    if base_set == new_set:
        return None
    shared = len(base_set & new_set)
    if intersection:
        if shared:
            return None
        return (
            f"comparison with {base_path} refused: the baseline shares no sample id with this "
            "test set, so even --index-compare-intersection has nothing to compare"
        )
    from pytest_evalindex.results.compare import testset_refusal

    only_in_base = [i for i in base_ids if i not in new_set]
    only_in_new = [i for i in new_ids if i not in base_set]
    return f"comparison with {base_path} refused: " + testset_refusal(
        base_sha, testset_sha256, only_in_base, only_in_new, shared
    )


# --------------------------------------------------------------------------- files


def unwritable(path: Path, *, folder: bool = False) -> str | None:
    """Why ``path`` (a file, or a folder when ``folder``) cannot be written, or None.

    Missing parent folders are fine (they are created); the nearest existing one must be a
    writable folder."""
    if path.exists():
        if folder and not path.is_dir():
            return "exists and is not a folder"
        if not folder and path.is_dir():
            return "is a folder"
        if not os.access(path, os.W_OK):
            return "is not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable"
    return None


def output_problems(outputs: Iterable[tuple[str, Path, bool]]) -> list[str]:
    """``(what, path, is_folder)`` triples that cannot be written, as messages."""
    problems = []
    for what, path, folder in outputs:
        why = unwritable(path, folder=folder)
        if why:
            problems.append(f"{what} {path} {why}")
    return problems


# --------------------------------------------------------------------------- the run


def run_outputs(session: EvalIndexSession) -> list[tuple[str, Path, bool]]:
    """Every file and folder the run will write, with the option that asked for it."""
    options = session.options
    root = session.evalindex_dir()
    outputs = [(".evalindex (results of the last run)", root, True)]
    if options.save is not None:
        outputs.append(("--index-save", root / "runs", True))
    if not options.no_cache and options.cache_dir is not None:
        outputs.append(("the response cache", options.cache_dir, True))
    elif options.budget is not None and options.cache_dir is not None:
        outputs.append(("the budget's ledger (--index-cache-dir)", options.cache_dir, True))
    for option, attribute in OUTPUT_OPTIONS:
        value = getattr(options, attribute, None)
        if value is not None:
            outputs.append((option, Path(value), False))
    junit = getattr(session.config.option, "xmlpath", None)
    if junit:
        outputs.append(("--junitxml", session.config.invocation_params.dir / junit, False))
    return outputs


def _gates_with_origin(
    loaded: LoadedIndex, option_gates: Sequence[Any], origin: str
) -> list[tuple[str, Any]]:
    # the spec's gates come first in loaded.gates, then the option's (or the ini's)
    spec_gates = loaded.gates[: len(loaded.gates) - len(option_gates)]
    named = [(f"{loaded.path.name}: gates[{i}]", gate) for i, gate in enumerate(spec_gates)]
    return named + [(origin, gate) for gate in option_gates]


def judge_problem(session: EvalIndexSession) -> str | None:
    """A judge-scored dataset whose judge has no endpoint to ask."""
    uses_judge = any(
        "judge_model" in getattr(scorer, "args", {})
        for loaded in session.indexes.values()
        for scorer in loaded.scorers.values()
    )
    if not uses_judge or session.judge_base_url:
        return None
    settings = session.configured_settings()
    if settings["base_url"] or session.wants_local_model(settings):
        return None  # the judge asks the model's endpoint
    return (
        "the judge of the judge-scored datasets has no endpoint: pass --index-judge-base-url "
        "URL, set judge.base_url in the spec, or give the model an endpoint (--index-base-url)"
    )


def budget_problems(session: EvalIndexSession) -> list[str]:
    """``--index-budget`` needs a price and a bound on every answer of each model that
    will be asked, or the cost of the next request could not be known before it is sent.
    A budget without max_tokens is refused rather than given a default, which would change
    the requests (and their cache keys) behind the user's back."""
    budget = session.options.budget
    if budget is None:
        return []
    from pytest_evalindex.run.budget import max_tokens_of

    problems = []
    where = f"--index-budget {budget:g}"
    if session.models.model_prices() is None:
        problems.append(
            f"{where} needs the model's prices: pass --index-price INPUT,OUTPUT (USD per "
            "million tokens) or set model.pricing: {input: ..., output: ...} in the spec"
        )
    if max_tokens_of(session.configured_settings()["generation"]) is None:
        problems.append(
            f"{where} needs a bound on every answer: set model.generation.max_tokens in the "
            "spec (the most a request can cost is its prompt and max_tokens)"
        )
    judges = {
        id(judge): judge
        for loaded in session.indexes.values()
        for scorer in loaded.scorers.values()
        if (judge := getattr(scorer, "args", {}).get("judge_model")) is not None
    }
    for judge in judges.values():
        if getattr(judge, "pricing", None) is None:
            problems.append(
                f"{where} needs the judge's prices: set judge.pricing: {{input: ..., "
                "output: ...}} in the spec"
            )
        if max_tokens_of(getattr(judge, "generation", {})) is None:
            problems.append(
                f"{where} needs a bound on every verdict: set judge.generation.max_tokens "
                "in the spec"
            )
    return list(dict.fromkeys(problems))


def local_model_problem(session: EvalIndexSession) -> str | None:
    """``--index-model local`` on a machine without the ``local`` extra."""
    if session.configured_settings()["name"] != "local":
        return None
    from pytest_evalindex.run.local_model import missing_message, missing_parts

    missing = missing_parts()
    return f"--index-model local: {missing_message(missing)}" if missing else None


def run_problems(session: EvalIndexSession) -> list[str]:
    """Everything wrong with the run that shows before the first request."""
    options = session.options
    problems: list[str] = []
    local = local_model_problem(session)
    if local:
        problems.append(local)
    needs = compare_fail_problem(options.compare_fail, options.compare)
    if needs:
        problems.append(needs)
    for loaded in session.indexes.values():
        rows = known_rows(loaded.all_records)
        given = session.config.getoption("evalindex_gate") is not None
        origin = "--index-gate" if given else "ini evalindex_gate"
        gates = _gates_with_origin(loaded, options.gate, origin)
        rules = options.compare_fail if options.compare is not None else ()
        found = target_problems(gates, rules, rows)
        if len(session.indexes) > 1:
            found = [f"index {loaded.name}: {p}" for p in found]
        problems += found
        # a shard skips the comparison (it belongs on the merged result)
        if loaded.baseline is not None and options.shard is None:
            path, base = loaded.baseline
            from pytest_evalindex.results.baselines import revision_refusal

            # another revision of a shared index: refused even when its ids are the same
            other = (
                None
                if options.compare_intersection
                else revision_refusal(base, loaded.index_source)
            )
            refused = (
                f"comparison with {path} refused: {other}"
                if other
                else baseline_problem(
                    path,
                    base,
                    loaded.testset_sha256,
                    (r.id for r in loaded.all_records),
                    intersection=options.compare_intersection,
                )
            )
            if refused:
                problems.append(refused)
    judge = judge_problem(session)
    if judge:
        problems.append(judge)
    problems += budget_problems(session)
    if not session.config.option.collectonly:
        problems += output_problems(run_outputs(session))
    return problems


def check_run(session: EvalIndexSession) -> None:
    """Raise one EvalIndexError listing every problem :func:`run_problems` finds."""
    problems = run_problems(session)
    if not problems:
        return
    if len(problems) == 1:
        raise EvalIndexError(problems[0] + "; nothing was run")
    listed = "\n".join(f"  - {p}" for p in problems)
    raise EvalIndexError(f"{len(problems)} problems, nothing was run:\n{listed}")
