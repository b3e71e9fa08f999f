"""Serving the reference deployment: in a background thread, or in the foreground."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from conformance.config import SPECS_BY_NAME
from conformance.reference.app import RequestLog, create_app
from conformance.reference.behaviour import Behaviour
from conformance.reference.data import DEFAULT_JOBS, DEFAULT_SEED, Fixture, seed_database
from conformance.reference.faults import get_behaviour
from conformance.reference.modes import Misbehaviour, Modes, wrap

HOST = "127.0.0.1"
DATABASE_NAME = "reference.sqlite3"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


class ReferenceServer:
    """A seeded reference deployment served by uvicorn on 127.0.0.1 in a background thread.

    ``with ReferenceServer() as server:`` starts it on an ephemeral port and stops it on exit.
    """

    def __init__(
        self,
        *,
        jobs: int = DEFAULT_JOBS,
        seed: int = DEFAULT_SEED,
        behaviour: Behaviour | str | None = None,
        latency_ms: float = 0.0,
        port: int = 0,
        live: bool = False,
        rate_limit: float | None = None,
        misbehaviour: Misbehaviour | None = None,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
    ) -> None:
        """``live``, ``rate_limit`` and ``misbehaviour`` are the modes of ``modes.py``; with
        ``ssl_certfile`` and ``ssl_keyfile`` it serves https."""
        self.live = live
        self.rate_limit = rate_limit
        self.misbehaviour = misbehaviour
        self._ssl = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} if ssl_certfile else {}
        self.modes: Modes | None = None
        self.jobs = jobs
        self.seed = seed
        self.behaviour = _resolve(behaviour)
        self.latency_ms = latency_ms
        self._requested_port = port
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._fixture: Fixture | None = None
        self._log: RequestLog | None = None
        self._port: int | None = None

    def start(self) -> ReferenceServer:
        """Seed a database in a fresh temporary directory and serve it; returns once it listens."""
        if self._thread is not None:
            raise RuntimeError("the reference server is already running")
        self._tempdir = tempfile.TemporaryDirectory(prefix="conformance-reference-")
        try:
            path = Path(self._tempdir.name) / DATABASE_NAME
            self._fixture = seed_database(path, jobs=self.jobs, seed=self.seed)
            starlette_app = create_app(path, self.behaviour, latency_ms=self.latency_ms)
            self._log = starlette_app.state.request_log
            app = wrap(starlette_app, path, self._log, live=self.live, rate_limit=self.rate_limit,
                       misbehaviour=self.misbehaviour)
            self.modes = app if isinstance(app, Modes) else None
            config = uvicorn.Config(
                app,
                ssl_certfile=self._ssl.get("ssl_certfile"),
                ssl_keyfile=self._ssl.get("ssl_keyfile"),
                host=HOST,
                port=self._requested_port,
                log_level="warning",
                log_config=None,  # leave the host process's logging configuration alone
                access_log=False,
                lifespan="off",
            )
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=self._server.run, name="conformance-reference-server", daemon=True
            )
            self._thread.start()
            self._port = _wait_until_listening(self._server, self._thread)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut uvicorn down and delete the temporary directory; safe to call twice."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(_STOP_TIMEOUT_S)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT_S)
        if self._tempdir is not None:
            self._tempdir.cleanup()
        self._server = self._thread = self._tempdir = None
        self._port = None

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the reference server is not running")
        return f"{'https' if self._ssl else 'http'}://{HOST}:{self._port}"

    @property
    def fixture(self) -> Fixture:
        if self._fixture is None:
            raise RuntimeError("the reference server has not been started")
        return self._fixture

    @property
    def requests_seen(self) -> list[tuple[str, str]]:
        """Every request received so far, as ``(method, path_with_query)``."""
        return [] if self._log is None else self._log.entries

    @property
    def request_count(self) -> int:
        return 0 if self._log is None else self._log.count

    def settings(self) -> dict[str, str]:
        """The suite's settings (by setting name) that point it at this server with every
        credential, in clear; the dataset is written by :meth:`suite_env`."""
        fixture = self.fixture
        return {
            "base_url": self.base_url,
            "org": fixture.organization_id,
            "api_key": fixture.api_key,
            "no_capability_api_key": fixture.no_capability_api_key,
            "foreign_org": fixture.foreign_organization_id,
            "second_user_api_key": fixture.second_user_api_key,
            "bearer_token": fixture.bearer_token,
            "revoked_api_key": fixture.revoked_api_key,
            "expired_bearer_token": fixture.expired_bearer_token,
        }

    def suite_env(self, dataset_dir: Path) -> dict[str, str]:
        """Environment variables that point ``conformance run`` at this server with every
        credential and the dataset (written into ``dataset_dir``)."""
        values = {**self.settings(), "dataset": str(self.fixture.write_dataset(dataset_dir / "dataset.json"))}
        return {str(SPECS_BY_NAME[name].env): value for name, value in values.items()}

    def credential_exports(self) -> list[str]:
        """One ``export VARIABLE=value`` line per credential, named as the suite reads them."""
        return [f"export {SPECS_BY_NAME[name].env}={value}" for name, value in self.settings().items()
                if SPECS_BY_NAME[name].secret]


def serve(
    *,
    port: int = 8000,
    jobs: int = DEFAULT_JOBS,
    seed: int = DEFAULT_SEED,
    behaviour: Behaviour | str | None = None,
    latency_ms: float = 0.0,
    live: bool = False,
    rate_limit: float | None = None,
    dataset_out: Path | None = None,
) -> None:
    """Serve a freshly seeded reference deployment in the foreground until Ctrl-C; with
    ``dataset_out``, first write the main member's jobs there (the DAT-01 dataset)."""
    server = ReferenceServer(
        jobs=jobs, seed=seed, behaviour=behaviour, latency_ms=latency_ms, port=port,
        live=live, rate_limit=rate_limit,
    )
    with server:
        if dataset_out is not None:
            server.fixture.write_dataset(dataset_out)
        _print_banner(server)
        if dataset_out is not None:
            print(f"dataset (DAT-01) written to {dataset_out}: pass it as --dataset", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Stopping the reference deployment.", flush=True)


def _print_banner(server: ReferenceServer) -> None:
    fixture = server.fixture
    endpoint = f"{server.base_url}/v1/music/{fixture.organization_id}/generations"
    main_export, *other_exports = server.credential_exports()  # the main member's API key first
    lines = [
        f"Reference deployment ({server.behaviour.name}) serving {server.jobs} jobs"
        + (", live (the listing changes as requests come in)" if server.live else "")
        + (f", rate limited to {server.rate_limit:g} requests/s" if server.rate_limit else ""),
        f"base URL:                  {server.base_url}",
        f"organization id:           {fixture.organization_id}",
        f"foreign organization id:   {fixture.foreign_organization_id}",
        f"API key (main member):     {fixture.api_key}",
        f"API key (second member):   {fixture.second_user_api_key}",
        f"API key (no capability):   {fixture.no_capability_api_key}",
        f"bearer token (main):       {fixture.bearer_token}",
        f"revoked API key (main):    {fixture.revoked_api_key}",
        f"expired token (main):      {fixture.expired_bearer_token}",
        "",
        main_export,
        f'curl "{endpoint}?limit=5" -H "X-API-Key: $FREDDY_API_KEY"',
        "",
        "# the other credentials, in the variables 'conformance run' reads",
        *other_exports,
        "",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _resolve(behaviour: Behaviour | str | None) -> Behaviour:
    if behaviour is None:
        return Behaviour()
    if isinstance(behaviour, str):
        return get_behaviour(behaviour)
    return behaviour


def _wait_until_listening(server: uvicorn.Server, thread: threading.Thread) -> int:
    """Wait for uvicorn to bind, then return the port it bound."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the reference server failed to start (is the port in use?)")
        if time.monotonic() > deadline:
            raise RuntimeError("the reference server did not start in time")
        time.sleep(0.005)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    # A bare TCP connect proves it answers without adding to the request log.
    with socket.create_connection((HOST, port), timeout=_START_TIMEOUT_S):
        pass
    return port
