"""A tiny real HTTP file server for tests (stdlib ``http.server`` in a thread on 127.0.0.1, port 0).

    with FileServer({"/repo.zip": data}, faults=["500", "truncate"]) as srv:
        resolve_release(srv.url("/repo.zip"), ...)
        assert srv.count == 3

``faults`` are used by the first requests, in arrival order; ``always`` is used by every
request after them. Each fault:

- ``"500"`` / ``"503"`` / ``"404"``: that status with a short text body;
- ``"truncate"``: the full ``Content-Length``, half the body, then a clean close;
- ``"drop"``: the full ``Content-Length``, half the body, then a reset connection (RST);
- ``"chunked_cut"``: ``Transfer-Encoding: chunked``, half the body, then a close with no last chunk;
- ``"no_length"``: the whole body with neither length nor chunking (ends at close);
- ``"stall"``: the full ``Content-Length``, half the body, then waits until the server closes.

A request for ``http://host/path`` (a proxy request, absolute URI) is served as ``/path``,
so the server also stands in for an HTTP proxy. ``requests`` records (path, User-Agent).
"""

from __future__ import annotations

import socket
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self, files: dict[str, bytes], faults: list[str] = (), always: str | None = None):
        self.files = dict(files)
        self.faults = list(faults)
        self.always = always
        self.requests: list[tuple[str, str]] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _next_fault(self, path: str, agent: str) -> str | None:
        with self._lock:
            self.requests.append((path, agent))
            return self.faults.pop(0) if self.faults else self.always

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                fault = server._next_fault(path, self.headers.get("User-Agent", ""))
                body = server.files.get(path)
                if fault in ("500", "503", "404") or body is None:
                    status = int(fault) if fault in ("500", "503", "404") else 404
                    self.send_error(status, "injected fault" if fault else "no such file")
                    return
                half = body[: len(body) // 2]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if fault == "chunked_cut":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
                elif fault == "no_length":
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(half if fault else body)
                self.wfile.flush()
                self.close_connection = True
                if fault == "drop":  # linger 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                elif fault == "stall":
                    server.closing.wait(30)

        return Handler
