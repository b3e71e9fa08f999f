"""ENV: every error speaks the provider's envelope."""

from __future__ import annotations

import pytest

from conformance.checks.probes import ERROR_PROBES, error_request, error_response
from conformance.judge import describe, error_of, expect, is_json_content_type, schema_errors
from conformance.model import parse_timestamp
from conformance.plan import Again, needs


def judged_error(target, name):
    response = error_response(target, name)
    if response.status < 400:
        pytest.skip(f"{describe(response)}: not an error, so there is no envelope to judge "
                    "(the requirement that forbids the 2xx judges it)")
    return response


@pytest.mark.requirement("ENV-01")
@pytest.mark.parametrize("probe", sorted(ERROR_PROBES))
@needs(lambda target, probe: [error_request(target, probe)])
def test_error_body_is_the_envelope(target, probe):
    response = judged_error(target, probe)
    try:
        body = response.json()
    except ValueError as error:
        raise AssertionError(f"{describe(response)}: {error}") from None
    problems = schema_errors(body, "error.schema.json")
    expect(not problems, f"{describe(response)}: not the error envelope: {'; '.join(problems[:5])}", "ENV-01")
    envelope = error_of(response)
    expect(envelope["status"] == response.status,
           f"{describe(response)}: error.status is {envelope['status']}, the HTTP status is {response.status}",
           "ENV-01")
    expect(parse_timestamp(envelope["timestamp"]) is not None,
           f"{describe(response)}: error.timestamp {envelope['timestamp']!r} is not an ISO 8601 date-time", "ENV-01")


@pytest.mark.requirement("ENV-02")
@pytest.mark.parametrize("probe", sorted(ERROR_PROBES))
@needs(lambda target, probe: [error_request(target, probe)])
def test_error_content_type_is_json(target, probe):
    response = judged_error(target, probe)
    expect(is_json_content_type(response),
           f"{describe(response)}: Content-Type is {response.content_type!r}, expected application/json", "ENV-02")


@pytest.mark.requirement("ENV-03")
@needs(lambda target: [error_request(target, "no-credentials"), Again.of({"limit": 1}, credential=None)])
def test_each_error_has_its_own_trace_id(target):
    first = judged_error(target, "no-credentials")
    second = target.get({"limit": 1}, credential=None)
    ids = [error_of(response).get("trace_id") for response in (first, second)]
    if not all(isinstance(trace_id, str) and trace_id for trace_id in ids):
        pytest.skip("the errors carry no trace_id to compare (ENV-01 judges its absence)")
    expect(ids[0] != ids[1], f"two errors share trace_id {ids[0]!r}", "ENV-03")
