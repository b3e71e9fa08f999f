"""OFF: where a page starts, past the end, bad offsets and the echo."""

from __future__ import annotations

import pytest

from conformance import inputs
from conformance.checks.windows import declare_window, expected_count, resolve_offset, window_page
from conformance.judge import describe, expect, expect_page, expect_same_jobs, expect_validation_error
from conformance.plan import Once, Page, needs


@pytest.mark.requirement("OFF-01")
@pytest.mark.parametrize("limit", [None, 7], ids=["no-limit", "limit-7"])
@needs(lambda limit: [Page.of() if limit is None else Page.of(limit=limit)])
def test_no_offset_starts_at_the_newest_job(model, listing, limit):
    if not listing.jobs:
        pytest.skip("the listing is empty")
    response = model.page(**({} if limit is None else {"limit": limit}))
    body = expect_page(response, "OFF-01")
    expect(body.get("offset") == 0, f"{describe(response)}: echoed offset {body.get('offset')!r} without an offset, "
           "expected 0", "OFF-01")
    size = inputs.LIMIT_DEFAULT if limit is None else limit
    expect_same_jobs(body["jobs"], listing.window(0, size), f"{describe(response)} without an offset", model, "OFF-01")


@pytest.mark.requirement("OFF-02")
@pytest.mark.parametrize("limit, position", inputs.WINDOWS, ids=inputs.window_id)
@needs(lambda listing, limit, position: declare_window(listing, position, limit))
def test_offset_selects_the_window(model, listing, limit, position):
    offset = resolve_offset(position, listing)
    expected_count(listing, offset, limit)
    response = window_page(model, offset, limit)
    body = expect_page(response, "OFF-02")
    expect_same_jobs(body["jobs"], listing.window(offset, limit), f"page offset={offset} limit={limit}", model,
                     "OFF-02")


@pytest.mark.requirement("OFF-03")
@pytest.mark.parametrize("limit, position", inputs.PAST_END_WINDOWS, ids=inputs.window_id)
@needs(lambda listing, limit, position: declare_window(listing, position, limit))
def test_offset_at_or_past_the_end_is_empty(model, listing, position, limit):
    offset = resolve_offset(position, listing)
    response = window_page(model, offset, limit)
    body = expect_page(response, "OFF-03")
    if body["jobs"]:
        model.confirm_unchanged()  # the end moves when jobs are added during the run
    expect(body["jobs"] == [], f"{describe(response)}: {len(body['jobs'])} jobs at or past the end of "
           f"{listing.describe()}", "OFF-03")


@pytest.mark.requirement("OFF-03")
@needs(lambda: [Page.of(offset=inputs.FAR_OFFSET, limit=1)])
def test_far_offset_is_empty(model):
    response = window_page(model, inputs.FAR_OFFSET, 1)
    body = expect_page(response, "OFF-03")
    expect(body["jobs"] == [], f"{describe(response)}: {len(body['jobs'])} jobs far past any end", "OFF-03")


@pytest.mark.requirement("OFF-04")
@pytest.mark.parametrize("value", inputs.INVALID_OFFSETS, ids=lambda v: f"offset={v!r}")
@needs(lambda value: [Once.of({"offset": value})])
def test_bad_offset_is_a_validation_error(target, value):
    expect_validation_error(target.once({"offset": value}), "OFF-04")


@pytest.mark.requirement("OFF-05")
@pytest.mark.parametrize("limit, position", inputs.ECHO_WINDOWS, ids=inputs.window_id)
@needs(lambda listing, limit, position: declare_window(listing, position, limit))
def test_offset_is_echoed(model, listing, limit, position):
    offset = resolve_offset(position, listing)
    response = window_page(model, offset, limit)
    body = expect_page(response, "OFF-05")
    expect(body.get("offset") == offset, f"{describe(response)}: echoed offset {body.get('offset')!r}, "
           f"expected {offset}", "OFF-05")
