"""SHP: the page and every job in it look as documented."""

from __future__ import annotations

import pytest

from conformance import evidence
from conformance.evidence import remark
from conformance.judge import describe, expect, expect_json_object, expect_status, is_json_content_type, schema_errors
from conformance.model import job_id, parse_timestamp, short_id
from conformance.plan import Page, needs

MAX_PROBLEMS_SHOWN = 5


def listed_jobs(listing, *, status=None, need="jobs"):
    """The jobs the walk knows (the prefix plus the last page of a listing longer than
    --max-listing), of ``status`` when given."""
    jobs = [job for _, job in listing.known() if status is None or job.get("status") == status]
    if not jobs:
        pytest.skip(f"the listing ({listing.describe()}) has no {need} to judge")
    return jobs


def expect_every_job(listing, jobs, problem_of, requirement, what):
    """Every job passes ``problem_of``; a failure attaches the page that returned the first culprit."""
    culprits = [(job, problem) for job in jobs if (problem := problem_of(job))]
    if culprits:
        position = next(place for place, job in listing.known() if job is culprits[0][0])
        if (exchange := listing.exchange_at(position)) is not None:
            evidence.note(exchange)
    problems = [f"{short_id(job_id(job))}: {problem}" for job, problem in culprits]
    expect(not problems, f"{len(problems)} of {len(jobs)} jobs {what}"
           f"{f' (in {listing.describe()})' if listing.partial else ''}: "
           f"{'; '.join(problems[:MAX_PROBLEMS_SHOWN])}", requirement)
    remark(listing.coverage_note())


@pytest.mark.requirement("SHP-01")
@pytest.mark.parametrize("params", [{}, {"limit": 1}], ids=["default", "limit-1"])
@needs(lambda params: [Page.of(**params)])
def test_page_is_a_json_object_with_its_window(model, params):
    response = model.page(**params)
    expect_status(response, 200, "SHP-01")
    expect(is_json_content_type(response),
           f"{describe(response)}: Content-Type is {response.content_type!r}, expected application/json", "SHP-01")
    body = expect_json_object(response, "SHP-01")
    problems = schema_errors(body, "page.schema.json", skip_prefix=("jobs",)) + (
        [] if isinstance(body.get("jobs"), list) else ["jobs: not an array"])
    expect(not problems, f"{describe(response)}: {'; '.join(sorted(set(problems))[:MAX_PROBLEMS_SHOWN])}", "SHP-01")


def _job_shape_problem(job):
    problems = schema_errors(job, "job.schema.json")
    if not problems and parse_timestamp(job["created_at"]) is None:
        problems = [f"created_at {job['created_at']!r} is not a real date-time"]
    return "; ".join(problems)


@pytest.mark.requirement("SHP-02")
def test_every_job_has_the_documented_fields(listing):
    expect_every_job(listing, listed_jobs(listing), _job_shape_problem, "SHP-02", "break the job schema")


@pytest.mark.requirement("SHP-03")
def test_playback_url_is_null(listing):
    expect_every_job(listing, listed_jobs(listing), lambda job: job.get("playback_url", None) is not None
                     and f"playback_url is {job['playback_url']!r}", "SHP-03", "have a playback_url")


@pytest.mark.requirement("SHP-04")
def test_track_is_null(listing):
    expect_every_job(listing, listed_jobs(listing), lambda job: job.get("track", None) is not None
                     and f"track is {job['track']!r}", "SHP-04", "have a track")


@pytest.mark.requirement("SHP-05")
def test_succeeded_jobs_name_their_track(listing):
    jobs = listed_jobs(listing, status="succeeded", need="succeeded jobs")
    expect_every_job(listing, jobs, lambda job: not (isinstance(job.get("result_track_id"), str)
                                            and job["result_track_id"].startswith("mtrack_"))
                     and f"result_track_id is {job.get('result_track_id')!r}", "SHP-05",
                     "succeeded without an mtrack_ result_track_id")


@pytest.mark.requirement("SHP-06")
def test_result_fields_agree_with_status(listing):
    jobs = listed_jobs(listing)
    if not any(job.get("status") == "succeeded" for job in jobs) or all(
            job.get("status") == "succeeded" for job in jobs):
        pytest.skip(f"the listing ({listing.describe()}) needs succeeded and other jobs")

    def problem(job):
        if job.get("status") == "succeeded":
            return job.get("progress") != 100 and f"succeeded with progress {job.get('progress')!r}"
        return job.get("result_track_id") is not None and (
            f"{job.get('status')} with result_track_id {job['result_track_id']!r}")

    expect_every_job(listing, jobs, problem, "SHP-06", "have result fields that contradict their status")


@pytest.mark.requirement("SHP-07")
@pytest.mark.parametrize("status, field", [("failed", "error_message"), ("refused", "refusal_reason")])
def test_unsuccessful_jobs_explain_themselves(listing, status, field):
    jobs = listed_jobs(listing, status=status, need=f"{status} jobs")
    expect_every_job(listing, jobs, lambda job: not (isinstance(job.get(field), str) and job[field].strip())
                     and f"{field} is {job.get(field)!r}", "SHP-07", f"are {status} without a {field}")


@pytest.mark.requirement("SHP-08")
def test_job_ids_are_unique(model, listing):
    known = [(position, job_id(job)) for position, job in listing.known()]
    if len(known) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    seen: dict[str, int] = {}
    repeats = []
    for position, identifier in known:
        if identifier in seen:
            repeats.append(f"{short_id(identifier)} at positions {seen[identifier]} and {position}")
        seen.setdefault(identifier, position)
    if repeats:
        model.confirm_unchanged()  # a job added during the walk shifts one into the next page too
    expect(not repeats, f"{len(repeats)} ids repeat in {listing.describe()}: {'; '.join(repeats[:MAX_PROBLEMS_SHOWN])}",
           "SHP-08")
    remark(listing.coverage_note())
