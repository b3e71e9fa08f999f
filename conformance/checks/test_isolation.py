"""ISO: a caller sees only their own jobs."""

from __future__ import annotations

import pytest

from conformance import schemas
from conformance.judge import expect
from conformance.model import short_id
from conformance.plan import Filtered, MemberListing, needs

SECOND_MEMBER = MemberListing("second_user_api_key")


@pytest.mark.requirement("ISO-01")
@needs(lambda: [SECOND_MEMBER])
def test_members_see_disjoint_jobs(target, listing):
    second = target.member_model(target.credential("second_user_api_key")).listing()
    if not second.jobs or not listing.jobs:
        pytest.skip("both members need jobs for disjointness to mean anything "
                    f"(main: {len(listing)}, second member: {len(second)})")
    shared = sorted(set(listing.ids) & set(second.ids))
    expect(not shared, f"{len(shared)} job ids appear in both members' listings, e.g. "
           f"{', '.join(short_id(i) for i in shared[:3])}", "ISO-01")


@pytest.mark.requirement("ISO-01")
@pytest.mark.parametrize("status", schemas.statuses())
@needs(lambda status: [SECOND_MEMBER, Filtered(status)])
def test_members_filtered_listings_are_disjoint(target, model, status):
    # A status filter must not widen the listing to other members' jobs: the main caller's
    # filtered listing holds none of the second member's jobs.
    second = target.member_model(target.credential("second_user_api_key")).listing()
    mine = set(model.filtered(status).ids)
    if not mine or not second.jobs:
        pytest.skip("both members need jobs for disjointness to mean anything "
                    f"(main, status={status}: {len(mine)}, second member: {len(second)})")
    shared = sorted(mine & set(second.ids))
    expect(not shared, f"{len(shared)} of the second member's job ids appear in the main caller's listing filtered "
           f"by status={status}, e.g. {', '.join(short_id(i) for i in shared[:3])}", "ISO-01")
