"""Sending few requests and overlapping them changes nothing the suite concludes.

No timing here (benchmarks/run.py prints the figures): request counts, and outcomes that
must not depend on how many requests are in flight.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conformance.client import Credential, TargetClient
from conformance.model import MAX_SPECULATIVE_PAGES, WALK_PAGE_SIZE, ListingModel
from conformance.reference import ReferenceServer

SUMMARY = re.compile(r"^requests: (\d+) sent, at most (\d+) at a time: (\d+) ahead of the check that judged them, "
                     r"(\d+) by a check on its own as it ran$", re.MULTILINE)


def model_of(server: ReferenceServer, client: TargetClient, *, max_jobs: int = 2000,
             concurrency: int = 8) -> ListingModel:
    credential = Credential.api_key(server.fixture.api_key, "FREDDY_API_KEY")
    return ListingModel(lambda params: client.get(server.fixture.organization_id, params, credential=credential),
                        max_jobs=max_jobs, concurrency=concurrency)


def outcomes(run) -> dict[str, str]:
    return {check["id"]: check["outcome"] for check in run.results["checks"]}


@pytest.mark.slow
def test_concurrency_changes_neither_outcomes_nor_requests(reference, run_suite):
    server = reference()
    sent = []
    runs = []
    for args in (("--concurrency", "1"), ()):
        before = server.request_count
        runs.append(run_suite(*args, server=server))
        sent.append(Counter(target for _, target in server.requests_seen[before:]))
    one, default = runs
    assert one.verdict == default.verdict == "conformant", default.stdout[-3000:]
    assert {rid: r["outcome"] for rid, r in one.results["requirements"].items()} == \
           {rid: r["outcome"] for rid, r in default.results["requirements"].items()}
    assert outcomes(one) == outcomes(default)
    assert sent[0] == sent[1], f"only with --concurrency 1: {sent[0] - sent[1]}; only by default: {sent[1] - sent[0]}"
    assert one.results["requests"] == default.results["requests"] == sum(sent[1].values())


@pytest.mark.slow
def test_default_run_sends_its_requests_ahead(reference, run_suite):
    run = run_suite(server=reference())
    summary = SUMMARY.search(run.stdout)
    assert summary, run.stdout[-2000:]
    total, in_flight, ahead, on_its_own = map(int, summary.groups())
    assert total == run.results["requests"] and in_flight == 8
    assert ahead > total // 2
    # A check whose own run found its answers missing sent them itself: no (or very few) such misses.
    assert on_its_own <= 3, summary.group(0)


@pytest.mark.slow
def test_a_long_listing_costs_few_more_requests_than_a_short_one(reference, run_suite):
    counts = {}
    for jobs in (1_000, 100_000):
        run = run_suite(server=reference(jobs=jobs))
        assert run.verdict in ("conformant", "incomplete") and not run.outcomes("failed"), run.stdout[-2000:]
        counts[jobs] = run.results["requests"]
    assert run.results["listing"] == {"changed_during_run": False, "jobs": 2000, "complete": False}
    assert counts[100_000] <= 1.2 * counts[1_000], counts


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
