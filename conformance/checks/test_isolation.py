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
@needs(lambda: [SECOND_MEMBER, *(Filtered(status) for status in schemas.statuses())])
def test_members_filtered_listings_are_disjoint(target, model):
    # A status filter must not widen the listing to other members' jobs: the main caller's
    # filtered listings hold none of the second member's jobs.
    second = target.member_model(target.credential("second_user_api_key")).listing()
    mine = {i for status in schemas.statuses() for i in model.filtered(status).ids}
    if not mine or not second.jobs:
        pytest.skip("both members need jobs for disjointness to mean anything "
                    f"(main, filtered: {len(mine)}, second member: {len(second)})")
    shared = sorted(mine & set(second.ids))
    expect(not shared, f"{len(shared)} of the second member's job ids appear in the main caller's filtered "
           f"listings, e.g. {', '.join(short_id(i) for i in shared[:3])}", "ISO-01")
