"""One run against one target: settings, the reference deployment when needed, the client,
the model of the listing and the result model, opened once and shared by every check."""

from __future__ import annotations

import hashlib
import ssl
import tempfile
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance import config, output
from conformance.bad_answers import BadAnswers
from conformance.client import Credential, RequestFailed, Response, TargetClient, TargetUnreachable, ssl_context
from conformance.config import Settings, setting_label
from conformance.model import ListingModel
from conformance.plan import Engine, own_request
from conformance.results import RunResult
from conformance.shared import Shared

# The credential settings that hold bearer tokens (sent as ``Authorization: Bearer``).
BEARER_SETTINGS = frozenset({"bearer_token", "expired_bearer_token"})


@dataclass(frozen=True)
class Target:
    """What a check needs to send requests: the organization, credentials and the client."""

    settings: Settings
    client: TargetClient
    _shared: Shared = field(default_factory=Shared, compare=False, repr=False)

    def cached(self, key: Hashable, fetch: Callable[[], Any]) -> Any:
        """``fetch()`` once per run for ``key``; later (and concurrent) calls share the answer."""
        return self._shared.get(("cached", key), fetch)

    @property
    def org(self) -> str:
        assert self.settings.org is not None
        return self.settings.org

    def credential(self, name: str = "api_key") -> Credential:
        """The configured credential ``name`` (a setting name), or the check is not checked."""
        secret = getattr(self.settings, name)
        if secret is None:
            pytest.skip(f"not configured: set {setting_label(name)}")
        spec = config.SPECS_BY_NAME[name]
        if name in BEARER_SETTINGS:
            return Credential.bearer(secret.reveal(), spec.env or name)
        return Credential.api_key(secret.reveal(), spec.env or name)

    def setting(self, name: str) -> Any:
        """A non-secret setting a check needs, or the check is not checked."""
        value = getattr(self.settings, name)
        if value is None:
            pytest.skip(f"not configured: set {setting_label(name)}")
        return value

    def get(self, params: Any = None, *, credential: Credential | None | str = "api_key",
            org: str | None = None, raw_query: str | None = None) -> Response:
        """GET the list endpoint as the main caller (or with ``credential``; None = no auth):
        the check's own request, sent each time it is asked for (the first time, the answer the
        plan fetched for the check when it declared it: :mod:`conformance.plan`)."""
        key, send = self._request(params, credential, org, raw_query)
        return own_request(key, send)

    def request_key(self, params: Any = None, *, credential: Credential | None | str = "api_key",
                    org: str | None = None, raw_query: str | None = None) -> Hashable:
        """What names this request in the run's caches (a digest for the credential)."""
        return self._request(params, credential, org, raw_query)[0]

    def send_request(self, params: Any = None, *, credential: Credential | None | str = "api_key",
                     org: str | None = None, raw_query: str | None = None) -> Response:
        """Send this request now, outside every cache."""
        return self._request(params, credential, org, raw_query)[1]()

    def once(self, params: Any = None, *, credential: Credential | None | str = "api_key",
             org: str | None = None, raw_query: str | None = None) -> Response:
        """Like :meth:`get`, but sent once per run: every check asking for exactly this request
        shares the answer. Only for answers never compared with the listing (refusals), since
        they are kept when the listing changes during the run."""
        key, send = self._request(params, credential, org, raw_query)
        return self._shared.get(key, send)

    def send(self, params: Any = None) -> Response:
        """GET as the main caller, now, outside any cache (what the model fetches with)."""
        return self.client.get(self.org, params, credential=self.credential())

    def member_model(self, credential: Credential) -> ListingModel:
        """The model of the listing another member sees with ``credential`` (walked once per run)."""
        return self.cached(("member", _digest(credential)), lambda: ListingModel(
            lambda params: self.client.get(self.org, params, credential=credential),
            max_jobs=self.settings.max_listing, concurrency=self.settings.concurrency))

    def _request(self, params: Any, credential: Credential | None | str, org: str | None,
                 raw_query: str | None) -> tuple[Hashable, Callable[[], Response]]:
        if isinstance(credential, str):
            credential = self.credential(credential)
        organization = org or self.org
        items = params.items() if isinstance(params, dict) else params or ()
        query = raw_query if raw_query is not None else tuple((name, str(value)) for name, value in items)
        return (("request", organization, query, None if credential is None else _digest(credential)),
                lambda: self.client.get(organization, params, credential=credential, raw_query=raw_query))


def _digest(credential: Credential) -> tuple[str, str]:
    """A credential as a cache key names it: its header and a digest, so no key holds a secret."""
    return credential.header, hashlib.sha256(credential.value.encode()).hexdigest()


class CredentialRefused(Exception):
    """The preflight's request with the main credential got 401 or 403: nothing was judged."""


class RunContext:
    """Everything one run shares. Use :meth:`open` and :meth:`close` (or ``with``)."""

    def __init__(self, settings: Settings, client: TargetClient, reference: Any = None,
                 scratch: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self.settings = settings
        self.client = client
        # When checks stop being started (--max-duration), on the clock checks read.
        self.deadline = time.monotonic() + settings.max_duration
        self.reference = reference
        self._scratch = scratch
        self.target = Target(settings, client)
        self.model = ListingModel(self.target.send, max_jobs=settings.max_listing, concurrency=settings.concurrency,
                                  sent=lambda: client.request_count)
        self.engine = Engine(self.target, self.model, workers=settings.concurrency, deadline=lambda: self.deadline)
        self.result = RunResult(
            base_url=settings.base_url or "",
            organization_id=settings.org or "",
            reference=reference is not None,
            configuration=settings.public(),
        )
        # Every answer of the run that ROB-01 forbids (5xx, not JSON), whichever check sent it.
        self.bad_answers = BadAnswers()
        client.add_observer(self._count)
        client.add_observer(self.engine.observe)
        client.add_observer(self.bad_answers.observe)

    @classmethod
    def open(cls, settings: Settings, *, reference_options: dict[str, Any] | None = None) -> RunContext:
        """Start the reference deployment when no target is configured, then connect."""
        verify: bool | str = False if settings.insecure else (str(settings.ca_bundle) if settings.ca_bundle else True)
        _check_ca_bundle(verify)
        unwritable = output.check_writable(settings.report_dir)
        if unwritable:
            raise config.ConfigError(f"{setting_label('report_dir')}: cannot write reports to "
                                     f"{settings.report_dir}: {unwritable}")
        reference = scratch = None
        if settings.uses_reference:
            settings, reference, scratch = _start_reference(settings, reference_options or {})
        # The bundled reference listens on this machine's loopback: no proxy can reach it.
        client = TargetClient(settings.base_url or "", secrets=settings.secrets(), timeout=settings.timeout,
                              max_rps=settings.max_rps, max_requests=settings.max_requests,
                              concurrency=settings.concurrency, verify=verify,
                              proxies={} if reference is not None else None)
        return cls(settings, client, reference, scratch)

    def preflight(self) -> None:
        """One request before any check; :class:`RequestFailed` names why it got no answer
        (unreachable, TLS, timeout, an answer that broke off, or rate limited throughout), and
        :class:`CredentialRefused` says the deployment refused the main credential (a wrong key
        or organization reads as a broken deployment otherwise), unless ``--judge-anyway``.
        Its answer is the model's page ``limit=1``, which a check judges later."""
        response = self.model.page(limit=1)
        if response.status in (401, 403) and not self.settings.judge_anyway:
            raise CredentialRefused(
                f"the deployment at {self.settings.base_url} refused the main credential "
                f"({setting_label('api_key')}) for organization {self.settings.org!r}: "
                f"GET {response.exchange.url} -> {response.status}; check the key and {setting_label('org')}, "
                f"or pass {setting_label('judge_anyway')} to judge the deployment as it answers")

    def close(self) -> None:
        self.client.close()
        if self.reference is not None:
            self.reference.stop()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _count(self, exchange: Any) -> None:
        self.result.requests = self.client.request_count


def _check_ca_bundle(verify: bool | str) -> None:
    if isinstance(verify, str):
        try:
            ssl_context(verify)
        except (ssl.SSLError, OSError) as error:
            raise config.ConfigError(f"{setting_label('ca_bundle')}: {verify} holds no usable PEM CA "
                                     f"certificate ({error})") from None


def _start_reference(settings: Settings, options: dict[str, Any]):
    from conformance.reference import ReferenceServer

    server = ReferenceServer(**options).start()
    fixture = server.fixture
    scratch = tempfile.TemporaryDirectory(prefix="conformance-")
    dataset = fixture.write_dataset(Path(scratch.name) / "dataset.json")
    filled = config.with_overrides(
        settings,
        base_url=server.base_url,
        org=fixture.organization_id,
        api_key=config.Secret(fixture.api_key),
        no_capability_api_key=config.Secret(fixture.no_capability_api_key),
        foreign_org=fixture.foreign_organization_id,
        second_user_api_key=config.Secret(fixture.second_user_api_key),
        bearer_token=config.Secret(fixture.bearer_token),
        revoked_api_key=config.Secret(fixture.revoked_api_key),
        expired_bearer_token=config.Secret(fixture.expired_bearer_token),
        dataset=dataset,
    )
    return filled, server, scratch


__all__ = ["RequestFailed", "RunContext", "Target", "TargetUnreachable"]
