"""ORD: newest first, and the same order every time, at every page size."""

from __future__ import annotations

import pytest

from conformance import inputs
from conformance.evidence import remark
from conformance.judge import (
    Culprit,
    created_at_order_problem,
    culprit_at,
    difference_position,
    expect,
    expect_page,
    expect_same_jobs,
    fail,
    first_difference,
    judged_jobs,
)
from conformance.model import job_id, page_jobs, parse_timestamp
from conformance.plan import Again, Page, needs
from conformance.results import NOTHING_TO_JUDGE


def expect_same_order(actual, expected, what, model, evidence: Culprit | None = None):
    """Like ``expect_same_jobs``, but the same jobs in another order fail ORD-02 at once: jobs
    never change their created_at, so no change of a live listing can reorder them."""
    actual_ids, expected_ids = [job_id(job) for job in actual], [job_id(job) for job in expected]
    if actual_ids != expected_ids and sorted(actual_ids) == sorted(expected_ids):
        fail(f"{what}: the same jobs in another order: {first_difference(actual_ids, expected_ids)}", "ORD-02",
             evidence=culprit_at(evidence, difference_position(actual_ids, expected_ids)))
    expect_same_jobs(actual, expected, what, model, "ORD-02", evidence=evidence)


@pytest.mark.requirement("ORD-01")
def test_listing_is_newest_first(listing, model):
    positions, jobs = zip(*listing.known(), strict=True) if len(listing) else ((), ())
    moments = {parse_timestamp(job.get("created_at")) for job in jobs} - {None}
    if len(moments) < 2:
        pytest.skip(f"the listing ({listing.describe()}) needs jobs with two different created_at")
    problem = created_at_order_problem(jobs, positions)
    if problem:
        model.confirm_unchanged()
    expect(problem is None, f"{listing.describe()} is not newest first: {problem}", "ORD-01")
    remark(listing.coverage_note())


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("params", [{}, inputs.INNER_PAGE], ids=["first-page", "inner-page"])
@needs(lambda params: [Page.of(**params), Again.of(params)])
def test_repeated_request_returns_the_same_order(target, model, listing, params):
    if len(listing) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    first = page_jobs(model.page(**params))  # the run's shared answer; the repeat is this check's own
    again = expect_page(target.get(params), "ORD-02")["jobs"]
    expect_same_order(again, first, f"the same request ({params or 'no parameters'}) asked twice", model)


def tie_page(listing, run):
    """The page of the ``run``-th tie run that ORD-02 asks twice: (start, length, query), or None
    when the listing has fewer tie runs."""
    runs = listing.tie_runs()
    if run >= len(runs):
        return None
    start, length = runs[run]
    return start, length, {"offset": start, "limit": min(length, inputs.LIMIT_MAX)}


def skip_without_tie_run(listing, run):
    runs = len(listing.tie_runs())
    pytest.skip(f"no jobs share a created_at in {listing.describe()}" if not runs else
                f"{listing.describe()} has {runs} run(s) of jobs sharing a created_at, not {run + 1}")


TIE_RUNS = range(inputs.MAX_TIE_RUNS)


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("run", TIE_RUNS, ids=lambda run: f"tie-run-{run + 1}")
@needs(lambda listing, run: [spec for _, _, params in filter(None, [tie_page(listing, run)])
                             for spec in (Page.of(**params), Again.of(params))])
def test_repeated_requests_across_ties_return_the_same_order(target, model, listing, run):
    page = tie_page(listing, run)
    if page is None:
        skip_without_tie_run(listing, run)
    start, length, params = page
    first = page_jobs(model.page(**params))
    again = expect_page(target.get(params), "ORD-02")["jobs"]
    expect_same_order(again, first, f"page offset={start} limit={params['limit']} (the {length} jobs that "
                      "share a created_at) asked twice", model)


def tiling_covers(listing, page_size):
    """How many jobs the pages of ``page_size`` cover: their budget, or the walked listing."""
    return min(len(listing), page_size * inputs.TILING_REQUEST_BUDGET) if len(listing) >= 2 else 0


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("page_size", inputs.TILING_PAGE_SIZES)
@needs(lambda listing, page_size: [Page.of(limit=page_size, offset=offset)
                                   for offset in range(0, tiling_covers(listing, page_size), page_size)])
def test_pages_tile_the_listing(model, listing, page_size):
    if len(listing) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    covered = tiling_covers(listing, page_size)
    walk = model.walk(page_size, max_jobs=covered)
    expected = listing.jobs[:covered]
    expect_same_jobs(walk.jobs, expected,
                     f"pages of {page_size} joined together (first {covered} jobs)", model, "ORD-02",
                     evidence=walk.exchange_at)


SPLITS = {"from-inside": lambda start, length: (start + 1, min(length, inputs.LIMIT_MAX)),
          "across-its-start": lambda start, length: (max(start - 1, 0), 2)}


def split_tie_page(listing, run, split):
    """The page that splits the ``run``-th tie run the ``split`` way: (start, length, offset,
    limit), or None when the listing has no such run or does not know the page."""
    runs = listing.tie_runs()
    if run >= len(runs):
        return None
    start, length = runs[run]
    offset, limit = SPLITS[split](start, length)
    return (start, length, offset, limit) if listing.knows(offset, limit) else None


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("run", TIE_RUNS, ids=lambda run: f"tie-run-{run + 1}")
@pytest.mark.parametrize("split", SPLITS)
@needs(lambda listing, run, split: [Page.of(offset=offset, limit=limit)
                                    for _, _, offset, limit in filter(None, [split_tie_page(listing, run, split)])])
def test_pages_split_inside_ties_agree(model, listing, run, split):
    page = split_tie_page(listing, run, split)
    if page is None:
        skip_without_tie_run(listing, run)
    start, length, offset, limit = page
    jobs = judged_jobs(model.page(offset=offset, limit=limit))
    expect_same_order(jobs, listing.window(offset, limit),
                      f"page offset={offset} limit={limit} splitting the {length} jobs that share "
                      f"created_at at position {start}", model)


@pytest.mark.requirement("ORD-02")
@pytest.mark.run_last
def test_walks_of_the_listing_keep_its_order(model):
    """The walks the run took again, to confirm a failure before reporting it, send the very
    requests of the first walk: holding the same jobs, they must hold them in the same order."""
    reordering = model.reordering
    if reordering is None:
        if not model.compared_walks:
            pytest.skip(f"{NOTHING_TO_JUDGE}the listing was walked once (no failure asked for another walk)")
        remark(f"{model.compared_walks} more walk(s) of the listing returned it in the same order")
        return
    before, after = reordering.before, reordering.after
    fail(f"a second walk of {before.describe()}, with the same requests, returned the same jobs in another order: "
         f"{first_difference(after.ids, before.ids)}", "ORD-02", evidence=after.exchange_at(reordering.position))
