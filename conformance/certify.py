"""Certification: a results bundle a customer can check without trusting the vendor's word.

``conformance run --profile certify`` refuses to start unless every MUST can be checked, then
packs the run's reports, the product description and a manifest of SHA-256 digests into
``certification.zip``; the manifest is optionally signed with Ed25519. ``conformance verify``
checks such a bundle: digests, signature, suite and contract versions, the results schema,
every requirement's outcome, and that the reports agree with each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance import __version__, catalogue, config, reports, schemas
from conformance.config import ConfigError, Settings, setting_label

BUNDLE_FILE = "certification.zip"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
PRODUCT_FILE = "product.toml"
REPORT_FILES = (reports.RESULTS_FILE, reports.JUNIT_FILE, reports.HTML_FILE)
MANIFEST_FORMAT = 1
CERTIFY_HYPOTHESIS_PROFILE = "ci"
PRODUCT_KEYS = ("vendor", "product", "version", "contact", "deployment_url")

# The settings the MUST checks skip without (they would be "not checked"). tests/test_certify.py
# reads the checks' target.credential()/target.setting() calls to keep this table complete.
MUST_SETTINGS: dict[str, str] = {
    "no_capability_api_key": "AUTH-04",
    "foreign_org": "AUTH-05",
    "second_user_api_key": "ISO-01",
    "dataset": "DAT-01",
}


class VerifyUsageError(Exception):
    """``conformance verify`` was called wrongly (no such bundle, unreadable key): exit 2."""


# -- before the run ------------------------------------------------------------------------


def prepare(settings: Settings, pytest_args: Sequence[str] = ()) -> Settings:
    """The settings to run with, checked before anything is sent.

    For ``--profile certify``: every setting a MUST needs, a valid product file and signing
    key, no narrowing of the run, and Hypothesis' ci profile with a seed (picked and recorded
    when none is given). Raises :class:`ConfigError` naming the setting.
    """
    if settings.profile != "certify":
        return settings
    if not settings.uses_reference:  # the reference deployment fills every setting itself
        for name, requirement in MUST_SETTINGS.items():
            if getattr(settings, name) is None:
                raise ConfigError(f"{setting_label(name)} is required with --profile certify "
                                  f"(MUST {requirement} cannot be checked without it)")
    load_product(settings.product)
    if settings.signing_key is not None:
        load_private_key(settings.signing_key)
    _refuse_narrowing(settings, pytest_args)
    seed = settings.seed if settings.seed is not None else secrets.randbits(32)
    return config.with_overrides(settings, hypothesis_profile=CERTIFY_HYPOTHESIS_PROFILE, seed=seed)


def ignored_settings(settings: Settings) -> list[str]:
    """Certify-only settings given to a standard run (often from a CI-wide variable)."""
    if settings.profile == "certify":
        return []
    return [name for name in ("product", "signing_key") if getattr(settings, name) is not None]


def _refuse_narrowing(settings: Settings, pytest_args: Sequence[str]) -> None:
    extra = [arg for arg in pytest_args if arg != "--"]
    if extra:
        raise ConfigError(f"--profile certify runs every check: pytest arguments are not allowed "
                          f"(got {' '.join(extra)})")
    if settings.examples is not None:
        raise ConfigError(f"{setting_label('examples')}: --profile certify runs the "
                          f"{CERTIFY_HYPOTHESIS_PROFILE} profile's example counts")
    if settings.hypothesis_profile != CERTIFY_HYPOTHESIS_PROFILE:
        raise ConfigError(f"{setting_label('hypothesis_profile')}: --profile certify runs Hypothesis' "
                          f"{CERTIFY_HYPOTHESIS_PROFILE} profile, not {settings.hypothesis_profile!r}")


def load_product(path: Path | None) -> dict[str, str]:
    """The product description, checked; :class:`ConfigError` names ``--product``."""
    label = setting_label("product")
    if path is None:
        raise ConfigError(f"{label} is required with --profile certify: a TOML file with "
                          f"{', '.join(PRODUCT_KEYS)}")
    try:
        return parse_product(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{label}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{label}: {path} is not UTF-8 text: {error}") from None
    except ValueError as error:
        raise ConfigError(f"{label}: {path}: {error}") from None


def parse_product(text: str) -> dict[str, str]:
    """The five product keys from TOML text; ``ValueError`` says what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not valid TOML: {error}") from None
    missing = [key for key in PRODUCT_KEYS if not isinstance(data.get(key), str) or not data[key].strip()]
    if missing:
        raise ValueError(f"missing or empty key(s): {', '.join(missing)} (each a non-empty string)")
    unknown = sorted(set(data) - set(PRODUCT_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}; known: {', '.join(PRODUCT_KEYS)}")
    parts = urlsplit(data["deployment_url"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"deployment_url {data['deployment_url']!r} is not an http:// or https:// URL")
    return {key: data[key] for key in PRODUCT_KEYS}


# -- keys ----------------------------------------------------------------------------------


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key (PEM); :class:`ConfigError` names ``--signing-key``."""
    label = setting_label("signing_key")
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{label}: cannot read {path}: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{label}: {path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{label}: {path} is not an Ed25519 key (make one with 'conformance keygen')")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key (PEM); :class:`VerifyUsageError` says what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise VerifyUsageError(f"--public-key: cannot read {path}: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise VerifyUsageError(f"--public-key: {path} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise VerifyUsageError(f"--public-key: {path} is not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw public key: how a person compares two keys."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def keygen(private_path: Path, public_path: Path, *, force: bool = False) -> str:
    """Write a new Ed25519 key pair (private key mode 0600); returns the public fingerprint.

    Raises ``FileExistsError`` naming the file unless ``force``.
    """
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise FileExistsError(f"{path} exists (use --force to overwrite)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    descriptor = os.open(private_path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an overwritten file keeps its old mode otherwise
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return fingerprint(key.public_key())


# -- after the run -------------------------------------------------------------------------


def write_bundle(settings: Settings) -> Path:
    """Pack the run's reports, the product file and the (signed) manifest into the bundle."""
    report_dir = settings.report_dir
    product_text = Path(settings.product).read_text(encoding="utf-8")  # type: ignore[arg-type]
    contents = {name: (report_dir / name).read_bytes() for name in REPORT_FILES}
    contents[PRODUCT_FILE] = product_text.encode("utf-8")
    results = json.loads(contents[reports.RESULTS_FILE])
    key = load_private_key(settings.signing_key) if settings.signing_key is not None else None
    manifest = _manifest(contents, results, parse_product(product_text), settings, key)
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    path = report_dir / BUNDLE_FILE
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in contents.items():
            bundle.writestr(name, data)
        bundle.writestr(MANIFEST_FILE, manifest_bytes)
        if key is not None:
            bundle.writestr(SIGNATURE_FILE, key.sign(manifest_bytes).hex() + "\n")
    return path


def _manifest(contents: dict[str, bytes], results: dict[str, Any], product: dict[str, str],
              settings: Settings, key: Ed25519PrivateKey | None) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "suite": {"name": "conformance", "version": __version__},
        "contract": {"version": catalogue.CONTRACT_VERSION, "sha256": catalogue.contract_digest()},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "product": product,
        "verdict": results.get("verdict"),
        "hypothesis": {"profile": settings.hypothesis_profile, "seed": settings.seed},
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in contents.items()},
        "signed": key is not None,
        "signature": None if key is None else {
            "algorithm": "Ed25519", "file": SIGNATURE_FILE,
            "public_key": fingerprint(key.public_key()),
        },
    }


# -- verify --------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``conformance verify`` found: problems fail the bundle, notes do not."""

    bundle: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The printed verdict: one headline, then each problem and note."""
        if self.ok:
            product = self.manifest["product"]
            counts = self.results["counts"]
            head = (f"{self.bundle}: VERIFIED: {product['vendor']} {product['product']} {product['version']} "
                    f"conforms to contract {self.manifest['contract']['version']} "
                    f"({counts['passed']} of {sum(counts[k] for k in ('passed', 'failed', 'not_checked', 'error'))} "
                    f"requirements passed; tested at {self.results['target']['base_url']} with suite "
                    f"{self.manifest['suite']['version']}, Hypothesis seed {self.manifest['hypothesis']['seed']})")
        else:
            count = len(self.problems)
            head = f"{self.bundle}: NOT VERIFIED ({count} problem{'s' if count != 1 else ''})"
        return [head] + [f"  problem: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]


def verify(bundle: Path, public_key: Path | None = None) -> Verification:
    """Check a certification bundle. Raises :class:`VerifyUsageError` when it cannot be read."""
    key = load_public_key(public_key) if public_key is not None else None
    if not Path(bundle).is_file():
        raise VerifyUsageError(f"no such bundle: {bundle}")
    report = Verification(Path(bundle))
    files = _read_bundle(report)
    if files is None:
        return report
    _check_signature(report, files, key, public_key)
    _check_digests(report, files)
    _check_versions(report)
    _check_product(report, files)
    results = _load_results(report, files)
    if results is not None:
        report.results = results
        _check_results(report, results)
        _check_junit(report, files, results)
        _check_html(report, files, results)
    return report


MANIFEST_SHAPE: dict[str, type | tuple[type, ...]] = {
    "format": int, "suite": dict, "contract": dict, "product": dict, "hypothesis": dict,
    "files": dict, "signed": bool, "signature": (dict, type(None)),
}


def _read_bundle(report: Verification) -> dict[str, bytes] | None:
    """The bundle's files, with its manifest parsed into ``report``; None when unreadable."""
    try:
        with zipfile.ZipFile(report.bundle) as archive:
            files = {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError) as error:
        report.problems.append(f"not a readable zip archive: {error}")
        return None
    if MANIFEST_FILE not in files:
        report.problems.append(f"{MANIFEST_FILE} is missing from the bundle")
        return None
    try:
        manifest = json.loads(files[MANIFEST_FILE])
    except (ValueError, UnicodeDecodeError) as error:
        report.problems.append(f"{MANIFEST_FILE} is not valid JSON: {error}")
        return None
    wrong = [key for key, kind in MANIFEST_SHAPE.items()
             if not isinstance(manifest, dict) or not isinstance(manifest.get(key), kind)]
    if wrong:
        report.problems.append(f"{MANIFEST_FILE} lacks or misshapes: {', '.join(wrong)}")
        return None
    report.manifest = manifest
    return files


def _check_signature(report: Verification, files: dict[str, bytes], key: Ed25519PublicKey | None,
                     key_path: Path | None) -> None:
    signed = report.manifest.get("signed") is True
    signature = files.get(SIGNATURE_FILE)
    if signed != (signature is not None):
        report.problems.append(f'{MANIFEST_FILE} says "signed": {str(signed).lower()} but {SIGNATURE_FILE} '
                               f"is {'missing' if signed else 'present'}")
    if key is None:
        if signature is None:
            report.notes.append("UNSIGNED bundle: the digests show the files belong together, "
                                "not who produced them")
        else:
            claimed = (report.manifest["signature"] or {}).get("public_key", "an unknown key")
            report.notes.append(f"signed by {claimed}; the signature was NOT checked "
                                "(give --public-key with the vendor's public key)")
        return
    if signature is None:
        report.problems.append(f"the bundle is unsigned, but --public-key {key_path} was given")
        return
    try:
        key.verify(bytes.fromhex(signature.decode("ascii").strip()), files[MANIFEST_FILE])
    except (InvalidSignature, ValueError, UnicodeDecodeError):
        report.problems.append(f"{SIGNATURE_FILE}: the signature of {MANIFEST_FILE} does not verify with "
                               f"--public-key {key_path} ({fingerprint(key)})")
        return
    report.notes.append(f"signature verified with {fingerprint(key)}")


def _check_digests(report: Verification, files: dict[str, bytes]) -> None:
    listed = report.manifest.get("files")
    if not isinstance(listed, dict):
        report.problems.append(f'{MANIFEST_FILE} has no "files" table of digests')
        return
    for name in (*REPORT_FILES, PRODUCT_FILE):
        if name not in listed:
            report.problems.append(f"{name} is not listed in {MANIFEST_FILE}")
    for name, entry in listed.items():
        if name not in files:
            report.problems.append(f"{name} is listed in {MANIFEST_FILE} but missing from the bundle")
        elif not isinstance(entry, dict) or hashlib.sha256(files[name]).hexdigest() != entry.get("sha256"):
            report.problems.append(f"{name}: SHA-256 digest does not match {MANIFEST_FILE} "
                                   "(the file was changed after the bundle was made)")
    for name in sorted(set(files) - set(listed) - {MANIFEST_FILE, SIGNATURE_FILE}):
        report.problems.append(f"{name} is in the bundle but not listed in {MANIFEST_FILE}")


def supported_suite_version(version: Any) -> bool:
    """Bundles of this suite's release line (same major.minor) are readable by this verifier."""
    return isinstance(version, str) and version.split(".")[:2] == __version__.split(".")[:2]


def _check_versions(report: Verification) -> None:
    manifest = report.manifest
    if manifest.get("format") != MANIFEST_FORMAT:
        report.problems.append(f"{MANIFEST_FILE} format {manifest.get('format')!r} is not supported "
                               f"(this verifier reads format {MANIFEST_FORMAT})")
    version = (manifest.get("suite") or {}).get("version")
    if not supported_suite_version(version):
        report.problems.append(f"suite version {version!r} is not supported by this verifier "
                               f"(conformance {__version__})")
    contract = manifest.get("contract") or {}
    expected = {"version": catalogue.CONTRACT_VERSION, "sha256": catalogue.contract_digest()}
    if contract != expected:
        report.problems.append(f"contract {contract.get('version')!r} (sha256 {contract.get('sha256')!r}) "
                               f"is not this verifier's contract {expected['version']} "
                               f"(sha256 {expected['sha256']})")


def _check_product(report: Verification, files: dict[str, bytes]) -> None:
    if PRODUCT_FILE not in files:
        return  # reported with the digests
    try:
        product = parse_product(files[PRODUCT_FILE].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        report.problems.append(f"{PRODUCT_FILE}: {error}")
        return
    if report.manifest.get("product") != product:
        report.problems.append(f"{MANIFEST_FILE} describes a different product than {PRODUCT_FILE}")


def _load_results(report: Verification, files: dict[str, bytes]) -> dict[str, Any] | None:
    name = reports.RESULTS_FILE
    if name not in files:
        return None
    try:
        results = json.loads(files[name])
    except (ValueError, UnicodeDecodeError) as error:
        report.problems.append(f"{name} is not valid JSON: {error}")
        return None
    errors = sorted(schemas.validator("results.schema.json").iter_errors(results), key=lambda e: list(e.path))
    for error in errors[:5]:
        where = "/".join(str(part) for part in error.path) or "(top level)"
        report.problems.append(f"{name} does not match results.schema.json at {where}: {error.message}")
    if errors or not isinstance(results, dict):
        return None
    return results


def _check_results(report: Verification, results: dict[str, Any]) -> None:
    name = reports.RESULTS_FILE
    manifest = report.manifest
    for key in ("suite", "contract"):
        if (manifest.get(key) or {}).get("version") != results[key]["version"]:
            report.problems.append(f"{name} {key} version {results[key]['version']!r} differs from "
                                   f"{MANIFEST_FILE}'s")
    if results["contract"]["sha256"] != catalogue.contract_digest():
        report.problems.append(f"{name} was judged by another contract (sha256 {results['contract']['sha256']})")
    _check_certify_run(report, results)
    _check_requirements(report, results)
    if results["target"]["reference"]:
        report.notes.append("the run tested the suite's bundled reference deployment, not the "
                            "product's deployment")
    if results["verdict"] != "conformant":
        report.problems.append(f"{name} verdict is {results['verdict']!r}, not 'conformant': "
                               f"{results.get('verdict_reason')}")


def _check_certify_run(report: Verification, results: dict[str, Any]) -> None:
    configuration = results["configuration"]
    if configuration.get("profile") != "certify":
        report.problems.append(f"{reports.RESULTS_FILE} is from a {configuration.get('profile')!r} run, "
                               "not --profile certify")
    if configuration.get("hypothesis_profile") != CERTIFY_HYPOTHESIS_PROFILE:
        report.problems.append(f"{reports.RESULTS_FILE}: Hypothesis ran profile "
                               f"{configuration.get('hypothesis_profile')!r}, not {CERTIFY_HYPOTHESIS_PROFILE!r}")
    if configuration.get("examples") is not None:
        report.problems.append(f"{reports.RESULTS_FILE}: the example count was overridden "
                               f"(--examples {configuration['examples']})")
    seed = configuration.get("seed")
    if not isinstance(seed, int) or seed != (report.manifest.get("hypothesis") or {}).get("seed"):
        report.problems.append(f"{reports.RESULTS_FILE}: Hypothesis seed {seed!r} is not recorded in "
                               f"{MANIFEST_FILE}")
    ran = results.get("hypothesis") or {}
    for key, expected in (("profile", CERTIFY_HYPOTHESIS_PROFILE), ("seed", seed)):
        if key in ran and ran[key] != expected:
            report.problems.append(f"{reports.RESULTS_FILE}: Hypothesis ran with {key} {ran[key]!r}, "
                                   f"not {expected!r}")


def _check_requirements(report: Verification, results: dict[str, Any]) -> None:
    """Every MUST passed, nothing unjudged; SHOULD failures are warnings, an unclaimed MAY a note."""
    reported = results["requirements"]
    checks = {check["id"]: check for check in results["checks"]}
    for rid in sorted(set(reported) - set(catalogue.REQUIREMENTS)):
        report.problems.append(f"{rid} in {reports.RESULTS_FILE} is not a requirement of the contract")
    for rid, requirement in catalogue.REQUIREMENTS.items():
        entry = reported.get(rid)
        label = f"{rid} ({requirement.level})"
        if entry is None:
            report.problems.append(f"{label} is missing from {reports.RESULTS_FILE}")
            continue
        outcome, reason = entry["outcome"], entry.get("reason")
        if entry["level"] != requirement.level:
            report.problems.append(f"{label} is reported as a {entry['level']}")
        if outcome == "passed":
            _check_passed_backed_by_checks(report, rid, entry, checks)
        elif requirement.level == "MUST" or outcome == "error":
            report.problems.append(f"{label} is {outcome.replace('_', ' ')}: {reason}")
        elif outcome == "not_checked" and requirement.level == "SHOULD":
            report.problems.append(f"{label} is not checked: {reason}")
        elif outcome == "not_checked":
            report.notes.append(f"{label} not claimed (not checked): {reason}")
        else:
            report.notes.append(f"warning: {label} failed: {reason}")


def _check_passed_backed_by_checks(report: Verification, rid: str, entry: dict[str, Any],
                                   checks: dict[str, dict[str, Any]]) -> None:
    if not entry["checks"]:
        report.problems.append(f"{rid} is reported passed but no check ran for it")
    for check_id in entry["checks"]:
        check = checks.get(check_id)
        if check is None:
            report.problems.append(f"{rid} is reported passed by check {check_id}, which is not in "
                                   f"{reports.RESULTS_FILE}")
        elif check["outcome"] != "passed":
            report.problems.append(f"{rid} is reported passed but its check {check_id} is {check['outcome']}")


def _check_junit(report: Verification, files: dict[str, bytes], results: dict[str, Any]) -> None:
    name = reports.JUNIT_FILE
    if name not in files:
        return
    try:
        root = ET.fromstring(files[name])
    except ET.ParseError as error:
        report.problems.append(f"{name} is not valid XML: {error}")
        return
    verdicts = [p.get("value") for p in root.iter("property") if p.get("name") == "verdict"]
    if verdicts != [results["verdict"]]:
        report.problems.append(f"{name} verdict {', '.join(map(str, verdicts)) or 'none'} disagrees with "
                               f"{reports.RESULTS_FILE} ({results['verdict']})")
    cases = list(root.iter("testcase"))
    if len(cases) != len(results["checks"]):
        report.problems.append(f"{name} has {len(cases)} test cases, {reports.RESULTS_FILE} "
                               f"{len(results['checks'])} checks")
    failing = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    if results["verdict"] == "conformant" and failing:
        report.problems.append(f"{name} has failing test cases ({', '.join(failing[:3])}) under a "
                               "conformant verdict")


_HTML_VERDICT = re.compile(r'class="cf-verdict cf-([a-z_]+)"')
_HTML_REQUIREMENT = re.compile(r'data-requirement="([A-Z0-9-]+)" data-outcome="([a-z_]+)"')


def _check_html(report: Verification, files: dict[str, bytes], results: dict[str, Any]) -> None:
    name = reports.HTML_FILE
    if name not in files:
        return
    text = files[name].decode("utf-8", errors="replace")
    verdicts = set(_HTML_VERDICT.findall(text))
    if verdicts != {results["verdict"]}:
        report.problems.append(f"{name} verdict {', '.join(sorted(verdicts)) or 'none'} disagrees with "
                               f"{reports.RESULTS_FILE} ({results['verdict']})")
    shown = dict(_HTML_REQUIREMENT.findall(text))
    expected = {rid: entry["outcome"] for rid, entry in results["requirements"].items()}
    differing = sorted(rid for rid in set(shown) | set(expected) if shown.get(rid) != expected.get(rid))
    if differing:
        report.problems.append(f"{name} requirement outcomes disagree with {reports.RESULTS_FILE} for "
                               f"{', '.join(differing[:5])}")
