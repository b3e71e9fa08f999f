"""LIM: the page size, its default, its bounds and its echo."""

from __future__ import annotations

import pytest

from conformance import inputs
from conformance.checks.windows import declare_window, expected_count, resolve_offset, window_page
from conformance.judge import describe, expect, expect_page, expect_validation_error
from conformance.plan import Once, Page, needs


@pytest.mark.requirement("LIM-01")
@pytest.mark.parametrize("position", [inputs.WINDOW_POSITIONS[0], inputs.WINDOW_POSITIONS[3]], ids=lambda p: p.name)
@needs(lambda listing, position: declare_window(listing, position, None))
def test_default_limit_is_50(model, listing, position):
    offset = resolve_offset(position, listing)
    response = window_page(model, offset, None)
    body = expect_page(response, "LIM-01")
    count = expected_count(listing, offset, inputs.LIMIT_DEFAULT)
    if len(body["jobs"]) != count:
        model.confirm_unchanged()
    expect(len(body["jobs"]) == count,
           f"{describe(response)}: {len(body['jobs'])} jobs without a limit, expected min(50, remaining) = {count}",
           "LIM-01")
    expect(body.get("limit") == inputs.LIMIT_DEFAULT,
           f"{describe(response)}: echoed limit {body.get('limit')!r} without a limit, expected 50", "LIM-01")


@pytest.mark.requirement("LIM-02")
@pytest.mark.parametrize("limit, position", inputs.WINDOWS, ids=inputs.window_id)
@needs(lambda listing, limit, position: declare_window(listing, position, limit))
def test_page_holds_min_of_limit_and_remaining(model, listing, limit, position):
    offset = resolve_offset(position, listing)
    count = expected_count(listing, offset, limit)
    response = window_page(model, offset, limit)
    jobs = expect_page(response, "LIM-02")["jobs"]
    if len(jobs) != count:
        model.confirm_unchanged()
    expect(len(jobs) == count, f"{describe(response)}: {len(jobs)} jobs, expected min(limit, remaining) = {count}",
           "LIM-02")


@pytest.mark.requirement("LIM-02")
@pytest.mark.parametrize("limit", inputs.PAGE_SIZES)
@needs(lambda limit: [Page.of(offset=0, limit=limit)])
def test_every_limit_in_range_is_accepted(model, limit):
    # Needs no walked listing, so a deployment refusing a valid limit (even the walk's 100) is caught.
    response = window_page(model, 0, limit)
    jobs = expect_page(response, "LIM-02")["jobs"]
    expect(len(jobs) <= limit, f"{describe(response)}: {len(jobs)} jobs, more than limit={limit}", "LIM-02")


@pytest.mark.requirement("LIM-03")
@pytest.mark.parametrize("value", inputs.INVALID_LIMITS, ids=lambda v: f"limit={v!r}")
@needs(lambda value: [Once.of({"limit": value})])
def test_out_of_range_limit_is_a_validation_error(target, value):
    expect_validation_error(target.once({"limit": value}), "LIM-03")


@pytest.mark.requirement("LIM-04")
@pytest.mark.parametrize("limit", inputs.PAGE_SIZES)
@needs(lambda limit: [Page.of(offset=0, limit=limit)])
def test_limit_is_echoed(model, limit):
    response = window_page(model, 0, limit)
    body = expect_page(response, "LIM-04")
    expect(body.get("limit") == limit, f"{describe(response)}: echoed limit {body.get('limit')!r}, expected {limit}",
           "LIM-04")
