"""Sending few requests and overlapping them changes nothing the suite concludes.

No timing here (benchmarks/run.py prints the figures): request counts, and outcomes that
must not depend on how many requests are in flight.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from conformance.client import Credential, TargetClient
from conformance.model import END_SLACK, LAST_PAGE_SIZE, MAX_SPECULATIVE_PAGES, WALK_PAGE_SIZE, ListingModel
from conformance.reference import ReferenceServer

SUMMARY = re.compile(r"^requests: (\d+) sent, at most (\d+) at a time: (\d+) declared by the checks and fetched "
                     r"before they ran, (\d+) by a check as it ran, (\d+) before \(the preflight\)$", re.MULTILINE)

def model_of(server: ReferenceServer, client: TargetClient, *, max_jobs: int = 2000,
             concurrency: int = 8) -> ListingModel:
    credential = Credential.api_key(server.fixture.api_key, "FREDDY_API_KEY")
    return ListingModel(lambda params: client.get(server.fixture.organization_id, params, credential=credential),
                        max_jobs=max_jobs, concurrency=concurrency)


def outcomes(run) -> dict[str, str]:
    return {check["id"]: check["outcome"] for check in run.results["checks"]}


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", [None, "offset-off-by-one"], ids=["reference", "fault-offset-off-by-one"])
def test_concurrency_changes_neither_outcomes_nor_requests(reference, run_suite, behaviour):
    """The plan is the same whatever the concurrency: one request at a time, or eight, the same
    requests are sent and every requirement and check ends the same, against a correct
    deployment and against a broken one (whose failures are replayed and shrunk)."""
    server = reference(**({"behaviour": behaviour} if behaviour else {}))
    sent = []
    runs = []
    for args in (("--concurrency", "1"), ()):
        before = server.request_count
        runs.append(run_suite(*args, server=server))
        sent.append(Counter(target for _, target in server.requests_seen[before:]))
    one, default = runs
    assert one.verdict == default.verdict == ("conformant" if behaviour is None else "nonconformant"), \
        default.stdout[-3000:]
    assert {rid: r["outcome"] for rid, r in one.results["requirements"].items()} == \
           {rid: r["outcome"] for rid, r in default.results["requirements"].items()}
    assert outcomes(one) == outcomes(default)
    assert sent[0] == sent[1], f"only with --concurrency 1: {sent[0] - sent[1]}; only by default: {sent[1] - sent[0]}"
    assert one.results["requests"] == default.results["requests"] == sum(sent[1].values())


@pytest.mark.slow
def test_every_request_of_the_default_run_is_declared_and_fetched_before_the_checks(reference, run_suite):
    run = run_suite(server=reference())
    summary = SUMMARY.search(run.stdout)
    assert summary, run.stdout[-2000:]
    total, in_flight, planned, by_checks, before = map(int, summary.groups())
    assert total == run.results["requests"] and in_flight == 8
    assert before == 1  # the preflight
    # Every check declared what it asks for: none of them sent a request as it ran.
    assert (planned, by_checks) == (total - 1, 0), summary.group(0)


DEFAULT_RUN_REQUESTS = 150


@pytest.mark.slow
def test_the_default_run_against_the_bundled_reference_sends_at_most_150_requests(run_suite):
    run = run_suite()
    assert run.verdict == "conformant" and run.outcomes("passed") == set(run.results["requirements"]), \
        run.stdout[-2000:]
    by_check = sorted(((check["requests"], check["id"]) for check in run.results["checks"]), reverse=True)
    assert run.results["requests"] <= DEFAULT_RUN_REQUESTS, by_check[:10]
    assert sum(sent for sent, _ in by_check) <= run.results["requests"]


@pytest.mark.slow
def test_a_long_listing_is_checked_whole_for_few_more_requests_than_a_short_one(reference, run_suite):
    """100,000 jobs: the end is found by searching offset, not by walking, so every requirement
    is checked (no 'incomplete' from size alone) for at most 1.2 times the requests of 1,000."""
    counts = {}
    for jobs in (1_000, 100_000):
        run = run_suite(server=reference(jobs=jobs))
        assert run.verdict == "conformant" and run.outcomes("passed") == set(run.results["requirements"]), \
            run.stdout[-2000:]
        counts[jobs] = run.results["requests"]
    assert run.results["listing"] == {"changed_during_run": False, "jobs": 2000, "complete": False,
                                      "size": 100_000, "last_page": [99_900, 100_000]}
    assert counts[100_000] <= 1.2 * counts[1_000], counts
    # The checks that judge the whole listing say they judged a prefix plus the last page.
    messages = {check["id"]: check["message"] or "" for check in run.results["checks"]}
    for check in ("test_dataset.py::test_listing_equals_the_dataset", "test_ordering.py::test_listing_is_newest_first",
                  "test_shape.py::test_every_job_has_the_documented_fields"):
        assert "a prefix of 2000 jobs plus the last page (jobs 99900-99999 of 100000)" in messages[check], check


@pytest.mark.parametrize("jobs", [201, 256, 257, 1_000, 20_000])
def test_the_end_of_a_long_listing_is_found_by_searching_offset(reference, jobs):
    server = reference(jobs=jobs)
    with TargetClient(server.base_url) as client:
        listing = model_of(server, client, max_jobs=200).listing()
    expected = [job["id"] for job in server.fixture.expected_jobs()]
    assert (listing.complete, listing.end_known, listing.size, len(listing)) == (False, True, jobs, 200)
    assert listing.ids == expected[:200]
    assert [job["id"] for job in listing.tail] == expected[listing.tail_start:]
    assert len(listing.tail) >= min(LAST_PAGE_SIZE - END_SLACK, jobs)
    assert [job["id"] for job in listing.window(jobs - 3, 100)] == expected[-3:] and listing.knows(jobs - 3, 100)
    if listing.tail_start > 300:  # the middle is unknown
        assert listing.window(200, 100) == [] and not listing.knows(200, 100)
        assert listing.window(150, 100) == listing.window(150, 50) and not listing.knows(150, 100)
    assert listing.knows(jobs, 50) and listing.window(jobs + 1, 50) == []
    # The walk (two pages and one job past them), then limit=1 probes at doubling offsets, a
    # bisection down to END_SLACK jobs and the last page: logarithmic in the listing's length.
    searched = [target for _, target in server.requests_seen if "limit=1&offset=" in target]
    assert len(searched) <= 2 * math.log2(jobs), searched
    assert listing.describe() == (f"a prefix of 200 jobs plus the last page (jobs {listing.tail_start}-{jobs - 1} "
                                  f"of {jobs})")


def test_a_listing_whose_end_cannot_be_found_stays_a_prefix(reference):
    """A deployment that refuses offsets past the end (a fault) leaves the end unknown, as before."""
    server = reference(jobs=300, behaviour="offset-past-end-404")
    with TargetClient(server.base_url) as client:
        listing = model_of(server, client, max_jobs=100).listing()
    assert (listing.complete, listing.end_known, len(listing), listing.tail) == (False, False, 100, ())


@pytest.mark.parametrize("jobs, complete", [(200, True), (201, False), (199, True)])
def test_a_listing_of_exactly_max_listing_jobs_is_whole(reference, jobs, complete):
    server = reference(jobs=jobs)
    with TargetClient(server.base_url) as client:
        listing = model_of(server, client, max_jobs=200).listing()
    assert (listing.complete, len(listing)) == (complete, min(jobs, 200))
    # At the cap, one request of one job past it tells whether the listing ends there (it goes
    # with the last pages, so a listing ending just before the cap may see it asked too).
    if jobs >= 200:
        assert any(target.endswith("?limit=1&offset=200") for _, target in server.requests_seen)


@pytest.mark.parametrize("jobs", [0, 99, 100, 1_000, 2_345])
def test_walk_in_parallel_is_the_sequential_walk_with_bounded_waste(reference, jobs):
    server = reference(jobs=jobs)
    with TargetClient(server.base_url) as client:
        walks = [model_of(server, client, concurrency=concurrency).listing() for concurrency in (1, 8)]
    assert walks[0].ids == walks[1].ids and walks[0].complete == walks[1].complete
    assert walks[0].requests == walks[1].requests
    pages = min(jobs, 2000) // WALK_PAGE_SIZE + 1
    assert pages <= walks[1].requests <= pages + MAX_SPECULATIVE_PAGES


def test_filtered_walks_stop_at_the_end_of_the_listings_prefix(reference):
    server = reference(jobs=1_000)
    with TargetClient(server.base_url) as client:
        model = model_of(server, client, max_jobs=300)
        listing = model.listing()
        assert not listing.complete
        before = server.request_count
        for status in ("succeeded", "queued"):
            filtered = model.filtered(status)
            expected = listing.with_status(status)
            assert filtered.ids[: len(expected)] == [job["id"] for job in expected]
            assert filtered is model.filtered(status)  # walked once, shared
        pages = sum(-(-len(listing.with_status(s)) // WALK_PAGE_SIZE) for s in ("succeeded", "queued"))
        assert server.request_count - before == pages
