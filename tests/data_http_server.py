"""A tiny HTTP server on 127.0.0.1 for download tests: serves bytes, counts requests, and can
cut a transfer short (with or without a Content-Length), stall half-way, or answer 403."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Routes: path -> (body, mode). Modes: "ok"; "no-length" (the whole body, no Content-Length,
    the end of the connection ends it); "truncate" (half the body after announcing all of it);
    "truncate-no-length" (half, no Content-Length); "stall" (half, then waits until the server
    stops); "forbidden" (403)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: Counter[str] = Counter()
        self.base_url = ""

    def add(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.routes[path] = (body, mode)
        return self.base_url + path


def _handler(server_state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            server_state.requests[self.path] += 1
            if self.path not in server_state.routes:
                self.send_error(404)
                return
            body, mode = server_state.routes[self.path]
            if mode == "forbidden":
                self.send_error(403, "login required")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if mode in ("no-length", "truncate-no-length"):
                self.send_header("Connection", "close")
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode in ("truncate", "truncate-no-length", "stall"):
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                if mode == "stall":
                    server_state.stopping.wait(60)
                self.close_connection = True
                return
            self.wfile.write(body)
            self.close_connection = mode == "no-length"

    return Handler


@contextmanager
def serve():
    """Start a FileServer on a free port of 127.0.0.1 in a thread; stop it afterwards."""
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
