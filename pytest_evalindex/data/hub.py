"""Datasets from the Hugging Face and ModelScope hubs, and datasets saved with ``save_to_disk``.

Sources (a split defaults to ``test``):

    hf://<owner>/<name>[/<config>][@<split>]        a dataset on the Hugging Face Hub
    hf:///<absolute path>[@<split>]                  a Dataset/DatasetDict saved with save_to_disk
    hf://./<relative path>[@<split>]                 the same, relative to the spec's folder
    modelscope://<owner>/<name>[/<subset>][@<split>] a dataset on ModelScope

``hf://<relative path>`` is a saved dataset too when that folder exists next to the spec;
otherwise it is a hub id. ``hf://datasets/<owner>/<name>`` (the hub's own URL path) is read
as ``hf://<owner>/<name>``.

Reading goes through the ``datasets`` library (extra ``hf``) and ``modelscope`` (extra
``modelscope``), imported only when such a source is read. A hub dataset is loaded without
``streaming``: the library downloads it once into its cache (``HF_HOME`` /
``HF_DATASETS_CACHE``) as memory-mapped Arrow files, and later runs read it from there, offline
too when ``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1`` is set. Without those, a Hub that
does not answer a connection within a few seconds is loaded in the libraries' offline mode, so
the cache (or one clear error) answers instead of half a minute of retries. Rows are still
read a batch at a time, never all into memory. A loaded split is kept for the rest of the
process, so sampling and hashing the same source do not load it twice.

Fingerprint (:func:`hub_sha256`): sha256 over the bytes of the Arrow files behind the split
(the cache files of a hub dataset, the ``data-*.arrow`` files of a saved one), in the
library's order. It changes when the data changes and is the same wherever the same files
are; a different ``datasets`` version may write a hub dataset's cache files differently. A
split held only in memory (no files) is fingerprinted by the library's ``_fingerprint``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_evalindex.errors import EvalIndexError

HF_SCHEME = "hf://"
MODELSCOPE_SCHEME = "modelscope://"
HUB_SCHEMES = (HF_SCHEME, MODELSCOPE_SCHEME)
DEFAULT_SPLIT = "test"

HF_INSTALL = "pip install 'pytest-evalindex[hf]'"
MODELSCOPE_INSTALL = "pip install 'pytest-evalindex[modelscope]'"

_BATCH_ROWS = 1024
_BYTES_CHUNK_SIZE = 1 << 20
_LOADED_SPLITS = 8  # loaded splits kept per process
# files save_to_disk writes: DatasetDict / Dataset
SAVED_DATASET_MARKERS = ("dataset_dict.json", "state.json")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONFIG_PART = re.compile(r"^[^\s/@]+$")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class HubSource:
    """A parsed hub source: a hub dataset (``repo``) or a saved one (``local_path``)."""

    scheme: str  # "hf" or "modelscope"
    repo: str | None  # "owner/name" on the hub
    config: str | None  # the Hugging Face config, or the ModelScope subset
    split: str
    split_given: bool  # the source named its split (else DEFAULT_SPLIT)
    local_path: str | None  # a folder written by save_to_disk

    @property
    def label(self) -> str:
        """How messages name the dataset."""
        if self.local_path is not None:
            return f"the dataset saved in {self.local_path}"
        kind = "config" if self.scheme == "hf" else "subset"
        config = f" ({kind} {self.config!r})" if self.config else ""
        return f"{self.repo}{config}"


def is_hub_source(source: str) -> bool:
    return source.startswith(HUB_SCHEMES)


def _usage(scheme: str) -> str:
    if scheme == "hf":
        return (
            "write hf://<owner>/<name>[/<config>][@<split>] (e.g. hf://openai/gsm8k/main@test) "
            "or hf:///<path of a dataset saved with save_to_disk>[@<split>]"
        )
    return (
        "write modelscope://<owner>/<name>[/<subset>][@<split>] "
        "(e.g. modelscope://AI-ModelScope/gsm8k/main@test)"
    )


def _split_off(body: str) -> tuple[str, str | None]:
    """(the part before ``@split``, the split or None)."""
    head, at, tail = body.rpartition("@")
    if not at or "/" in tail:
        return body, None
    return head, tail


def _is_explicit_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or path in (".", "..")


def _absolute(path: str, base_dir: Path) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir).expanduser() / candidate
    # normpath, not resolve(): keep the user's own spelling of symlinked folders
    return os.path.normpath(candidate.absolute())


def parse_hub_source(
    uri: str,
    *,
    base_dir: Path | None = None,
    file: str | Path | None = None,
    field: str | None = None,
    line: int | None = None,
) -> HubSource:
    """Parse ``uri`` without touching the network; relative local paths stay relative.

    An ``hf://`` path that is not explicitly local (``/``, ``./``, ``../``, ``~``) is a saved
    dataset when it names an existing folder under ``base_dir``, else a hub id.
    """
    scheme, _, body = uri.partition("://")

    def fail(message: str) -> EvalIndexError:
        return EvalIndexError(
            f"source {uri!r}: {message}; {_usage(scheme)}", file=file, field=field, line=line
        )

    path, split = _split_off(body)
    if split is not None and not _CONFIG_PART.match(split):
        raise fail(f"the split after '@' should be a name such as test, got {split!r}")
    split_given = split is not None
    split = split or DEFAULT_SPLIT
    if scheme == "hf" and (
        _is_explicit_local(path)
        or (base_dir is not None and os.path.isdir(_absolute(path, base_dir)))
    ):
        return HubSource("hf", None, None, split, split_given, path)
    parts = path.split("/")
    if scheme == "hf" and len(parts) >= 3 and parts[0] == "datasets":
        parts = parts[1:]  # the hub's URL path: huggingface.co/datasets/<owner>/<name>
    if len(parts) not in (2, 3) or not all(parts):
        raise fail("expected <owner>/<name> and an optional config")
    owner, name, *config = parts
    for part in (owner, name):
        if not _REPO_PART.match(part):
            raise fail(f"{part!r} is not a valid owner or dataset name")
    if config and not _CONFIG_PART.match(config[0]):
        raise fail(f"{config[0]!r} is not a valid config name")
    return HubSource(
        scheme, f"{owner}/{name}", config[0] if config else None, split, split_given, None
    )


def resolve_hub_source(
    uri: str,
    base_dir: Path,
    *,
    file: str | Path | None = None,
    field: str | None = None,
    line: int | None = None,
    must_exist: bool = True,
) -> str:
    """The source as reading needs it: hub ids unchanged, saved datasets made absolute.

    ``must_exist`` checks a saved dataset's folder; a hub id is only parsed (whether the hub
    has it is known when it is read).
    """
    parsed = parse_hub_source(uri, base_dir=base_dir, file=file, field=field, line=line)
    if parsed.local_path is None:
        return uri  # a hub id
    local = _absolute(parsed.local_path, base_dir)
    if must_exist:
        _check_saved_dataset(local, uri, file=file, field=field, line=line)
    return f"{HF_SCHEME}{local}" + (f"@{parsed.split}" if parsed.split_given else "")


def _check_saved_dataset(
    folder: str,
    uri: str,
    *,
    file: str | Path | None = None,
    field: str | None = None,
    line: int | None = None,
) -> None:
    if not os.path.isdir(folder):
        raise EvalIndexError(
            f"source {uri!r}: no folder {folder}", file=file, field=field, line=line
        )
    if not any(os.path.isfile(os.path.join(folder, marker)) for marker in SAVED_DATASET_MARKERS):
        raise EvalIndexError(
            f"source {uri!r}: {folder} is not a dataset saved with save_to_disk (it has "
            f"neither {' nor '.join(SAVED_DATASET_MARKERS)}); for a folder of data files drop the "
            "hf:// prefix",
            file=file,
            field=field,
            line=line,
        )


# --------------------------------------------------------------------------- reading


def iter_hub_rows(uri: str) -> Iterator[dict[str, Any]]:
    """The rows of the split as plain dicts, a batch at a time."""
    dataset = _dataset(uri)

    def rows() -> Iterator[dict[str, Any]]:
        for batch in dataset.iter(batch_size=_BATCH_ROWS):
            columns = list(batch)
            for values in zip(*(batch[column] for column in columns), strict=True):
                yield dict(zip(columns, values, strict=True))

    return rows()


def hub_sha256(uri: str) -> str:
    """sha256 hex digest of the split's Arrow files (see the module docstring)."""
    dataset = _dataset(uri)
    digest = hashlib.sha256()
    files = [entry["filename"] for entry in getattr(dataset, "cache_files", None) or []]
    if not files:
        digest.update(str(getattr(dataset, "_fingerprint", "")).encode())
        return digest.hexdigest()
    for name in files:
        try:
            with open(name, "rb") as stream:
                while chunk := stream.read(_BYTES_CHUNK_SIZE):
                    digest.update(chunk)
        except OSError as exc:
            raise EvalIndexError(
                f"cannot read the dataset file {name}: {exc.strerror or exc}", file=uri
            ) from None
    return digest.hexdigest()


def clear_loaded() -> None:
    """Forget the splits loaded so far (they are otherwise kept for the process)."""
    _load_split.cache_clear()


def _parse_for_reading(uri: str) -> HubSource:
    # sources from a spec are resolved (absolute) already; others are relative to the cwd
    return parse_hub_source(uri, base_dir=Path.cwd(), file=uri)


def _dataset(uri: str) -> Any:
    parsed = _parse_for_reading(uri)
    if parsed.local_path is not None or parsed.scheme == "hf":
        _import_datasets(uri)
    else:
        _import_modelscope(uri)
    return _load_split(uri)


@functools.lru_cache(maxsize=_LOADED_SPLITS)
def _load_split(uri: str) -> Any:
    parsed = _parse_for_reading(uri)
    if parsed.local_path is not None:
        return _load_saved(parsed, uri)
    if parsed.scheme == "hf":
        return _load_hf(parsed, uri)
    return _load_modelscope(parsed, uri)


def _import_datasets(uri: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise EvalIndexError(
            f"reading hf:// sources needs the datasets library: {HF_INSTALL}", file=uri
        ) from None
    return datasets


def _import_modelscope(uri: str) -> Any:
    try:
        from modelscope.msdatasets import MsDataset
    except ImportError:
        raise EvalIndexError(
            f"reading modelscope:// sources needs the modelscope library: {MODELSCOPE_INSTALL}",
            file=uri,
        ) from None
    except RuntimeError as exc:  # modelscope's lazy importer wraps a missing dependency
        raise EvalIndexError(
            "modelscope is installed without what it needs to read datasets "
            f"({_one_line(exc)}): {MODELSCOPE_INSTALL}",
            file=uri,
        ) from None
    return MsDataset


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pick_split(loaded: Any, parsed: HubSource, uri: str) -> Any:
    """The split of a DatasetDict (a Dataset is returned as it is)."""
    if not hasattr(loaded, "keys"):
        return loaded
    splits = list(loaded.keys())
    if parsed.split in splits:
        return loaded[parsed.split]
    if not parsed.split_given and len(splits) == 1:
        return loaded[splits[0]]
    raise EvalIndexError(
        f"{parsed.label} has no split {parsed.split!r}; its splits: "
        f"{', '.join(map(repr, splits)) or 'none'} (choose one with @<split>)",
        file=uri,
    )


def _load_saved(parsed: HubSource, uri: str) -> Any:
    datasets = _import_datasets(uri)
    assert parsed.local_path is not None
    folder = os.path.expanduser(parsed.local_path)
    _check_saved_dataset(folder, uri)
    try:
        loaded = datasets.load_from_disk(folder)
    except Exception as exc:  # the library raises many kinds; all mean "cannot load"
        raise EvalIndexError(f"cannot load {parsed.label}: {_one_line(exc)}", file=uri) from None
    return _pick_split(loaded, parsed, uri)


def offline_mode() -> bool:
    """Whether the environment asks the Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for name in _OFFLINE_VARIABLES
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a connection to the Hugging Face Hub (``HF_ENDPOINT``) opens within
    ``timeout_s``; name lookup included, which a socket timeout alone does not bound."""
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    opened: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            opened.append(True)
        except OSError:
            opened.append(False)

    thread = threading.Thread(target=probe, name="evalindex-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(opened and opened[0])


@contextmanager
def _offline_hub(datasets: Any) -> Iterator[None]:
    """The libraries' own offline mode for one load: the cache answers or a clear error
    does, instead of five retries with backoff (about 25 s) of log lines first."""
    import huggingface_hub.constants as hub_constants

    saved = (hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    hub_constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def _hf_load_error(
    exc: BaseException, parsed: HubSource, uri: str, *, unreachable_hub: bool = False
) -> EvalIndexError:
    chain = list(_causes(exc))
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    unreachable = (
        isinstance(exc, ConnectionError)
        or bool(names & {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError"})
        or "Couldn't reach" in text
    )
    if unreachable:
        why = (
            "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
            if not unreachable_hub and (offline_mode() or "OfflineModeIsEnabled" in text)
            else "the Hugging Face Hub cannot be reached"
        )
        return EvalIndexError(
            f"{parsed.label} is not in the local datasets cache and {why}; run once with "
            "network access to fill the cache (HF_HOME / HF_DATASETS_CACHE), or save the "
            "dataset with save_to_disk and write hf:///<that folder>",
            file=uri,
        )
    if names & {"DatasetNotFoundError", "RepositoryNotFoundError", "GatedRepoError"}:
        return EvalIndexError(
            f"no dataset {parsed.repo!r} on the Hugging Face Hub, or it is private or gated "
            "(log in with `hf auth login` or set HF_TOKEN)",
            file=uri,
        )
    return EvalIndexError(f"cannot load {parsed.label}: {_one_line(exc)}", file=uri)


def _load_hf(parsed: HubSource, uri: str) -> Any:
    datasets = _import_datasets(uri)
    # without a network, go straight to the cache
    unreachable = not offline_mode() and not hub_reachable()
    try:
        with _offline_hub(datasets) if unreachable else nullcontext():
            return datasets.load_dataset(parsed.repo, parsed.config, split=parsed.split)
    except Exception as exc:  # the library raises many kinds; each becomes one message
        raise _hf_load_error(exc, parsed, uri, unreachable_hub=unreachable) from None


def _load_modelscope(parsed: HubSource, uri: str) -> Any:
    ms_dataset = _import_modelscope(uri)
    assert parsed.repo is not None
    owner, name = parsed.repo.split("/")
    options: dict[str, Any] = {"namespace": owner, "split": parsed.split}
    if parsed.config is not None:
        options["subset_name"] = parsed.config
    try:
        # the default download mode reuses a dataset already in the ModelScope cache
        loaded = ms_dataset.load(name, **options)
    except Exception as exc:  # the library raises many kinds; each becomes one message
        unreachable = any(isinstance(e, (ConnectionError, TimeoutError)) for e in _causes(exc))
        if unreachable:
            raise EvalIndexError(
                f"{parsed.label}: ModelScope cannot be reached ({_one_line(exc, 120)}); "
                "ModelScope datasets are read from the hub even when cached, so offline "
                "download the files once (`modelscope download --dataset "
                f"{parsed.repo} --local_dir DIR`) and point `source:` at them",
                file=uri,
            ) from None
        raise EvalIndexError(
            f"cannot load {parsed.label} from ModelScope: {_one_line(exc)}", file=uri
        ) from None
    if hasattr(loaded, "to_hf_dataset"):
        loaded = loaded.to_hf_dataset()
    return _pick_split(loaded, parsed, uri)
