"""The HTTP side of ``genlab serve``: one small page of our own (``static/``) and a JSON API, on the standard
library's threading HTTP server.

Why not Gradio: it pulls ~30 packages (FastAPI, pandas, huggingface_hub, ...) into a library whose dependencies
are six, and pins Pillow below the version genlab is tested with; its analytics and share links must be turned
off. Why not FastAPI: a dozen routes with JSON bodies need no framework, and the standard library brings nothing
new to install or to pin. The page loads nothing from outside (no CDN, no fonts): it works offline.

Limits (``genlab.web.uploads.Limits``): a request body is bounded before it is read; uploads by bytes and
pixels before they are decoded; model calls go through a :class:`Gate` - ``workers`` at a time, ``queue`` more
waiting, the rest answered 503 at once - and a request still waiting past ``request_seconds`` is answered 504
(the call in hand finishes; the next one starts). Every refusal is JSON ``{"error": "..."}`` with a 4xx/5xx
status, and the server keeps serving. Requests whose Host header is not this machine's name for itself are
refused (403) while the server listens on loopback, so that a web page elsewhere cannot reach it through DNS
rebinding.
"""
from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.web.explorer import Explorer, timed
from genlab.web.uploads import RequestError

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
# The page's own script and style only; images may be data: URLs (the API's pictures).
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                               "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
OPERATIONS = ("sample", "pick", "morph", "edit", "inpaint", "upscale", "translate")


class Gate:
    """Model calls: at most ``workers`` at a time and ``queue`` more waiting (the rest refused at once, 503); a
    caller waits at most ``seconds`` for its answer (then 504; the call finishes in the background)."""

    def __init__(self, workers: int, queue: int, name: str) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"genlab-{name}")
        self.slots = threading.BoundedSemaphore(workers + queue)
        self.capacity = workers + queue

    def call(self, function: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
        if not self.slots.acquire(blocking=False):
            raise RequestError(f"busy: {self.capacity} requests are already running or waiting; try again in a moment", 503)
        try:
            future = self.pool.submit(function)
        except RuntimeError:  # shutting down
            self.slots.release()
            raise RequestError("the server is stopping", 503) from None
        future.add_done_callback(lambda _: self.slots.release())
        try:
            return future.result(timeout=seconds)
        except FuturesTimeout:
            raise RequestError(f"took longer than this server's limit of {seconds:g} s per request; ask for less "
                               "(fewer images, a smaller upload) or start the server with a larger --request-seconds", 504) from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server: ``serve_forever()`` in any thread, ``shutdown()`` from another."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, *, quiet: bool = False) -> None:
        self.explorer, self.quiet = explorer, quiet
        limits = explorer.limits
        self.gate = Gate(limits.workers, limits.queue, "model")
        self.compare_gate = Gate(1, 0, "compare")  # its own models, loaded from disk: no lock with the page's
        self.loopback = host in LOOPBACK_NAMES
        # Two images as base64 (4/3 of their bytes) and a mask, with room for the JSON around them.
        self.max_body = 3 * (limits.max_upload_bytes * 4 // 3) + (1 << 16)
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"

    def answer(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if operation == "compare":
            return self.compare_gate.call(partial(timed, self.explorer.compare, body), self.explorer.limits.compare_seconds)
        return self.gate.call(partial(timed, getattr(self.explorer, operation), body), self.explorer.limits.request_seconds)

    def server_close(self) -> None:
        super().server_close()
        self.gate.close()
        self.compare_gate.close()


class Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "genlab-explorer"
    timeout = 60  # a client that stops sending mid-request frees its thread

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._file(STATIC / "index.html")
        elif re.fullmatch(r"/static/[A-Za-z0-9_-]+\.(js|css|png|svg|html)", path):
            self._file(STATIC / path.removeprefix("/static/"))
        elif path == "/api/runs":
            self._json(200, self.server.explorer.describe())
        elif path == "/api/health":
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": f"no page {path!r} here"})

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        operation = self.path.split("?", 1)[0].removeprefix("/api/")
        try:
            if operation not in (*OPERATIONS, "compare"):
                raise RequestError(f"no operation {self.path!r}; POST to /api/ one of {', '.join((*OPERATIONS, 'compare'))}", 404)
            self._json(200, self.server.answer(operation, self._body()))
        except RequestError as error:
            self._json(error.status, {"error": str(error)})
        except (GenlabError, ValueError) as error:  # a tool's own check (ConfigError, DataError): the input's fault
            self._json(400, {"error": str(error).splitlines()[0]})
        except Exception as error:  # a bug must not stop the server; the page says so, stderr has it all
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": f"internal error ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                                      "see the server's log"})

    def _body(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError("the request has no Content-Length", 411)
        if int(length) > self.server.max_body:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise RequestError(f"the request is {int(length):,} bytes, more than the {self.server.max_body:,} this server "
                               "reads; upload a smaller file", 413)
        try:
            body = json.loads(self.rfile.read(int(length)) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        return body

    def _host_allowed(self) -> bool:
        raw = self.headers.get("Host") or ""
        host = raw.split("]")[0] + "]" if raw.startswith("[") else raw.rsplit(":", 1)[0]
        if self.server.loopback and host not in LOOPBACK_NAMES:
            self._json(403, {"error": f"host {host!r} refused: this server answers to 127.0.0.1 and localhost only"})
            return False
        return True

    def _file(self, path: Path) -> None:
        if not path.is_file():
            self._json(404, {"error": f"no file {path.name!r} here"})
            return
        self._send(200, path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # the base class's name
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")
