"""DAT: the listing equals the expected dataset, when one is given."""

from __future__ import annotations

import pytest

from conformance.checks.windows import unknown_end
from conformance.config import load_dataset
from conformance.evidence import remark
from conformance.judge import expect, expect_same_jobs
from conformance.model import job_id, parse_timestamp, short_id

TIMESTAMP_FIELDS = ("created_at",)


@pytest.mark.requirement("DAT-01")
def test_listing_equals_the_dataset(target, model, listing):
    expected = load_dataset(target.setting("dataset"))["jobs"]
    if listing.partial:
        expect(listing.size == len(expected), f"the listing ends after {listing.size} jobs (found past "
               f"--max-listing), the dataset has {len(expected)}", "DAT-01", evidence=listing.tail_page)
    covered = expected if listing.complete else expected[: len(listing)]
    end = len(covered) if listing.complete else _last_tie_start(covered)
    actual, covered = _ties_by_id(listing.jobs[:end]), _ties_by_id(covered[:end])
    expect_same_jobs(actual, covered, f"the listing against the dataset ({len(expected)} jobs)", model,
                     "DAT-01", evidence=listing.exchange_at)
    pairs = list(zip(range(end), actual, covered, strict=False))
    if listing.partial:
        # The last page, less its first jobs when they share a created_at with jobs before it
        # (their order among those is the deployment's to choose, and those are not all known).
        tail = [job for position, job in listing.known() if position >= len(listing)]
        skip = _first_tie_end(tail)
        start = listing.size - len(tail) + skip
        tail_actual, tail_expected = _ties_by_id(tail[skip:]), _ties_by_id(expected[start:listing.size])
        expect_same_jobs(tail_actual, tail_expected, f"the last page (jobs {start}-{listing.size - 1}) against "
                         f"the dataset ({len(expected)} jobs)", model, "DAT-01", evidence=listing.tail_page)
        pairs += list(zip(range(start, listing.size), tail_actual, tail_expected, strict=False))
    differences = [
        (position, f"{short_id(want['id'])}.{field}: {got.get(field)!r} != {value!r}")
        for position, got, want in pairs for field, value in want.items()
        if not _same_value(field, got.get(field), value)
    ]
    if differences:
        model.confirm_unchanged()  # active jobs move on during a run
    expect(not differences, f"{len(differences)} field values differ from the dataset: "
           f"{'; '.join(text for _, text in differences[:5])}", "DAT-01",
           evidence=listing.exchange_at(differences[0][0]) if differences else None)
    remark(listing.coverage_note())
    if not listing.end_known:
        pytest.skip(f"only the first {len(listing)} jobs compared: the end of the listing is unknown: "
                    f"{unknown_end(listing)}")


# The contract orders the listing by created_at only and allows any UTC notation of it, so the
# comparison ignores the order among jobs sharing a created_at (ORD-02 judges that order) and
# compares timestamps as instants.


def _created_at(job):
    return parse_timestamp(job.get("created_at")) if isinstance(job, dict) else None


def _ties_by_id(jobs):
    """``jobs`` with every run of equal created_at sorted by id; other positions unchanged."""
    runs, previous = [], object()
    for job in jobs:
        moment = _created_at(job)
        if moment is None or moment != previous:
            runs.append([])
        runs[-1].append(job)
        previous = moment
    return [job for run in runs for job in sorted(run, key=lambda j: str(job_id(j)))]


def _last_tie_start(jobs):
    """Where the last run of equal created_at begins: the jobs past a prefix may continue it."""
    last = _created_at(jobs[-1]) if jobs else None
    end = len(jobs)
    while last is not None and end > 0 and _created_at(jobs[end - 1]) == last:
        end -= 1
    return end


def _first_tie_end(jobs):
    """Where the first run of equal created_at ends: the jobs before a page may continue it."""
    first = _created_at(jobs[0]) if jobs else None
    end = 0
    while first is not None and end < len(jobs) and _created_at(jobs[end]) == first:
        end += 1
    return end


def _same_value(field, got, want):
    if field in TIMESTAMP_FIELDS and parse_timestamp(want) is not None:
        return parse_timestamp(got) == parse_timestamp(want)
    return got == want
