"""The property checks against deliberately broken reference deployments: each bug is found,
shrunk to a minimal request and reported against the requirement it breaks."""

from __future__ import annotations

import dataclasses
import shlex
import sqlite3
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from starlette.datastructures import QueryParams

from conformance import config, hypothesis_profiles, inputs, schemas, strategies
from conformance.reference import Behaviour, ReferenceServer
from conformance.reference.behaviour import Caller, ErrorSpec, Query, internal_error
from conformance.strategies import strict_integer

PROPERTY = "test_properties.py::test_every_request_gets_the_models_answer"
WALK = "test_properties.py::test_client_walk_tiles_the_listing"
PROPERTIES_ONLY = ("--", "-k", "properties")
# The default (ci) profile sends few examples; these tests of what the properties do once they
# meet a bug give them as many as they had before, enough to meet each of these bugs.
MANY_EXAMPLES = ("--examples", "100")
STATUSES = schemas.statuses()


# -- broken deployments the reference's faults do not cover ----------------------------------


class GivenLimitHoldsOneMore(Behaviour):
    """Only a page whose limit was sent holds one job too many; the default page is right."""

    name = "test-given-limit-holds-one-more"

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        limit = super().parse_limit(raw)
        return limit + 1 if raw is not None and isinstance(limit, int) else limit


class OneServerErrorOnUnknownParameter(Behaviour):
    """The first request carrying a parameter the contract does not define gets a 500; the
    same request sent again is answered correctly."""

    name = "test-one-500-on-unknown-parameter"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failed: QueryParams | None = None  # the query that got the 500

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        if set(params) - set(strategies.KNOWN_PARAMETERS):
            with self._lock:
                first, self.failed = self.failed is None, self.failed or params
            if first:
                return internal_error()
        return super().parse_query(params)


class ListingLosesJobs(Behaviour):
    """A live system: each request other than the suite's preflight (limit=1) and walks
    (limit=100) deletes the newest job, until ``deletions`` jobs are gone."""

    name = "test-listing-loses-jobs"

    def __init__(self, deletions: int) -> None:
        self.deletions = deletions
        self.gone = 0
        self._lock = threading.Lock()

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        with self._lock:
            if params.get("limit") not in ("1", "100") and self.gone < self.deletions:
                self.gone += 1
        return super().parse_query(params)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Any:
        everything = super().select_jobs(db, caller, dataclasses.replace(query, status=None, limit=-1, offset=0))
        left = [row for row in everything[self.gone:] if query.status in (None, row["status"])]
        return left[query.offset:query.offset + query.limit]


# -- helpers -----------------------------------------------------------------------------


def check(run: Any, check_id: str) -> dict[str, Any]:
    return next(record for record in run.results["checks"] if record["id"] == check_id)


def minimal_request(record: dict[str, Any]) -> dict[str, str]:
    """The query parameters of the request a failed check reports as its curl command."""
    assert record["curl"] and "$FREDDY_API_KEY" in record["curl"]
    url = shlex.split(record["curl"])[3]
    assert url in record["message"] or record["curl"] in record["message"]
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def run_broken(reference: Callable[..., ReferenceServer], run_suite: Callable[..., Any],
               behaviour: Behaviour | str) -> Any:
    """The properties alone against a broken deployment: one of the reference's faults by name,
    or a behaviour of this module where no fault breaks the rule that way."""
    server = reference(behaviour=behaviour)
    run = run_suite(*MANY_EXAMPLES, *PROPERTIES_ONLY, server=server)
    assert run.exit_code == 1, run.stdout + run.stderr
    return run


# -- the properties find and shrink each bug -----------------------------------------------


@pytest.mark.slow
def test_offset_skipping_a_job_shrinks_to_offset_1(reference, run_suite):
    run = run_broken(reference, run_suite, "offset-off-by-one")
    record = check(run, PROPERTY)
    assert record["outcome"] == "failed"
    assert run.outcome("OFF-02") == "failed"
    assert minimal_request(record) == {"offset": "1"}
    assert run.outcome("ORD-02") == "failed"
    assert minimal_request(check(run, WALK))["offset"] == "1"


@pytest.mark.slow
@pytest.mark.parametrize("behaviour, requirement, request_shape, message", [
    ("limit-off-by-one", "LIM-01", {}, "51 jobs, more than the limit 50"),
    (GivenLimitHoldsOneMore(), "LIM-02", {"limit": "1"}, "2 jobs, more than the limit 1"),
], ids=["every-page", "given-limit-only"])
def test_page_holding_one_job_too_many_shrinks_to_the_smallest_page(reference, run_suite, behaviour, requirement,
                                                                     request_shape, message):
    run = run_broken(reference, run_suite, behaviour)
    record = check(run, PROPERTY)
    assert run.outcome(requirement) == "failed"
    assert minimal_request(record) == request_shape
    assert message in record["message"]


@pytest.mark.slow
def test_filter_after_pagination_shrinks_to_a_bare_status(reference, run_suite):
    run = run_broken(reference, run_suite, "filter-after-pagination")
    record = check(run, PROPERTY)
    assert run.outcome("STA-02") == "failed"
    request = minimal_request(record)
    assert set(request) == {"status"} and request["status"] in STATUSES
    assert minimal_request(check(run, WALK))["status"] in STATUSES


@pytest.mark.slow
def test_500_on_a_non_integer_limit_shrinks_to_one_bad_limit(reference, run_suite):
    run = run_broken(reference, run_suite, "limit-not-integer-500")
    record = check(run, PROPERTY)
    assert run.outcome("ROB-01") == "failed" and run.outcome("LIM-03") == "failed"
    request = minimal_request(record)
    assert set(request) == {"limit"} and strict_integer(request["limit"]) is None
    assert "a server error" in record["message"]


@pytest.mark.slow
def test_wrong_case_status_shrinks_to_a_case_variant(reference, run_suite):
    run = run_broken(reference, run_suite, "status-case-insensitive")
    record = check(run, PROPERTY)
    assert run.outcome("STA-03") == "failed"
    request = minimal_request(record)
    assert set(request) == {"status"}
    assert request["status"] not in STATUSES and request["status"].lower() in STATUSES


@pytest.mark.slow
def test_failure_the_replay_does_not_repeat_is_not_checked(reference, run_suite):
    behaviour = OneServerErrorOnUnknownParameter()
    server = reference(behaviour=behaviour)
    run = run_suite(*PROPERTIES_ONLY, server=server)
    record = check(run, PROPERTY)
    assert record["outcome"] == "not_checked"
    assert record["message"].startswith("not reproducible: ") and "$FREDDY_API_KEY" in record["message"]
    assert run.outcome("ROB-01") == "not_checked"
    sent = [QueryParams(urlsplit(target).query) for _, target in server.requests_seen]
    assert sent.count(behaviour.failed) == 2  # the failing request and its replay, both kept


@pytest.mark.slow
def test_listing_changing_once_is_judged_again_on_a_fresh_walk(reference, run_suite):
    run = run_suite(*PROPERTIES_ONLY, server=reference(behaviour=ListingLosesJobs(deletions=1)))
    record = check(run, PROPERTY)
    assert record["outcome"] == "passed" and "listing changed" in record["message"], record
    assert run.results["listing"]["changed_during_run"] is True
    assert run.outcomes("failed") == set()


@pytest.mark.slow
def test_listing_that_keeps_changing_is_not_blamed(reference, run_suite):
    run = run_suite(*MANY_EXAMPLES, *PROPERTIES_ONLY, server=reference(behaviour=ListingLosesJobs(deletions=1000)))
    for check_id in (PROPERTY, WALK):
        record = check(run, check_id)
        assert record["outcome"] == "not_checked", record
        assert record["message"].startswith("listing changed during the run"), record
    assert run.outcomes("failed") == set()


@pytest.mark.slow
def test_only_the_known_prefix_of_a_long_listing_is_judged(reference, run_suite):
    run = run_suite("--max-listing", "120", *PROPERTIES_ONLY, server=reference())
    assert run.results["listing"]["complete"] is False
    assert [check(run, PROPERTY)["outcome"], check(run, WALK)["outcome"]] == ["passed", "passed"], run.stdout


# -- reproducibility -------------------------------------------------------------------------


@pytest.mark.slow
def test_same_seed_sends_the_same_requests(reference, run_suite):
    server = reference()
    sequences = []
    for seed in ("7", "7", "8"):
        before = server.request_count
        # One request at a time, so the server sees them in the order they are sent (with more
        # in flight their arrival order varies; tests/test_speed.py compares them as a multiset).
        run = run_suite("--hypothesis-profile", "quick", "--seed", seed, "--concurrency", "1", *PROPERTIES_ONLY,
                        server=server)
        assert run.verdict != "nonconformant", run.stdout
        assert run.results["hypothesis"] == {"profile": "quick", "seed": int(seed),
                                             "examples": hypothesis_profiles.PROFILES["quick"]["max_examples"]}
        sequences.append(server.requests_seen[before:])
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


@pytest.mark.slow
def test_ci_profile_records_its_fixed_seed(reference, run_suite):
    run = run_suite("--examples", "5", *PROPERTIES_ONLY, server=reference(jobs=20))
    assert check(run, PROPERTY)["outcome"] == "passed", run.stdout
    assert run.results["hypothesis"] == {"profile": "ci", "seed": hypothesis_profiles.CI_SEED, "examples": 5}
    assert check(run, PROPERTY)["requests"] <= 5  # one request per example while nothing fails


# -- the strategies themselves ---------------------------------------------------------------


def test_profiles_are_the_configurable_ones():
    assert tuple(hypothesis_profiles.PROFILES) == config.HYPOTHESIS_PROFILES
    quick, ci, thorough = (hypothesis_profiles.PROFILES[name]["max_examples"] for name in ("quick", "ci", "thorough"))
    # The default sends few examples; thorough is the way to spend more.
    assert quick < ci <= 20 and thorough >= 50 * ci


@settings(max_examples=200, database=None)
@given(strategies.valid_limits(), strategies.valid_offsets(40), strategies.valid_statuses())
def test_valid_values_make_a_valid_query(limit, offset, status):
    query = strategies.Query(status=status, limit=str(limit), offset=str(offset))
    assert query.valid and (query.applied_limit, query.applied_offset) == (limit, offset)
    assert inputs.LIMIT_MIN <= limit <= inputs.LIMIT_MAX and 0 <= offset


@settings(max_examples=200, database=None)
@given(strategies.invalid_limits(), strategies.invalid_offsets(), strategies.outside_statuses())
def test_invalid_values_make_an_invalid_query(limit, offset, status):
    assert not strategies.Query(limit=limit).valid
    assert not strategies.Query(offset=offset).valid
    assert not strategies.Query(status=status).valid and status not in STATUSES


@settings(max_examples=200, database=None)
@given(strategies.non_integers())
def test_non_integers_are_not_integers_by_any_reading(text):
    assert not strategies.reads_as_integer(text)
    assert strict_integer(text) is None


@settings(max_examples=200, database=None)
@given(strategies.queries(40, {"queued": 5}))
def test_a_query_renders_what_a_server_parses_back(query):
    assert QueryParams(query.render()).multi_items() == query.params()
    assert all(name.lower() not in strategies.KNOWN_PARAMETERS for name, _ in query.unknown)
