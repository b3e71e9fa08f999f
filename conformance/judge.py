"""Judging responses: each helper either returns what it verified or raises a
:class:`Violation` whose message a person can act on without reading the suite's code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from conformance import evidence as evidence_log
from conformance import schemas
from conformance.client import Exchange, Response
from conformance.model import Job, ListingModel, job_id, page_jobs, parse_timestamp, short_id

# Which exchange showed a difference: one exchange, or the one that returned a position (a
# walk's ``exchange_at``) for comparisons of many pages.
Culprit = Exchange | Callable[[int], Exchange | None]

VALIDATION_STATUSES = (422, 400)
VALIDATION_TYPES = ("validation_error", "client_error")


class Violation(AssertionError):
    """A requirement is broken. ``requirements`` names which, for checks citing several.

    ``evidence`` is the exchange whose answer broke it (its curl reproduces the failure):
    when not given, the answer being judged when the violation is raised (see
    :func:`conformance.evidence.judging`).
    """

    def __init__(self, message: str, *requirements: str, evidence: Exchange | None = None) -> None:
        super().__init__(message)
        self.requirements = requirements
        self.evidence = evidence if evidence is not None else evidence_log.judged()


def fail(message: str, *requirements: str, evidence: Exchange | None = None) -> NoReturn:
    raise Violation(message, *requirements, evidence=evidence)


def expect(condition: bool, message: str, *requirements: str, evidence: Exchange | None = None) -> None:
    if not condition:
        fail(message, *requirements, evidence=evidence)


def judging(response: Response) -> Response:
    """Say that ``response`` is the answer being judged now (a violation raised next names it)."""
    evidence_log.judging(response.exchange)
    return response


def judged_jobs(response: Response) -> list[Job]:
    """The jobs of a page about to be compared (not checked when it is not a 200 page)."""
    return page_jobs(judging(response))


def describe(response: Response) -> str:
    """``GET /v1/...?limit=0 -> 200`` for messages."""
    path = response.exchange.url.split("/v1/", 1)[-1]
    return f"GET /v1/{path} -> {response.status}"


def body_excerpt(response: Response, size: int = 160) -> str:
    text = response.exchange.body.strip().replace("\n", " ")
    return text if len(text) <= size else text[:size] + "..."


def expect_json_object(response: Response, *requirements: str) -> dict[str, Any]:
    judging(response)
    try:
        body = response.json()
    except ValueError as error:
        fail(f"{describe(response)}: {error}; body starts {body_excerpt(response)!r}", *requirements)
    expect(isinstance(body, dict), f"{describe(response)}: body is JSON but not an object", *requirements)
    return body


def expect_status(response: Response, expected: int | Sequence[int], *requirements: str) -> None:
    judging(response)
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
                     *requirements: str, evidence: Culprit | None = None) -> None:
    """``actual`` ids equal ``expected`` ids, position by position; the first difference is named.

    Before failing, the listing is walked again: if it changed, the check is not judged.
    ``evidence`` is where ``actual`` came from, when not the answer being judged: a walk's
    ``exchange_at`` names the page that holds the first difference.
    """
    actual_ids = [job_id(job) for job in actual]
    expected_ids = [job_id(job) for job in expected]
    if actual_ids == expected_ids:
        return
    position = difference_position(actual_ids, expected_ids)
    culprit = lost_by_the_listing(actual, expected_ids, position, model) or culprit_at(evidence, position)
    model.confirm_unchanged()
    fail(f"{what}: {first_difference(actual_ids, expected_ids)}", *requirements, evidence=culprit)


def lost_by_the_listing(actual: Sequence[Job], expected_ids: Sequence[str], position: int,
                        model: ListingModel) -> Exchange | None:
    """The page of the walked listing that skipped a job, when that explains the difference:
    ``actual`` holds at ``position`` a job the whole walked listing lacks, and the job expected
    there comes right after it. The expectation (from the walk) was wrong there, not ``actual``."""
    listing = model.walked_listing()
    if listing is None or position >= len(actual):
        return None
    job = actual[position]
    next_actual = [job_id(later) for later in actual[position + 1 : position + 2]]
    follows = next_actual == list(expected_ids[position : position + 1])
    if not follows or job_id(job) in expected_ids or job_id(job) in set(listing.ids):
        return None
    return listing.page_that_lost(job)


def difference_position(actual: Sequence[str], expected: Sequence[str]) -> int:
    """The first position where ``actual`` differs from ``expected``."""
    return next((position for position, (got, want) in enumerate(zip(actual, expected, strict=False)) if got != want),
                min(len(actual), len(expected)))


def culprit_at(evidence: Culprit | None, position: int) -> Exchange | None:
    """The exchange that answered ``position`` (the last one a walk has, for a position past
    its end: the short page that ended it too early)."""
    if evidence is None or isinstance(evidence, Exchange):
        return evidence
    for candidate in range(position, -1, -1):
        exchange = evidence(candidate)
        if exchange is not None:
            return exchange
    return None


def first_difference(actual: Sequence[str], expected: Sequence[str]) -> str:
    for position, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if got != want:
            where = (f"found at position {expected.index(got)} of the expected sequence" if got in expected
                     else "not in the expected sequence")
            return (f"position {position} holds {short_id(got)} ({where}) but the listing has "
                    f"{short_id(want)} there")
    if len(actual) > len(expected):
        return (f"{len(actual)} jobs where {len(expected)} were due; extra from position {len(expected)}: "
                f"{short_id(actual[len(expected)])}")
    return (f"{len(actual)} jobs where {len(expected)} were due; missing from position {len(actual)}: "
            f"{short_id(expected[len(actual)])}")


def created_at_order_problem(jobs: Sequence[Job], positions: Sequence[int] | None = None) -> str | None:
    """The first place where ``created_at`` increases along ``jobs`` (newest first expected);
    ``positions`` are the jobs' places in the listing when they are not 0, 1, 2, ..."""
    previous = None
    for position, job in zip(range(len(jobs)) if positions is None else positions, jobs, strict=True):
        moment = parse_timestamp(job.get("created_at"))
        if moment is None:
            continue
        if previous is not None and moment > previous[1]:
            return (f"position {position} ({short_id(job_id(job))}, {job.get('created_at')}) is newer than "
                    f"position {previous[0]} ({previous[2]})")
        previous = (position, moment, job.get("created_at"))
    return None


__all__ = ["Violation", "expect", "fail", "first_difference", "is_json_content_type", "schema_errors"]
