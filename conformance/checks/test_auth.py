"""AUTH: who may list jobs, and how everyone else is turned away."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance import inputs
from conformance.config import setting_label
from conformance.judge import (
    Violation,
    body_excerpt,
    describe,
    expect,
    expect_error,
    expect_page,
    expect_same_jobs,
    judging,
)
from conformance.model import page_jobs
from conformance.plan import Again, Once, Page, needs

AUTH_401_CODES = ("AUTHENTICATION_REQUIRED", "INVALID_API_KEY", "TOKEN_INVALID", "API_KEY_EXPIRED",
                  "API_KEY_DEACTIVATED", "API_KEY_PAUSED")
AUTH_09_CODES = (*AUTH_401_CODES, "TOKEN_EXPIRED")
# Credentials that exist but may no longer be used (AUTH-09): setting -> what it is.
NO_LONGER_USABLE = {"revoked_api_key": "an API key that was revoked",
                    "expired_bearer_token": "a bearer token past its expiry"}
NON_MEMBER_CODES = ("ORGANIZATION_ACCESS_DENIED", "INSUFFICIENT_PERMISSIONS")
NONEXISTENT_ORG = "org_conformance_nonexistent_0000"


def expect_no_jobs(response, requirement):
    body = response.json() if response.is_json() else None
    expect(not (isinstance(body, dict) and "jobs" in body),
           f"{describe(response)}: the refusal still carries a 'jobs' member", requirement)


@pytest.mark.requirement("AUTH-01")
@needs(lambda: [Once.of({"limit": 1}, credential=None)])
def test_no_credentials_get_401(target):
    response = target.once({"limit": 1}, credential=None)
    expect_error(response, 401, "AUTH-01", codes=("AUTHENTICATION_REQUIRED",), types=("authentication_error",))
    expect_no_jobs(response, "AUTH-01")


@pytest.mark.requirement("AUTH-02")
@pytest.mark.parametrize("kind", sorted(inputs.MADE_UP_KEYS))
@needs(lambda kind: [Once.of({"limit": 1}, credential=inputs.MADE_UP_KEYS[kind])])
def test_made_up_key_gets_401(target, kind):
    response = target.once({"limit": 1}, credential=inputs.MADE_UP_KEYS[kind])
    expect_error(response, 401, "AUTH-02", codes=AUTH_401_CODES, types=("authentication_error",))
    expect_no_jobs(response, "AUTH-02")


@pytest.mark.requirement("AUTH-02")
@pytest.mark.parametrize("kind", ["one-character-changed", "truncated", "extended"])
@needs(lambda target, kind: [Once.of({"limit": 1}, credential=inputs.near_miss_keys(target.credential())[kind])])
def test_near_miss_key_gets_401(target, kind):
    near_miss = inputs.near_miss_keys(target.credential())[kind]
    response = target.once({"limit": 1}, credential=near_miss)
    expect_error(response, 401, "AUTH-02", codes=AUTH_401_CODES, types=("authentication_error",))
    expect_no_jobs(response, "AUTH-02")


@pytest.mark.requirement("AUTH-03")
@needs(lambda: [Page.of()])
def test_valid_key_is_accepted(model):
    expect_page(model.page(), "AUTH-03")


@pytest.mark.requirement("AUTH-04")
@needs(lambda: [Once.of({"limit": 1}, credential="no_capability_api_key")])
def test_member_without_capability_gets_403(target):
    response = target.once({"limit": 1}, credential="no_capability_api_key")
    expect_error(response, 403, "AUTH-04", codes=("INSUFFICIENT_PERMISSIONS",), types=("authorization_error",))
    expect_no_jobs(response, "AUTH-04")


@pytest.mark.requirement("AUTH-05")
@needs(lambda target: [Once.of({"limit": 1}, org=target.setting("foreign_org"))])
def test_foreign_organization_gets_403(target):
    response = target.once({"limit": 1}, org=target.setting("foreign_org"))
    expect_error(response, 403, "AUTH-05", codes=NON_MEMBER_CODES, types=("authorization_error",))
    expect_no_jobs(response, "AUTH-05")


@pytest.mark.requirement("AUTH-05")
@needs(lambda: [Once.of({"limit": 1}, org=NONEXISTENT_ORG)])
def test_nonexistent_organization_gets_403(target):
    response = target.once({"limit": 1}, org=NONEXISTENT_ORG)
    expect(response.status != 404, f"{describe(response)}: a non-member must get 403, never 404", "AUTH-05")
    expect_error(response, 403, "AUTH-05", codes=NON_MEMBER_CODES, types=("authorization_error",))
    expect_no_jobs(response, "AUTH-05")


@pytest.mark.requirement("AUTH-06")
@pytest.mark.parametrize("credential", ["none", "unknown"])
@needs(lambda credential: [Once.of({"limit": 0}, credential=unauthenticated(credential))])
def test_authentication_before_validation(target, credential):
    response = target.once({"limit": 0}, credential=unauthenticated(credential))
    expect_error(response, 401, "AUTH-06", types=("authentication_error",))


def unauthenticated(credential):
    return None if credential == "none" else inputs.MADE_UP_KEYS["unknown"]


@pytest.mark.requirement("AUTH-07")
@needs(lambda: [Page.of(), Again.of({}, credential="bearer_token")])
def test_bearer_token_is_accepted(target, model):
    response = target.get({}, credential="bearer_token")
    expect_page(response, "AUTH-07")
    expect_same_jobs(page_jobs(response), page_jobs(model.page()),
                     "the bearer token's first page differs from the API key's", model, "AUTH-07")


@pytest.mark.requirement("AUTH-08")
@pytest.mark.parametrize("kind", inputs.BAD_TOKEN_KINDS)
@needs(lambda target, kind: [Once.of({"limit": 1}, credential=form)
                             for form in [inputs.bad_bearer_tokens(target.credential("bearer_token")).get(kind)]
                             if form is not None])
def test_tampered_or_malformed_bearer_token_gets_401(target, kind):
    forms = inputs.bad_bearer_tokens(target.credential("bearer_token"))
    if kind not in forms:
        pytest.skip(f"the configured bearer token has no '.'-separated segments: it has no {kind} form")
    response = judging(target.once({"limit": 1}, credential=forms[kind]))
    checked = "signature" if kind in inputs.TAMPERED_TOKEN_KINDS else "form"
    with about(f"{inputs.BAD_TOKEN_FORMS[kind]} (Authorization: {forms[kind].shell})"):
        expect(not 200 <= response.status < 300,
               f"{describe(response)}: accepted; the token's {checked} is not checked", "AUTH-08")
        expect(response.status < 500, f"{describe(response)}: a server error where 401 was due; "
                                      f"body: {body_excerpt(response)}", "AUTH-08")
        expect_error(response, 401, "AUTH-08", types=("authentication_error",))
        expect_no_jobs(response, "AUTH-08")


@pytest.mark.requirement("AUTH-09")
@needs(lambda target: [Once.of({"limit": 1}, credential=name) for name in NO_LONGER_USABLE
                       if getattr(target.settings, name) is not None])
def test_credentials_that_may_no_longer_be_used_get_401(target):
    given = [name for name in NO_LONGER_USABLE if getattr(target.settings, name) is not None]
    if not given:
        pytest.skip("not configured: set " + " or ".join(setting_label(name) for name in NO_LONGER_USABLE))
    for name in given:
        response = judging(target.once({"limit": 1}, credential=name))
        with about(f"{NO_LONGER_USABLE[name]} ({setting_label(name)})"):
            expect(not 200 <= response.status < 300, f"{describe(response)}: accepted", "AUTH-09")
            expect_error(response, 401, "AUTH-09", codes=AUTH_09_CODES, types=("authentication_error",))
            expect_no_jobs(response, "AUTH-09")


@contextmanager
def about(what: str) -> Iterator[None]:
    """A violation raised inside names ``what`` first: which of the credentials it was about."""
    try:
        yield
    except Violation as violation:
        raise Violation(f"{what}: {violation}", *violation.requirements, evidence=violation.evidence) from None
