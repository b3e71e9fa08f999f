"""Requests that must be refused, shared by the AUTH, LIM, OFF and ENV checks (sent once per run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance import inputs
from conformance.client import Response
from conformance.plan import Once
from conformance.session import Target


@dataclass(frozen=True)
class ErrorProbe:
    name: str
    request: Callable[[Target], Once]  # the request, as the run's plan declares it

    def send(self, target: Target) -> Response:
        """The probe's answer, fetched once per run (shared with every check sending the same request)."""
        return self.request(target).fetch(target, None)


ERROR_PROBES = {probe.name: probe for probe in (
    ErrorProbe("no-credentials", lambda t: Once.of({"limit": 1}, credential=None)),
    ErrorProbe("unknown-key", lambda t: Once.of({"limit": 1}, credential=inputs.MADE_UP_KEYS["unknown"])),
    ErrorProbe("limit-0", lambda t: Once.of({"limit": 0})),
    ErrorProbe("offset-negative", lambda t: Once.of({"offset": -1})),
    ErrorProbe("no-capability", lambda t: Once.of({"limit": 1}, credential="no_capability_api_key")),
    ErrorProbe("foreign-org", lambda t: Once.of({"limit": 1}, org=t.setting("foreign_org"))),
)}


def error_response(target: Target, name: str) -> Response:
    """The probe's response, fetched once per run (and shared with the checks sending the same request)."""
    return ERROR_PROBES[name].send(target)


def error_request(target: Target, name: str) -> Once:
    """The probe's request, as a check declares it."""
    return ERROR_PROBES[name].request(target)
