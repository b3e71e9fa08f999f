"""A hostile deployment for the project's tests: a real HTTP server on loopback that answers
byte for byte what a test tells it to, optionally by rewriting a reference deployment's answers.

    with HostileServer(rewrite, upstream=reference.base_url) as hostile:
        run_suite(env=hostile.suite_env(reference, tmp_path))

``rewrite(request, reply)`` gets the request as received and the upstream's reply (None
without an upstream) and returns the :class:`Reply` to send. Nothing is normalised on the
way out: status lines, header names and values, and bodies are written as given, so a test
can send what no well-behaved server library would.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from conformance.reference import ReferenceServer

HOST = "127.0.0.1"
MAX_REQUEST_HEAD = 64 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Reply:
    """What the hostile server writes. ``body`` may be bytes or an iterable of chunks (sent as
    they come, for slow or endless answers); ``raw`` replaces the whole response."""

    status: int = 200
    reason: str = "OK"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: bytes | Iterable[bytes] = b"{}"
    raw: bytes | None = None
    content_length: bool = True

    def with_headers(self, *extra: tuple[str, str]) -> Reply:
        return replace(self, headers=(*self.headers, *extra))

    def with_body(self, body: bytes | Iterable[bytes], *, content_length: bool = True) -> Reply:
        return replace(self, body=body, content_length=content_length)


Rewrite = Callable[[Request, "Reply | None"], Reply]


@dataclass
class HostileServer:
    rewrite: Rewrite
    upstream: str | None = None
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> HostileServer:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def suite_env(self, reference: ReferenceServer, dataset_dir: Path) -> dict[str, str]:
        """The reference's credentials and dataset, with this server as the base URL."""
        env = reference.suite_env(dataset_dir)
        env["CONFORMANCE_BASE_URL"] = self.base_url
        return env

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(30)
        try:
            request = _read_request(connection)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            reply = self.rewrite(request, self._forward(request) if self.upstream else None)
            _write(connection, reply)
        except OSError:
            pass  # the client went away (it gave up, or hit its cap): nothing to tell it

    def _forward(self, request: Request) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "connection", "accept-encoding")}
        answer = httpx.get(f"{self.upstream}{request.target}", headers=headers, timeout=30)
        kept = tuple((k, v) for k, v in answer.headers.items()
                     if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"))
        return Reply(answer.status_code, answer.reason_phrase, kept, answer.content)


def _read_request(connection: socket.socket) -> Request | None:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(4096)
        if not chunk:
            return None
        head += chunk
        if len(head) > MAX_REQUEST_HEAD:
            return None
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


def _write(connection: socket.socket, reply: Reply) -> None:
    if reply.raw is not None:
        connection.sendall(reply.raw)
        return
    body = reply.body
    head = [f"HTTP/1.1 {reply.status} {reply.reason}".encode("latin-1")]
    head += [f"{name}: {value}".encode("latin-1") for name, value in reply.headers]
    if isinstance(body, bytes) and reply.content_length:
        head.append(f"Content-Length: {len(body)}".encode())
    head.append(b"Connection: close")
    connection.sendall(b"\r\n".join(head) + b"\r\n\r\n")
    for chunk in [body] if isinstance(body, bytes) else body:
        connection.sendall(chunk)
    connection.shutdown(socket.SHUT_WR)
