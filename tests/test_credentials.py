"""Credentials beyond the happy path (contract 1.1): bearer tokens that were tampered with or
are not well-formed (AUTH-08), credentials that may no longer be used (AUTH-09), and ROB-01
judged over every request of the run, whatever its credential.

Everything talks HTTP to a real reference deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import jwt
import pytest

from conformance import inputs
from conformance.bad_answers import BadAnswers
from conformance.client import Credential, TargetClient
from conformance.reference import ReferenceServer
from conformance.reference.faults import get_behaviour

TOKEN_VARIABLE = "CONFORMANCE_BEARER_TOKEN"
AUTH_08 = "test_auth.py::test_tampered_or_malformed_bearer_token_gets_401"
AUTH_09 = "test_auth.py::test_credentials_that_may_no_longer_be_used_get_401"
RUN_WIDE = "test_robustness.py::test_no_request_of_the_run_got_a_server_error_or_non_json"


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(jobs=10) as running:
        yield running


def list_url(server: ReferenceServer) -> str:
    return f"{server.base_url}/v1/music/{server.fixture.organization_id}/generations"


def get(server: ReferenceServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(list_url(server), params={"limit": 1}, headers=headers, timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bad_forms(token: str) -> dict[str, Credential]:
    return inputs.bad_bearer_tokens(Credential.bearer(token, TOKEN_VARIABLE))


def error_code(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["type"]


# -- the reference deployment's credentials -----------------------------------------------------


def test_bearer_tokens_are_signed_jwts_with_an_expiry(server: ReferenceServer) -> None:
    fixture = server.fixture
    for token in (fixture.bearer_token, fixture.expired_bearer_token):
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert header["alg"] == "HS256" and {"sub", "iat", "exp"} <= set(claims)
    valid = jwt.decode(fixture.bearer_token, options={"verify_signature": False})
    expired = jwt.decode(fixture.expired_bearer_token, options={"verify_signature": False})
    assert valid["sub"] == expired["sub"] and expired["exp"] < valid["iat"] < valid["exp"]


def test_the_valid_bearer_token_is_accepted(server: ReferenceServer) -> None:
    response = get(server, bearer(server.fixture.bearer_token))
    assert response.status_code == 200 and len(response.json()["jobs"]) == 1


@pytest.mark.parametrize("kind", [*inputs.TAMPERED_TOKEN_KINDS, *inputs.MALFORMED_TOKEN_KINDS])
def test_tampered_and_malformed_tokens_get_401_token_invalid(server: ReferenceServer, kind: str) -> None:
    form = bad_forms(server.fixture.bearer_token)[kind]
    response = get(server, {"Authorization": form.value})
    assert error_code(response) == (401, "TOKEN_INVALID", "authentication_error")


def test_a_revoked_key_and_an_expired_token_get_their_own_401_codes(server: ReferenceServer) -> None:
    revoked = get(server, {"X-API-Key": server.fixture.revoked_api_key})
    expired = get(server, bearer(server.fixture.expired_bearer_token))
    assert error_code(revoked) == (401, "API_KEY_DEACTIVATED", "authentication_error")
    assert error_code(expired) == (401, "TOKEN_EXPIRED", "authentication_error")


def test_suite_env_and_serve_name_every_credential(server: ReferenceServer, tmp_path) -> None:
    env = server.suite_env(tmp_path)
    assert env["CONFORMANCE_REVOKED_API_KEY"] == server.fixture.revoked_api_key
    assert env["CONFORMANCE_EXPIRED_BEARER_TOKEN"] == server.fixture.expired_bearer_token
    exports = server.credential_exports()
    assert exports[0] == f"export FREDDY_API_KEY={server.fixture.api_key}"
    assert {line.split("=", 1)[0].removeprefix("export ") for line in exports} == {
        "FREDDY_API_KEY", "CONFORMANCE_NO_CAPABILITY_API_KEY", "CONFORMANCE_SECOND_USER_API_KEY",
        "CONFORMANCE_BEARER_TOKEN", "CONFORMANCE_REVOKED_API_KEY", "CONFORMANCE_EXPIRED_BEARER_TOKEN"}


# -- the derived tokens: shown as shell expansions, never in clear ------------------------------


def test_every_bad_form_differs_and_only_an_opaque_token_lacks_one_segment() -> None:
    jwt_like = bad_forms("aaaaaaaaaa.bbbbbbbbbbbb.cccccccccccccccc")
    assert set(jwt_like) == {*inputs.TAMPERED_TOKEN_KINDS, *inputs.MALFORMED_TOKEN_KINDS}
    opaque = bad_forms("opaque-token-0123456789")
    assert set(opaque) == set(jwt_like) - {"one-segment"}
    for forms, token in ((jwt_like, "aaaaaaaaaa.bbbbbbbbbbbb.cccccccccccccccc"), (opaque, "opaque-token-0123456789")):
        assert all(form.value != f"Bearer {token}" for form in forms.values())


def test_changed_characters_change_what_a_decoder_reads() -> None:
    # The last character of a 43-character HS256 signature carries 4 bits and 2 of padding:
    # a change in the low bits alone would decode to the same signature and be accepted.
    for character in inputs.BASE64URL:
        changed = inputs.changed_character(character)
        assert changed != character and changed in inputs.BASE64URL
        assert inputs.BASE64URL.index(changed) >> 2 != inputs.BASE64URL.index(character) >> 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_shell_forms_expand_to_the_tokens_sent(server: ReferenceServer) -> None:
    token = server.fixture.bearer_token
    for kind, form in bad_forms(token).items():
        expanded = subprocess.run(["bash", "-c", f'printf %s "{form.shell}"'], capture_output=True, text=True,
                                  env={**os.environ, TOKEN_VARIABLE: token}, check=True).stdout
        assert expanded == form.value, kind
        assert token[:10] not in form.shell and f"${{{TOKEN_VARIABLE}" in form.shell, kind


def test_requests_with_derived_tokens_leak_no_part_of_the_token(server: ReferenceServer) -> None:
    token = server.fixture.bearer_token
    with TargetClient(server.base_url, secrets=[token]) as client:
        for kind, form in bad_forms(token).items():
            exchange = client.get(server.fixture.organization_id, {"limit": 1}, credential=form).exchange
            shown = json.dumps(exchange.to_dict()) + client.redactor.text(form.value)
            for start in range(len(token) - 9):
                assert token[start:start + 10] not in shown, (kind, start)


# -- the new faults really misbehave ------------------------------------------------------------


@pytest.mark.parametrize("fault, sent, status", [
    ("bearer-signature-not-checked", "last-character-changed", 200),
    ("malformed-token-500", "one-segment", 500),
    ("malformed-token-500", "bad-encoding", 500),
    ("malformed-token-500", "last-character-changed", 401),
    ("bearer-500", "valid", 500),
    ("expired-token-accepted", "expired", 200),
    ("revoked-key-accepted", "revoked", 200),
])
def test_credential_faults_misbehave_as_described(fault: str, sent: str, status: int) -> None:
    with ReferenceServer(jobs=5, behaviour=fault) as running:
        fixture = running.fixture
        headers = {"valid": bearer(fixture.bearer_token), "expired": bearer(fixture.expired_bearer_token),
                   "revoked": {"X-API-Key": fixture.revoked_api_key}}.get(sent)
        if headers is None:
            headers = {"Authorization": bad_forms(fixture.bearer_token)[sent].value}
        assert get(running, headers).status_code == status
        assert get(running, {"X-API-Key": fixture.api_key}).status_code == 200


# -- ROB-01 over every request of the run ------------------------------------------------------


def test_bad_answers_are_kept_whatever_the_credential() -> None:
    with ReferenceServer(jobs=5, behaviour=get_behaviour("bearer-500")) as running:
        fixture = running.fixture
        seen = BadAnswers(keep=2)
        with TargetClient(running.base_url, secrets=[fixture.api_key, fixture.bearer_token]) as client:
            client.add_observer(seen.observe)
            key = Credential.api_key(fixture.api_key, "FREDDY_API_KEY")
            token = Credential.bearer(fixture.bearer_token, TOKEN_VARIABLE)
            for credential in (key, token, None, token, token):
                client.get(fixture.organization_id, {"limit": 1}, credential=credential)
    kept, count, judged = seen.snapshot()
    assert (len(kept), count, judged) == (2, 3, 5)
    assert kept[0].describe() == ("GET /v1/music/org_ref_main/generations?limit=1 with a bearer token "
                                  f"(Authorization: Bearer ${TOKEN_VARIABLE}) -> 500 "
                                  "(a server error)")
    assert f"Bearer ${TOKEN_VARIABLE}" in kept[0].exchange.curl


def test_rate_limited_answers_are_not_judged() -> None:
    every = get_behaviour("occasional-429").EVERY
    with ReferenceServer(jobs=5, behaviour="occasional-429") as running:
        seen = BadAnswers()
        with TargetClient(running.base_url) as client:
            client.add_observer(seen.observe)
            for _ in range(every):
                client.get(running.fixture.organization_id, {"limit": 1}, credential=None)
    kept, count, judged = seen.snapshot()
    assert (kept, count, judged) == ([], 0, every)  # the 429 was retried, and only its retry judged


@pytest.mark.slow
def test_a_server_error_seen_by_any_check_fails_rob_01_run_wide(reference, run_suite) -> None:
    """Only AUTH-07's check sends bearer requests here; the run-last check still fails ROB-01
    with the bearer request as evidence and a curl that reproduces it."""
    run = run_suite("--", "-k", "bearer_token_is_accepted or no_request_of_the_run",
                    server=reference(behaviour="bearer-500"))
    checks = {check["id"]: check for check in run.results["checks"]}
    assert list(checks)[-1] == RUN_WIDE
    wide = checks[RUN_WIDE]
    assert wide["outcome"] == "failed" and run.outcome("ROB-01") == "failed"
    assert f"with a bearer token (Authorization: Bearer ${TOKEN_VARIABLE}) -> 500 (a server error)" in wide["message"]
    assert f'"Authorization: Bearer ${TOKEN_VARIABLE}"' in wide["curl"]
    assert run.outcome("AUTH-07") == "failed" and run.verdict == "nonconformant"


@pytest.mark.slow
def test_without_the_credentials_auth_08_and_09_are_not_checked_naming_the_options(reference, run_suite) -> None:
    server = reference(jobs=20)
    env = {"CONFORMANCE_BEARER_TOKEN": "", "CONFORMANCE_REVOKED_API_KEY": "", "CONFORMANCE_EXPIRED_BEARER_TOKEN": ""}
    run = run_suite("--", "-k", "tampered_or_malformed or no_longer_be_used", server=server, env=env)
    requirements = run.results["requirements"]
    assert requirements["AUTH-08"]["outcome"] == "not_checked"
    assert "--bearer-token (CONFORMANCE_BEARER_TOKEN)" in requirements["AUTH-08"]["reason"]
    assert requirements["AUTH-09"]["outcome"] == "not_checked"
    assert ("--revoked-api-key (CONFORMANCE_REVOKED_API_KEY) or --expired-bearer-token "
            "(CONFORMANCE_EXPIRED_BEARER_TOKEN)") in requirements["AUTH-09"]["reason"]


@pytest.mark.slow
def test_auth_09_is_checked_for_each_credential_given(reference, run_suite) -> None:
    server = reference(jobs=20, behaviour="expired-token-accepted")
    only_key = run_suite("--", "-k", "no_longer_be_used", server=server,
                         env={"CONFORMANCE_EXPIRED_BEARER_TOKEN": ""})
    assert only_key.outcome("AUTH-09") == "passed"
    both = run_suite("--", "-k", "no_longer_be_used", server=server)
    reason = both.results["requirements"]["AUTH-09"]["reason"]
    assert both.outcome("AUTH-09") == "failed"
    assert reason.startswith("a bearer token past its expiry (--expired-bearer-token "
                             "(CONFORMANCE_EXPIRED_BEARER_TOKEN)): GET /v1/") and "-> 200: accepted" in reason
    check = next(c for c in both.results["checks"] if c["id"] == AUTH_09)
    assert check["curl"].endswith('-H "Authorization: Bearer $CONFORMANCE_EXPIRED_BEARER_TOKEN"')
