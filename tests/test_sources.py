"""Reading data sources: every format, compression, packaged files, errors, streaming."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.data import sources
from pytest_evalindex.data.sources import iter_rows, resolve_source, row_line, source_sha256
from pytest_evalindex.errors import EvalIndexError

ROWS = [
    {"question": "What is 2+2?", "answer": "4"},
    {"question": 'Capital of France, "in quotes", with a comma?', "answer": "Paris"},
    {"question": "line one\nline two", "answer": ""},
]

# strings that look like JSON structure, to trip up a parser that cuts on brackets
TRICKY_ROWS: list[dict[str, Any]] = [
    {"id": "a", "text": 'brackets ] [ } { and "escaped quotes" and a \\ backslash'},
    {"id": "b", "nested": {"list": [1, -2.5e-3, {"deep": "}]}"}], "flag": True, "none": None}},
    {"id": "c", "unicode": "é 中文 😀", "empty": {}, "empties": [[], {}]},
    {"id": "d", "number": 1234567890123, "text": "\\u005b not an escape"},
]


def write_bytes(path: Path, data: bytes) -> Path:
    if path.suffix.lower() == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def csv_bytes(rows: list[dict[str, Any]], delimiter: str = ",") -> bytes:
    lines: list[list[str]] = [list(rows[0])] + [[str(v) for v in row.values()] for row in rows]
    out: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

    csv.writer(Sink(), delimiter=delimiter, lineterminator="\r\n").writerows(lines)
    return "".join(out).encode()


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink, row_group_size=2)
    return bytes(sink.getvalue().to_pybytes())


FORMATS: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "jsonl": jsonl_bytes,
    "ndjson": jsonl_bytes,
    "json": lambda rows: json.dumps(rows, indent=1).encode(),
    "csv": csv_bytes,
    "tsv": lambda rows: csv_bytes(rows, delimiter="\t"),
    "parquet": parquet_bytes,
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_reads_the_same_rows(tmp_path: Path, fmt: str, compressed: bool) -> None:
    name = f"rows.{fmt}" + (".gz" if compressed else "")
    path = write_bytes(tmp_path / name, FORMATS[fmt](ROWS))
    rows = list(iter_rows(str(path)))
    assert rows == ROWS
    # dicts; those read line by line also know the line each row starts on
    assert all(isinstance(row, dict) for row in rows)
    if fmt in ("jsonl", "ndjson", "csv", "tsv"):
        lines = [row_line(row) or 0 for row in rows]
        assert 0 not in lines and lines == sorted(set(lines))


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "ROWS.JSONL.GZ", jsonl_bytes(ROWS))
    assert list(iter_rows(str(path))) == ROWS


def test_unknown_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "rows.xlsx"
    path.write_bytes(b"")
    with pytest.raises(EvalIndexError) as info:
        iter_rows(str(path))
    message = str(info.value)
    assert "rows.xlsx" in message
    for extension in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".gz"):
        assert extension in message


def test_missing_file_is_reported_when_iter_rows_is_called(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match="source not found") as info:
        iter_rows(str(tmp_path / "absent.jsonl"))
    assert str(tmp_path / "absent.jsonl") in str(info.value)


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_skips_blank_lines_and_tolerates_bom_and_crlf(tmp_path: Path) -> None:
    text = '\ufeff{"a": 1}\r\n\r\n   \n{"a": 2}\r\n\n'
    path = tmp_path / "rows.jsonl"
    path.write_bytes(text.encode())
    assert list(iter_rows(str(path))) == [{"a": 1}, {"a": 2}]


def test_jsonl_broken_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3,, }\n{"a": 4}\n')
    rows = iter_rows(str(path))
    assert next(rows) == {"a": 1}
    assert next(rows) == {"a": 2}
    with pytest.raises(EvalIndexError) as info:
        next(rows)
    error = info.value
    assert error.file == str(path)
    assert error.line == 4
    assert "Expecting property name" in error.message
    assert str(error).startswith(f"{path}:4: ")


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "rows.jsonl.gz", b'{"a": 1}\n[1, 2]\n')
    with pytest.raises(EvalIndexError, match=r"JSON object.*a list") as info:
        list(iter_rows(str(path)))
    assert info.value.line == 2


def test_not_utf8_text_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes('{"a": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(EvalIndexError, match="not UTF-8"):
        list(iter_rows(str(path)))


def test_file_named_gz_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(jsonl_bytes(ROWS))
    with pytest.raises(EvalIndexError, match="cannot decompress") as info:
        list(iter_rows(str(path)))
    assert info.value.file == str(path)


# --- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 16, 64, sources.JSON_CHUNK_SIZE])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_incremental_decoder_across_chunk_boundaries(
    tmp_path: Path, chunk_size: int, indent: int | None
) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(TRICKY_ROWS, indent=indent, ensure_ascii=False), encoding="utf-8")
    assert list(iter_rows(str(path), chunk_size=chunk_size)) == TRICKY_ROWS


@pytest.mark.parametrize("chunk_size", [1, 4, 1000])
def test_json_object_holding_the_rows_under_data(tmp_path: Path, chunk_size: int) -> None:
    document = {"version": 12345, "meta": {"rows": "not these"}, "data": TRICKY_ROWS, "end": 1.5}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(document))
    assert list(iter_rows(str(path), chunk_size=chunk_size)) == TRICKY_ROWS


def test_json_object_with_another_key(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "rows.json.gz", json.dumps({"rows": ROWS}).encode())
    assert list(iter_rows(str(path), json_key="rows")) == ROWS
    with pytest.raises(EvalIndexError, match=r"no key 'data'.*'rows'"):
        list(iter_rows(str(path)))


def test_json_empty_list_and_empty_object_list(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(" [ ] \n")
    assert list(iter_rows(str(path))) == []
    path.write_text('{"data": []}')
    assert list(iter_rows(str(path))) == []


@pytest.mark.parametrize("chunk_size", [3, 1000])
def test_json_syntax_error_names_line_and_column(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[\n  {"a": 1},\n  {"a": 2},\n  {"a": tru}\n]\n')
    rows = iter_rows(str(path), chunk_size=chunk_size)
    assert next(rows) == {"a": 1}
    assert next(rows) == {"a": 2}
    with pytest.raises(EvalIndexError) as info:
        next(rows)
    assert info.value.file == str(path)
    assert info.value.line == 4
    assert "Expecting value" in info.value.message
    assert "column 9" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"a": 1}, 3]', "should be a JSON object, found a number"),
        ('[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
        ('"just a string"', "expected a JSON list of row objects"),
        ("", "empty"),
        ('[{"a": 1}] trailing', "after the end"),
        ('{"data": {"a": 1}}', "'data' should hold a list"),
        ('[{"a": "never closed}]', "Unterminated string"),
    ],
)
def test_json_shape_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "rows.json"
    path.write_text(text)
    with pytest.raises(EvalIndexError, match=expected) as info:
        list(iter_rows(str(path), chunk_size=4))
    assert info.value.file == str(path)
    assert info.value.line == 1


# --- CSV / TSV ---------------------------------------------------------------------------


def test_csv_bom_empty_cells_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes('\ufeffq,a,note\r\n"two\r\nlines",x,\r\n,,\r\n\r\nlast,y,z\r\n'.encode())
    assert list(iter_rows(str(path))) == [
        {"q": "two\r\nlines", "a": "x", "note": ""},
        {"q": "", "a": "", "note": ""},
        {"q": "last", "a": "y", "note": "z"},
    ]


def test_csv_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('q,a\nfine,1\n"multi\nline",2\ntoo,many,cells\n')
    with pytest.raises(EvalIndexError, match="3 cells but the header names 2") as info:
        list(iter_rows(str(path)))
    assert info.value.file == str(path)
    assert info.value.line == 5


def test_csv_short_row_gets_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "rows.tsv"
    path.write_text("q\ta\tb\nonly\n")
    assert list(iter_rows(str(path))) == [{"q": "only", "a": "", "b": ""}]


def test_csv_duplicate_column_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("q,a,q\n1,2,3\n")
    with pytest.raises(EvalIndexError, match="column 'q' twice") as info:
        list(iter_rows(str(path)))
    assert info.value.line == 1
    path.write_text("")
    assert list(iter_rows(str(path))) == []


def test_csv_cells_above_the_default_field_limit(tmp_path: Path) -> None:
    long_text = "x" * 300_000
    path = tmp_path / "rows.csv"
    path.write_text(f'q,a\n"{long_text}",1\n')
    assert list(iter_rows(str(path))) == [{"q": long_text, "a": "1"}]


# --- parquet -----------------------------------------------------------------------------


def test_parquet_keeps_types_and_reads_many_batches(tmp_path: Path) -> None:
    rows = [{"id": i, "text": f"t{i}", "choices": ["a", "b"]} for i in range(2500)]
    path = write_bytes(tmp_path / "rows.parquet", parquet_bytes(rows))
    assert list(iter_rows(str(path))) == rows


def test_parquet_without_pyarrow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bytes(tmp_path / "rows.parquet", parquet_bytes(ROWS))
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(EvalIndexError) as info:
        iter_rows(str(path))
    assert "pip install 'pytest-evalindex[parquet]'" in str(info.value)


def test_corrupt_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(EvalIndexError, match="cannot read the parquet file") as info:
        list(iter_rows(str(path)))
    assert info.value.file == str(path)


# --- resolve_source ----------------------------------------------------------------------


def test_resolve_relative_path_against_base_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.jsonl").write_text("{}\n")
    resolved = resolve_source("data/../data/rows.jsonl", tmp_path)
    assert resolved == str(data / "rows.jsonl")
    assert resolve_source(str(data / "rows.jsonl"), Path("/elsewhere")) == resolved


def test_resolve_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "rows.csv").write_text("a\n1\n")
    assert resolve_source("~/rows.csv", Path("/elsewhere")) == str(tmp_path / "rows.csv")


def test_resolve_missing_file_names_the_absolute_path(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_source("data/nope.jsonl", tmp_path, file="spec.yaml", field="datasets[0].source")
    error = info.value
    expected = tmp_path / "data" / "nope.jsonl"
    assert error.message == f"source not found: {expected}"
    assert (error.file, error.field) == ("spec.yaml", "datasets[0].source")
    assert str(error) == f"spec.yaml: datasets[0].source: source not found: {expected}"


def test_resolve_without_checking_only_makes_the_path_absolute(tmp_path: Path) -> None:
    assert resolve_source("x.jsonl", tmp_path, must_exist=False) == str(tmp_path / "x.jsonl")


def test_resolve_rejects_folders_and_unknown_schemes(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match="folder"):
        resolve_source(".", tmp_path)
    with pytest.raises(EvalIndexError, match=r"unsupported source 'https://x/y\.jsonl'"):
        resolve_source("https://x/y.jsonl", tmp_path, file="s.yaml")


@pytest.mark.parametrize("uri", ["hf://datasets/openai/gsm8k", "modelscope://org/ds/x.jsonl"])
def test_remote_hub_ids_resolve_unchanged(tmp_path: Path, uri: str) -> None:
    # reading them is tested in test_hub.py
    assert resolve_source(uri, tmp_path) == uri


# --- pkg:// ------------------------------------------------------------------------------


@pytest.fixture
def data_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable package (on sys.path for this test) shipping data files."""
    name = "evalindex_fixture_data_pkg"
    package = tmp_path / "site" / name
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "rows.jsonl").write_bytes(jsonl_bytes(ROWS))
    (package / "data" / "rows.csv.gz").write_bytes(gzip.compress(csv_bytes(ROWS)))
    (tmp_path / "site" / "plain_module_xyz.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield name
    for module in (name, "plain_module_xyz"):
        sys.modules.pop(module, None)


def test_pkg_uri_resolves_unchanged_and_reads(data_package: str, tmp_path: Path) -> None:
    for inner in ("data/rows.jsonl", "data/rows.csv.gz"):
        uri = f"pkg://{data_package}/{inner}"
        assert resolve_source(uri, tmp_path) == uri
        assert list(iter_rows(uri)) == ROWS
        stored = (tmp_path / "site" / data_package / inner).read_bytes()
        assert source_sha256(uri) == hashlib.sha256(stored).hexdigest()


def test_pkg_uri_missing_package(tmp_path: Path) -> None:
    uri = "pkg://no_such_pkg_evalindex/data/x.jsonl"
    with pytest.raises(EvalIndexError) as info:
        resolve_source(uri, tmp_path, file="s.yaml", field="datasets[2].source", line=9)
    error = info.value
    assert "package 'no_such_pkg_evalindex' is not installed" in error.message
    assert (error.file, error.line, error.field) == ("s.yaml", 9, "datasets[2].source")
    with pytest.raises(EvalIndexError, match="not installed"):
        iter_rows(uri)


def test_pkg_uri_missing_file_module_and_malformed(data_package: str, tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match=r"has no file 'data/absent\.jsonl'"):
        resolve_source(f"pkg://{data_package}/data/absent.jsonl", tmp_path)
    with pytest.raises(EvalIndexError, match="is a module, not a package"):
        resolve_source("pkg://plain_module_xyz/rows.jsonl", tmp_path)
    with pytest.raises(EvalIndexError, match="pkg://<package>/<path"):
        resolve_source(f"pkg://{data_package}", tmp_path)


# --- hashing and streaming ---------------------------------------------------------------


def test_sha256_hashes_the_stored_compressed_bytes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "rows.jsonl.gz", jsonl_bytes(ROWS))
    assert source_sha256(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()


def peak_bytes_while_reading(path: Path) -> tuple[int, int]:
    """(rows read, tracemalloc peak) for one full pass over ``path``."""
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_rows(str(path)))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_jsonl_of_50mb_streams_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    filler = "x" * 1000
    with path.open("w") as out:
        for i in range(50_000):
            out.write(f'{{"id": {i}, "text": "{filler}"}}\n')
    assert path.stat().st_size > 50_000_000
    count, peak = peak_bytes_while_reading(path)
    assert count == 50_000
    assert peak < 20_000_000
    assert peak < 5_000_000  # what it really takes: a line at a time


def test_json_array_streams_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    filler = "y" * 1000
    with path.open("w") as out:
        out.write("[\n")
        out.write(",\n".join(f'{{"id": {i}, "text": "{filler}"}}' for i in range(20_000)))
        out.write("\n]\n")
    assert path.stat().st_size > 20_000_000
    count, peak = peak_bytes_while_reading(path)
    assert count == 20_000
    assert peak < 5_000_000
