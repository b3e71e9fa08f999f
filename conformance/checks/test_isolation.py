"""ISO: a caller sees only their own jobs."""

from __future__ import annotations

import pytest

from conformance import schemas
from conformance.judge import expect
from conformance.model import short_id


@pytest.mark.requirement("ISO-01")
def test_members_see_disjoint_jobs(target, listing):
    second = target.member_model(target.credential("second_user_api_key")).listing()
    if not second.jobs or not listing.jobs:
        pytest.skip("both members need jobs for disjointness to mean anything "
                    f"(main: {len(listing)}, second member: {len(second)})")
    shared = sorted(set(listing.ids) & set(second.ids))
    expect(not shared, f"{len(shared)} job ids appear in both members' listings, e.g. "
           f"{', '.join(short_id(i) for i in shared[:3])}", "ISO-01")


@pytest.mark.requirement("ISO-01")
def test_members_filtered_listings_are_disjoint(target, model):
    # A status filter must not widen the listing to other members' jobs.
    second = target.member_model(target.credential("second_user_api_key"))
    mine = {i for status in schemas.statuses() for i in model.filtered(status).ids}
    theirs = {i for status in schemas.statuses() for i in second.filtered(status).ids}
    if not mine or not theirs:
        pytest.skip("both members need jobs of some status for disjointness to mean anything "
                    f"(main: {len(mine)}, second member: {len(theirs)})")
    shared = sorted(mine & theirs)
    expect(not shared, f"{len(shared)} job ids appear in both members' filtered listings, e.g. "
           f"{', '.join(short_id(i) for i in shared[:3])}", "ISO-01")
