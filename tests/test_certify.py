"""Certification bundles: one real certify run against the reference, then the bundle altered
the ways an accident or a forger would, and the CI recipes checked against the CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance import catalogue, certify, config
from conformance.cli import build_parser
from conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent
CI_DIR = ROOT / "examples" / "ci"
PRODUCT = ROOT / "examples" / "ci" / "product.toml"


def conformance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def problems(result: subprocess.CompletedProcess) -> list[str]:
    return [line.removeprefix("  problem: ") for line in result.stdout.splitlines()
            if line.startswith("  problem: ")]


@dataclass
class Bundles:
    signed: Path
    unsigned: Path
    private_key: Path
    public_key: Path
    run_stdout: str


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """One certify run against the bundled reference, signed; the same reports packed unsigned."""
    base = tmp_path_factory.mktemp("certify")
    private_key, public_key = base / "vendor.pem", base / "vendor.pub.pem"
    made = conformance("keygen", "--private-key", str(private_key))
    assert made.returncode == 0, made.stderr
    reports = base / "reports"
    run = conformance("run", "--profile", "certify", "--product", str(PRODUCT),
                      "--signing-key", str(private_key), "--report-dir", str(reports))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    signed = base / "signed.zip"
    (reports / certify.BUNDLE_FILE).rename(signed)
    seed = json.loads((reports / "results.json").read_text())["configuration"]["seed"]
    unsigned = certify.write_bundle(config.Settings(report_dir=reports, product=PRODUCT, profile="certify",
                                                    hypothesis_profile="ci", seed=seed))
    return Bundles(signed, unsigned, private_key, public_key, run.stdout)


def read_bundle(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_altered(source: Path, dest: Path, changes: dict[str, bytes], *, refresh_digests: bool = False,
                  sign_with: Ed25519PrivateKey | None = None) -> Path:
    """A copy of ``source`` with some files replaced; optionally the manifest redone to match."""
    files = {**read_bundle(source), **changes}
    if refresh_digests or sign_with is not None:
        manifest = json.loads(files[certify.MANIFEST_FILE])
        for name, entry in manifest["files"].items():
            entry.update(sha256=hashlib.sha256(files[name]).hexdigest(), bytes=len(files[name]))
        files[certify.MANIFEST_FILE] = (json.dumps(manifest, indent=2) + "\n").encode()
    if sign_with is not None:
        files[certify.SIGNATURE_FILE] = sign_with.sign(files[certify.MANIFEST_FILE]).hex().encode()
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return dest


def altered_results(source: Path, alter) -> bytes:
    results = json.loads(read_bundle(source)["results.json"])
    alter(results)
    return json.dumps(results, indent=2).encode()


# -- a genuine bundle verifies -------------------------------------------------------------


def test_signed_bundle_from_the_reference_verifies_with_the_vendor_key(bundles):
    assert "certification bundle:" in bundles.run_stdout
    result = conformance("verify", str(bundles.signed), "--public-key", str(bundles.public_key))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout and "signature verified" in result.stdout
    assert "bundled reference deployment" in result.stdout  # says what was tested
    manifest = json.loads(read_bundle(bundles.signed)[certify.MANIFEST_FILE])
    assert manifest["signed"] is True and manifest["hypothesis"]["profile"] == "ci"
    assert isinstance(manifest["hypothesis"]["seed"], int)
    assert set(manifest["files"]) == {"results.json", "junit.xml", "report.html", "product.toml"}


def test_unsigned_bundle_verifies_and_says_it_is_unsigned(bundles):
    result = conformance("verify", str(bundles.unsigned))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UNSIGNED" in result.stdout
    assert json.loads(read_bundle(bundles.unsigned)[certify.MANIFEST_FILE])["signed"] is False


def test_unsigned_bundle_fails_when_a_signature_is_expected(bundles):
    result = conformance("verify", str(bundles.unsigned), "--public-key", str(bundles.public_key))
    assert result.returncode == 1
    assert any("unsigned" in line for line in problems(result)), result.stdout


# -- altered bundles fail, naming the problem ----------------------------------------------


@pytest.mark.parametrize("name", ["results.json", "junit.xml", "report.html", "product.toml",
                                  "manifest.json", "manifest.sig"])
def test_one_changed_byte_in_any_file_fails(bundles, tmp_path, name):
    data = bytearray(read_bundle(bundles.signed)[name])
    data[len(data) // 2] ^= 0x01
    bundle = write_altered(bundles.signed, tmp_path / "altered.zip", {name: bytes(data)})
    result = conformance("verify", str(bundle), "--public-key", str(bundles.public_key))
    assert result.returncode == 1, result.stdout
    assert any(name in line for line in problems(result)), result.stdout


def test_requirement_removed_from_results_fails_naming_it(bundles, tmp_path):
    forged = altered_results(bundles.unsigned, lambda r: r["requirements"].pop("AUTH-04"))
    bundle = write_altered(bundles.unsigned, tmp_path / "forged.zip", {"results.json": forged},
                           refresh_digests=True)
    result = conformance("verify", str(bundle))
    assert result.returncode == 1
    assert "AUTH-04 (MUST) is missing from results.json" in problems(result), result.stdout


def _fail_requirement(results):
    results["requirements"]["AUTH-04"].update(outcome="failed", reason="forged")


def _fail_check(results):
    check = next(c for c in results["checks"] if "AUTH-04" in c["requirements"])
    check["outcome"] = "failed"


@pytest.mark.parametrize("flip, expected", [
    (_fail_requirement, "AUTH-04 (MUST) is failed: forged"),
    (_fail_check, "AUTH-04 is reported passed but its check test_auth.py::"),
])
def test_flipped_outcome_fails_naming_the_requirement(bundles, tmp_path, flip, expected):
    forged = altered_results(bundles.unsigned, flip)
    bundle = write_altered(bundles.unsigned, tmp_path / "forged.zip", {"results.json": forged},
                           refresh_digests=True)
    result = conformance("verify", str(bundle))
    assert result.returncode == 1
    assert any(line.startswith(expected) for line in problems(result)), result.stdout


def test_flipped_outcome_with_redone_digests_fails_the_signature(bundles, tmp_path):
    forged = altered_results(bundles.signed, _fail_requirement)
    bundle = write_altered(bundles.signed, tmp_path / "forged.zip", {"results.json": forged},
                           refresh_digests=True)
    result = conformance("verify", str(bundle), "--public-key", str(bundles.public_key))
    assert result.returncode == 1
    assert any("signature of manifest.json does not verify" in line for line in problems(result)), result.stdout


def test_bundle_signed_with_another_key_fails(bundles, tmp_path):
    bundle = write_altered(bundles.signed, tmp_path / "resigned.zip", {},
                           sign_with=Ed25519PrivateKey.generate())
    result = conformance("verify", str(bundle), "--public-key", str(bundles.public_key))
    assert result.returncode == 1
    assert any("does not verify with --public-key" in line for line in problems(result)), result.stdout


@pytest.mark.parametrize("manifest", [b"[]", b'{"format": 1}', b"not json"])
def test_malformed_manifest_fails_naming_it(bundles, tmp_path, manifest):
    bundle = write_altered(bundles.unsigned, tmp_path / "malformed.zip", {certify.MANIFEST_FILE: manifest})
    result = conformance("verify", str(bundle))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(line.startswith("manifest.json") for line in problems(result)), result.stdout


def test_missing_bundle_is_a_usage_error(tmp_path):
    result = conformance("verify", str(tmp_path / "nothing.zip"))
    assert result.returncode == 2 and "no such bundle" in result.stderr


# -- certify refuses to start without what every MUST needs ---------------------------------


@pytest.mark.parametrize("name", sorted(certify.MUST_SETTINGS))
def test_certify_without_a_must_setting_exits_2_before_any_request(run_suite, reference, name):
    server = reference(jobs=20)
    run = run_suite("--profile", "certify", "--product", str(PRODUCT), server=server,
                    env={config.SPECS_BY_NAME[name].env: ""})
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and config.setting_label(name) in lines[0], run.stderr
    assert server.request_count == 0


@pytest.mark.parametrize("args, named", [
    ([], "--product"),
    (["--product", "/nonexistent/product.toml"], "--product"),
    (["--product", "{missing_key}"], "--product"),
    (["--product", str(PRODUCT), "--signing-key", str(PRODUCT)], "--signing-key"),
    (["--product", str(PRODUCT), "--examples", "3"], "--examples"),
    (["--product", str(PRODUCT), "--", "-k", "limit"], "pytest arguments"),
])
def test_bad_certify_configuration_exits_2_naming_it(tmp_path, args, named):
    missing_key = tmp_path / "product.toml"
    missing_key.write_text(PRODUCT.read_text().replace("contact", "# contact"))
    args = [arg.format(missing_key=missing_key) for arg in args]
    result = conformance("run", "--profile", "certify", *args, "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert result.stdout == ""


def test_must_settings_cover_every_setting_a_check_needs():
    used: set[str] = set()
    for path in (ROOT / "conformance" / "checks").glob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'(?:credential|setting)\(\s*"(\w+)"', text))
        used |= set(re.findall(r'credential="(\w+)"', text))
    optional = {"api_key", "bearer_token"}  # api_key is always required; bearer_token serves a MAY
    assert catalogue.get("AUTH-07").level == "MAY"
    assert set(certify.MUST_SETTINGS) == used - optional
    assert all(catalogue.get(rid).level == "MUST" for rid in certify.MUST_SETTINGS.values())


# -- keys -----------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_does_not_overwrite(bundles):
    assert stat.S_IMODE(bundles.private_key.stat().st_mode) == 0o600
    before = bundles.private_key.read_bytes()
    again = conformance("keygen", "--private-key", str(bundles.private_key))
    assert again.returncode == 2 and "--force" in again.stderr
    assert bundles.private_key.read_bytes() == before


# -- CI recipes -----------------------------------------------------------------------------


def ci_files() -> list[Path]:
    return sorted(CI_DIR.glob("*.yml"))


def command_lines(document) -> list[str]:
    """Every ``conformance ...`` command in the YAML's strings, one per command."""
    if isinstance(document, dict):
        return [line for value in document.values() for line in command_lines(value)]
    if isinstance(document, list):
        return [line for value in document for line in command_lines(value)]
    if isinstance(document, str):
        joined = document.replace("\\\n", " ")
        return [line.strip() for line in joined.splitlines() if line.strip().startswith("conformance ")]
    return []


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_ci_examples_are_yaml_and_use_only_documented_options():
    commands = subparsers()
    secret_options = {spec.option for spec in config.SETTINGS if spec.secret}
    assert [p.name for p in ci_files()] == ["github-actions.yml", "gitlab-ci.yml"]
    for path in ci_files():
        lines = command_lines(yaml.safe_load(path.read_text()))
        assert any(line.startswith("conformance run") for line in lines), path.name
        for line in lines:
            words = shlex.split(line)
            known = commands[words[1]]._option_string_actions
            options = {word.split("=")[0] for word in words[2:] if word.startswith("--")}
            assert options <= set(known), f"{path.name}: {line}: unknown {options - set(known)}"
            assert not options & secret_options, f"{path.name}: a credential on the command line: {line}"


def test_github_workflow_takes_credentials_from_secrets_and_always_keeps_reports():
    workflow = yaml.safe_load((CI_DIR / "github-actions.yml").read_text())
    for job in workflow["jobs"].values():
        run_steps = [s for s in job["steps"] if "conformance run" in s.get("run", "")]
        assert run_steps
        for spec in config.SETTINGS:
            if spec.secret:
                assert all(f"secrets.{spec.env}" in s["env"][spec.env] for s in run_steps), spec.env
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
        assert uploads and all(s["if"] == "always()" and s["with"]["path"] == "reports/" for s in uploads)


def test_gitlab_jobs_always_keep_reports():
    pipeline = yaml.safe_load((CI_DIR / "gitlab-ci.yml").read_text())
    artifacts = pipeline[".conformance"]["artifacts"]
    assert artifacts["when"] == "always" and "reports/" in artifacts["paths"]
    assert all(pipeline[job]["extends"] == ".conformance" for job in ("conformance", "certify"))


def test_example_product_file_is_valid():
    assert set(certify.parse_product(PRODUCT.read_text())) == set(certify.PRODUCT_KEYS)
