"""A local stand-in for the Hugging Face Hub, for the real huggingface_hub client (HF_ENDPOINT=server.url).

Serves ROOT/<org>/<name>/<files> in the Hub's URL layout: the API route model_info uses
(GET /api/models/<org>/<name>[/revision/<rev>]?blobs=true: commit sha and siblings with LFS size and sha256)
and the resolve route downloads use (HEAD/GET /<org>/<name>/resolve/<rev>/<file>, with X-Repo-Commit, ETag,
X-Linked-Etag/-Size and byte ranges). Faults are set per test: connections cut mid-file, corrupted bytes,
files listed but absent (404), gated repositories (401 without the right token). Every request is logged."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass
class Faults:
    cut: Dict[str, int] = field(default_factory=dict)  # file -> times its body is cut after half the bytes
    corrupt: Dict[str, int] = field(default_factory=dict)  # file -> times served with a flipped byte (-1: always)
    missing: Set[str] = field(default_factory=set)  # files listed by the API whose download is a 404
    gated: Dict[str, str] = field(default_factory=dict)  # repo id -> the token that opens it
    delay: float = 0.0  # seconds per MB served (a slow link)


class HubServer:
    def __init__(self, root: str):
        self.root = root
        self.faults = Faults()
        self.log: List[Tuple[str, str, Optional[str]]] = []  # (method, path, Range header)
        self.headers_seen: List[str] = []  # every request header value (tokens must only go to the server)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._sha: Dict[str, str] = {}

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def downloads(self, name: str) -> int:
        """Downloads of the file `name` started (GETs without a Range; header reads and resumes have one)."""
        return sum(1 for m, p, r in self.log if m == "GET" and "/resolve/" in p and p.endswith("/" + name)
                   and r is None)

    def resumes(self, name: str) -> int:
        """GETs that continue a cut download of `name` (an open-ended Range)."""
        return sum(1 for m, p, r in self.log if m == "GET" and "/resolve/" in p and p.endswith("/" + name)
                   and r is not None and r.endswith("-"))

    def repo_files(self, repo: str) -> List[str]:
        folder = os.path.join(self.root, repo)
        found = []
        for base, _, names in os.walk(folder):
            for n in names:
                found.append(os.path.relpath(os.path.join(base, n), folder).replace(os.sep, "/"))
        return sorted(found)

    def sha256(self, path: str) -> str:
        if path not in self._sha:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._sha[path] = h.hexdigest()
        return self._sha[path]

    def commit(self, repo: str) -> str:
        h = hashlib.sha1()
        for name in self.repo_files(repo):
            h.update(name.encode() + self.sha256(os.path.join(self.root, repo, name)).encode())
        return h.hexdigest()


def _handler(server: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _serve(self, body: bool):
            path = unquote(urlparse(self.path).path)
            server.log.append((self.command, path, self.headers.get("Range")))
            server.headers_seen.extend(self.headers.values())
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
                return self._tree("/".join(parts[2:4]), parts[5])
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo = "/".join(parts[2:4])
                rev = parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main"
                return self._api(repo, rev)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, rev, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                return self._resolve(repo, rev, name, body)
            self._error(404, "RepoNotFound", "not found")

        def _check_repo(self, repo: str, rev: str) -> bool:
            if not os.path.isdir(os.path.join(server.root, repo)):
                self._error(401, "RepoNotFound", "Repository not found")
                return False
            token = server.faults.gated.get(repo)
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                self._error(401, "GatedRepo", "Access to this model is restricted")
                return False
            if rev not in ("main", server.commit(repo)):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return False
            return True

        def _tree(self, repo: str, rev: str):
            """The file listing snapshot_download uses (one page, recursive)."""
            if not self._check_repo(repo, rev):
                return
            listing = []
            for name in server.repo_files(repo):
                full = os.path.join(server.root, repo, name)
                entry = {"type": "file", "path": name, "size": os.path.getsize(full),
                         "oid": hashlib.sha1(name.encode()).hexdigest()}
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"oid": server.sha256(full), "size": entry["size"], "pointerSize": 134}
                listing.append(entry)
            self._json(listing)

        def _json(self, value):
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _api(self, repo: str, rev: str):
            if not self._check_repo(repo, rev):
                return
            siblings = []
            for name in server.repo_files(repo):
                full = os.path.join(server.root, repo, name)
                size = os.path.getsize(full)
                entry = {"rfilename": name, "size": size, "blobId": hashlib.sha1(name.encode()).hexdigest()}
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"size": size, "sha256": server.sha256(full), "pointerSize": 134}
                siblings.append(entry)
            data = json.dumps({"id": repo, "modelId": repo, "sha": server.commit(repo), "private": False,
                               "siblings": siblings}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _resolve(self, repo: str, rev: str, name: str, body: bool):
            if not self._check_repo(repo, rev):
                return
            full = os.path.join(server.root, repo, name)
            if name in server.faults.missing or not os.path.isfile(full):
                return self._error(404, "EntryNotFound", f"{name} does not exist", commit=server.commit(repo))
            size = os.path.getsize(full)
            begin, end = 0, size - 1
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                a, _, b = rng[len("bytes="):].partition("-")
                begin, end = int(a or 0), min(int(b) if b else size - 1, size - 1)
            lfs = name.endswith(LFS_SUFFIXES)
            etag = server.sha256(full) if lfs else hashlib.sha1(name.encode()).hexdigest()
            self.send_response(206 if rng else 200)
            self.send_header("X-Repo-Commit", server.commit(repo))
            self.send_header("ETag", f'"{etag}"')
            if lfs:
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - begin + 1))
            if rng:
                self.send_header("Content-Range", f"bytes {begin}-{end}/{size}")
            self.end_headers()
            if not body:
                return
            with open(full, "rb") as f:
                f.seek(begin)
                data = bytearray(f.read(end - begin + 1))
            whole_body = not rng or begin > 0 or end > 262143
            if whole_body and server.faults.corrupt.get(name, 0) != 0:
                server.faults.corrupt[name] -= 1 if server.faults.corrupt[name] > 0 else 0
                data[len(data) // 2] ^= 0xFF
            if whole_body and server.faults.cut.get(name, 0) > 0 and len(data) > 1:
                server.faults.cut[name] -= 1
                self.wfile.write(bytes(data[: len(data) // 2]))
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            step = 1 << 20
            for i in range(0, len(data), step):
                if server.faults.delay:
                    import time

                    time.sleep(server.faults.delay * min(step, len(data) - i) / 1e6)
                self.wfile.write(bytes(data[i:i + step]))

        def _error(self, status: int, code: str, message: str, commit: Optional[str] = None):
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
