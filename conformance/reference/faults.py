"""Named faults (broken deployments) and variations (legitimate differences) of the reference.

Each is a :class:`Behaviour` subclass overriding one hook. A fault lists in ``breaks`` the
contract requirements it violates; a variation breaks nothing and the suite must pass it.
"""

from __future__ import annotations

import dataclasses
import difflib
import sqlite3
from typing import Any

from starlette.requests import Request

from conformance.reference import data
from conformance.reference.behaviour import Behaviour, Caller, ErrorSpec, Query


class OffsetOffByOne(Behaviour):
    name = "offset-off-by-one"
    description = "A non-zero offset skips one job too many."
    breaks = ("OFF-02",)
    kind = "fault"

    def select_jobs(
        self, db: sqlite3.Connection, caller: Caller, query: Query
    ) -> list[sqlite3.Row]:
        if query.offset > 0:
            query = dataclasses.replace(query, offset=query.offset + 1)
        return super().select_jobs(db, caller, query)


class PlaybackUrlFilled(Behaviour):
    name = "playback-url-filled"
    description = "Succeeded jobs carry a signed playback URL in the list view."
    breaks = ("SHP-03",)
    kind = "fault"

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        job = super().render_job(row)
        if job["status"] == "succeeded":
            track_id = job["result_track_id"]
            job["playback_url"] = f"https://cdn.reference.invalid/{track_id}.mp3?sig=0"
        return job


class NoAuth(Behaviour):
    name = "no-auth"
    description = "A request without credentials is served as the main member."
    breaks = ("AUTH-01",)
    kind = "fault"

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        if self.credentials(request) is None:
            return Caller(data.main_user_id(db), request.path_params["organization_id"])
        return super().authenticate(request, db)


class ExtraFields(Behaviour):
    name = "extra-fields"
    description = "Jobs and the page carry members the documentation does not list."
    kind = "variation"

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        extra = {"object": "music.generation", "updated_at": row["created_at"]}
        return {**super().render_job(row), **extra}

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {**super().render_page(jobs, query), "object": "list", "count": len(jobs)}


def _by_name(*behaviours: type[Behaviour]) -> dict[str, type[Behaviour]]:
    registry: dict[str, type[Behaviour]] = {}
    for behaviour in behaviours:
        if behaviour.name in registry:
            raise ValueError(f"two behaviours are named {behaviour.name!r}")
        registry[behaviour.name] = behaviour
    return registry


FAULTS: dict[str, type[Behaviour]] = _by_name(OffsetOffByOne, PlaybackUrlFilled, NoAuth)
VARIATIONS: dict[str, type[Behaviour]] = _by_name(ExtraFields)


class UnknownBehaviour(KeyError):
    """No fault or variation has that name; the message suggests close ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        if close:
            hint = f"did you mean {', '.join(close)}?"
        else:
            hint = f"known: {', '.join(sorted(known))}"
        super().__init__(f"unknown behaviour {name!r}; {hint}")

    def __str__(self) -> str:
        return str(self.args[0])


def get_behaviour(name: str) -> Behaviour:
    """A fresh instance of the named fault or variation (``"reference"`` is the correct one)."""
    if name == Behaviour.name:
        return Behaviour()
    behaviour = FAULTS.get(name) or VARIATIONS.get(name)
    if behaviour is None:
        raise UnknownBehaviour(name, [Behaviour.name, *FAULTS, *VARIATIONS])
    return behaviour()
