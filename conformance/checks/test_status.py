"""STA: the status filter, its pagination, and values outside the six."""

from __future__ import annotations

import pytest

from conformance import inputs, schemas
from conformance.judge import describe, expect, expect_page, expect_same_jobs, expect_validation_error, judged_jobs
from conformance.model import MAX_FILTERED_PREFIX, short_id
from conformance.plan import Filtered, Once, Page, needs

STATUSES = schemas.statuses()


@pytest.mark.requirement("STA-01")
@pytest.mark.parametrize("status", STATUSES)
@needs(lambda status: [Page.of(status=status, limit=100, offset=0)])
def test_each_status_is_accepted(model, status):
    expect_page(model.page(status=status, limit=100, offset=0), "STA-01")


@pytest.mark.requirement("STA-02")
@pytest.mark.parametrize("status", STATUSES)
@needs(lambda listing, status: [Filtered(status), *(Page.of(status=status, offset=offset, limit=limit)
                                                    for offset, limit in pagination_windows(listing, status))])
def test_filtered_listing_is_the_subsequence(model, listing, status):
    filtered = model.filtered(status)
    expected = listing.with_status(status)
    strays = [(position, f"{short_id(job.get('id', '?'))} is {job.get('status')!r}")
              for position, job in enumerate(filtered.jobs) if job.get("status") != status]
    expect(not strays, f"status={status} returned other statuses: {'; '.join(text for _, text in strays[:5])}",
           "STA-02", evidence=filtered.exchange_at(strays[0][0]) if strays else None)
    # Past a walked prefix of the listing, the filtered listing is walked as far as the prefix
    # goes (at most MAX_FILTERED_PREFIX jobs).
    covered = len(expected) if listing.complete else min(len(expected), MAX_FILTERED_PREFIX)
    actual = filtered.jobs if listing.complete else filtered.jobs[:covered]
    expect_same_jobs(actual, expected[:covered], f"status={status} walked against the {status} jobs of "
                     f"{listing.describe()}{'' if covered == len(expected) else f' (its first {covered})'}",
                     model, "STA-02", evidence=filtered.exchange_at)
    if len(expected) < 3:
        pytest.skip(f"only {len(expected)} {status} jobs in {listing.describe()}: pagination within the "
                    "filter not checked")
    for offset, limit in pagination_windows(listing, status):
        page = judged_jobs(model.page(status=status, offset=offset, limit=limit))
        expect_same_jobs(page, expected[offset:offset + limit],
                         f"page status={status} offset={offset} limit={limit} (pagination after filtering)",
                         model, "STA-02")


def pagination_windows(listing, status):
    """The pages of the filtered listing STA-02 compares with the listing's subsequence: one per
    status, near the start for every other status and at the end for the rest. Past a walked
    prefix the filtered listing is unknown: there the last window ends inside it."""
    expected = len(listing.with_status(status))
    if expected < 3:
        return []
    last = expected - 2 if listing.complete else max(expected - 7, 0)
    return [(1, 2)] if STATUSES.index(status) % 2 == 0 else [(last, 7)]


@pytest.mark.requirement("STA-03")
@pytest.mark.parametrize("value", inputs.OUTSIDE_STATUSES, ids=lambda v: f"status={v!r}")
@needs(lambda value: [Once.of({"status": value})])
def test_outside_status_never_yields_other_jobs(target, value):
    response = target.once({"status": value})
    expect(response.status < 500, f"{describe(response)}: a server error for an unknown status", "STA-03")
    if response.status != 200:
        return
    body = expect_page(response, "STA-03")
    others = [job.get("status") if isinstance(job, dict) else job for job in body["jobs"]
              if not isinstance(job, dict) or job.get("status") != value]
    expect(not others, f"{describe(response)}: {len(others)} jobs of other statuses, e.g. {others[:1]!r}",
           "STA-03")


@pytest.mark.requirement("STA-04")
@pytest.mark.parametrize("value", inputs.OUTSIDE_STATUSES, ids=lambda v: f"status={v!r}")
@needs(lambda value: [Once.of({"status": value})])
def test_outside_status_is_a_validation_error(target, value):
    response = target.once({"status": value})
    expect_validation_error(response, "STA-04")
