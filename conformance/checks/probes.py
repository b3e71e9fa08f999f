"""Requests that must be refused, shared by the AUTH and ENV checks (sent once per run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance import inputs
from conformance.client import Response
from conformance.session import Target


@dataclass(frozen=True)
class ErrorProbe:
    name: str
    send: Callable[[Target], Response]


ERROR_PROBES = {probe.name: probe for probe in (
    ErrorProbe("no-credentials", lambda t: t.get({"limit": 1}, credential=None)),
    ErrorProbe("unknown-key", lambda t: t.get({"limit": 1}, credential=inputs.MADE_UP_KEYS["unknown"])),
    ErrorProbe("limit-0", lambda t: t.get({"limit": 0})),
    ErrorProbe("offset-negative", lambda t: t.get({"offset": -1})),
    ErrorProbe("no-capability", lambda t: t.get({"limit": 1}, credential="no_capability_api_key")),
    ErrorProbe("foreign-org", lambda t: t.get({"limit": 1}, org=t.setting("foreign_org"))),
)}


def error_response(target: Target, name: str) -> Response:
    """The probe's response, fetched once per run."""
    return target.cached(("probe", name), lambda: ERROR_PROBES[name].send(target))
