"""The reference deployment, tested over real HTTP against a real ReferenceServer."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.reference import Behaviour, ReferenceServer
from conformance.reference.data import seed_database
from conformance.reference.faults import FAULTS, VARIATIONS, UnknownBehaviour, get_behaviour
from conformance.schemas import statuses, validator

REPO_ROOT = Path(__file__).resolve().parent.parent
Job = dict[str, Any]


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer() as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def client(server: ReferenceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as bound:
        yield bound


@pytest.fixture(scope="module")
def listing(http: httpx.Client, server: ReferenceServer) -> list[Job]:
    return walk(http, server)


def endpoint(server: ReferenceServer, organization_id: str | None = None) -> str:
    return f"/v1/music/{organization_id or server.fixture.organization_id}/generations"


def get(
    http: httpx.Client,
    server: ReferenceServer,
    *,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    path: str | None = None,
    **params: Any,
) -> httpx.Response:
    """GET the endpoint with the main member's key, unless other headers are given."""
    if headers is None:
        headers = {"X-API-Key": api_key or server.fixture.api_key}
    url = server.base_url + (path or endpoint(server))
    # httpx replaces a query already in the URL with params, even empty ones.
    return http.get(url, headers=headers, params=params or None)


def walk(
    http: httpx.Client, server: ReferenceServer, page_size: int = 100, **options: Any
) -> list[Job]:
    """Every job, page by page, until a short page."""
    jobs: list[Job] = []
    while True:
        response = get(http, server, limit=page_size, offset=len(jobs), **options)
        assert response.status_code == 200, response.text
        page = response.json()["jobs"]
        jobs += page
        if len(page) < page_size:
            return jobs


def ids(jobs: list[Job]) -> list[str]:
    return [job["id"] for job in jobs]


def tie_runs(jobs: list[Job]) -> list[int]:
    """The sizes of the groups of jobs that share a created_at."""
    return [count for count in Counter(job["created_at"] for job in jobs).values() if count > 1]


def assert_error(response: httpx.Response, status: int, code: str, error_type: str) -> Job:
    """The response is the provider's error envelope with this status, code and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    validator("error.schema.json").validate(body)
    error = body["error"]
    assert (error["status"], error["code"], error["type"]) == (status, code, error_type)
    assert error["trace_id"].startswith("req_")
    assert response.headers["x-request-id"] == error["trace_id"]
    assert "jobs" not in body
    return error


# The correct deployment


def test_default_page(http: httpx.Client, server: ReferenceServer) -> None:
    response = get(http, server)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    validator("page.schema.json").validate(body)
    assert (len(body["jobs"]), body["limit"], body["offset"]) == (50, 50, 0)
    assert all(job["playback_url"] is None and job["track"] is None for job in body["jobs"])


def test_listing_is_newest_first_with_deterministic_ties(
    http: httpx.Client, server: ReferenceServer, listing: list[Job]
) -> None:
    assert len(listing) == 300
    assert len(set(ids(listing))) == 300
    newest_first = sorted(listing, key=lambda job: (job["created_at"], job["id"]), reverse=True)
    assert listing == newest_first
    assert len(tie_runs(listing)) >= 10
    assert walk(http, server) == listing


@pytest.mark.parametrize("limit", [1, 7, 50, 100])
@pytest.mark.parametrize("offset", [0, 1, 99, 295, 299, 300, 1000])
def test_window_is_a_slice_of_the_listing(
    http: httpx.Client, server: ReferenceServer, listing: list[Job], limit: int, offset: int
) -> None:
    response = get(http, server, limit=limit, offset=offset)
    assert response.status_code == 200
    expected = {"jobs": listing[offset : offset + limit], "limit": limit, "offset": offset}
    assert response.json() == expected


@pytest.mark.parametrize("page_size", [3, 17, 64])
def test_pages_tile_the_listing(
    http: httpx.Client, server: ReferenceServer, listing: list[Job], page_size: int
) -> None:
    assert walk(http, server, page_size=page_size) == listing


@pytest.mark.parametrize("status", statuses())
def test_status_filter_is_the_listing_subsequence(
    http: httpx.Client, server: ReferenceServer, listing: list[Job], status: str
) -> None:
    expected = [job for job in listing if job["status"] == status]
    assert len(expected) >= 5
    assert walk(http, server, status=status) == expected
    assert get(http, server, status=status, limit=3, offset=2).json()["jobs"] == expected[2:5]


def test_job_fields_follow_the_status(listing: list[Job]) -> None:
    for job in listing:
        validator("job.schema.json").validate(job)
        succeeded = job["status"] == "succeeded"
        assert (job["result_track_id"] or "").startswith("mtrack_") == succeeded
        assert bool(job["error_message"]) == (job["status"] == "failed")
        assert bool(job["refusal_reason"]) == (job["status"] == "refused")
        if succeeded:
            assert job["progress"] == 100


def test_bearer_token_lists_the_same_jobs(
    http: httpx.Client, server: ReferenceServer, listing: list[Job]
) -> None:
    headers = {"Authorization": f"Bearer {server.fixture.bearer_token}"}
    assert walk(http, server, headers=headers) == listing


def test_members_see_only_their_own_jobs(
    http: httpx.Client, server: ReferenceServer, listing: list[Job]
) -> None:
    second_key = server.fixture.second_user_api_key
    second = walk(http, server, api_key=second_key)
    assert len(second) == 40
    assert not set(ids(second)) & set(ids(listing))
    assert second == server.fixture.expected_jobs(second_key)


# Authentication and authorization


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "AUTHENTICATION_REQUIRED"),
        ({"Authorization": "bearer x"}, "AUTHENTICATION_REQUIRED"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "AUTHENTICATION_REQUIRED"),
        ({"X-API-Key": "fk_live_00000000000000000000000000000000"}, "INVALID_API_KEY"),
        ({"X-API-Key": ""}, "INVALID_API_KEY"),
        ({"X-API-Key": "not a key"}, "INVALID_API_KEY"),
        ({"Authorization": "Bearer not.a.token"}, "TOKEN_INVALID"),
        ({"Authorization": "Bearer"}, "TOKEN_INVALID"),
    ],
)
def test_bad_credentials_get_401(
    http: httpx.Client, server: ReferenceServer, headers: dict[str, str], code: str
) -> None:
    assert_error(get(http, server, headers=headers), 401, code, "authentication_error")


def test_authentication_comes_before_validation(
    http: httpx.Client, server: ReferenceServer
) -> None:
    response = get(http, server, headers={}, limit=0)
    assert_error(response, 401, "AUTHENTICATION_REQUIRED", "authentication_error")


def test_member_without_capability_gets_403(http: httpx.Client, server: ReferenceServer) -> None:
    response = get(http, server, api_key=server.fixture.no_capability_api_key)
    error = assert_error(response, 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")
    assert error["system_message"] == "USE_MUSIC_GENERATION capability required"


@pytest.mark.parametrize("organization_id", ["foreign", "org_does_not_exist"])
def test_non_member_gets_403(
    http: httpx.Client, server: ReferenceServer, organization_id: str
) -> None:
    if organization_id == "foreign":
        organization_id = server.fixture.foreign_organization_id
    response = get(http, server, path=endpoint(server, organization_id))
    assert_error(response, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")


# Validation

INVALID_LIMITS = ["", "abc", "1.5", "-1", "0", "101", " 5", "5 ", "1e2", "٣", "0x10"]
INVALID_OFFSETS = ["", "abc", "1.5", "-1", "+1", "1e2"]
INVALID_STATUSES = ["", "SUCCEEDED", "Queued", "done", " running"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[("limit", value) for value in INVALID_LIMITS],
        *[("offset", value) for value in INVALID_OFFSETS],
        *[("status", value) for value in INVALID_STATUSES],
    ],
)
def test_invalid_query_gets_422(
    http: httpx.Client, server: ReferenceServer, field: str, value: str
) -> None:
    response = get(http, server, **{field: value})
    error = assert_error(response, 422, "VALIDATION_ERROR", "validation_error")
    assert error["details"] == {"field": field, "value": value}


@pytest.mark.parametrize(
    ("query", "limit", "offset", "count"),
    [
        ("limit=1", 1, 0, 1),
        ("limit=100", 100, 0, 100),
        ("limit=007&offset=0010", 7, 10, 7),
        ("limit=5&limit=3", 3, 0, 3),
        ("offset=1000000000000000000000000000000", 50, 10**30, 0),
        ("limit=5&foo=bar&status_=x&LIMIT=0", 5, 0, 5),
    ],
)
def test_accepted_queries(
    http: httpx.Client,
    server: ReferenceServer,
    listing: list[Job],
    query: str,
    limit: int,
    offset: int,
    count: int,
) -> None:
    response = get(http, server, path=f"{endpoint(server)}?{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["limit"], body["offset"]) == (limit, offset)
    assert body["jobs"] == listing[offset : offset + limit]
    assert len(body["jobs"]) == count


# Envelope on routing errors and failures


@pytest.mark.parametrize(
    "path", ["/", "/v1/music/org_ref_main/generations/", "/v1/music//generations"]
)
def test_unknown_path_gets_404_envelope(
    http: httpx.Client, server: ReferenceServer, path: str
) -> None:
    assert_error(get(http, server, path=path), 404, "NOT_FOUND", "client_error")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_405_envelope(
    server: ReferenceServer, client: httpx.Client, method: str
) -> None:
    headers = {"X-API-Key": server.fixture.api_key}
    response = client.request(method, endpoint(server), headers=headers)
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "client_error")
    assert "GET" in response.headers["allow"]


def test_trace_ids_are_distinct(http: httpx.Client, server: ReferenceServer) -> None:
    trace_ids = {get(http, server, headers={}).json()["error"]["trace_id"] for _ in range(5)}
    assert len(trace_ids) == 5


def test_unexpected_exception_gets_500_envelope(http: httpx.Client) -> None:
    class Exploding(Behaviour):
        def select_jobs(self, db: sqlite3.Connection, caller: Any, query: Any) -> list[sqlite3.Row]:
            raise RuntimeError("boom")

    with ReferenceServer(jobs=10, behaviour=Exploding()) as running:
        response = get(http, running)
    assert_error(response, 500, "INTERNAL_ERROR", "server_error")


# The fixture and the database


def test_dataset_equals_the_listing(
    server: ReferenceServer, listing: list[Job], tmp_path: Path
) -> None:
    path = server.fixture.write_dataset(tmp_path / "dataset.json")
    dataset = json.loads(path.read_text(encoding="utf-8"))
    assert dataset == {"organization_id": server.fixture.organization_id, "jobs": listing}


def test_seeding_is_deterministic(tmp_path: Path) -> None:
    first = seed_database(tmp_path / "a.sqlite3", seed=7)
    again = seed_database(tmp_path / "b.sqlite3", seed=7)
    other = seed_database(tmp_path / "c.sqlite3", seed=8)
    assert first.expected_jobs() == again.expected_jobs()
    assert (first.api_key, first.bearer_token) == (again.api_key, again.bearer_token)
    assert ids(first.expected_jobs()) != ids(other.expected_jobs())
    assert first.api_key != other.api_key


def test_seeded_data_has_every_status_and_tie_runs(tmp_path: Path) -> None:
    fixture = seed_database(tmp_path / "db.sqlite3")
    jobs = fixture.expected_jobs()
    per_status = Counter(job["status"] for job in jobs)
    assert all(per_status[status] >= 5 for status in statuses())
    runs = tie_runs(jobs)
    assert len(runs) >= 10 and all(2 <= size <= 6 for size in runs)
    assert len({job["created_at"][:7] for job in jobs}) >= 6  # spread over months
    assert fixture.api_key.startswith("fk_live_") and len(fixture.api_key) == 8 + 32


def test_seeding_100k_jobs(tmp_path: Path) -> None:
    started = time.perf_counter()
    fixture = seed_database(tmp_path / "big.sqlite3", jobs=100_000)
    elapsed = time.perf_counter() - started
    print(f"seeded 100,000 jobs in {elapsed:.2f} s")
    with sqlite3.connect(fixture.database_path) as db:
        query = "SELECT count(*) FROM jobs WHERE org_id = ?"
        (count,) = db.execute(query, (fixture.organization_id,)).fetchone()
    assert count == 100_000 + 40 + 4


# Faults and variations


def test_offset_off_by_one_skips_a_job(http: httpx.Client, listing: list[Job]) -> None:
    with ReferenceServer(behaviour="offset-off-by-one") as running:
        response = get(http, running, offset=1, limit=2)
    assert response.json() == {"jobs": listing[2:4], "limit": 2, "offset": 1}


def test_playback_url_filled_sets_urls_on_succeeded_jobs(http: httpx.Client) -> None:
    with ReferenceServer(behaviour="playback-url-filled") as running:
        jobs = get(http, running, status="succeeded").json()["jobs"]
    assert jobs and all(job["playback_url"] for job in jobs)


def test_no_auth_serves_anonymous_requests(http: httpx.Client, listing: list[Job]) -> None:
    with ReferenceServer(behaviour="no-auth") as running:
        anonymous = get(http, running, headers={})
        wrong_key = get(http, running, api_key="fk_live_nope")
    assert anonymous.status_code == 200
    assert anonymous.json()["jobs"] == listing[:50]
    assert_error(wrong_key, 401, "INVALID_API_KEY", "authentication_error")


def test_extra_fields_variation_stays_valid(http: httpx.Client, listing: list[Job]) -> None:
    with ReferenceServer(behaviour="extra-fields") as running:
        body = get(http, running).json()
    validator("page.schema.json").validate(body)
    assert set(body) > {"jobs", "limit", "offset"}
    assert set(body["jobs"][0]) > set(listing[0])
    assert ids(body["jobs"]) == ids(listing[:50])


def test_registry_describes_every_behaviour() -> None:
    for name, behaviour in {**FAULTS, **VARIATIONS}.items():
        assert behaviour.name == name and behaviour.description
    assert all(fault.breaks and fault.kind == "fault" for fault in FAULTS.values())
    assert all(not v.breaks and v.kind == "variation" for v in VARIATIONS.values())
    assert type(get_behaviour("no-auth")).name == "no-auth"
    with pytest.raises(KeyError) as raised:
        get_behaviour("offset-of-by-one")
    assert isinstance(raised.value, UnknownBehaviour)
    assert "offset-off-by-one" in str(raised.value)


# The server


def test_server_records_requests(server: ReferenceServer, client: httpx.Client) -> None:
    before = server.request_count
    client.get(endpoint(server), params={"limit": 2, "status": "failed"})
    client.delete(endpoint(server))
    assert server.request_count == before + 2
    assert server.requests_seen[-2:] == [
        ("GET", f"{endpoint(server)}?limit=2&status=failed"),
        ("DELETE", endpoint(server)),
    ]


def test_two_servers_at_once(http: httpx.Client) -> None:
    started = time.perf_counter()
    with ReferenceServer(seed=1) as first, ReferenceServer(seed=2) as second:
        assert first.base_url != second.base_url
        for running in (first, second):
            page = get(http, running, limit=100).json()["jobs"]
            assert ids(page) == ids(running.fixture.expected_jobs()[:100])
        folders = [first.fixture.database_path.parent, second.fixture.database_path.parent]
    assert time.perf_counter() - started < 5
    assert not any(folder.exists() for folder in folders)


def test_latency_is_added(http: httpx.Client) -> None:
    with ReferenceServer(jobs=10, latency_ms=200) as running:
        started = time.perf_counter()
        get(http, running)
        assert time.perf_counter() - started >= 0.2


def test_serve_runs_in_the_foreground_until_ctrl_c() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from conformance.reference.server import serve; serve(port={port}, jobs=20)"
    command = [sys.executable, "-c", code]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            banner = [process.stdout.readline() for _ in range(13)]
            base_url = f"http://127.0.0.1:{port}"
            assert any(base_url in line for line in banner)
            assert any(line.startswith("curl") and "$FREDDY_API_KEY" in line for line in banner)
            main_key = next(line for line in banner if line.startswith("API key (main member)"))
            url = f"{base_url}/v1/music/org_ref_main/generations"
            response = httpx.get(url, headers={"X-API-Key": main_key.split()[-1]})
            assert len(response.json()["jobs"]) == 20
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
