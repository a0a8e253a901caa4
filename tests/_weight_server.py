"""A real HTTP server on 127.0.0.1 that serves weight files the way their sources do, for download tests.

- torchvision's layout: `GET /models/<name>-<sha256 prefix>.pth`, a plain file;
- the Hugging Face hub's: `HEAD` / `GET /<org>/<repo>/resolve/<revision>/<file>`, answering with the headers
  `huggingface_hub` reads (`X-Repo-Commit`, and the file's SHA-256 as its `ETag`, as the hub does for LFS files).
Every request is recorded, so a test can tell a cache hit (no request) from a download.
"""
from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class WeightServer:
    def __init__(self):
        self.files: dict[str, Path] = {}     # URL path -> file served
        self.etags: dict[str, str] = {}      # URL path -> ETag sent instead of the file's SHA-256
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = self.path.split("?")[0]
                server.requests.append((self.command, path))
                file = server.files.get(path)
                if file is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(file.stat().st_size))
                self.send_header("ETag", f'"{server.etags.get(path) or sha256(file)}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.end_headers()
                if body:
                    with open(file, "rb") as f:
                        shutil.copyfileobj(f, self.wfile)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, url_path: str, file: Path) -> str:
        self.files[url_path] = file
        return self.url + url_path

    def serve_hub(self, repo_id: str, file: Path, name: str = "model.safetensors") -> None:
        self.serve(f"/{repo_id}/resolve/main/{name}", file)

    def count(self, url_path_part: str) -> int:
        return sum(url_path_part in path for _, path in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
