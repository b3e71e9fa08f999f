"""The requirement catalogue: every id of CONTRACT.md with its level, group and text.

The one place the suite knows the contract. Checks cite these ids with
``@pytest.mark.requirement(...)``; the project's tests keep this table equal to
``shared/spec/CONTRACT.md`` and every id tied to at least one check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD", "MAY"]

CONTRACT_VERSION = "1.0"


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    group: str
    text: str


REQUIREMENTS: dict[str, Requirement] = {
    requirement.id: requirement
    for requirement in (
        Requirement("AUTH-01", "MUST", "Authentication and authorization",
                    'A request with no credentials gets 401, error envelope, `error.code` = `AUTHENTICATION_REQUIRED`, `error.type` = `authentication_error`.'),
        Requirement("AUTH-02", "MUST", "Authentication and authorization",
                    "A request whose `X-API-Key` is unknown, empty, or malformed gets 401 with the error envelope, `error.type` = `authentication_error`, `error.code` one of the provider's 401 codes (`AUTHENTICATION_REQUIRED`, `INVALID_API_KEY`, `TOKEN_INVALID`, `API_KEY_EXPIRED`, `API_KEY_DEACTIVATED`, `API_KEY_PAUSED`). No job data is returned."),
        Requirement("AUTH-03", "MUST", "Authentication and authorization",
                    'A valid key sent as `X-API-Key` is accepted (200).'),
        Requirement("AUTH-04", "MUST", "Authentication and authorization",
                    'A member of the organization whose key lacks the `USE_MUSIC_GENERATION` capability gets 403, envelope, `error.code` = `INSUFFICIENT_PERMISSIONS`, `error.type` = `authorization_error`.'),
        Requirement("AUTH-05", "MUST", "Authentication and authorization",
                    'A caller who is not a member of `{organization_id}` gets 403 with the envelope, `error.type` = `authorization_error`, `error.code` `ORGANIZATION_ACCESS_DENIED` or `INSUFFICIENT_PERMISSIONS` (convention). Never 200, never 404, never any job.'),
        Requirement("AUTH-06", "SHOULD", "Authentication and authorization",
                    'Authentication is decided before query validation: no credentials plus `limit=0` gets 401, not a validation error (convention).'),
        Requirement("AUTH-07", "MAY", "Authentication and authorization",
                    '`Authorization: Bearer <token>` is accepted too; checked only when a bearer token is configured.'),
        Requirement("ENV-01", "MUST", "Error envelope",
                    'Every 4xx/5xx body is JSON `{"success": false, "error": {...}}` where `error` has `code` (non-empty string), `message` (string), `system_message` (string), `type` (string), `status` (integer equal to the HTTP status), `details` (object), `trace_id` (non-empty string), `timestamp` (ISO 8601 date-time with a UTC designator). Extra members are allowed.'),
        Requirement("ENV-02", "MUST", "Error envelope",
                    'Error responses carry `Content-Type: application/json` (parameters such as `charset` allowed).'),
        Requirement("ENV-03", "SHOULD", "Error envelope",
                    'Each error response has a distinct `trace_id`.'),
        Requirement("SHP-01", "MUST", "Response shape",
                    '200 responses carry `Content-Type: application/json` and a JSON object with `jobs` (array), `limit` (integer), `offset` (integer). Extra members are allowed.'),
        Requirement("SHP-02", "MUST", "Response shape",
                    'Every job has all eleven documented fields: `id` string starting `mgen_`; `status` one of `queued`, `running`, `succeeded`, `failed`, `cancelled`, `refused`; `progress` integer 0–100; `engine` non-empty string; `mode` `creation` or `focus`; `created_at` ISO 8601 date-time in UTC (`Z` or `+00:00`, fractional seconds allowed); `result_track_id`, `error_message`, `refusal_reason` string or null; `playback_url`, `track` present. Extra fields are allowed.'),
        Requirement("SHP-03", "MUST", "Response shape",
                    '`playback_url` is `null` for every job in the list view, whatever its status.'),
        Requirement("SHP-04", "MUST", "Response shape",
                    '`track` is `null` for every job in the list view, whatever its status.'),
        Requirement("SHP-05", "MUST", "Response shape",
                    'A `succeeded` job has a `result_track_id` string starting `mtrack_`.'),
        Requirement("SHP-06", "SHOULD", "Response shape",
                    'A job that is not `succeeded` has `result_track_id` null; a `succeeded` job has `progress` 100.'),
        Requirement("SHP-07", "SHOULD", "Response shape",
                    'A `failed` job has a non-empty `error_message`; a `refused` job has a non-empty `refusal_reason`.'),
        Requirement("SHP-08", "MUST", "Response shape",
                    'Job ids are unique within the listing.'),
        Requirement("ORD-01", "MUST", "Ordering",
                    'The listing is newest first: `created_at` never increases along it.'),
        Requirement("ORD-02", "MUST", "Ordering",
                    'The order is deterministic: repeating a request returns the same ids in the same order, and for every page size the pages tile the listing exactly (no duplicate, no gap), also across jobs that share a `created_at`.'),
        Requirement("LIM-01", "MUST", "Limit",
                    'Without `limit`, a page holds `min(50, remaining)` jobs and echoes `limit` = 50.'),
        Requirement("LIM-02", "MUST", "Limit",
                    'For every `limit` in 1–100 the page holds exactly `min(limit, remaining)` jobs, where `remaining` is what the listing holds after `offset`.'),
        Requirement("LIM-03", "MUST", "Limit",
                    '`limit` below 1, above 100, or not an integer gets a validation error; never a 200, never a 5xx. Silent clamping is non-conformant.'),
        Requirement("LIM-04", "MUST", "Limit",
                    'The response echoes the applied `limit`.'),
        Requirement("OFF-01", "MUST", "Offset",
                    'Without `offset`, the page starts at the newest job and echoes `offset` = 0.'),
        Requirement("OFF-02", "MUST", "Offset",
                    '`offset=k` returns the window of the listing that starts at position k (0-based).'),
        Requirement("OFF-03", "MUST", "Offset",
                    '`offset` at or past the end of the listing gets 200 with `jobs: []`.'),
        Requirement("OFF-04", "MUST", "Offset",
                    '`offset` below 0 or not an integer gets a validation error; never a 200, never a 5xx.'),
        Requirement("OFF-05", "MUST", "Offset",
                    'The response echoes the applied `offset`.'),
        Requirement("STA-01", "MUST", "Status filter",
                    'Each of the six status values is accepted (200).'),
        Requirement("STA-02", "MUST", "Status filter",
                    "The filtered listing for `s` equals the listing's subsequence of jobs with status `s`, same order; pagination (`limit`, `offset`) applies after filtering."),
        Requirement("STA-03", "MUST", "Status filter",
                    'A status value outside the six (including other letter case) never yields a job whose status differs from it and never a 5xx.'),
        Requirement("STA-04", "SHOULD", "Status filter",
                    'Such a value gets a validation error rather than an empty 200.'),
        Requirement("ISO-01", "MUST", "Isolation",
                    "The listing holds only the caller's own jobs: another member of the same organization sees a disjoint set of ids."),
        Requirement("ROB-01", "MUST", "Robustness",
                    'No request to the endpoint, with any combination of `status`, `limit`, `offset` values (valid or not) and unknown query parameters, yields a 5xx or a non-JSON body.'),
        Requirement("ROB-02", "SHOULD", "Robustness",
                    'Unknown query parameters are ignored.'),
        Requirement("DAT-01", "MUST", "Oracle (optional)",
                    "When the run is given the expected dataset of the caller's jobs, the listing equals it exactly (ids, order, field values)."),
    )
}


def get(requirement_id: str) -> Requirement:
    """The requirement with that id; ``KeyError`` names an unknown one."""
    try:
        return REQUIREMENTS[requirement_id]
    except KeyError:
        raise KeyError(f"unknown requirement id {requirement_id!r}") from None


def contract_digest() -> str:
    """SHA-256 over the catalogue, so a results file says which contract it was judged by."""
    text = "\n".join(f"{r.id}|{r.level}|{r.text}" for r in REQUIREMENTS.values())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
