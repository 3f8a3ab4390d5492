from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_evalindex.data.adapters.general_qa import GeneralQA
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.spec.index import Leaf
from pytest_evalindex.testset.sampling import allocate, display_source, rank, sample_leaves


def make_leaf(name: str, source: Path | str | None, **overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": name,
        "weight": 1.0,
        "categories": ("idx",),
        "task_type": "knowledge",
        "tags": (),
        "source": None if source is None else str(source),
        "adapter": "general_qa",
        "scorer": None,
        "fields": {"input": "q", "target": "a", "id": "id", "subset": "topic"},
    }
    values.update(overrides)
    return Leaf(**values)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def qa_rows(n: int, *, prefix: str = "q", topics: tuple[str, ...] = ("a", "b")) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i:03d}",
            "q": f"question {i}",
            "a": str(i),
            "topic": topics[i % len(topics)],
        }
        for i in range(n)
    ]


def read_jsonl(leaf: Leaf) -> Iterator[dict[str, Any]]:
    assert leaf.source is not None
    with open(leaf.source, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def ids(records: list[Any]) -> list[str]:
    return [record.id for record in records]


# --------------------------------------------------------------------------- allocation


def test_weighted_exact() -> None:
    assert allocate([100, 100, 100], [0.5, 0.3, 0.2], 10, "weighted") == ([5, 3, 2], [])


def test_weighted_float_weights_do_not_lose_a_record() -> None:
    # 0.1 and 0.7 are not exact in binary; the split must still be 1/2/7
    assert allocate([50, 50, 50], [0.1, 0.2, 0.7], 10, "weighted")[0] == [1, 2, 7]


def test_largest_remainder_ties_go_to_the_earlier_leaf() -> None:
    assert allocate([100] * 3, [1, 1, 1], 10, "weighted")[0] == [4, 3, 3]
    assert allocate([100] * 3, [0.45, 0.35, 0.2], 10, "weighted")[0] == [5, 3, 2]
    # the largest remainder wins over order
    assert allocate([100] * 3, [0.3, 0.3, 0.4], 11, "weighted")[0] == [3, 3, 5]


def test_shortfall_is_reallocated_with_a_warning() -> None:
    allocation, warnings = allocate(
        [2, 100, 100], [0.5, 0.25, 0.25], 20, "weighted", names=["small", "x", "y"]
    )
    assert allocation == [2, 9, 9]
    assert len(warnings) == 1
    assert "small: only 2 records for a share of 10.0" in warnings[0]


def test_shortfall_cascades_until_stable() -> None:
    # round 1: 11 each, leaf 0 is short; round 2: 16 each, leaf 1 is short; round 3: 20
    allocation, warnings = allocate([1, 12, 100], [1, 1, 1], 33, "weighted")
    assert allocation == [1, 12, 20]
    # leaf 1's own share (11) fits; it is capped only by what leaf 0 handed on: no warning
    assert [w.split(":")[0] for w in warnings] == ["leaf 0"]


def test_shortfall_goes_to_the_others_in_proportion_to_their_weights() -> None:
    allocation, _ = allocate([0, 100, 100], [0.5, 0.375, 0.125], 40, "weighted")
    assert allocation == [0, 30, 10]


def test_stratified_follows_sizes() -> None:
    assert allocate([10, 30, 60], [0.9, 0.05, 0.05], 10, "stratified") == ([1, 3, 6], [])


def test_uniform_is_equal_and_reallocates() -> None:
    assert allocate([10, 30, 60], [0.9, 0.05, 0.05], 9, "uniform")[0] == [3, 3, 3]
    allocation, warnings = allocate([1, 30, 60], [1, 1, 1], 9, "uniform")
    assert allocation == [1, 4, 4]
    assert len(warnings) == 1


def test_fewer_records_than_count_takes_all_with_one_warning() -> None:
    allocation, warnings = allocate([2, 3], [0.5, 0.5], 10, "weighted")
    assert allocation == [2, 3]
    assert warnings == [
        "only 5 records in all datasets, fewer than the 10 asked for; taking all of them"
    ]


def test_allocate_edge_cases() -> None:
    assert allocate([5, 5], [1, 1], 0, "weighted") == ([0, 0], [])
    assert allocate([], [], 10, "weighted")[0] == []
    assert allocate([0, 0], [1, 1], 10, "stratified")[0] == [0, 0]
    with pytest.raises(EvalIndexError, match="unknown sampler 'random'"):
        allocate([1], [1], 1, "random")
    with pytest.raises(EvalIndexError, match="0 or more"):
        allocate([1], [1], -1, "weighted")
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(EvalIndexError, match="positive and finite"):
            allocate([1, 1], [1.0, bad], 1, "weighted")
    assert allocate([1, 1], [1.0, 0.0], 1, "uniform")[0] == [1, 0]  # weights unused


sizes_and_weights = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=0, max_value=60), min_size=n, max_size=n),
        st.lists(
            st.floats(min_value=0.001, max_value=100, allow_nan=False), min_size=n, max_size=n
        ),
    )
)


@settings(max_examples=300, deadline=None)
@given(
    sizes_and_weights,
    st.integers(min_value=0, max_value=250),
    st.sampled_from(["weighted", "stratified", "uniform"]),
)
def test_allocation_properties(
    case: tuple[list[int], list[float]], count: int, sampler: str
) -> None:
    sizes, weights = case
    allocation, _ = allocate(sizes, weights, count, sampler)
    assert sum(allocation) == min(count, sum(sizes))
    assert all(0 <= n <= size for n, size in zip(allocation, sizes, strict=True))


@settings(max_examples=300, deadline=None)
@given(
    sizes_and_weights,
    st.integers(min_value=0, max_value=250),
    st.data(),
)
def test_raising_a_weight_never_lowers_that_leaf_allocation(
    case: tuple[list[int], list[float]], count: int, data: st.DataObject
) -> None:
    # Holds exactly: the exact shares are a water-filling (raising one weight raises its
    # share and lowers or keeps every other), and largest-remainder rounding of such a change
    # never takes a record from the leaf whose share grew.
    sizes, weights = case
    k = data.draw(st.integers(min_value=0, max_value=len(sizes) - 1))
    factor = data.draw(st.floats(min_value=1.0, max_value=50.0))
    before, _ = allocate(sizes, weights, count, "weighted")
    raised = list(weights)
    raised[k] = weights[k] * factor
    after, _ = allocate(sizes, raised, count, "weighted")
    assert after[k] >= before[k]


# --------------------------------------------------------------------------- selection


def test_rank_is_sha256_of_seed_dataset_and_bare_id() -> None:
    import hashlib

    assert rank(7, "gsm8k", "12") == hashlib.sha256(b"7:gsm8k:12").hexdigest()


def test_golden_selection(tmp_path: Path) -> None:
    # Pinned once: a change here changes every frozen test set users have sampled.
    alpha = write_rows(tmp_path / "alpha.jsonl", qa_rows(40))
    beta = write_rows(tmp_path / "beta.jsonl", qa_rows(25, prefix="b"))
    leaves = [
        make_leaf("alpha", alpha, weight=0.6),
        make_leaf("beta", beta, weight=0.4, fields={"input": "q", "target": "a"}),
    ]
    records, warnings = sample_leaves(
        leaves, count=10, seed=42, sampler="weighted", read_rows=read_jsonl
    )
    assert warnings == []
    assert ids(records) == GOLDEN_IDS


# computed once, independently: the 6 (0.6 x 10) smallest sha256("42:alpha:<id>") of alpha's
# ids and the 4 smallest sha256("42:beta:<row position>") of beta's rows, in source order
GOLDEN_IDS = [
    "alpha/q014",
    "alpha/q018",
    "alpha/q023",
    "alpha/q033",
    "alpha/q034",
    "alpha/q038",
    "beta/1",
    "beta/12",
    "beta/13",
    "beta/19",
]


def test_selection_is_the_smallest_ranks_in_source_order(tmp_path: Path) -> None:
    rows = qa_rows(300)
    source = write_rows(tmp_path / "s.jsonl", rows)
    records, _ = sample_leaves(
        [make_leaf("ds", source)], count=25, seed=3, sampler="weighted", read_rows=read_jsonl
    )
    expected = sorted(rows, key=lambda row: rank(3, "ds", row["id"]))[:25]
    assert set(ids(records)) == {f"ds/{row['id']}" for row in expected}
    positions = [int(record.id.removeprefix("ds/q")) for record in records]
    assert positions == sorted(positions)


def test_records_carry_leaf_data_and_leaves_keep_flatten_order(tmp_path: Path) -> None:
    first = write_rows(tmp_path / "first.jsonl", qa_rows(30, prefix="f"))
    second = write_rows(tmp_path / "second.jsonl", qa_rows(30, prefix="s"))
    leaves = [make_leaf("zeta", first, weight=0.5), make_leaf("alpha", second, weight=0.5)]
    records, _ = sample_leaves(leaves, count=8, seed=1, sampler="weighted", read_rows=read_jsonl)
    assert [r.dataset for r in records] == ["zeta"] * 4 + ["alpha"] * 4
    assert all(r.weight == 0.5 and r.categories == ["idx"] for r in records)


def test_seed_changes_the_selection_and_reruns_repeat_it(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "s.jsonl", qa_rows(200))
    leaves = [make_leaf("ds", source)]

    def run(seed: int) -> list[str]:
        return ids(
            sample_leaves(leaves, count=10, seed=seed, sampler="weighted", read_rows=read_jsonl)[0]
        )

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_appending_rows_only_lets_new_rows_in(tmp_path: Path) -> None:
    rows = qa_rows(300)
    small = write_rows(tmp_path / "small.jsonl", rows[:200])
    large = write_rows(tmp_path / "large.jsonl", rows)

    def run(source: Path) -> set[str]:
        leaf = make_leaf("ds", source)
        return set(
            ids(
                sample_leaves([leaf], count=20, seed=5, sampler="weighted", read_rows=read_jsonl)[0]
            )
        )

    before, after = run(small), run(large)
    appended = {f"ds/{row['id']}" for row in rows[200:]}
    assert after <= before | appended
    assert len(before & after) >= 20 - len(after & appended)


def test_subset_list_filters_rows_and_sizes(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "s.jsonl", qa_rows(90, topics=("a", "b", "c")))
    leaves = [
        make_leaf("only_a", source, args={"subset_list": ["a"]}),
        make_leaf("b_and_c", source, args={"subset_list": ["b", "c"]}),
    ]
    records, _ = sample_leaves(leaves, count=9, seed=0, sampler="stratified", read_rows=read_jsonl)
    by_leaf = {name: [r for r in records if r.dataset == name] for name in ("only_a", "b_and_c")}
    # stratified over filtered sizes 30 and 60
    assert len(by_leaf["only_a"]) == 3 and len(by_leaf["b_and_c"]) == 6
    assert {r.subset for r in by_leaf["only_a"]} == {"a"}
    assert {r.subset for r in by_leaf["b_and_c"]} <= {"b", "c"}


def test_subset_list_may_be_one_name(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "s.jsonl", qa_rows(20, topics=("ab", "b")))
    leaf = make_leaf("ds", source, args={"subset_list": "ab"})
    records, _ = sample_leaves([leaf], count=20, seed=0, sampler="weighted", read_rows=read_jsonl)
    assert len(records) == 10 and {r.subset for r in records} == {"ab"}


def test_subset_list_too_small_shortfall(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "s.jsonl", qa_rows(40, topics=("a",) * 19 + ("rare",)))
    leaves = [
        make_leaf("rare", source, weight=0.5, args={"subset_list": ["rare"]}),
        make_leaf("common", source, weight=0.5, args={"subset_list": ["a"]}),
    ]
    records, warnings = sample_leaves(
        leaves, count=10, seed=0, sampler="weighted", read_rows=read_jsonl
    )
    assert [r.dataset for r in records].count("rare") == 2
    assert len(records) == 10
    assert warnings and "dataset 'rare': only 2 records" in warnings[0]


def test_duplicate_ids_name_source_and_both_rows(tmp_path: Path) -> None:
    rows = qa_rows(5)
    rows[3]["id"] = rows[1]["id"]
    source = write_rows(tmp_path / "dup.jsonl", rows)
    with pytest.raises(EvalIndexError) as info:
        sample_leaves(
            [make_leaf("ds", source)], count=10, seed=0, sampler="weighted", read_rows=read_jsonl
        )
    message = str(info.value)
    assert message.startswith(str(source))
    assert "rows 1 and 3" in message and "'q001'" in message


def test_duplicate_at_the_heap_boundary_is_found(tmp_path: Path) -> None:
    # the duplicate of the currently worst kept row ties with it and must still be caught
    rows = qa_rows(50)
    ranked = sorted(range(50), key=lambda i: rank(0, "ds", rows[i]["id"]))
    worst_kept = max(ranked[:5])
    rows.append(dict(rows[worst_kept]))
    source = write_rows(tmp_path / "dup.jsonl", rows)
    with pytest.raises(EvalIndexError, match=f"rows {worst_kept} and 50"):
        sample_leaves(
            [make_leaf("ds", source)], count=5, seed=0, sampler="weighted", read_rows=read_jsonl
        )


def test_only_selected_rows_become_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = qa_rows(100)
    for row in rows:
        del row["q"]  # every row is broken; only converted rows would complain
    source = write_rows(tmp_path / "s.jsonl", rows)
    calls: list[int] = []
    original = GeneralQA.to_record

    def counting(self: GeneralQA, row: dict, position: int, leaf: Leaf) -> Any:
        calls.append(position)
        return original(self, {**row, "q": "patched"}, position, leaf)

    monkeypatch.setattr(GeneralQA, "to_record", counting)
    records, _ = sample_leaves(
        [make_leaf("ds", source)], count=7, seed=0, sampler="weighted", read_rows=read_jsonl
    )
    assert len(records) == 7 and len(calls) == 7


def test_selected_row_missing_input_is_an_error(tmp_path: Path) -> None:
    rows = qa_rows(3)
    del rows[2]["q"]
    source = write_rows(tmp_path / "s.jsonl", rows)
    with pytest.raises(EvalIndexError, match=r"row 2 .*'q' \(fields.input\)"):
        sample_leaves(
            [make_leaf("ds", source)], count=3, seed=0, sampler="weighted", read_rows=read_jsonl
        )


def generated_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"id": f"r{i}", "q": "x" * 100, "a": "y", "topic": "t"}


def test_selection_memory_does_not_grow_with_the_source() -> None:
    leaf = make_leaf("ds", "generated")

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            records, _ = sample_leaves(
                [leaf], count=20, seed=0, sampler="weighted", read_rows=lambda _: generated_rows(n)
            )
            assert len(records) == 20
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(5_000), peak(50_000)
    # ten times the rows, about the same memory (a list of rows would take ~10 MB more)
    assert large < small * 1.5 + 100_000


def test_unknown_adapter_and_missing_source_are_spec_errors(tmp_path: Path) -> None:
    spec_file = tmp_path / "index.yaml"
    leaf = make_leaf("ds", "x", adapter="nope", spec_file=spec_file, field_path="datasets[0]")
    with pytest.raises(EvalIndexError, match=r"unknown adapter 'nope'.*general_qa") as info:
        sample_leaves([leaf], count=1, seed=0, sampler="weighted", read_rows=read_jsonl)
    assert info.value.field == "datasets[0].adapter"
    leaf = make_leaf("ds", None, spec_file=spec_file, field_path="datasets[0]")
    with pytest.raises(EvalIndexError, match="no source") as info:
        sample_leaves([leaf], count=1, seed=0, sampler="weighted", read_rows=read_jsonl)
    assert info.value.field == "datasets[0].source"


def test_display_source_is_relative_to_the_spec(tmp_path: Path) -> None:
    spec_file = tmp_path / "suite" / "index.yaml"
    inside = make_leaf("a", tmp_path / "suite" / "data" / "x.jsonl", spec_file=spec_file)
    beside = make_leaf("b", tmp_path / "shared" / "y.jsonl", spec_file=spec_file)
    remote = make_leaf("c", "hf://org/set", spec_file=spec_file)
    assert display_source(inside) == "data/x.jsonl"
    assert display_source(beside) == "../shared/y.jsonl"
    assert display_source(remote) == "hf://org/set"


def test_default_reader_reads_a_shared_source_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_evalindex.data import sources

    source = write_rows(tmp_path / "s.jsonl", qa_rows(60, topics=("a", "b", "c")))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"items": qa_rows(10, prefix="o")}), encoding="utf-8")
    opened: list[tuple[str, Any]] = []
    original = sources.iter_rows

    def counting(path: str, *, json_key: str | None = None) -> Iterator[dict[str, Any]]:
        opened.append((Path(path).name, json_key))
        return original(path, json_key=json_key)

    monkeypatch.setattr(sources, "iter_rows", counting)
    leaves = [
        make_leaf(topic, source, args={"subset_list": [topic]}) for topic in ("a", "b", "c")
    ] + [make_leaf("other", other, args={"json_key": "items"})]
    records, _ = sample_leaves(leaves, count=12, seed=0, sampler="uniform")
    assert opened == [("s.jsonl", None), ("other.json", "items")]
    assert [r.dataset for r in records] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["other"] * 3
    # the shared pass selects exactly what separate passes select
    separate, _ = sample_leaves(leaves, count=12, seed=0, sampler="uniform", read_rows=read_json)
    assert ids(records) == ids(separate)


def read_json(leaf: Leaf) -> Iterator[dict[str, Any]]:
    assert leaf.source is not None
    if leaf.source.endswith(".json"):
        yield from json.loads(Path(leaf.source).read_text())[leaf.args["json_key"]]
    else:
        yield from read_jsonl(leaf)


def test_sample_index_header_and_overrides(tmp_path: Path) -> None:
    import hashlib

    import pytest_evalindex
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    (tmp_path / "data").mkdir()
    data = write_rows(tmp_path / "data" / "s.jsonl", qa_rows(30))
    spec_path = tmp_path / "index.yaml"
    spec_path.write_text(
        "name: idx\ncount: 6\nseed: 3\ndatasets:\n"
        "  - {name: a, weight: 2, adapter: general_qa, source: data/s.jsonl,\n"
        "     fields: {input: q, target: a, id: id, subset: topic}, args: {subset_list: [a]}}\n"
        "  - {name: b, weight: 1, adapter: general_qa, source: data/s.jsonl,\n"
        "     fields: {input: q, target: a, id: id, subset: topic}, args: {subset_list: [b]}}\n",
        encoding="utf-8",
    )
    spec = load_spec(spec_path)
    result = sample_index(spec)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert result.header == {
        "spec": "idx",
        "seed": 3,
        "sampler": "weighted",
        "count": 6,
        "selected": 6,
        "version": pytest_evalindex.__version__,
        "sources": {
            "a": {"source": "data/s.jsonl", "sha256": digest},
            "b": {"source": "data/s.jsonl", "sha256": digest},
        },
    }
    assert [r.dataset for r in result.records] == ["a"] * 4 + ["b"] * 2
    assert result.warnings == []

    override = sample_index(spec, count=40, seed=4, sampler="uniform")
    assert (override.header["count"], override.header["seed"]) == (40, 4)
    assert override.header["sampler"] == "uniform" and override.header["selected"] == 30
    assert override.warnings == [
        "only 30 records in all datasets, fewer than the 40 asked for; taking all of them"
    ]


def test_float_weights_do_not_cap_a_leaf_whose_share_equals_its_size() -> None:
    allocation, warnings = allocate([12, 10, 10], [0.4, 0.3, 0.3], 30, "weighted")
    assert allocation == [12, 9, 9]
    assert warnings == []
