"""Requests that must be refused, shared by the AUTH, LIM, OFF and ENV checks (sent once per run)."""

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
    ErrorProbe("no-credentials", lambda t: t.once({"limit": 1}, credential=None)),
    ErrorProbe("unknown-key", lambda t: t.once({"limit": 1}, credential=inputs.MADE_UP_KEYS["unknown"])),
    ErrorProbe("limit-0", lambda t: t.once({"limit": 0})),
    ErrorProbe("offset-negative", lambda t: t.once({"offset": -1})),
    ErrorProbe("no-capability", lambda t: t.once({"limit": 1}, credential="no_capability_api_key")),
    ErrorProbe("foreign-org", lambda t: t.once({"limit": 1}, org=t.setting("foreign_org"))),
)}


def error_response(target: Target, name: str) -> Response:
    """The probe's response, fetched once per run (and shared with the checks sending the same request)."""
    return ERROR_PROBES[name].send(target)
