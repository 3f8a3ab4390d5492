"""A loopback stand-in for the Hugging Face Hub endpoints ``huggingface_hub`` calls.

Only what creating a dataset repository, uploading a folder in one commit (files sent inline,
base64) and downloading a snapshot need: repository creation, pre-upload, commit, revision
info, the file tree, and ``resolve`` (HEAD and GET). Point the library at it with
``HF_ENDPOINT``. Every request is logged as ``(method, path)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]


@dataclass
class Repo:
    commits: list[Commit] = field(default_factory=list)

    def at(self, revision: str) -> Commit | None:
        if revision == "main":
            return self.commits[-1] if self.commits else None
        return next((c for c in self.commits if c.sha == revision), None)


def _blob_sha(data: bytes) -> str:
    # git's blob id: what the hub gives as a regular file's ETag
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _LoopbackServer:
    """Serves the stand-in's handler on a free loopback port from a background thread, as a
    context manager; ``stop`` takes the server away while the test goes on."""

    _server: ThreadingHTTPServer | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __enter__(self: _Server) -> _Server:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"


_Server = TypeVar("_Server", bound=_LoopbackServer)


class StandInHub(_LoopbackServer):
    def __init__(self, token: str = "hf_test_token") -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.log: list[tuple[str, str]] = []
        # (repo, path) -> bytes served instead of what was uploaded
        self.corrupted: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"hub": self})

    def requests(self, method: str | None = None) -> list[str]:
        return [p for m, p in self.log if method is None or m == method]

    # -- repository state

    def commit(self, repo: str, files: dict[str, bytes]) -> str:
        with self._lock:
            state = self.repos.setdefault(repo, Repo())
            merged = dict(state.commits[-1].files) if state.commits else {}
            merged.update(files)
            sha = hashlib.sha1(f"{repo}:{len(state.commits)}:{sorted(merged)}".encode())
            for name in sorted(merged):
                sha.update(merged[name])
            commit = Commit(sha.hexdigest(), merged)
            state.commits.append(commit)
            return commit.sha


class _Handler(BaseHTTPRequestHandler):
    hub: StandInHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- helpers

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.hub.token}":
            return True
        self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return False

    # -- routes

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.log.append((self.command, path))
        match = re.match(r"^/api/datasets/([^/]+/[^/]+)/revision/(.+)$", path)
        if match:
            return self._revision(match[1], match[2])
        match = re.match(r"^/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path)
        if match:
            return self._tree(match[1], match[2])
        match = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if match:
            return self._resolve(match[1], match[2], match[3])
        self._error(404, "EntryNotFound", f"no route {path}")

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.log.append(("POST", path))
        body = self._body()
        if path == "/api/validate-yaml":  # the dataset card's front matter, checked on upload
            return self._json(200, {"errors": [], "warnings": []})
        if path == "/api/repos/create":
            if not self._authorized():
                return
            request = json.loads(body)
            name = request["name"]
            repo = f"{request['organization']}/{name}" if request.get("organization") else name
            with self.hub._lock:
                exists = repo in self.hub.repos
                self.hub.repos.setdefault(repo, Repo())
            if exists:  # the library reads the url from the refusal when exist_ok is set
                message = "You already created this dataset repo"
                document = {"error": message, "url": f"{self.hub.url}/datasets/{repo}"}
                return self._json(409, document, {"X-Error-Message": message})
            return self._json(200, {"url": f"{self.hub.url}/datasets/{repo}", "name": repo})
        match = re.match(r"^/api/datasets/([^/]+/[^/]+)/preupload/(.+)$", path)
        if match:
            if not self._authorized():
                return
            files = json.loads(body)["files"]
            return self._json(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ],
                    "commitOid": None,
                },
            )
        match = re.match(r"^/api/datasets/([^/]+/[^/]+)/commit/(.+)$", path)
        if match:
            if not self._authorized():
                return
            return self._commit(match[1], body)
        self._error(404, "EntryNotFound", f"no route {path}")

    # -- handlers

    def _commit_of(self, repo: str, revision: str) -> Commit | None:
        state = self.hub.repos.get(repo)
        if state is None:
            self._error(404, "RepoNotFound", f"Repository {repo} not found")
            return None
        commit = state.at(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _revision(self, repo: str, revision: str) -> None:
        commit = self._commit_of(repo, revision)
        if commit is None:
            return
        self._json(
            200,
            {
                "id": repo,
                "sha": commit.sha,
                "private": False,
                "siblings": [{"rfilename": name} for name in sorted(commit.files)],
            },
        )

    def _tree(self, repo: str, revision: str) -> None:
        commit = self._commit_of(repo, revision)
        if commit is None:
            return
        entries: list[dict[str, Any]] = []
        folders = sorted({n.rsplit("/", 1)[0] for n in commit.files if "/" in n})
        entries.extend({"type": "directory", "path": f, "oid": "0" * 40} for f in folders)
        for name in sorted(commit.files):
            data = commit.files[name]
            entries.append(
                {"type": "file", "path": name, "size": len(data), "oid": _blob_sha(data)}
            )
        self._json(200, entries)

    def _resolve(self, repo: str, revision: str, name: str) -> None:
        commit = self._commit_of(repo, revision)
        if commit is None:
            return
        if name not in commit.files:
            return self._error(404, "EntryNotFound", f"{name} does not exist")
        data = self.hub.corrupted.get((repo, name), commit.files[name])
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{_blob_sha(commit.files[name])}"',
            "Content-Type": "application/octet-stream",
        }
        self._send(200, data, headers)

    def _commit(self, repo: str, body: bytes) -> None:
        if repo not in self.hub.repos:
            return self._error(404, "RepoNotFound", f"Repository {repo} not found")
        files: dict[str, bytes] = {}
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry.get("key") == "file":
                value = entry["value"]
                files[value["path"]] = base64.b64decode(value["content"])
        sha = self.hub.commit(repo, files)
        self._json(
            200,
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{self.hub.url}/datasets/{repo}/commit/{sha}",
                "hookOutput": "",
            },
        )


class StandInModelScope(_LoopbackServer):
    """The ModelScope endpoints the ``modelscope`` SDK (1.40, through ``modelscope-hub``)
    calls to create a dataset, upload a folder and download it again. Point the SDK at it
    with ``MODELSCOPE_ENDPOINT``.

    Upload: ``POST /api/v1/datasets`` (create, multipart form), the git-lfs batch
    ``POST /api/v1/repos/datasets/{repo}/info/lfs/objects/batch`` (answers with an upload
    URL on this server), ``PUT`` of each large file to that URL, and
    ``POST /api/v1/repos/datasets/{repo}/commit/{revision}`` (small files inline, base64;
    large ones by sha256). A commit becomes the branch's new contents, also kept under its
    commit id. Download: the paged file tree and one file by path. Every request is logged
    as ``(method, path)``, and with its query, headers (those carrying a token masked) and body
    size in ``requests_seen``.
    """

    def __init__(self, token: str = "ms_test_token") -> None:
        self.token = token
        # repo -> revision -> files
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.licenses: dict[str, str] = {}  # the License field each dataset was created with
        self.log: list[tuple[str, str]] = []
        self.requests_seen: list[dict[str, Any]] = []
        self.corrupted: dict[tuple[str, str], bytes] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> bytes PUT to an upload URL
        self._lock = threading.Lock()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_ModelScopeHandler,), {"standin": self})

    def paths(self, method: str | None = None) -> list[str]:
        """The paths requested (without the query), in order."""
        return [urlsplit(p).path for m, p in self.log if method is None or m == method]

    def commit(self, repo: str, revision: str, files: dict[str, bytes]) -> str:
        """``files`` on top of ``revision``'s: its new contents; the commit id."""
        with self._lock:
            revisions = self.repos.setdefault(repo, {})
            merged = {**revisions.get(revision, {}), **files}
            digest = hashlib.sha1(f"{repo}:{revision}:{len(revisions)}".encode())
            for name in sorted(merged):
                digest.update(name.encode() + b"\0" + merged[name])
            sha = digest.hexdigest()
            revisions[revision] = merged
            revisions[sha] = merged
            return sha


class _ModelScopeHandler(BaseHTTPRequestHandler):
    standin: StandInModelScope
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self, status: int, data: Any = None, message: str = "") -> None:
        document = {"Code": status, "Success": status == 200, "Message": message, "Data": data}
        self._send(status, json.dumps(document).encode())

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        secret = ("authorization", "cookie")  # whatever token was sent, its value is not kept
        headers = {k: "***" if k.lower() in secret else v for k, v in self.headers.items()}
        url = urlsplit(self.path)
        self.standin.log.append((self.command, self.path))
        self.standin.requests_seen.append(
            {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": headers,
                "body_size": len(body),
            }
        )
        return body

    def _authorized(self) -> bool:
        # the SDK sends the token both ways; the legacy endpoints read the cookie
        token = self.standin.token
        bearer = self.headers.get("Authorization") == f"Bearer {token}"
        cookie = f"m_session_id={token}" in (self.headers.get("Cookie") or "").split("; ")
        if bearer or cookie:
            return True
        self._answer(401, message="Invalid access token, please log in again")
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        from urllib.parse import parse_qs

        self._record()
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        match = re.match(r"^/api/v1/datasets/([^/]+/[^/]+)/repo(/tree)?$", url.path)
        if not match:
            return self._answer(404, message=f"no route {url.path}")
        repo = match[1]
        files = self.standin.repos.get(repo, {}).get(query.get("Revision", "master"))
        if files is None:
            return self._answer(404, message=f"dataset {repo} or its revision not found")
        if match[2]:  # the tree, one page of entries
            entries = [
                {
                    "Path": name,
                    "Name": name.rsplit("/", 1)[-1],
                    "Type": "blob",
                    "Size": len(data),
                    "Sha256": hashlib.sha256(data).hexdigest(),
                }
                for name, data in sorted(files.items())
            ]
            first_page = query.get("PageNumber", "1") == "1"
            return self._answer(200, {"Files": entries if first_page else []})
        name = query.get("FilePath", "")
        if name not in files:
            return self._answer(404, message=f"{name} not found")
        data = self.standin.corrupted.get((repo, name), files[name])
        self._send(200, data, "application/octet-stream")

    def do_POST(self) -> None:
        body = self._record()
        path = urlsplit(self.path).path
        if path == "/api/v1/datasets":
            if not self._authorized():
                return
            return self._create(body)
        match = re.match(r"^/api/v1/repos/datasets/([^/]+/[^/]+)/info/lfs/objects/batch$", path)
        if match:
            if not self._authorized():
                return
            return self._lfs_batch(match[1], json.loads(body))
        match = re.match(r"^/api/v1/repos/datasets/([^/]+/[^/]+)/commit/(.+)$", path)
        if match:
            if not self._authorized():
                return
            return self._commit(match[1], match[2], json.loads(body))
        self._answer(404, message=f"no route {path}")

    def do_PUT(self) -> None:
        body = self._record()
        match = re.match(r"^/lfs-upload/([0-9a-f]{64})$", urlsplit(self.path).path)
        if not match:
            return self._answer(404, message=f"no route {self.path}")
        if not self._authorized():
            return
        if hashlib.sha256(body).hexdigest() != match[1]:
            return self._answer(400, message="the body does not match its sha256")
        with self.standin._lock:
            self.standin.blobs[match[1]] = body
        self._answer(200, {})

    # -- upload handlers

    def _create(self, body: bytes) -> None:
        # a multipart form of plain fields (Owner, Name, Visibility, License)
        fields = dict(
            re.findall(rb'Content-Disposition: form-data; name="([^"]+)"\r\n\r\n(.*?)\r\n', body)
        )
        repo = f"{fields[b'Owner'].decode()}/{fields[b'Name'].decode()}"
        with self.standin._lock:
            if repo in self.standin.repos:
                return self._answer(400, message=f"dataset {repo} already exists")
            self.standin.repos[repo] = {}
            self.standin.licenses[repo] = fields.get(b"License", b"").decode()
        self._answer(200, {"Owner": repo.split("/")[0], "Name": repo.split("/")[1]})

    def _lfs_batch(self, repo: str, request: dict[str, Any]) -> None:
        if repo not in self.standin.repos:
            return self._answer(404, message=f"dataset {repo} not found")
        objects = []
        for obj in request["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.standin.blobs:  # no upload action: already stored
                href = f"{self.standin.url}/lfs-upload/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href}}
            objects.append(entry)
        self._answer(200, {"objects": objects})

    def _commit(self, repo: str, revision: str, request: dict[str, Any]) -> None:
        if repo not in self.standin.repos:
            return self._answer(404, message=f"dataset {repo} not found")
        files: dict[str, bytes] = {}
        for action in request["actions"]:
            if action["type"] == "lfs":
                data = self.standin.blobs.get(action["sha256"])
                if data is None:
                    return self._answer(400, message=f"{action['path']}: blob never uploaded")
            else:
                data = base64.b64decode(action["content"])
            files[action["path"]] = data
        sha = self.standin.commit(repo, revision, files)
        self._answer(200, {"CommitId": sha, "Revision": revision})
