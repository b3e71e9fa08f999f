"""ISO: a caller sees only their own jobs."""

from __future__ import annotations

import pytest

from conformance.judge import expect
from conformance.model import ListingModel, short_id


@pytest.mark.requirement("ISO-01")
def test_members_see_disjoint_jobs(target, listing):
    credential = target.credential("second_user_api_key")
    second = ListingModel(lambda params: target.get(params, credential=credential),
                          max_jobs=target.settings.max_listing).listing()
    if not second.jobs or not listing.jobs:
        pytest.skip("both members need jobs for disjointness to mean anything "
                    f"(main: {len(listing)}, second member: {len(second)})")
    shared = sorted(set(listing.ids) & set(second.ids))
    expect(not shared, f"{len(shared)} job ids appear in both members' listings, e.g. "
           f"{', '.join(short_id(i) for i in shared[:3])}", "ISO-01")
