"""Published indexes: the lock of a published folder, and indexes shared on a hub by id.

A folder written by ``evalindex publish`` holds a frozen test set and ``evalindex.lock.json``:

    {"testset": "testset.jsonl", "sha256": "<sha256 of the file's bytes>", "records": N,
     "spec_sha256": "<sha256 of the spec>" or null, "version": "<pytest-evalindex version>",
     "evalscope": {"path": "evalscope/collection.jsonl", "sha256": "..."}}

A test set that sits next to a lock naming it is checked against it whenever it is run; one
that no longer matches is refused before any request.

``--index hf://OWNER/NAME[@REV]`` and ``--index modelscope://OWNER/NAME[@REV]`` name such a
folder (or an EvalScope collection) uploaded to a hub. It is downloaded once through the
hub's own library (``huggingface_hub`` honours ``HF_ENDPOINT``, ``HF_HOME``, ``HF_TOKEN`` and
``HF_HUB_OFFLINE``; the ``modelscope`` SDK ``MODELSCOPE_ENDPOINT``, ``MODELSCOPE_CACHE`` and
``MODELSCOPE_API_TOKEN``) into that library's cache; later runs are served from the cache, also
when the hub cannot be reached. Only data, lock, card and spec files are downloaded, never
code. Tokens are read by the libraries from the environment or their own login; nothing
here writes one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_evalindex.errors import EvalIndexError

LOCK_FILE = "evalindex.lock.json"
SHARED_SCHEMES = {"hf://": "hf", "modelscope://": "modelscope"}
HUB_NAMES = {"hf": "the Hugging Face Hub", "modelscope": "ModelScope"}
INSTALL = {
    "hf": "pip install 'pytest-evalindex[hf]'",
    "modelscope": "pip install 'pytest-evalindex[modelscope]'",
}
# what a download fetches: the data, the lock, the card, the spec; never code
DOWNLOAD_PATTERNS = ["*.jsonl", "**/*.jsonl", LOCK_FILE, "README.md", "*.yaml", "*.yml"]
_LOCK_KEYS = {"testset": str, "sha256": str, "records": int}
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class SharedId:
    """``hf://OWNER/NAME[@REV]`` or ``modelscope://OWNER/NAME[@REV]``, parsed."""

    hub: str  # "hf" or "modelscope"
    repo: str  # "OWNER/NAME"
    revision: str | None  # as asked for; None for the hub's default branch

    def __str__(self) -> str:
        scheme = next(s for s, h in SHARED_SCHEMES.items() if h == self.hub)
        return f"{scheme}{self.repo}" + (f"@{self.revision}" if self.revision else "")


def is_shared_id(text: str) -> bool:
    return text.startswith(tuple(SHARED_SCHEMES))


def parse_shared_id(text: str) -> SharedId:
    scheme = next((s for s in SHARED_SCHEMES if text.startswith(s)), None)
    if scheme is None:
        raise EvalIndexError(f"--index {text!r}: expected hf://OWNER/NAME[@REVISION]")
    body = text[len(scheme) :]
    repo, _, revision = body.partition("@")
    if not _REPO.match(repo) or (revision and not _REVISION.match(revision)) or body.endswith("@"):
        raise EvalIndexError(
            f"--index {text!r}: a shared index is {scheme}OWNER/NAME or "
            f"{scheme}OWNER/NAME@REVISION (a branch, tag or commit)"
        )
    return SharedId(SHARED_SCHEMES[scheme], repo, revision or None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the lock


def read_lock(folder: Path) -> dict[str, Any] | None:
    """The lock of a published folder, or None when the folder has none."""
    path = folder / LOCK_FILE
    if not path.is_file():
        return None
    try:
        lock = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalIndexError(f"cannot read the lock: {exc}", file=path) from None
    if not isinstance(lock, dict):
        raise EvalIndexError("the lock should be a JSON object", file=path)
    for key, type_ in _LOCK_KEYS.items():
        if not isinstance(lock.get(key), type_) or isinstance(lock.get(key), bool):
            raise EvalIndexError(f"expected {type_.__name__}", file=path, field=key)
    name = lock["testset"]
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise EvalIndexError("expected a file name in this folder", file=path, field="testset")
    return lock


def lock_of(testset: Path) -> dict[str, Any] | None:
    """The lock that names ``testset``, if one sits beside it."""
    lock = read_lock(testset.parent)
    if lock is None or lock["testset"] != testset.name:
        return None
    return lock


def check_lock(testset: Path, records: int, *, origin: str | None = None) -> dict[str, Any] | None:
    """Refuse a test set that no longer matches the lock beside it; the lock, or None."""
    lock = lock_of(testset)
    if lock is None:
        return None
    actual = file_sha256(testset)
    where = f"{origin}: " if origin else ""
    if actual != lock["sha256"]:
        raise EvalIndexError(
            f"{where}the test set does not match its lock {LOCK_FILE} (sha256 {actual[:12]}…, "
            f"the lock says {lock['sha256'][:12]}…); nothing was run. Restore the file, "
            "download it again, or publish it again with evalindex publish",
            file=testset,
        )
    if records != lock["records"]:
        raise EvalIndexError(
            f"{where}the test set holds {records} records, its lock {LOCK_FILE} says "
            f"{lock['records']}; nothing was run",
            file=testset,
        )
    return lock


def folder_testset(folder: Path) -> Path:
    """The test set of a published folder (its lock's), else its one EvalScope collection
    or test set file (``test.jsonl``, or the only ``.jsonl``, at the top or one level down)."""
    lock = read_lock(folder)
    if lock is not None:
        path = folder / lock["testset"]
        if not path.is_file():
            raise EvalIndexError(f"the lock names {lock['testset']}, which is missing", file=folder)
        return path
    if (folder / "test.jsonl").is_file():
        return folder / "test.jsonl"
    for pattern in ("*.jsonl", "*/*.jsonl"):
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(str(p.relative_to(folder)) for p in found[:4])
            raise EvalIndexError(
                f"the published folder has no {LOCK_FILE} and {len(found)} .jsonl files "
                f"({names}); publish it with evalindex publish, or name test.jsonl",
                file=folder,
            )
    raise EvalIndexError("the published folder holds no test set (.jsonl)", file=folder)


# --------------------------------------------------------------------------- shared ids


@dataclass(frozen=True)
class SharedSource:
    """Where a shared index was resolved to: results record it as ``run.index_source``."""

    shared: SharedId
    commit: str
    folder: Path
    testset: Path

    @property
    def origin(self) -> str:
        """How messages name it: the id and the revision it resolved to."""
        return f"{self.shared} (revision {self.commit})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": f"{str(self.shared).split('@')[0]}@{self.commit}",
            "hub": self.shared.hub,
            "repo": self.shared.repo,
            "requested": self.shared.revision,
            "revision": self.commit,
        }


# the test set path -> how it was resolved, for the results of this process's runs
_RESOLVED: dict[Path, SharedSource] = {}


def source_of(testset: Path) -> SharedSource | None:
    return _RESOLVED.get(Path(testset).resolve())


def resolve_shared_index(text: str, root: Path) -> Path:
    """Download (once) the index ``text`` names and return its test set file (which
    loading checks against its lock).

    The hub library's cache holds the download; the files are copied (as plain files: the
    cache keeps symlinks to blobs) to ``<root>/.evalindex/shared/<hub>/<owner>--<name>/
    <revision>/``, a published folder that every run checks against its lock again. An xdist
    worker reads the cache first: the controller has just downloaded it."""
    shared = parse_shared_id(text)
    offline = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    owner, name = shared.repo.split("/")
    shared_dir = root / ".evalindex" / "shared" / shared.hub / f"{owner}--{name}"
    if shared.hub == "hf":
        try:
            snapshot = _hf_download(shared, offline=offline)
        except EvalIndexError:
            if not offline or _offline_requested():
                raise
            # not in the cache after all (the variable can also be inherited by a run
            # started inside a worker): download as the controller does
            snapshot = _hf_download(shared, offline=False)
        commit = snapshot.name  # the cache's snapshots/<commit> folder
        folder = shared_dir / commit
        _copy_tree(snapshot, folder)
    else:
        # ModelScope's cache keeps one folder a dataset, not one a commit: the revision
        # asked for names the copy
        commit = shared.revision or "master"
        folder = shared_dir / commit
        if not (offline and folder.is_dir()):
            try:
                _copy_tree(_modelscope_download(shared), folder)
            except EvalIndexError:
                if not folder.is_dir():
                    raise
                # the hub cannot be reached: the earlier download serves, checked below
    testset = folder_testset(folder)
    # loading the index checks it against its lock, naming this id and revision
    _RESOLVED[testset.resolve()] = SharedSource(shared, commit, folder, testset)
    return testset


def _copy_tree(source: Path, target: Path) -> None:
    """Copy the files of ``source`` (following symlinks) that differ in ``target``; each
    file is replaced whole, so a concurrent reader never sees half of one."""
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(source)
        if any(part.startswith(".") for part in relative.parts):
            continue
        destination = target / relative
        data = path.read_bytes()
        if destination.is_file() and destination.read_bytes() == data:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, destination)


def _offline_requested() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def hf_endpoint() -> str | None:
    # read at call time: the library reads HF_ENDPOINT once, when first imported
    return os.environ.get("HF_ENDPOINT") or None


def hf_cache_dir() -> Path:
    """The library's hub cache, from the environment as it is now (the library reads it
    once, when first imported): HF_HUB_CACHE, else HF_HOME/hub, else the XDG default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _hf_download(shared: SharedId, *, offline: bool) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise EvalIndexError(f"--index {shared} needs huggingface_hub: {INSTALL['hf']}") from None
    try:
        folder = huggingface_hub.snapshot_download(
            shared.repo,
            repo_type="dataset",
            revision=shared.revision,
            endpoint=hf_endpoint(),
            cache_dir=hf_cache_dir(),
            allow_patterns=DOWNLOAD_PATTERNS,
            local_files_only=offline or _offline_requested(),
        )
    except errors.RevisionNotFoundError:
        missing = f"revision {shared.revision!r}" if shared.revision else "commit yet"
        raise EvalIndexError(f"--index {shared}: {shared.repo} has no {missing}") from None
    except errors.RepositoryNotFoundError:
        raise EvalIndexError(
            f"--index {shared}: no dataset {shared.repo} on {HUB_NAMES['hf']} (or it is "
            "private: set HF_TOKEN or log in with `hf auth login`)"
        ) from None
    except errors.LocalEntryNotFoundError:
        raise EvalIndexError(
            f"--index {shared}: not in the local cache and {HUB_NAMES['hf']} cannot be "
            "reached (or offline mode is on: HF_HUB_OFFLINE); run once with a connection"
        ) from None
    except (errors.HfHubHTTPError, OSError) as exc:
        raise EvalIndexError(f"--index {shared}: download failed: {exc}") from None
    return Path(str(folder))


def _modelscope_download(shared: SharedId) -> Path:
    try:
        from modelscope.hub.snapshot_download import dataset_snapshot_download
    except ImportError:
        raise EvalIndexError(
            f"--index {shared} needs the modelscope SDK: {INSTALL['modelscope']}"
        ) from None
    try:
        # endpoint and cache from the environment as it is now: the SDK reads them once
        folder = dataset_snapshot_download(
            shared.repo,
            revision=shared.revision,
            allow_patterns=DOWNLOAD_PATTERNS,
            cache_dir=os.environ.get("MODELSCOPE_CACHE") or None,
            endpoint=os.environ.get("MODELSCOPE_ENDPOINT") or None,
        )
    except Exception as exc:  # the SDK raises many unrelated types; all mean "not fetched"
        raise EvalIndexError(f"--index {shared}: download failed: {exc}") from None
    return Path(folder)


# --------------------------------------------------------------------------- upload


def upload(folder: Path, hub: str, repo: str, *, message: str) -> str:
    """Upload a published folder as dataset ``repo``; the commit (or revision) made."""
    if not _REPO.match(repo):
        raise EvalIndexError(f"--repo {repo!r}: expected OWNER/NAME")
    if hub == "hf":
        return _hf_upload(folder, repo, message=message)
    if hub == "modelscope":
        return _modelscope_upload(folder, repo, message=message)
    raise EvalIndexError(f"--hub {hub!r}: expected hf or modelscope")


def _hf_upload(folder: Path, repo: str, *, message: str) -> str:
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise EvalIndexError(f"--hub hf needs huggingface_hub: {INSTALL['hf']}") from None
    if huggingface_hub.get_token() is None:
        raise EvalIndexError(
            "--hub hf: no Hugging Face token; set HF_TOKEN or log in with `hf auth login` "
            "(evalindex never stores a token). The folder is written and can be uploaded later"
        )
    api = huggingface_hub.HfApi(endpoint=hf_endpoint())
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(
            repo_id=repo, folder_path=str(folder), repo_type="dataset", commit_message=message
        )
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise EvalIndexError(
                f"--hub hf: the hub refused the token ({status}) for {repo}: check HF_TOKEN or "
                "`hf auth login`, and that the token may write to that owner"
            ) from None
        raise EvalIndexError(f"--hub hf: upload of {repo} failed: {exc}") from None
    except OSError as exc:
        raise EvalIndexError(f"--hub hf: upload of {repo} failed: {exc}") from None
    return str(getattr(info, "oid", "") or "")


def _modelscope_token() -> str | None:
    """The token the SDK would send: MODELSCOPE_API_TOKEN, else its saved login."""
    if os.environ.get("MODELSCOPE_API_TOKEN"):
        return os.environ["MODELSCOPE_API_TOKEN"]
    try:  # the SDK keeps its login through modelscope-hub (release 1.40 and later)
        from modelscope_hub.config import get_default_config
    except ImportError:
        return None
    token: str | None = get_default_config().token
    return token or None


# SPDX ids of the card -> the names ModelScope's SDK lists (modelscope.hub.constants.Licenses)
MODELSCOPE_LICENSES = {
    "apache-2.0": "Apache License 2.0",
    "mit": "MIT",
    "gpl-2.0": "GPL-2.0",
    "gpl-3.0": "GPL-3.0",
    "lgpl-2.1": "LGPL-2.1",
    "lgpl-3.0": "LGPL-3.0",
    "afl-3.0": "AFL-3.0",
    "ecl-2.0": "ECL-2.0",
}


def modelscope_license(card_license: str | None) -> str | None:
    """The ModelScope name of the card's license, or None when the card states none (or
    several, or one ModelScope does not list): a license is never guessed."""
    if card_license is None:
        return None
    return MODELSCOPE_LICENSES.get(card_license.strip().lower())


def _card_license(folder: Path) -> str | None:
    """The ``license`` of the dataset card's front matter ("unknown" and "other" are none)."""
    import yaml

    try:
        text = (folder / "README.md").read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.startswith("---\n"):
        return None
    matter = yaml.safe_load(text[4 : text.find("\n---", 4)]) or {}
    value = matter.get("license") if isinstance(matter, dict) else None
    return str(value) if value and value not in ("unknown", "other") else None


def _modelscope_upload(folder: Path, repo: str, *, message: str) -> str:
    try:
        from modelscope.hub.api import HubApi
    except ImportError:
        raise EvalIndexError(
            f"--hub modelscope needs the modelscope SDK: {INSTALL['modelscope']}"
        ) from None
    if _modelscope_token() is None:
        raise EvalIndexError(
            "--hub modelscope: no ModelScope token; set MODELSCOPE_API_TOKEN or log in with "
            "`modelscope login` (evalindex never stores a token). The folder is written and "
            "can be uploaded later"
        )
    api = HubApi(endpoint=os.environ.get("MODELSCOPE_ENDPOINT") or None)
    license_name = modelscope_license(_card_license(folder))
    if license_name is None:
        print(
            "evalindex: warning: the card states no single license ModelScope knows; "
            "ModelScope lists a dataset created without a license under its default "
            "(Apache-2.0): set the right one on the dataset's page",
            file=sys.stderr,
        )
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True, license=license_name)
        # use_cache=False: the SDK's resumable-upload cache is a file it writes into the
        # folder, which would then hold more than was published, and which makes a later
        # upload of the unchanged folder skip every file it remembers as committed
        api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="dataset",
            commit_message=message,
            use_cache=False,
        )
    except Exception as exc:  # the SDK raises many unrelated types
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            raise EvalIndexError(
                f"--hub modelscope: ModelScope refused the token ({status}) for {repo}: check "
                "MODELSCOPE_API_TOKEN or `modelscope login`, and that the token may write to "
                "that owner"
            ) from None
        raise EvalIndexError(f"--hub modelscope: upload of {repo} failed: {exc}") from None
    return "master"
