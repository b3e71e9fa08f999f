"""Properties: the whole request space, each answer judged against the model of the listing.

The property sends generated queries (every parameter valid, invalid or left out, sometimes
with unknown parameters) and expects the model's window, a validation error, or for a status
outside the six no job of another status; never a 5xx or a non-JSON body. The stateful walk
pages through the listing as a client does, a new page size at each step. A failing request
is sent once more before it is reported; a failure its replay does not repeat is not checked.

Each property declares its requests by generating its examples without judging them (the same
seed draws the same examples); the run's plan sends them with every other check's requests
(:mod:`conformance.plan`), and the property then runs once and judges their answers. What
shrinking asks for after a failure, and every replay, is sent as it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance import schemas
from conformance.client import Response
from conformance.hypothesis_profiles import HypothesisRun
from conformance.judge import Violation, body_excerpt, describe, expect, expect_validation_error, fail, first_difference
from conformance.model import WALK_PAGE_SIZE, Job, ListingChanged, ListingModel, Walk, job_id
from conformance.plan import Once, Page, needs
from conformance.session import Target
from conformance.strategies import Query, page_sizes, queries, valid_statuses

PROPERTY_REQUIREMENTS = ("ROB-01", "LIM-01", "LIM-02", "LIM-03", "LIM-04", "OFF-01", "OFF-02", "OFF-03",
                         "OFF-04", "OFF-05", "STA-02", "STA-03")


class WindowMismatch(Violation):
    """The jobs differ from the model's window: a changing listing could explain it."""


class Expectations:
    """The model's answers: the walked listing and its subsequence for each status."""

    def __init__(self, listing: Walk) -> None:
        self.listing = listing
        self._by_status = {status: Walk(tuple(listing.with_status(status)), listing.complete, WALK_PAGE_SIZE, 0,
                                        status) for status in schemas.statuses()}

    def walk(self, status: str | None) -> Walk:
        return self.listing if status is None else self._by_status[status]

    def describe(self, status: str | None) -> str:
        """``the whole listing (300 jobs)``, ``the 16 queued jobs of the whole listing (300 jobs)``."""
        if status is None:
            return self.listing.describe()
        return f"the {len(self._by_status[status])} {status} jobs of {self.listing.describe()}"

    def sizes(self) -> dict[str, int]:
        return {status: len(walk) for status, walk in self._by_status.items()}


class Replayer:
    """Judges a request; a failure is sent once more and raised only when the replay fails too.

    A request that already passed is not sent again (different draws can make the same query).
    Before the first window mismatch is replayed the listing is walked again, so a deployment
    whose jobs change during the run is not blamed (the check is then not checked).

    The first answer is the run's one answer to the request (``first``: the model's page, or
    the run's shared answer), which the plan fetched when the property declared it; a replay
    is always sent anew. With ``planning`` the replayer judges nothing: it notes each example's
    first request, which is what the property declares (:meth:`plan`).
    """

    def __init__(self, target: Target, model: ListingModel, *, planning: bool = False) -> None:
        self.target = target
        self.model = model
        self.planned: list[Page | Once] | None = [] if planning else None
        self.unreproduced: list[str] = []
        self.passed: set[str] = set()
        self.listing_changed: ListingChanged | None = None
        self._listing_confirmed = False

    def check(self, key: str, first: Page | Once, replay: Callable[[], Response],
              judge: Callable[[Response], None]) -> None:
        if self.planned is not None:
            self.planned.append(first)
            return
        if self.listing_changed or key in self.passed:
            return
        violation = _violation(lambda: first.fetch(self.target, self.model), judge)
        if violation is None:
            self.passed.add(key)
            return
        if isinstance(violation[0], WindowMismatch) and not self._listing_unchanged():
            return
        again = _violation(replay, judge)
        if again is None:
            self.unreproduced.append(f"{violation[0]}; its replay passed (reproduce: {violation[1].curl})")
            return
        broken, response = again
        raise type(broken)(f"{broken} (failed twice; reproduce: {response.curl})", *broken.requirements,
                           evidence=response.exchange)

    def _listing_unchanged(self) -> bool:
        if not self._listing_confirmed:
            try:
                self.model.confirm_unchanged()
            except ListingChanged as error:
                self.listing_changed = error
                return False
            self._listing_confirmed = True
        return True

    def plan(self, test: Callable[[], None]) -> list[Page | Once]:
        """The first requests of the examples ``test`` generates, judged by no one."""
        assert self.planned is not None
        test()
        return self.planned

    def run(self, test: Callable[[], None]) -> None:
        """Run the Hypothesis test; turn what could not be judged into a not-checked skip."""
        try:
            test()
        except Flaky as error:
            if self.listing_changed:
                raise self.listing_changed from None
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            pytest.skip(f"not reproducible: Hypothesis could not make the failure happen again ({first_line})")
        if self.listing_changed:
            raise self.listing_changed
        if self.unreproduced:
            more = f" (and {len(self.unreproduced) - 1} more)" if len(self.unreproduced) > 1 else ""
            pytest.skip(f"not reproducible: {self.unreproduced[0]}{more}")


def _violation(send: Callable[[], Response], judge: Callable[[Response], None]) -> tuple[Violation, Response] | None:
    response = send()
    try:
        judge(response)
    except Violation as violation:
        return violation, response
    return None


# -- the property ------------------------------------------------------------------------


def every_request(target: Target, listing: Walk, hypothesis_run: HypothesisRun,
                  replayer: Replayer) -> Callable[[], None]:
    """The property as a Hypothesis test, each example handed to ``replayer``."""
    expected = Expectations(listing)

    @seed(hypothesis_run.seed)
    @hypothesis_run.settings()
    @given(query=queries(listing.size, expected.sizes()))
    def every_request_test(query: Query) -> None:
        replayer.check(query.render(), first_answer(query), lambda: target.get(raw_query=query.render()),
                       lambda response: judge_answer(query, response, expected))

    return every_request_test


def declare_every_request(target: Target, model: ListingModel, listing: Walk,
                          hypothesis_run: HypothesisRun) -> list[Page | Once]:
    replayer = Replayer(target, model, planning=True)
    return replayer.plan(every_request(target, listing, hypothesis_run, replayer))


@pytest.mark.requirement(*PROPERTY_REQUIREMENTS)
@needs(declare_every_request)
def test_every_request_gets_the_models_answer(target: Target, model: ListingModel, listing: Walk,
                                              hypothesis_run: HypothesisRun) -> None:
    replayer = Replayer(target, model)
    replayer.run(every_request(target, listing, hypothesis_run, replayer))


def first_answer(query: Query) -> Page | Once:
    """The run's one answer to a query, which other checks may send too: the model's page when
    the query is valid, else the run's shared answer (a refusal, or an answer only ROB-01 judges
    when the query holds unknown parameters)."""
    if query.unknown:
        return Once.of(raw_query=query.render())
    if query.valid:
        return Page.of(**dict(query.params()))
    return Once.of(query.params())


def judge_answer(query: Query, response: Response, expected: Expectations) -> None:
    """Raise a :class:`Violation` naming the broken requirement when the answer is wrong."""
    refused_for = invalid_parts(query)
    outside = () if query.status_valid else ("STA-03",)
    expect(response.status < 500, f"{describe(response)}: a server error; body: {body_excerpt(response)}",
           "ROB-01", *refused_for, *outside)
    expect(response.is_json(), f"{describe(response)}: the body is not JSON: {body_excerpt(response)!r}",
           "ROB-01", *refused_for)
    if refused_for:
        judge_refusal(query, response, refused_for)
    elif outside:
        judge_outside_status(query, response)
    elif not query.unknown:  # unknown parameters SHOULD be ignored (ROB-02); only ROB-01 judges them here
        judge_window(query, response, expected)


def invalid_parts(query: Query) -> tuple[str, ...]:
    return (() if query.limit_valid else ("LIM-03",)) + (() if query.offset_valid else ("OFF-04",))


def judge_refusal(query: Query, response: Response, requirements: tuple[str, ...]) -> None:
    try:
        expect_validation_error(response, requirements[0])
    except Violation as violation:
        why = ", ".join(f"{name}={getattr(query, name)!r}" for name, rid in (("limit", "LIM-03"), ("offset", "OFF-04"))
                        if rid in requirements)
        raise Violation(f"{violation} (invalid: {why})", *requirements) from None


def judge_outside_status(query: Query, response: Response) -> None:
    """STA-03: no job of another status and no 5xx; refusing the value is STA-04's (a SHOULD)."""
    body = response.json()
    jobs = body.get("jobs") if response.status == 200 and isinstance(body, dict) else None
    if not isinstance(jobs, list):
        return
    others = [job.get("status") if isinstance(job, dict) else job for job in jobs
              if not isinstance(job, dict) or job.get("status") != query.status]
    if others:
        fail(f"{describe(response)}: {len(others)} jobs of other statuses for status={query.status!r}, "
             f"e.g. {others[0]!r}", "STA-03")


def judge_window(query: Query, response: Response, expected: Expectations) -> None:
    """A valid query: 200, exactly the model's window, the applied limit and offset echoed."""
    accepting = window_requirements(query)
    expect(response.status == 200, f"{describe(response)}: a valid query was refused; body: "
           f"{body_excerpt(response)}", *accepting)
    body = response.json()
    expect(isinstance(body, dict) and isinstance(body.get("jobs"), list),
           f"{describe(response)}: no 'jobs' array in the body", *accepting)
    walk = expected.walk(query.status)
    offset, limit = query.applied_offset, query.applied_limit
    want = walk.window(offset, limit)
    jobs = body["jobs"] if walk.knows(offset, limit) else body["jobs"][: len(want)]
    expect(len(body["jobs"]) <= limit, f"{describe(response)}: {len(body['jobs'])} jobs, more than the limit "
           f"{limit}", "LIM-02" if query.limit is not None else "LIM-01")
    expect_window(query, response, jobs, want, expected.describe(query.status))
    expect_echo(body, "limit", limit, response, "LIM-04" if query.limit is not None else "LIM-01")
    expect_echo(body, "offset", offset, response, "OFF-05" if query.offset is not None else "OFF-01")


def window_requirements(query: Query) -> tuple[str, ...]:
    """The requirements that oblige a deployment to serve this valid query."""
    given_ones = tuple(rid for value, rid in ((query.status, "STA-02"), (query.limit, "LIM-02"),
                                              (query.offset, "OFF-02")) if value is not None)
    return given_ones or ("LIM-01", "OFF-01")


def expect_window(query: Query, response: Response, jobs: list[Job], want: list[Job], scope: str) -> None:
    got_ids, want_ids = [job_id(job) for job in jobs], [job_id(job) for job in want]
    if got_ids == want_ids:
        return
    if query.status is not None:
        requirement = "STA-02"
    elif not want_ids:
        requirement = "OFF-03"
    elif got_ids[:1] != want_ids[:1] or len(got_ids) == len(want_ids):
        requirement = "OFF-02" if query.offset is not None else "OFF-01"
    else:
        requirement = "LIM-02" if query.limit is not None else "LIM-01"
    window = f"[{query.applied_offset}:{query.applied_offset + query.applied_limit}]"
    raise WindowMismatch(f"{describe(response)}: against the window {window} of {scope}: "
                         f"{first_difference(got_ids, want_ids)}", requirement)


def expect_echo(body: dict[str, Any], name: str, applied: int, response: Response, requirement: str) -> None:
    echoed = body.get(name)
    expect(isinstance(echoed, int) and not isinstance(echoed, bool) and echoed == applied,
           f"{describe(response)}: echoed {name} {echoed!r}, expected {applied}", requirement)


# -- the stateful walk -------------------------------------------------------------------


class ClientWalk(RuleBasedStateMachine):
    """A client paging through the (filtered) listing, choosing a new page size at each step.

    Each page is compared with the model's window where it should start: a gap, a duplicate
    or a job out of place between pages fails ORD-02 (STA-02 with a status filter).
    """

    def __init__(self, target: Target, expected: Expectations, replayer: Replayer) -> None:
        super().__init__()
        self.target, self.expected, self.replayer = target, expected, replayer
        self.status: str | None = None
        self.offset = 0
        self.sizes: list[int] = []
        self.done = False

    def start(self, status: str | None) -> None:
        self.status, self.offset, self.sizes, self.done = status, 0, [], False

    @initialize(status=st.one_of(st.none(), valid_statuses()))
    def choose_filter(self, status: str | None) -> None:
        self.start(status)

    @precondition(lambda self: self.done)
    @rule(status=st.one_of(st.none(), valid_statuses()))
    def start_over(self, status: str | None) -> None:
        self.start(status)

    @precondition(lambda self: not self.done)
    @rule(limit=page_sizes())
    def next_page(self, limit: int) -> None:
        walk = self.expected.walk(self.status)
        if not walk.knows(self.offset, limit):
            self.done = True  # past what the model knows of a listing longer than --max-listing
            return
        params: list[tuple[str, Any]] = [("status", self.status)] if self.status else []
        params += [("limit", limit), ("offset", self.offset)]
        self.sizes.append(limit)
        want = walk.window(self.offset, limit)
        self.replayer.check(repr(params), Page.of(**dict(params)), lambda: self.target.get(params),
                            lambda response: self.judge_page(response, want))
        self.offset += limit
        self.done = len(want) < limit

    def judge_page(self, response: Response, want: list[Job]) -> None:
        requirement = "STA-02" if self.status else "ORD-02"
        what = (f"pages of {', '.join(map(str, self.sizes))} from offset 0"
                f"{f' with status={self.status}' if self.status else ''}, page {len(self.sizes)}")
        expect(response.status == 200, f"{what}: {describe(response)}; body: {body_excerpt(response)}", requirement)
        body = response.json() if response.is_json() else None
        jobs = body.get("jobs") if isinstance(body, dict) else None
        if not isinstance(jobs, list):
            fail(f"{what}: {describe(response)}: no 'jobs' array in the body", requirement)
        got_ids, want_ids = [job_id(job) for job in jobs], [job_id(job) for job in want]
        if got_ids != want_ids:
            raise WindowMismatch(f"{what} ({describe(response)}) does not continue the previous pages over "
                                 f"{self.expected.describe(self.status)}: {first_difference(got_ids, want_ids)}",
                                 requirement)


def client_walks(target: Target, listing: Walk, hypothesis_run: HypothesisRun,
                 replayer: Replayer) -> Callable[[], None]:
    """The stateful walk as a Hypothesis test, each page handed to ``replayer``."""
    expected = Expectations(listing)
    # run_state_machine_as_test takes any callable making a machine (typed for the class alone).
    factory: Any = seed(hypothesis_run.seed)(lambda: ClientWalk(target, expected, replayer))
    return lambda: run_state_machine_as_test(factory, settings=hypothesis_run.walk_settings())


def declare_client_walks(target: Target, model: ListingModel, listing: Walk,
                         hypothesis_run: HypothesisRun) -> list[Page | Once]:
    if len(listing) < 2:
        return []
    replayer = Replayer(target, model, planning=True)
    return replayer.plan(client_walks(target, listing, hypothesis_run, replayer))


@pytest.mark.requirement("ORD-02", "STA-02")
@needs(declare_client_walks)
def test_client_walk_tiles_the_listing(target: Target, model: ListingModel, listing: Walk,
                                       hypothesis_run: HypothesisRun) -> None:
    if len(listing) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    replayer = Replayer(target, model)
    replayer.run(client_walks(target, listing, hypothesis_run, replayer))
