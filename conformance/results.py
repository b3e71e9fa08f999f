"""The result model of a run: per check, per requirement, the verdict.

Every artifact (results.json, junit.xml, report.html, the console summary) is written from
this one model, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from conformance import __version__, catalogue, config
from conformance.client import Exchange

Outcome = Literal["passed", "failed", "not_checked", "error"]
Verdict = Literal["conformant", "nonconformant", "incomplete", "error", "interrupted"]

OUTCOME_RANK: dict[str, int] = {"failed": 3, "error": 2, "not_checked": 1, "passed": 0}
# An interrupted run exits as a shell reports SIGINT (128 + 2); no verdict of a run that did
# not complete may read as 0 or 1.
EXIT_CODES: dict[str, int] = {"conformant": 0, "incomplete": 0, "nonconformant": 1, "error": 3, "interrupted": 130}


# Bearer tokens are optional: a deployment without bearer support is judged without them. With
# no bearer token AUTH-07 (MAY) is not claimed, and the MUSTs the contract checks "only when a
# bearer token is configured" may stay not checked without making the run incomplete (certify
# and verify follow the same rule, and say the result does not cover bearer tokens). With a
# bearer token they count like every MUST.
BEARER_SETTING = "bearer_token"
BEARER_MAY = "AUTH-07"
BEARER_MUSTS = ("AUTH-08",)


def bearer_exempt(configuration: Mapping[str, Any], outcomes: Mapping[str, Any]) -> frozenset[str]:
    """The MUSTs a run may leave not checked: :data:`BEARER_MUSTS` of the contract, when it had no
    bearer token and so did not claim :data:`BEARER_MAY` either; otherwise none."""
    applicable = frozenset(rid for rid in BEARER_MUSTS if rid in catalogue.REQUIREMENTS)
    no_token = configuration.get(BEARER_SETTING) == "not configured"
    return applicable if no_token and outcomes.get(BEARER_MAY) == "not_checked" else frozenset()


@dataclass
class CheckRecord:
    """One check (one pytest item): what it cites, what it sent, how it ended."""

    id: str
    requirements: tuple[str, ...]
    outcome: Outcome = "passed"
    message: str | None = None
    duration_s: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)
    requests_sent: int = 0
    violated: tuple[str, ...] = ()
    note: str | None = None
    # The exchange whose answer broke the rule (the first one, when several did): its curl
    # reproduces the failure. None: the last exchange the check judged stands in for it.
    culprit: Exchange | None = None

    def attach(self, exchange: Exchange, *, sent: bool) -> None:
        """Keep an exchange the check sent or judged (a shared one only once)."""
        self.requests_sent += sent
        if not any(exchange is kept for kept in self.exchanges):
            self.exchanges.append(exchange)

    def outcome_for(self, requirement_id: str) -> tuple[Outcome, str | None]:
        """This check's outcome for one of its requirements.

        A check that cites several requirements and failed on one of them did not finish
        checking the others: those are not checked by it, not passed.
        """
        if self.outcome == "failed" and self.violated and requirement_id not in self.violated:
            return "not_checked", f"{self.id} stopped at a failure of {', '.join(self.violated)}"
        return self.outcome, self.message

    def blame(self, exchange: Exchange) -> None:
        """``exchange``'s answer broke the rule: its curl reproduces the failure, and it is the
        last exchange the report shows for the check."""
        self.culprit = exchange
        self.exchanges = [kept for kept in self.exchanges if kept is not exchange] + [exchange]

    def split_at_premise(self) -> list[CheckRecord]:
        """A failed check stopped at its failure: the requirements it cites but had not reached
        then were not checked by it. Each becomes a record of its own, ``not_checked``, so every
        artifact (junit included) says so, and this record keeps the requirements it failed.

        A check that failed only requirements it does not cite (a premise of its own) checked
        none of its own: it is ``not_checked`` itself.
        """
        if self.outcome != "failed" or not self.violated:
            return []
        reason = f"{self.id} stopped at a failure of {', '.join(self.violated)}"
        failed = tuple(rid for rid in self.requirements if rid in self.violated)
        if not failed:
            self.outcome, self.message = "not_checked", f"{reason}: {self.message}"
            return []
        unreached = [rid for rid in self.requirements if rid not in self.violated]
        self.requirements = failed
        return [CheckRecord(f"{self.id}[{rid}]", (rid,), outcome="not_checked", message=reason) for rid in unreached]

    @property
    def curl(self) -> str | None:
        """A command that reproduces the failure: the culprit's request, else the request the
        check judged last."""
        if self.culprit is not None:
            return self.culprit.curl
        judged = [exchange for exchange in self.exchanges if not exchange.retried]
        return judged[-1].curl if judged else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "requirements": list(self.requirements), "outcome": self.outcome,
            "duration_s": round(self.duration_s, 4), "requests": self.requests_sent,
            "message": self.message, "curl": self.curl if self.outcome != "passed" else None,
        }


@dataclass(frozen=True)
class RequirementResult:
    id: str
    level: str
    text: str
    outcome: Outcome
    reason: str | None
    checks: tuple[str, ...]
    # Requests sent for its checks: a request several checks asked for counts for the first to ask,
    # a check citing several requirements counts for each of them.
    requests: int = 0
    cut_by_budget: int = 0  # its checks the request budget did not reach

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "text": self.text, "outcome": self.outcome,
                "reason": self.reason, "checks": list(self.checks), "requests": self.requests,
                "checks_cut_by_budget": self.cut_by_budget}


BUDGET_REASON = "request budget ("
# How a check that only judges what the run happened to show says it was shown nothing.
NOTHING_TO_JUDGE = "nothing to judge in this run: "


def _uncounted(reason: str | None) -> bool:
    return (reason or "").startswith((BUDGET_REASON, NOTHING_TO_JUDGE))


def aggregate(requirement: catalogue.Requirement, checks: Iterable[CheckRecord]) -> RequirementResult:
    """Worst outcome over the requirement's checks; no check at all is ``not_checked``.

    Checks the request budget (--max-requests) did not reach, and checks that had nothing to
    judge in this run (:data:`NOTHING_TO_JUDGE`), do not count when another check of the
    requirement was judged: the requirement was checked, with fewer probes, and the reason says
    how many of its checks were left out and why. With none judged it is not checked."""
    cited = [check for check in checks if requirement.id in check.requirements]
    if not cited:
        return RequirementResult(requirement.id, requirement.level, requirement.text,
                                 "not_checked", "no check for it ran in this run", ())
    outcomes = [(check, *check.outcome_for(requirement.id)) for check in cited]
    cut = [item for item in outcomes if item[1] == "not_checked" and _uncounted(item[2])]
    judged = [item for item in outcomes if item not in cut]
    if cut and any(outcome != "not_checked" for _, outcome, _ in judged):
        outcomes = judged
    worst_check, worst, reason = max(outcomes, key=lambda item: OUTCOME_RANK[item[1]])
    if worst != "passed" and reason is None:
        reason = f"{worst_check.id}: {worst}"
    if worst == "passed" and len(outcomes) < len(cited):
        why = "; ".join(dict.fromkeys(
            f"not reached within the {cut_reason}" if cut_reason.startswith(BUDGET_REASON) else cut_reason
            for _, _, cut_reason in cut if cut_reason))
        reason = f"checked by {len(outcomes)} of its {len(cited)} checks; the rest: {why}"
    elif worst == "passed":
        reason = None
    return RequirementResult(requirement.id, requirement.level, requirement.text, worst, reason,
                             tuple(check.id for check in cited), sum(check.requests_sent for check in cited),
                             sum(1 for _, _, why in cut if (why or "").startswith(BUDGET_REASON)))


@dataclass
class RunResult:
    """Everything a run produced, from which every artifact is written."""

    base_url: str
    organization_id: str
    reference: bool
    configuration: dict[str, Any]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    checks: list[CheckRecord] = field(default_factory=list)
    requests: int = 0
    run_error: str | None = None
    interrupted: str | None = None
    listing: dict[str, Any] = field(default_factory=dict)
    hypothesis: dict[str, Any] = field(default_factory=dict)

    def requirements(self) -> dict[str, RequirementResult]:
        return {rid: aggregate(req, self.checks) for rid, req in catalogue.REQUIREMENTS.items()}

    def verdict(self) -> tuple[Verdict, str | None]:
        """The run's verdict and why (for a conformant run, what it did not cover, if anything).
        Only MUSTs decide it."""
        if self.interrupted:
            return "interrupted", self.interrupted
        if self.run_error:
            return "error", self.run_error
        requirements = self.requirements()
        exempt = bearer_exempt(self.configuration, {rid: r.outcome for rid, r in requirements.items()})
        musts = [r for r in requirements.values()
                 if r.level == "MUST" and not (r.id in exempt and r.outcome == "not_checked")]
        for outcome, verdict in (("failed", "nonconformant"), ("error", "error"),
                                 ("not_checked", "incomplete")):
            hit = [r.id for r in musts if r.outcome == outcome]
            if hit:
                return verdict, f"MUST {outcome.replace('_', ' ')}: {', '.join(hit)}"  # type: ignore[return-value]
        if exempt:
            return "conformant", (f"without bearer tokens: {', '.join(sorted(exempt))} apply only with "
                                  f"{config.setting_label(BEARER_SETTING)}, which was not given")
        return "conformant", None

    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict()[0]]

    def target_description(self) -> str:
        """The target as every report names it; the bundled reference always says that it is."""
        if self.reference:
            return (f"the bundled reference deployment at {self.base_url} (no --base-url given), "
                    "not a deployment under test")
        return self.base_url

    @property
    def budget(self) -> int | None:
        """The request budget the run was given (--max-requests), if any."""
        value = self.configuration.get("max_requests")
        return value if isinstance(value, int) else None

    def unattributed_requests(self) -> int:
        """Requests no check asked for: the preflight, the listing's walks, the end search."""
        return max(0, self.requests - sum(check.requests_sent for check in self.checks))

    def budget_line(self) -> str | None:
        """How the request budget was spent, in a sentence (None without a budget)."""
        if self.budget is None:
            return None
        cut = sum(1 for check in self.checks
                  if check.outcome == "not_checked" and (check.message or "").startswith(BUDGET_REASON))
        return (f"request budget: {self.requests} of {self.budget} requests sent, "
                f"{self.unattributed_requests()} of them for the preflight and the walks of the listing; "
                + (f"{cut} checks not reached" if cut else "every check reached"))

    def counts(self) -> dict[str, int]:
        results = self.requirements().values()
        counts = {outcome: 0 for outcome in OUTCOME_RANK}
        for result in results:
            counts[result.outcome] += 1
        counts["warnings"] = sum(1 for r in results if r.outcome == "failed" and r.level != "MUST")
        return counts

    def to_dict(self) -> dict[str, Any]:
        verdict, reason = self.verdict()
        finished = self.finished_at or datetime.now(UTC)
        return {
            "suite": {"name": "conformance", "version": __version__},
            "contract": {"version": catalogue.CONTRACT_VERSION, "sha256": catalogue.contract_digest()},
            "target": {"base_url": self.base_url, "organization_id": self.organization_id,
                       "reference": self.reference},
            "started_at": _iso(self.started_at),
            "finished_at": _iso(finished),
            "duration_s": round((finished - self.started_at).total_seconds(), 3),
            "verdict": verdict,
            "verdict_reason": reason,
            "counts": self.counts(),
            "requests": self.requests,
            "hypothesis": self.hypothesis,
            "listing": self.listing,
            "configuration": self.configuration,
            "requirements": {rid: r.to_dict() for rid, r in self.requirements().items()},
            "checks": [check.to_dict() for check in self.checks],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
