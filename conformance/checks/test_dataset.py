"""DAT: the listing equals the expected dataset, when one is given."""

from __future__ import annotations

import pytest

from conformance.config import load_dataset
from conformance.judge import expect, expect_same_jobs
from conformance.model import short_id


@pytest.mark.requirement("DAT-01")
def test_listing_equals_the_dataset(target, model, listing):
    expected = load_dataset(target.setting("dataset"))["jobs"]
    covered = expected if listing.complete else expected[: len(listing)]
    expect_same_jobs(listing.jobs, covered, f"the listing against the dataset ({len(expected)} jobs)", model,
                     "DAT-01")
    differences = [
        f"{short_id(want['id'])}.{field}: {got.get(field)!r} != {value!r}"
        for got, want in zip(listing.jobs, covered) for field, value in want.items() if got.get(field) != value
    ]
    expect(not differences, f"{len(differences)} field values differ from the dataset: {'; '.join(differences[:5])}",
           "DAT-01")
    if not listing.complete:
        pytest.skip(f"only {listing.describe()} compared: the listing is longer than --max-listing")
