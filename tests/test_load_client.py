"""The load benchmark's plain-socket HTTP client (benchmarks/load_service.py) against a
stdlib HTTP/1.1 server: keep-alive, bodies read to their Content-Length, reconnects."""

from __future__ import annotations

import importlib.util
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests._paths import BENCHMARKS

_PATH = BENCHMARKS / "load_service.py"


@pytest.fixture(scope="module")
def load_service():
    spec = importlib.util.spec_from_file_location("load_service", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections: set[int] = set()

    def do_GET(self) -> None:
        type(self).connections.add(id(self.connection))
        if self.path == "/no-length":  # a body without Content-Length, then close
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        body = (self.path * 3000).encode()  # large enough to arrive in several reads
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/bye":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.connections.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_keep_alive_statuses_and_bodies(load_service, server):
    http = load_service._Http(server)
    assert http.get("/a") == (200, b"/a" * 3000)
    assert http.get("/missing") == (404, b"/missing" * 3000)
    assert http.get("/b?k=10") == (200, b"/b?k=10" * 3000)
    assert len(_Handler.connections) == 1  # one connection for the three requests
    http.close()


def test_reconnects_after_the_server_closes(load_service, server):
    http = load_service._Http(server)
    assert http.get("/bye")[0] == 200  # the server closes this connection after replying
    with pytest.raises((OSError, load_service.HttpError)):
        http.get("/a")  # the closed connection fails once ...
    assert http.get("/a") == (200, b"/a" * 3000)  # ... and the next request reconnects
    http.close()


def test_a_response_without_content_length_is_an_error(load_service, server):
    http = load_service._Http(server)
    with pytest.raises(load_service.HttpError, match="no Content-Length"):
        http.get("/no-length")
    assert http.get("/a")[0] == 200
    http.close()
