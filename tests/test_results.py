"""How check outcomes add up to a requirement's: checks the budget did not reach, and checks that
had nothing to judge in the run, count only when no other check of the requirement judged it."""

from __future__ import annotations

from conformance import catalogue
from conformance.results import NOTHING_TO_JUDGE, CheckRecord, RunResult, aggregate

ORD_02 = catalogue.get("ORD-02")
CUT = "request budget (60)"
NOTHING = f"{NOTHING_TO_JUDGE}the listing was walked once"


def check(name: str, outcome: str = "passed", message: str | None = None, requests: int = 0) -> CheckRecord:
    return CheckRecord(name, ("ORD-02",), outcome=outcome, message=message, requests_sent=requests)  # type: ignore[arg-type]


def test_a_requirement_judged_by_some_checks_is_checked_and_says_what_was_left_out():
    result = aggregate(ORD_02, [check("a", requests=2), check("b", "not_checked", CUT),
                                check("c", "not_checked", NOTHING)])
    assert result.outcome == "passed"
    assert result.reason == f"checked by 1 of its 3 checks; the rest: not reached within the {CUT}; {NOTHING}"
    assert (result.requests, result.cut_by_budget) == (2, 1)


def test_a_requirement_no_check_judged_is_not_checked():
    result = aggregate(ORD_02, [check("b", "not_checked", CUT), check("c", "not_checked", NOTHING)])
    assert result.outcome == "not_checked" and result.reason in (CUT, NOTHING)


def test_any_other_skip_still_makes_the_requirement_not_checked():
    result = aggregate(ORD_02, [check("a"), check("b", "not_checked", "no jobs share a created_at")])
    assert result.outcome == "not_checked" and result.reason == "no jobs share a created_at"


def test_a_failure_wins_over_what_was_left_out():
    result = aggregate(ORD_02, [check("a", "failed", "same jobs in another order"), check("b", "not_checked", CUT)])
    assert result.outcome == "failed"


def test_the_budget_line_counts_checks_not_requirements():
    run = RunResult(base_url="http://x", organization_id="org", reference=False,
                    configuration={"max_requests": 60}, requests=58,
                    checks=[check("a", requests=50), check("b", "not_checked", CUT),
                            CheckRecord("p", ("ORD-02", "LIM-02", "OFF-02"), outcome="not_checked", message=CUT)])
    assert run.budget_line() == ("request budget: 58 of 60 requests sent, 8 of them for the preflight and the "
                                 "walks of the listing; 2 checks not reached")
    assert RunResult(base_url="", organization_id="", reference=False, configuration={}).budget_line() is None
