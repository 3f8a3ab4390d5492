"""The ``evalindex`` command.

    evalindex flatten SPEC                  the normalised weights table of a spec
    evalindex sample SPEC -o OUT.jsonl      freeze a test set (--format evalscope: as an
                                            EvalScope collection file)
    evalindex compare BASE.json NEW.json    paired comparison; --fail EXPR exits 1 on a drop
    evalindex merge A.json B.json -o ALL.json   one results file from a sharded run
    evalindex gate RESULTS.json EXPR...     check gates; exits 1 when one fails
    evalindex runs [INDEX]                  saved runs (.evalindex/runs/), newest first
    evalindex report --history [INDEX] --html OUT   the history and leaderboard page
    evalindex plan SPEC|TESTSET             records, tokens, cost, interval widths and the
                                            detectable drop, before any request
    evalindex publish SPEC|TESTSET --to DIR a dataset folder for a hub (test set, EvalScope
                                            collection, card, lock); --hub hf|modelscope
                                            --repo OWNER/NAME uploads it

Exit status: 0 on success; 2 for a usage error (argparse's own: unknown option, missing
argument); 4 for bad input (spec, data file), reported as one ``evalindex: error:`` line
without a traceback, as the pytest plugin does.

Each subcommand is a function taking the parsed arguments and returning the exit status,
registered with :func:`command` together with a function that declares its arguments.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_evalindex.argtypes import any_int, non_negative_int, probability
from pytest_evalindex.errors import EvalIndexError

EXIT_OK = 0
EXIT_BAD_INPUT = 4

Run = Callable[[argparse.Namespace], int]
Declare = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    declare: Declare
    run: Run


COMMANDS: list[Command] = []


def command(name: str, help: str, declare: Declare) -> Callable[[Run], Run]:
    """Register the decorated function as subcommand ``name``."""

    def register(run: Run) -> Run:
        COMMANDS.append(Command(name, help, declare, run))
        return run

    return register


def _warn(message: str) -> None:
    print(f"evalindex: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- flatten


def _declare_flatten(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", type=Path, help="index spec (.yaml)")


@command("flatten", "print the normalised weight of every dataset of a spec", _declare_flatten)
def run_flatten(args: argparse.Namespace) -> int:
    from pytest_evalindex.spec.index import flatten, format_weights_table, load_spec

    print(format_weights_table(flatten(load_spec(args.spec))))
    return EXIT_OK


# --------------------------------------------------------------------------- sample


def _declare_sample(parser: argparse.ArgumentParser) -> None:
    from pytest_evalindex.testset.sampling import SAMPLERS

    parser.add_argument("spec", metavar="SPEC", type=Path, help="index spec (.yaml)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.jsonl",
        type=Path,
        required=True,
        help="where to write the test set",
    )
    parser.add_argument(
        "--count", metavar="N", type=non_negative_int, help="records to sample (default: spec)"
    )
    parser.add_argument("--seed", metavar="S", type=any_int, help="sampling seed (default: spec)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="allocation rule (default: spec)")
    parser.add_argument(
        "--format",
        choices=("evalindex", "evalscope"),
        default="evalindex",
        help="file layout: this project's test set, or an EvalScope collection file that "
        "EvalScope's data_collection benchmark runs (default: evalindex)",
    )


@command("sample", "freeze a test set sampled from a spec", _declare_sample)
def run_sample(args: argparse.Namespace) -> int:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.jsonl import write_evalscope_collection, write_testset
    from pytest_evalindex.testset.sampling import sample_index

    spec = load_spec(args.spec)
    result = sample_index(spec, count=args.count, seed=args.seed, sampler=args.sampler)
    write = write_evalscope_collection if args.format == "evalscope" else write_testset
    write(args.output, result.records, result.header)
    for warning in result.warnings:
        _warn(warning)
    from pytest_evalindex.results.planning import testset_warning

    small = testset_warning(result.records)
    if small:
        _warn(small)
    datasets = len({record.dataset for record in result.records})
    print(
        f"evalindex: {len(result.records)} records from {datasets} datasets -> {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- report


def _declare_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", metavar="RESULTS.json", type=Path, nargs="?", help="a results file"
    )
    parser.add_argument(
        "--html",
        metavar="OUT.html",
        type=Path,
        help="also write the self-contained HTML case-analysis report here",
    )
    parser.add_argument(
        "--markdown",
        metavar="OUT.md",
        type=Path,
        help="also write the markdown summary here (as --index-markdown does)",
    )
    parser.add_argument(
        "--compare",
        metavar="BASE.json",
        type=Path,
        help="compare with this base run's results: deltas, intervals, flipped samples",
    )
    parser.add_argument(
        "--intersection",
        action="store_true",
        help="with --compare: compare the samples both runs share instead of refusing "
        "different test sets",
    )
    _declare_history(parser)
    # the history checks its usage errors as argparse does, with this parser's usage line
    parser.set_defaults(report_parser=parser)


@command(
    "report",
    "print a results file's tables; --html writes the HTML report, --markdown a summary",
    _declare_report,
)
def run_report(args: argparse.Namespace) -> int:
    if args.history is not None or args.results is None:
        return _run_history(args)
    from pytest_evalindex.report.terminal import format_summary
    from pytest_evalindex.results.baselines import read_results

    results = read_results(args.results)
    base = comparison = None
    if args.compare is not None:
        from pytest_evalindex.results.compare import compare_results

        base = read_results(args.compare)
        comparison = compare_results(
            base,
            results,
            intersection=args.intersection,
            base_label=args.compare.stem,
            new_label=args.results.stem,
        )
    print("\n".join(format_summary(results)))
    if args.html is not None:
        from pytest_evalindex.report.html import write_html

        try:
            write_html(args.html, results, comparison, base_results=base)
        except OSError as exc:
            raise EvalIndexError(f"cannot write: {exc.strerror or exc}", file=args.html) from None
        print(f"evalindex: HTML report -> {args.html}", file=sys.stderr)
    if args.markdown is not None:
        from pytest_evalindex.report.markdown import format_markdown, write_markdown
        from pytest_evalindex.results.verdicts import Verdicts

        text = format_markdown(results, Verdicts(comparison=comparison, base_results=base))
        try:
            write_markdown(args.markdown, text)
        except OSError as exc:
            raise EvalIndexError(
                f"cannot write: {exc.strerror or exc}", file=args.markdown
            ) from None
        print(f"evalindex: markdown summary -> {args.markdown}", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- history

# the results root the plugin writes under its rootdir; the commands read it from here
DEFAULT_RESULTS_ROOT = Path(".evalindex")
_ALL_INDEXES = ""


def _declare_root(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--dir",
        metavar="ROOT",
        type=Path,
        default=DEFAULT_RESULTS_ROOT,
        help="the results root holding runs/ (default: .evalindex)",
    )


def _declare_history(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("history (instead of RESULTS.json)")
    group.add_argument(
        "--history",
        metavar="INDEX",
        nargs="?",
        const=_ALL_INDEXES,
        help="with --html: write the history page of the saved runs (of INDEX, or of every "
        "index): the index over time per model, a leaderboard of each model's latest run, "
        "links to the runs",
    )
    group.add_argument(
        "--alpha",
        type=probability,
        default=0.05,
        help="with --history: significance level of 'below the best' (default: 0.05)",
    )
    _declare_root(group)


def _run_history(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.report_parser
    if args.history is None:
        parser.error("give a RESULTS.json file, or --history [INDEX] --html OUT")
    if args.results is not None:
        parser.error(
            f"--history reads the saved runs, not a results file ({args.results}); "
            "to name an index, write --history INDEX"
        )
    if args.html is None:
        parser.error("--history needs --html OUT.html")
    used = [
        option
        for option, value in (("--compare", args.compare), ("--markdown", args.markdown))
        if value is not None
    ] + (["--intersection"] if args.intersection else [])
    if used:
        parser.error(f"--history does not take {', '.join(used)}")
    from pytest_evalindex.report.history import write_history
    from pytest_evalindex.results.history import format_leaderboard, list_runs

    listing = list_runs(args.dir, args.history or None)
    for reason in listing.skipped:
        _warn(f"left out: {reason}")
    try:
        page = write_history(args.html, listing, alpha=args.alpha)
    except OSError as exc:
        raise EvalIndexError(f"cannot write: {exc.strerror or exc}", file=args.html) from None
    for position, (index, standings) in enumerate(page.leaderboards.items()):
        if position:
            print()
        print("\n".join(format_leaderboard(index, standings)))
    print(f"evalindex: history page -> {args.html}", file=sys.stderr)
    return EXIT_OK


def _declare_runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "index", metavar="INDEX", nargs="?", help="only the runs of this index (default: all)"
    )
    _declare_root(parser)


@command("runs", "list the saved runs (--index-save), newest first", _declare_runs)
def run_runs(args: argparse.Namespace) -> int:
    from pytest_evalindex.results.history import format_runs, list_runs

    listing = list_runs(args.dir, args.index)
    for reason in listing.skipped:
        _warn(f"left out: {reason}")
    print("\n".join(format_runs(listing)))
    return EXIT_OK


# --------------------------------------------------------------------------- compare

# a failed --fail rule or gate, as pytest's TESTS_FAILED
EXIT_COMPARE_FAILED = 1


def _declare_compare(parser: argparse.ArgumentParser) -> None:
    from pytest_evalindex.results.compare import parse_compare_fail

    parser.add_argument("base", metavar="BASE.json", type=Path, help="the baseline results")
    parser.add_argument("new", metavar="NEW.json", type=Path, help="the results to check")
    parser.add_argument(
        "--alpha", type=probability, default=0.05, help="significance level (default: 0.05)"
    )
    parser.add_argument(
        "--fail",
        metavar="EXPR",
        action="append",
        default=[],
        type=parse_compare_fail,
        help="exit 1 when a row drops significantly by more than a margin: "
        "index:2pp, task_type:instruction:5%%, tag:zh:0.03 (repeatable)",
    )
    parser.add_argument(
        "--intersection",
        action="store_true",
        help="compare the samples both runs share instead of refusing different test sets",
    )
    parser.add_argument("--seed", type=any_int, default=0, help="resampling seed (default: 0)")
    parser.add_argument(
        "--replicates",
        metavar="N",
        type=non_negative_int,
        default=2000,
        help="bootstrap and sign-flip replicates (default: 2000)",
    )
    parser.add_argument(
        "--json", metavar="OUT.json", type=Path, help="also write the comparison document"
    )
    parser.add_argument(
        "--max-flips",
        metavar="N",
        type=non_negative_int,
        default=20,
        help="flipped sample ids to list per direction (default: 20)",
    )


@command("compare", "paired comparison of two results files", _declare_compare)
def run_compare(args: argparse.Namespace) -> int:
    from pytest_evalindex.results.baselines import environment_differences, read_results, write_json
    from pytest_evalindex.results.compare import (
        check_compare_fail,
        compare_results,
        format_comparison,
    )

    base, new = read_results(args.base), read_results(args.new)
    if not args.intersection:
        from pytest_evalindex.results.baselines import revision_refusal

        source = (new.get("run") or {}).get("index_source")
        refusal = revision_refusal(base, source, override="--intersection")
        if refusal is not None:
            raise EvalIndexError(refusal)
    differences = environment_differences(base, new)
    if differences:
        _warn(f"the runs differ in more than the answers: {'; '.join(differences)}")
    comparison = compare_results(
        base,
        new,
        seed=args.seed,
        n_boot=args.replicates,
        alpha=args.alpha,
        intersection=args.intersection,
        base_label=args.base.stem,
        new_label=args.new.stem,
    )
    for line in format_comparison(comparison, max_flips=args.max_flips):
        print(line)
    if args.json:
        write_json(args.json, comparison)
    verdicts = check_compare_fail(comparison, args.fail, args.alpha)
    if verdicts:
        print()
    for verdict in verdicts:
        print(f"{'FAIL' if verdict.failed else 'PASS'} {verdict.rule}: {verdict.message}")
    from pytest_evalindex.results.partial import gate_failure, partial_of

    partial = partial_of(new) if verdicts else None
    if partial is not None:
        print(f"FAIL {gate_failure(partial)}")
    failed = partial is not None or any(v.failed for v in verdicts)
    return EXIT_COMPARE_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- gate


def _declare_gate(parser: argparse.ArgumentParser) -> None:
    from pytest_evalindex.results.gates import parse_gate

    parser.add_argument("results", metavar="RESULTS.json", type=Path, help="a results file")
    parser.add_argument(
        "gates",
        metavar="EXPR",
        type=parse_gate,
        nargs="+",
        help="gate expressions, e.g. 'index>=0.5' 'tag:zh>=35%%' 'errors<=3'",
    )


@command("gate", "check gate expressions against a results file", _declare_gate)
def run_gate(args: argparse.Namespace) -> int:
    from pytest_evalindex.results.baselines import read_results
    from pytest_evalindex.results.gates import evaluate_gates, format_verdicts
    from pytest_evalindex.results.partial import gate_failure, partial_of

    results = read_results(args.results)
    verdicts = evaluate_gates(args.gates, results)
    for line in format_verdicts(verdicts):
        print(line)
    # a run of part of the test set never passes a gate for the whole index
    partial = partial_of(results)
    if partial is not None:
        print(f"FAIL {gate_failure(partial)}")
    failed = partial is not None or any(not v.passed for v in verdicts)
    return EXIT_COMPARE_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- merge


def _declare_merge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", metavar="RESULTS.json", type=Path, nargs="+", help="the shards' results files"
    )
    parser.add_argument(
        "-o", "--output", metavar="ALL.json", type=Path, required=True, help="merged results"
    )
    parser.add_argument(
        "--seed",
        type=any_int,
        default=0,
        help="bootstrap seed; the run's --index-seed to match a single run (default: 0)",
    )


@command("merge", "merge the results files of a sharded run into one", _declare_merge)
def run_merge(args: argparse.Namespace) -> int:
    from pytest_evalindex.results.baselines import read_results, write_json
    from pytest_evalindex.results.shards import merge_results

    docs = [read_results(path) for path in args.inputs]
    merged = merge_results(docs, labels=[str(path) for path in args.inputs], seed=args.seed)
    write_json(args.output, merged)
    index = merged["index"]
    score = "-" if index.get("score") is None else f"{index['score']:.4f}"
    print(
        f"evalindex: merged {len(docs)} results files, {len(merged['samples'])} samples "
        f"-> {args.output} (index {index['name']}: {score})",
        file=sys.stderr,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- plan


def _prices(text: str) -> tuple[float, float]:
    """``IN,OUT``: USD per million input and output tokens."""
    parts = [part.strip() for part in text.split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected INPUT,OUTPUT prices in USD per million tokens, like 0.15,0.60; got {text!r}"
        )
    return values[0], values[1]


def _margin(text: str) -> Any:
    from pytest_evalindex.results.compare import parse_compare_fail

    return parse_compare_fail(f"index:{text}")


def _declare_plan(parser: argparse.ArgumentParser) -> None:
    from pytest_evalindex.argtypes import SAMPLERS, positive_float

    parser.add_argument(
        "index",
        metavar="SPEC|TESTSET",
        type=Path,
        help="an index spec (.yaml) or test set (.jsonl)",
    )
    parser.add_argument(
        "--price",
        metavar="IN,OUT",
        type=_prices,
        help="USD per million input and output tokens (default: the spec's model.pricing)",
    )
    parser.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN.json",
        type=Path,
        help="a saved run's results: its observed scores (and answer lengths) instead of the "
        "worst case",
    )
    parser.add_argument(
        "--half-width",
        metavar="H",
        type=probability,
        help="also print the count whose index interval is ±H (e.g. 0.02)",
    )
    parser.add_argument(
        "--margin",
        metavar="M",
        type=_margin,
        default=None,
        help="the compare-fail rule's margin: 2pp, 0.02 or 5%% (default: 0pp)",
    )
    parser.add_argument(
        "--discordance",
        metavar="RATE",
        type=probability,
        help="share of samples two runs answer differently (the flips `evalindex compare` "
        "lists), for the detectable drop; default: from --from, else the worst case 0.5",
    )
    parser.add_argument(
        "--alpha", type=probability, default=0.05, help="significance level (default: 0.05)"
    )
    parser.add_argument(
        "--power", type=probability, default=0.8, help="detection power (default: 0.8)"
    )
    parser.add_argument(
        "--output-tokens",
        metavar="N",
        type=positive_float,
        help="output tokens per answer (default: observed with --from, else the spec's "
        "max_tokens, else 512)",
    )
    parser.add_argument(
        "--count", metavar="N", type=non_negative_int, help="records to sample (spec only)"
    )
    parser.add_argument("--seed", metavar="S", type=any_int, help="sampling seed (spec only)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="allocation rule (spec only)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


@command(
    "plan",
    "records, tokens, cost and interval widths of a run, before any request",
    _declare_plan,
)
def run_plan(args: argparse.Namespace) -> int:
    import json

    from pytest_evalindex.results import planning

    index_path: Path = args.index
    is_testset = index_path.suffix.lower() in (".jsonl", ".gz") or index_path.is_dir()
    spec_only = [f"--{n}" for n in ("count", "seed", "sampler") if getattr(args, n) is not None]
    if is_testset and spec_only:
        raise EvalIndexError(
            f"{', '.join(spec_only)} only apply to a spec; a test set is already sampled",
            file=index_path,
        )
    observed = None
    if args.from_run is not None:
        from pytest_evalindex.results.baselines import read_results

        observed = planning.observed_from_results(read_results(args.from_run))
        if not observed:
            raise EvalIndexError("the run has no scored sample", file=args.from_run)
    margin = 0.0
    if args.margin is not None:
        if args.margin.unit == "%":
            if not observed:
                raise EvalIndexError(
                    f"a margin of {args.margin.text[6:]} is relative to the base score; give "
                    "--from RUN.json or an absolute margin (2pp, 0.02)",
                    field="--margin",
                )
            counts = {d: o.count for d, o in observed.items()}
            base = sum(o.mean * counts[d] for d, o in observed.items()) / sum(counts.values())
            margin = args.margin.allowed_drop(base)
        else:
            margin = args.margin.margin

    warnings: list[str] = []
    weights = None
    prices, price_from = args.price, "--price" if args.price else None
    max_tokens = None
    if is_testset:
        from pytest_evalindex.testset.jsonl import read_testset

        header, records = read_testset(index_path)
        header = header or {}
        name = str(header.get("spec") or index_path.stem)
        sampler, seed, asked = header.get("sampler"), header.get("seed"), header.get("count")
        if not records:
            raise EvalIndexError("the test set has no records", file=index_path)
    else:
        from pytest_evalindex.spec.index import flatten, load_spec
        from pytest_evalindex.testset.sampling import sample_index

        spec = load_spec(index_path)
        result = sample_index(spec, count=args.count, seed=args.seed, sampler=args.sampler)
        records, warnings = result.records, list(result.warnings)
        name = spec.name
        sampler, seed, asked = (result.header[k] for k in ("sampler", "seed", "count"))
        weights = {leaf.name: leaf.weight for leaf in flatten(spec)}
        if prices is None:
            prices = _spec_prices(spec)
            price_from = "the spec's model.pricing" if prices else None
        generation = spec.model.generation if spec.model else {}
        tokens = generation.get("max_tokens", generation.get("max_completion_tokens"))
        max_tokens = tokens if isinstance(tokens, int) and tokens > 0 else None

    from pytest_evalindex.run.tokenizer import token_counter

    settings = planning.PlanSettings(
        counter=token_counter(),
        output_tokens=args.output_tokens,
        spec_max_tokens=max_tokens,
        prices=prices,
        price_from=price_from,
        observed=observed,
        observed_from=str(args.from_run) if args.from_run else None,
        discordance=args.discordance,
        margin=margin,
        alpha=args.alpha,
        power=args.power,
        target_half_width=args.half_width,
    )
    plan = planning.build_plan(records, settings, weights=weights, sampler=sampler)
    plan = {
        "index": name,
        "file": str(index_path),
        "kind": "testset" if is_testset else "spec",
        "sampler": sampler,
        "seed": seed,
        "count": asked,
        **plan,
    }
    plan["warnings"] = [*warnings, *plan["warnings"]]
    if args.json:
        print(json.dumps(plan, indent=2))
        return EXIT_OK
    for warning in plan["warnings"]:
        _warn(warning)
    print("\n".join(_format_plan(plan)))
    return EXIT_OK


def _spec_prices(spec: Any) -> tuple[float, float] | None:
    """The spec's ``model.pricing`` as (input, output), when it gives one."""
    pricing = getattr(spec.model, "pricing", None) if spec.model is not None else None
    if pricing is None:
        return None
    if isinstance(pricing, dict):
        values = (pricing.get("input"), pricing.get("output"))
    else:
        values = (getattr(pricing, "input", None), getattr(pricing, "output", None))
    if not all(isinstance(v, (int, float)) for v in values):
        return None
    return float(values[0]), float(values[1])  # type: ignore[arg-type]


def _format_plan(plan: dict[str, Any]) -> list[str]:
    from pytest_evalindex.table_format import format_table

    stats = plan["statistics"]
    datasets = plan["datasets"]

    def pm(value: float | None) -> str:
        return "-" if value is None else f"±{value:.3f}"

    how = f"{plan['kind']} {plan['file']}"
    if plan.get("sampler"):
        how += f": {plan['sampler']} sampler, seed {plan['seed']}"
    lines = [
        f"evalindex plan: {plan['index']}, {plan['records']} records from "
        f"{sum(1 for d in datasets if d['records'])} datasets ({how})",
        "",
    ]
    rows = [
        (
            d["name"],
            f"{d['weight']:.1%}",
            str(d["records"]),
            f"{d['prompt_tokens']:,}",
            f"{d['output_tokens']:,}",
            pm(d["half_width"]) + ("" if d["scores_from"] == "observed" else "*"),
        )
        for d in datasets
    ]
    tokens = plan["tokens"]
    footer = [
        (
            "INDEX",
            "100.0%",
            str(plan["records"]),
            f"{tokens['prompt']:,}",
            f"{tokens['output']:,}",
            pm(stats["index_half_width"]),
        )
    ]
    header = ("dataset", "weight", "records", "prompt tokens", "output tokens", "±95%")
    lines += format_table(header, rows, footer=footer, rule="columns")
    if any(d["scores_from"] != "observed" for d in datasets):
        lines.append("* worst case: every score a coin flip (variance 0.25)")
    lines.append("")
    counted = "counted with " if tokens["exact"] else ""
    install = "" if tokens["exact"] else " (install tiktoken to count them)"
    lines.append(f"prompt tokens: {counted}{tokens['method']}{install}")
    lines.append(f"output tokens: {tokens['output_from']}")
    cost = plan["cost"]
    if cost is None:
        lines.append("cost: no prices; give --price IN,OUT (USD per million tokens)")
    else:
        price = cost["price"]
        lines.append(
            f"cost: ${cost['input']:.4f} input + ${cost['output']:.4f} output = "
            f"${cost['total']:.4f} at ${price['input']:g} / ${price['output']:g} per million "
            f"tokens ({cost['price_from']}); cached input and a judge's calls not counted"
        )
    n_eff = stats["effective_sample_size"]
    if stats["index_half_width"] is None:
        lines.append("index: a weighted dataset has no record, so the index cannot be measured")
    else:
        lines.append(
            f"index: 95% interval ±{stats['index_half_width']:.3f} "
            f"({stats['scores_from']}); effective sample size {n_eff:.1f} of "
            f"{plan['records']} records"
        )
        drop = stats["detectable_drop"]
        lines.append(
            f"compare: a paired compare-fail rule on the index (margin {drop['margin']:g}, "
            f"alpha {drop['alpha']:g}) catches a true drop of {drop['drop']:.3f} or more "
            f"{drop['power']:.0%} of the time ({drop['differences_from']})"
        )
    needed = stats["count_for_half_width"]
    if needed is not None:
        lines.append(
            f"count: {needed['count']} records for an index interval of "
            f"±{needed['half_width']:g} (split like {needed['allocation']})"
        )
    return lines


# --------------------------------------------------------------------------- publish


def _license_pair(text: str) -> tuple[str, str]:
    dataset, sep, license_id = text.partition("=")
    if not sep or not dataset or not license_id:
        raise argparse.ArgumentTypeError(f"expected DATASET=LICENSE, got {text!r}")
    return dataset, license_id


def _declare_publish(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "index", metavar="SPEC|TESTSET", type=Path, help="index spec (.yaml) or test set (.jsonl)"
    )
    parser.add_argument("--to", metavar="DIR", type=Path, required=True, help="the folder to write")
    parser.add_argument(
        "--license", metavar="ID", help="license of every source, e.g. cc-by-4.0 (the card's)"
    )
    parser.add_argument(
        "--source-license",
        metavar="DATASET=ID",
        type=_license_pair,
        action="append",
        default=[],
        help="license of one dataset's source; repeatable",
    )
    parser.add_argument(
        "--language", metavar="CODE", action="append", default=[], help="e.g. en; repeatable"
    )
    parser.add_argument(
        "--hub", choices=("hf", "modelscope"), help="also upload the folder to this hub"
    )
    parser.add_argument(
        "--repo", metavar="OWNER/NAME", help="the dataset repository (needed with --hub)"
    )


@command("publish", "write a dataset folder for a hub, and upload it", _declare_publish)
def run_publish(args: argparse.Namespace) -> int:
    from pytest_evalindex.testset.publish import publish

    if args.hub and not args.repo:
        raise EvalIndexError("--hub needs --repo OWNER/NAME", field="--repo")
    if args.repo and not args.hub:
        raise EvalIndexError("--repo needs --hub hf or --hub modelscope", field="--hub")
    result = publish(
        args.index,
        args.to,
        license=args.license,
        source_licenses=dict(args.source_license),
        languages=args.language,
        repo=args.repo,
    )
    for warning in result.warnings:
        _warn(warning)
    print(
        f"evalindex: {result.records} records -> {args.to} (sha256 {result.lock['sha256'][:12]}…)",
        file=sys.stderr,
    )
    if args.hub:
        from pytest_evalindex.data.published import upload

        scheme = "hf" if args.hub == "hf" else "modelscope"
        revision = upload(args.to, args.hub, args.repo, message=f"Publish {args.index.name}")
        at = f"@{revision}" if revision else ""
        print(f"evalindex: uploaded; run it with pytest --index {scheme}://{args.repo}{at}")
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalindex", description="Weighted LLM evaluation indexes: inspect and sample specs."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.declare(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except EvalIndexError as exc:
        print(f"evalindex: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status


if __name__ == "__main__":
    raise SystemExit(main())
