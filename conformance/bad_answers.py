"""Answers no request may get (ROB-01): a 5xx, or a body that is not JSON.

ROB-01 holds for every request a run sends, whatever its credential (none, API keys, bearer
tokens, made-up or tampered ones) and whichever check sent it. :class:`BadAnswers` watches
every captured exchange of the run (a :class:`~conformance.client.TargetClient` observer) and
keeps the first few bad answers as evidence, plus a count; the ROB-01 check that runs last
(``test_robustness.py::test_no_request_of_the_run_got_a_server_error_or_non_json``) judges them.

Not judged here: requests that got no complete answer (they end their check in error), 429s
(rate limiting is waited out, never a failure), and bodies longer than the capture keeps
(:data:`~conformance.client.BODY_KEEP_CAP`): the check that read them judges those.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass

from conformance.client import Exchange

KEEP = 5
RATE_LIMITED = 429


@dataclass(frozen=True)
class BadAnswer:
    """One request whose answer ROB-01 forbids, and what was wrong with it."""

    exchange: Exchange
    problem: str

    def describe(self) -> str:
        """``GET /v1/...?limit=1 with a bearer token -> 500 (a server error)``."""
        path = self.exchange.url.split("/v1/", 1)[-1]
        return (f"{self.exchange.method} /v1/{path} with {credential_kind(self.exchange)} -> "
                f"{self.exchange.status} ({self.problem})")

    def body_excerpt(self, size: int = 160) -> str:
        text = self.exchange.body.strip().replace("\n", " ")
        return text if len(text) <= size else text[:size] + "..."


class BadAnswers:
    """The run's bad answers: the first :data:`KEEP` of them, and how many there were."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self.first: list[BadAnswer] = []
        self.count = 0
        self.judged = 0

    def observe(self, exchange: Exchange) -> None:
        """Client observer: called with every captured exchange, from any thread."""
        problem = answer_problem(exchange)
        with self._lock:
            self.judged += problem != NOT_JUDGED
            if problem in (None, NOT_JUDGED):
                return
            self.count += 1
            if len(self.first) < self._keep:
                self.first.append(BadAnswer(exchange, problem))

    def snapshot(self) -> tuple[list[BadAnswer], int, int]:
        """The first bad answers, how many there were, and how many answers were judged."""
        with self._lock:
            return list(self.first), self.count, self.judged


NOT_JUDGED = "not judged"


def answer_problem(exchange: Exchange) -> str | None:
    """What ROB-01 forbids in this answer, None when nothing, :data:`NOT_JUDGED` when it cannot tell."""
    if exchange.error is not None or exchange.status is None or exchange.status == RATE_LIMITED:
        return NOT_JUDGED
    if exchange.status >= 500:
        return "a server error"
    if exchange.body_truncated:
        return NOT_JUDGED
    try:
        json.loads(exchange.body)
    except ValueError:
        return "the body is not JSON"
    return None


def credential_kind(exchange: Exchange) -> str:
    """How the request authenticated: ``an API key``, ``a bearer token`` or ``no credentials``,
    with the header as its curl writes it (``X-API-Key: $FREDDY_API_KEY``; never the secret)."""
    names = {name.lower() for name, _ in exchange.request_headers}
    kind = "an API key" if "x-api-key" in names else "a bearer token" if "authorization" in names else None
    if kind is None:
        return "no credentials"
    header = _CURL_HEADER.search(exchange.curl)
    return f"{kind} ({header.group(1)})" if header else kind


_CURL_HEADER = re.compile(r' -H "((?:[^"\\]|\\.)*)"')
