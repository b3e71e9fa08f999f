"""Judging responses: each helper either returns what it verified or raises a
:class:`Violation` whose message a person can act on without reading the suite's code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from conformance import evidence, schemas
from conformance.client import Response
from conformance.model import Job, ListingModel, job_id, parse_timestamp, short_id

VALIDATION_STATUSES = (422, 400)
VALIDATION_TYPES = ("validation_error", "client_error")


class Violation(AssertionError):
    """A requirement is broken. ``requirements`` names which, for checks citing several."""

    def __init__(self, message: str, *requirements: str) -> None:
        super().__init__(message)
        self.requirements = requirements


def fail(message: str, *requirements: str) -> NoReturn:
    raise Violation(message, *requirements)


def expect(condition: bool, message: str, *requirements: str) -> None:
    if not condition:
        fail(message, *requirements)


def describe(response: Response) -> str:
    """``GET /v1/...?limit=0 -> 200`` for messages."""
    path = response.exchange.url.split("/v1/", 1)[-1]
    return f"GET /v1/{path} -> {response.status}"


def body_excerpt(response: Response, size: int = 160) -> str:
    text = response.exchange.body.strip().replace("\n", " ")
    return text if len(text) <= size else text[:size] + "..."


def expect_json_object(response: Response, *requirements: str) -> dict[str, Any]:
    evidence.note(response.exchange)
    try:
        body = response.json()
    except ValueError as error:
        fail(f"{describe(response)}: {error}; body starts {body_excerpt(response)!r}", *requirements)
    expect(isinstance(body, dict), f"{describe(response)}: body is JSON but not an object", *requirements)
    return body


def expect_status(response: Response, expected: int | Sequence[int], *requirements: str) -> None:
    evidence.note(response.exchange)
    allowed = (expected,) if isinstance(expected, int) else tuple(expected)
    expect(response.status in allowed,
           f"{describe(response)}, expected {' or '.join(map(str, allowed))}; body: {body_excerpt(response)}",
           *requirements)


def is_json_content_type(response: Response) -> bool:
    media_type = response.content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def schema_errors(document: Any, schema: str, *, skip_prefix: tuple[Any, ...] = ()) -> list[str]:
    """Readable schema violations (``jobs[3].progress: 101 is greater than ...``)."""
    messages = []
    for error in schemas.validator(schema).iter_errors(document):
        path = tuple(error.absolute_path)
        if skip_prefix and path[: len(skip_prefix)] == skip_prefix:
            continue
        messages.append(f"{_path_text(path) or '(body)'}: {error.message}")
    return sorted(messages)


def _path_text(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def error_of(response: Response) -> dict[str, Any]:
    """The ``error`` member of an envelope body, or {} when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def expect_error(response: Response, status: int | Sequence[int], requirement: str, *,
                 codes: Sequence[str] | None = None, types: Sequence[str] | None = None) -> dict[str, Any]:
    """An error response with that status and (when given) one of those codes and types."""
    expect_status(response, status, requirement)
    expect_json_object(response, requirement)
    error = error_of(response)
    expect(bool(error), f"{describe(response)}: body has no 'error' object: {body_excerpt(response)}", requirement)
    if types is not None:
        expect(error.get("type") in types,
               f"{describe(response)}: error.type is {error.get('type')!r}, expected {' or '.join(types)}",
               requirement)
    if codes is not None:
        expect(error.get("code") in codes,
               f"{describe(response)}: error.code is {error.get('code')!r}, expected {' or '.join(codes)}",
               requirement)
    return error


def expect_validation_error(response: Response, requirement: str) -> dict[str, Any]:
    """A validation error: 422 (or 400) with the envelope, type validation_error/client_error."""
    expect(response.status < 500, f"{describe(response)}: a server error where a validation error "
                                  f"was due; body: {body_excerpt(response)}", requirement)
    expect(response.status != 200, f"{describe(response)}: accepted (200) where a validation error "
                                   f"was due; echoed limit={_echo(response, 'limit')} "
                                   f"offset={_echo(response, 'offset')}", requirement)
    return expect_error(response, VALIDATION_STATUSES, requirement, types=VALIDATION_TYPES)


def _echo(response: Response, name: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def expect_page(response: Response, *requirements: str) -> dict[str, Any]:
    """A 200 page whose ``jobs`` is a list; returns the body."""
    expect_status(response, 200, *requirements)
    body = expect_json_object(response, *requirements)
    expect(isinstance(body.get("jobs"), list), f"{describe(response)}: no 'jobs' array in the body", *requirements)
    return body


def expect_same_jobs(actual: Sequence[Job], expected: Sequence[Job], what: str, model: ListingModel,
                     *requirements: str) -> None:
    """``actual`` ids equal ``expected`` ids, position by position; the first difference is named.

    Before failing, the listing is walked again: if it changed, the check is not judged.
    """
    actual_ids = [job_id(job) for job in actual]
    expected_ids = [job_id(job) for job in expected]
    if actual_ids == expected_ids:
        return
    model.confirm_unchanged()
    fail(f"{what}: {first_difference(actual_ids, expected_ids)}", *requirements)


def first_difference(actual: Sequence[str], expected: Sequence[str]) -> str:
    for position, (got, want) in enumerate(zip(actual, expected)):
        if got != want:
            where = f"found at position {expected.index(got)} of the expected sequence" if got in expected else "not in the expected sequence"
            return (f"position {position} holds {short_id(got)} ({where}) but the listing has "
                    f"{short_id(want)} there")
    if len(actual) > len(expected):
        return f"{len(actual)} jobs where {len(expected)} were due; extra from position {len(expected)}: {short_id(actual[len(expected)])}"
    return f"{len(actual)} jobs where {len(expected)} were due; missing from position {len(actual)}: {short_id(expected[len(actual)])}"


def created_at_order_problem(jobs: Sequence[Job]) -> str | None:
    """The first place where ``created_at`` increases along ``jobs`` (newest first expected)."""
    previous = None
    for position, job in enumerate(jobs):
        moment = parse_timestamp(job.get("created_at"))
        if moment is None:
            continue
        if previous is not None and moment > previous[1]:
            return (f"position {position} ({short_id(job_id(job))}, {job.get('created_at')}) is newer than "
                    f"position {previous[0]} ({previous[2]})")
        previous = (position, moment, job.get("created_at"))
    return None


__all__ = ["Violation", "expect", "fail", "first_difference", "is_json_content_type", "schema_errors"]
