"""ROB: odd requests are answered, in JSON, without a server error."""

from __future__ import annotations

import pytest

from conformance import evidence, inputs
from conformance.judge import body_excerpt, describe, expect, expect_page, expect_same_jobs, fail
from conformance.model import page_jobs
from conformance.plan import Again, Once, Page, needs

# Most telling first (a request budget sends the first ones first): what overflows an integer
# column, what a parser given a list instead of a value crashes on, then the oddities.
ODD_QUERIES = {
    "huge-offset": "offset=99999999999999999999999",
    "repeated-limit": "limit=1&limit=2",
    "huge-limit": "limit=99999999999999999999999",
    "negative-zero": "limit=-0&offset=-0",
    "plus-sign": "limit=%2B5",
    "exponent": "limit=1e2",
    "hex": "offset=0x10",
    "array-syntax": "limit[]=5&status[]=queued",
    "null-byte": "status=queued%00&limit=5%00",
    "long-value": "status=" + "a" * 4000,
    "unicode": "status=%F0%9F%8E%B5&limit=%D9%A3",
    "bad-percent-encoding": "status=%zz&limit=%",
    "all-invalid": "status=NOPE&limit=0&offset=-5",
    "empty-names": "=&&=1",
    "unknown-with-valid": "limit=3&offset=1&status=succeeded&include=track&expand=all",
}


@pytest.mark.requirement("ROB-01")
@pytest.mark.parametrize("name", ODD_QUERIES)
@needs(lambda name: [Once.of(raw_query=ODD_QUERIES[name])])
def test_odd_query_gets_a_json_answer(target, name):
    response = target.once(raw_query=ODD_QUERIES[name])
    expect(response.status < 500, f"{describe(response)}: server error; body: {body_excerpt(response)}", "ROB-01")
    expect(response.is_json(), f"{describe(response)}: body is not JSON: {body_excerpt(response)!r}", "ROB-01")


@pytest.mark.requirement("ROB-02")
@pytest.mark.parametrize("name, value", inputs.UNKNOWN_PARAMETERS, ids=[n for n, _ in inputs.UNKNOWN_PARAMETERS])
@needs(lambda name, value: [Page.of(**inputs.INNER_PAGE), Again.of({**inputs.INNER_PAGE, name: value})])
def test_unknown_parameter_is_ignored(target, model, name, value):
    response = target.get({**inputs.INNER_PAGE, name: value})
    body = expect_page(response, "ROB-02")
    expect_same_jobs(body["jobs"], page_jobs(model.page(**inputs.INNER_PAGE)),
                     f"{describe(response)} against the same page without {name}", model, "ROB-02")


@pytest.mark.requirement("ROB-01")
@pytest.mark.run_last
def test_no_request_of_the_run_got_a_server_error_or_non_json(run_context):
    """Every request the run sent, with whatever credential and from whichever check (seen by
    :class:`conformance.bad_answers.BadAnswers`); runs after every other check."""
    kept, count, judged = run_context.bad_answers.snapshot()
    if not kept:
        return
    first, *others = kept
    for bad in kept:
        evidence.note(bad.exchange)
    also = f"; also {'; '.join(bad.describe() for bad in others)}" if others else ""
    more = f" and {count - len(kept)} more" if count > len(kept) else ""
    fail(f"{count} of the run's {judged} judged requests got a 5xx or a body that is not JSON. "
         f"First: {first.describe()}; body: {first.body_excerpt()!r}{also}{more}", "ROB-01",
         evidence=first.exchange)  # its curl reproduces the first
