"""Certification: a results bundle a customer can check without trusting the vendor's word.

``conformance run --profile certify`` refuses to start unless every MUST can be checked, then
packs the run's reports, the product description and a manifest of SHA-256 digests into
``certification.zip``; the manifest is optionally signed with Ed25519. ``conformance verify``
checks such a bundle: its zip structure (bounded reads, only the writer's entry names), digests,
the signature under a trusted public key, suite and contract versions, the results schema, every
requirement's outcome, the tested target, and that the reports agree with each other. Without a
trusted key it checks integrity only and never says VERIFIED.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import stat
import tomllib
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance import __version__, catalogue, config, reports, schemas
from conformance import results as results_model
from conformance.config import ConfigError, Settings, setting_label
from conformance.redaction import Redactor
from conformance.terminal import visible

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
# MUSTs checked with whichever of several settings is given: certify needs at least one.
MUST_ANY_SETTINGS: dict[str, tuple[str, ...]] = {
    "AUTH-09": ("revoked_api_key", "expired_bearer_token"),
}

# Bearer tokens are optional: the rule lives with the verdict (conformance.results); certify and verify
# name the same things.
BEARER_SETTING = results_model.BEARER_SETTING
BEARER_MAY = results_model.BEARER_MAY
BEARER_MUSTS = results_model.BEARER_MUSTS

# The contract versions whose bundles this verifier judges: the one the catalogue holds.
SUPPORTED_CONTRACT_VERSIONS: tuple[str, ...] = (catalogue.CONTRACT_VERSION,)


class VerifyUsageError(Exception):
    """``conformance verify`` was called wrongly (no such bundle, unreadable key): exit 2."""


# -- before the run ------------------------------------------------------------------------


def prepare(settings: Settings, pytest_args: Sequence[str] = ()) -> Settings:
    """The settings to run with, checked before anything is sent.

    For ``--profile certify``: every setting a MUST needs (a bearer token is optional: see
    :data:`BEARER_MUSTS`), a valid product file whose ``deployment_url`` has the tested base
    URL's origin, a valid signing key, no narrowing of the run, and Hypothesis' ci profile with a
    seed (picked and recorded when none is given). Raises :class:`ConfigError` naming the setting.
    """
    if settings.profile != "certify":
        return settings
    if settings.baseline is not None:  # a certificate may not pass with known failures
        raise ConfigError(f"{setting_label('baseline')} is not allowed with --profile certify: every MUST "
                          "must pass, none may be a known failure")
    product = load_product(settings.product)
    if settings.signing_key is not None:
        load_private_key(settings.signing_key)
    _refuse_narrowing(settings, pytest_args)
    if settings.base_url is None:
        raise ConfigError(f"--profile certify needs {setting_label('base_url')}: a run against the bundled "
                          "reference deployment certifies nothing (verify refuses such a bundle)")
    _require_must_settings(settings)
    _refuse_other_origin(product["deployment_url"], settings.base_url)
    seed = settings.seed if settings.seed is not None else secrets.randbits(32)
    return config.with_overrides(settings, hypothesis_profile=CERTIFY_HYPOTHESIS_PROFILE, seed=seed)


def ignored_settings(settings: Settings) -> list[str]:
    """Certify-only settings given to a standard run (often from a CI-wide variable)."""
    if settings.profile == "certify":
        return []
    return [name for name in ("product", "signing_key") if getattr(settings, name) is not None]


def _require_must_settings(settings: Settings) -> None:
    for name, requirement in MUST_SETTINGS.items():
        if getattr(settings, name) is None:
            raise ConfigError(f"{setting_label(name)} is required with --profile certify "
                              f"(MUST {requirement} cannot be checked without it)")
    for requirement, names in MUST_ANY_SETTINGS.items():
        if requirement in catalogue.REQUIREMENTS and all(getattr(settings, name) is None for name in names):
            raise ConfigError(f"{' or '.join(setting_label(name) for name in names)} is required with "
                              f"--profile certify (MUST {requirement} cannot be checked without one)")


def _refuse_other_origin(deployment_url: str, base_url: str) -> None:
    if origin(deployment_url) != origin(base_url):
        raise ConfigError(f"{setting_label('product')}: deployment_url {deployment_url} is not at the tested "
                          f"{setting_label('base_url')} {base_url} (origins {show_origin(origin(deployment_url))} "
                          f"and {show_origin(origin(base_url))}): a certificate covers the deployment it tested")


DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, the default port filled in; None for any other."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number in 0-65535, a malformed IPv6 host
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), DEFAULT_PORTS[parts.scheme] if port is None else port


def show_origin(where: Origin | None) -> str:
    if where is None:
        return "none: not an http(s) URL"
    scheme, host, port = where
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _refuse_narrowing(settings: Settings, pytest_args: Sequence[str]) -> None:
    extra = [arg for arg in pytest_args if arg != "--"]
    if extra:
        raise ConfigError(f"--profile certify runs every check: pytest arguments are not allowed "
                          f"(got {' '.join(extra)})")
    for name in ("requirement", "last_failed"):
        if getattr(settings, name):
            raise ConfigError(f"{setting_label(name)}: --profile certify runs every check")
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
    """Pack the run's reports, the product file and the (signed) manifest into the bundle.

    Every entry passes the run's redaction before it is digested and packed, so what is
    signed is exactly what is shipped, and holds no credential."""
    report_dir = settings.report_dir
    redactor = Redactor(settings.secrets())
    product_text = redactor.text(Path(settings.product).read_text(encoding="utf-8"))  # type: ignore[arg-type]
    contents = {name: redactor.data((report_dir / name).read_bytes()) for name in REPORT_FILES}
    contents[PRODUCT_FILE] = product_text.encode("utf-8")
    results = json.loads(contents[reports.RESULTS_FILE])
    key = load_private_key(settings.signing_key) if settings.signing_key is not None else None
    manifest = _manifest(contents, results, parse_product(product_text), settings, key)
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    manifest_bytes = redactor.data(manifest_bytes)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in contents.items():
            bundle.writestr(name, data)
        bundle.writestr(MANIFEST_FILE, manifest_bytes)
        if key is not None:
            bundle.writestr(SIGNATURE_FILE, key.sign(manifest_bytes).hex() + "\n")
    # The zip's bytes are compressed: redaction happened on each entry above, not here.
    path = report_dir / BUNDLE_FILE
    path.write_bytes(packed.getvalue())
    return path


def _manifest(contents: dict[str, bytes], results: dict[str, Any], product: dict[str, str],
              settings: Settings, key: Ed25519PrivateKey | None) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "suite": {"name": "conformance", "version": __version__},
        "contract": {"version": catalogue.CONTRACT_VERSION, "sha256": catalogue.contract_digest()},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
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

Status = Literal["verified", "integrity_only", "not_verified"]
EXIT_VERIFIED = 0
EXIT_NOT_VERIFIED = 1
EXIT_INTEGRITY_ONLY = 4
EXIT_CODES: dict[Status, int] = {"verified": EXIT_VERIFIED, "not_verified": EXIT_NOT_VERIFIED,
                                 "integrity_only": EXIT_INTEGRITY_ONLY}
NO_TRUST_ANCHOR = ("INTEGRITY ONLY - NOT CERTIFIED: no trusted public key was given (--public-key); "
                   "anyone could have written this bundle")


@dataclass
class Verification:
    """What ``conformance verify`` found: problems fail the bundle, notes do not.

    Only a bundle whose manifest signature verified under the caller's trusted public key
    (``trusted_key``) and that has no problem is verified; without a trusted key the best a
    bundle gets is "integrity only". Texts hold bundle values raw: :meth:`lines` escapes them.
    """

    bundle: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    trusted_key: str | None = None  # the fingerprint of --public-key, once the signature verified

    @property
    def status(self) -> Status:
        if self.problems:
            return "not_verified"
        return "verified" if self.trusted_key is not None else "integrity_only"

    @property
    def ok(self) -> bool:
        """Verified: certified under a trusted key, nothing wrong."""
        return self.status == "verified"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def lines(self) -> list[str]:
        """The printed verdict: a headline, what the certificate does not cover, each problem and
        note. Every line goes through :func:`conformance.terminal.visible`, so nothing the bundle
        holds can move the cursor, end the line or reorder it."""
        head = {"verified": self._verified_head, "integrity_only": self._integrity_head,
                "not_verified": self._not_verified_head}[self.status]()
        body = ([head] + [f"  NOT COVERED: {text}" for text in self.uncovered]
                + [f"  problem: {text}" for text in self.problems] + [f"  note: {text}" for text in self.notes])
        return [visible(line) for line in body]

    def _verified_head(self) -> str:
        product, counts = self.manifest["product"], self.results["counts"]
        total = sum(counts[k] for k in ("passed", "failed", "not_checked", "error"))
        return (f"{self.bundle}: VERIFIED: {product['vendor']} {product['product']} {product['version']} "
                f"conforms to contract {self.manifest['contract']['version']} ({counts['passed']} of {total} "
                f"requirements passed; tested at {self.results['target']['base_url']} with suite "
                f"{self.manifest['suite']['version']}, Hypothesis seed {self.manifest['hypothesis']['seed']}; "
                f"signed by {self.trusted_key})")

    def _integrity_head(self) -> str:
        return f"{self.bundle}: {NO_TRUST_ANCHOR}"

    def _not_verified_head(self) -> str:
        count = len(self.problems)
        return f"{self.bundle}: NOT VERIFIED ({count} problem{'s' if count != 1 else ''})"


def verify(bundle: Path, public_key: Path | None = None) -> Verification:
    """Check a certification bundle. Raises :class:`VerifyUsageError` when it cannot be read."""
    key = load_public_key(public_key) if public_key is not None else None
    if not Path(bundle).is_file():
        raise VerifyUsageError(f"no such bundle: {bundle}")
    report = Verification(Path(bundle))
    try:
        _verify_into(report, key, public_key)
    except Exception as error:  # a checker tripped on content nobody foresaw: never a pass
        report.problems.append(f"the bundle could not be checked ({type(error).__name__}: {error})")
    if key is None and report.problems:
        report.notes.append("no trusted public key was given (--public-key): even without these problems "
                            "this bundle would be checked for integrity only, not certified")
    return report


def _verify_into(report: Verification, key: Ed25519PublicKey | None, key_path: Path | None) -> None:
    files = _read_bundle(report)
    if files is None:
        return
    _check_signature(report, files, key, key_path)
    _check_digests(report, files)
    _check_versions(report)
    _check_product(report, files)
    results = _load_results(report, files)
    if results is not None:
        report.results = results
        _check_results(report, results)
        _check_target(report, results)
        _check_junit(report, files, results)
        _check_html(report, files, results)


# -- verify: reading the zip, bounded --------------------------------------------------------

MiB = 1024 * 1024
# The only entries the bundle writer makes, each with the most this verifier will inflate.
ENTRY_CAPS: dict[str, int] = {
    reports.RESULTS_FILE: 16 * MiB, reports.JUNIT_FILE: 16 * MiB, reports.HTML_FILE: 32 * MiB,
    PRODUCT_FILE: 64 * 1024, MANIFEST_FILE: 1 * MiB, SIGNATURE_FILE: 1024,
}
TOTAL_CAP = 48 * MiB  # all entries together, inflated
MAX_ENTRIES = 64  # beyond this the entries are not even listed one by one
READ_CHUNK = 64 * 1024
_UTF8_NAME_FLAG = 0x800  # general purpose flag bit 11: the name is UTF-8
_ENCRYPTED_FLAG = 0x1
_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, UnicodeDecodeError,
               ValueError)

MANIFEST_SHAPE: dict[str, type | tuple[type, ...]] = {
    "format": int, "suite": dict, "contract": dict, "product": dict, "hypothesis": dict,
    "files": dict, "signed": bool, "signature": (dict, type(None)),
}


class _BadEntry(Exception):
    """An entry that cannot be read within its bounds; the message says which and why."""


def _read_bundle(report: Verification) -> dict[str, bytes] | None:
    """The bundle's files, with its manifest parsed into ``report``; None when it is refused."""
    try:
        with zipfile.ZipFile(report.bundle) as archive:
            infos = archive.infolist()
            report.problems.extend(_structure_problems(infos))
            if report.problems:
                return None
            files = {info.filename: _read_entry(archive, info) for info in infos}
    except _BadEntry as error:
        report.problems.append(str(error))
        return None
    except _ZIP_ERRORS as error:
        report.problems.append(f"not a readable zip archive: {error}")
        return None
    return _parse_manifest(report, files)


def _structure_problems(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Why the entries are not a bundle this suite writes, from the central directory alone."""
    if len(infos) > MAX_ENTRIES:
        return [f"the zip has {len(infos)} entries; a bundle has at most {len(ENTRY_CAPS)}"]
    found = [problem for info in infos if (problem := _entry_problem(info)) is not None]
    counts = Counter(info.filename for info in infos)
    for name, count in sorted(counts.items()):
        if count > 1:
            found.append(f'entry "{name}" appears {count} times in the zip (only one could be '
                         "checked; another program could read the other)")
    declared = sum(info.file_size for info in infos)
    if declared > TOTAL_CAP:
        found.append(f"the entries declare {declared} bytes in all, over this verifier's cap of {TOTAL_CAP}")
    return found


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why this one entry is refused, or None."""
    raw = info.orig_filename  # before zipfile cuts it at a NUL byte
    shown = f'entry "{raw}"'
    if not info.flag_bits & _UTF8_NAME_FLAG and not raw.isascii():
        return f"{shown}: its name has non-ASCII bytes but is not marked UTF-8 (zip flag bit 11)"
    if "\x00" in raw:
        return f"{shown}: its name holds a NUL byte"
    if raw.startswith("/"):
        return f"{shown}: an absolute name"
    if "\\" in raw or _DRIVE_LETTER.match(raw):
        return f"{shown}: a backslash or drive letter in its name"
    if ".." in raw.split("/"):
        return f"{shown}: a '..' component in its name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{shown}: a symbolic link"
    if raw not in ENTRY_CAPS:
        return f"{shown}: not a file the bundle writer makes (expected only {', '.join(ENTRY_CAPS)})"
    return _entry_format_problem(info, shown)


def _entry_format_problem(info: zipfile.ZipInfo, shown: str) -> str | None:
    if info.flag_bits & _ENCRYPTED_FLAG:
        return f"{shown}: encrypted"
    if info.compress_type not in _COMPRESSIONS:
        return f"{shown}: compression method {info.compress_type} (the bundle writer uses deflate)"
    if info.file_size > ENTRY_CAPS[info.filename]:
        return (f"{shown}: declares {info.file_size} bytes, over this verifier's cap of "
                f"{ENTRY_CAPS[info.filename]} for it")
    return None


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The entry inflated in chunks, never past its declared size (which is within its cap)."""
    data = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(READ_CHUNK):
                if len(data) + len(chunk) > info.file_size:
                    raise _BadEntry(f'entry "{info.filename}" inflates to more than the {info.file_size} '
                                    "bytes its header declares")
                data += chunk
    except _ZIP_ERRORS as error:
        raise _BadEntry(f'entry "{info.filename}" cannot be read: {error}') from None
    if len(data) != info.file_size:
        raise _BadEntry(f'entry "{info.filename}" inflates to {len(data)} bytes, not the {info.file_size} '
                        "its header declares")
    return bytes(data)


def _parse_json(data: bytes) -> Any:
    """JSON from bytes; ``ValueError`` for anything that is not (bad UTF-8, nesting too deep)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _parse_manifest(report: Verification, files: dict[str, bytes]) -> dict[str, bytes] | None:
    if MANIFEST_FILE not in files:
        report.problems.append(f"{MANIFEST_FILE} is missing from the bundle")
        return None
    try:
        manifest = _parse_json(files[MANIFEST_FILE])
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        report.problems.append(f"{MANIFEST_FILE} is not valid JSON: {error}")
        return None
    wrong = [key for key, kind in MANIFEST_SHAPE.items()
             if not isinstance(manifest, dict) or not isinstance(manifest.get(key), kind)]
    if wrong:
        report.problems.append(f"{MANIFEST_FILE} lacks or misshapes: {', '.join(wrong)}")
        return None
    report.manifest = manifest
    return files


# -- verify: trust ---------------------------------------------------------------------------


def _check_signature(report: Verification, files: dict[str, bytes], key: Ed25519PublicKey | None,
                     key_path: Path | None) -> None:
    """The trust anchor is the caller's key, never the fingerprint the manifest claims."""
    signed = report.manifest["signed"] is True
    signature = files.get(SIGNATURE_FILE)
    if signed != (signature is not None):
        report.problems.append(f'{MANIFEST_FILE} says "signed": {str(signed).lower()} but {SIGNATURE_FILE} '
                               f"is {'missing' if signed else 'present'}")
    claimed = (report.manifest["signature"] or {}).get("public_key")
    if key is None:
        report.notes.append(_untrusted_signature_note(signature is not None, claimed))
        return
    if signature is None:
        report.problems.append(f"the bundle is unsigned, but --public-key {key_path} was given")
        return
    if not _signature_valid(key, signature, files[MANIFEST_FILE]):
        report.problems.append(f"{SIGNATURE_FILE}: the signature of {MANIFEST_FILE} does not verify with "
                               f"--public-key {key_path} ({fingerprint(key)})")
        return
    if claimed != fingerprint(key):
        report.problems.append(f"{MANIFEST_FILE} names the signing key {claimed}, but it was signed with "
                               f"--public-key {key_path} ({fingerprint(key)})")
        return
    report.trusted_key = fingerprint(key)
    report.notes.append(f"signature verified with --public-key {key_path} ({fingerprint(key)})")


def _untrusted_signature_note(has_signature: bool, claimed: Any) -> str:
    if not has_signature:
        return "UNSIGNED bundle: the digests show the files belong together, not who produced them"
    return (f"{MANIFEST_FILE} claims a signature by {claimed}; it was NOT checked, and a claimed key "
            "fingerprint proves nothing (give --public-key with the vendor's public key)")


def _signature_valid(key: Ed25519PublicKey, signature: bytes, manifest: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature.decode("ascii").strip()), manifest)
    except (InvalidSignature, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return True


def _check_digests(report: Verification, files: dict[str, bytes]) -> None:
    listed = report.manifest["files"]
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


# -- verify: versions, product, target -------------------------------------------------------


def supported_suite_version(version: Any) -> bool:
    """Bundles of this suite's release line (same major.minor) are readable by this verifier."""
    return isinstance(version, str) and version.split(".")[:2] == __version__.split(".")[:2]


def _check_versions(report: Verification) -> None:
    manifest = report.manifest
    if manifest["format"] != MANIFEST_FORMAT:
        report.problems.append(f"{MANIFEST_FILE} format {manifest['format']!r} is not supported "
                               f"(this verifier reads format {MANIFEST_FORMAT})")
    version = manifest["suite"].get("version")
    if not supported_suite_version(version):
        report.problems.append(f"suite version {version!r} is not supported by this verifier "
                               f"(conformance {__version__})")
    _check_contract(report, manifest["contract"])


def _check_contract(report: Verification, contract: dict[str, Any]) -> None:
    version, digest = contract.get("version"), contract.get("sha256")
    if version not in SUPPORTED_CONTRACT_VERSIONS:
        report.problems.append(f"contract version {version!r} is not supported: this verifier (conformance "
                               f"{__version__}) checks bundles of contract version "
                               f"{' or '.join(SUPPORTED_CONTRACT_VERSIONS)} only")
    elif digest != catalogue.contract_digest():
        report.problems.append(f"contract {version} with sha256 {digest!r} is not the text of contract {version} "
                               f"this verifier holds (sha256 {catalogue.contract_digest()})")


def _check_product(report: Verification, files: dict[str, bytes]) -> None:
    if PRODUCT_FILE not in files:
        return  # reported with the digests
    try:
        product = parse_product(files[PRODUCT_FILE].decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        report.problems.append(f"{PRODUCT_FILE}: {error}")
        return
    if report.manifest["product"] != product:
        report.problems.append(f"{MANIFEST_FILE} describes a different product than {PRODUCT_FILE}")


def _check_target(report: Verification, results: dict[str, Any]) -> None:
    """The run tested the product's deployment: not the bundled reference, at its deployment_url."""
    target = results["target"]
    if target["reference"]:
        report.problems.append(f"{reports.RESULTS_FILE}: the run tested the suite's bundled reference "
                               "deployment, not the product (a reference run certifies nothing)")
        return
    deployment = report.manifest["product"].get("deployment_url")
    if not isinstance(deployment, str):
        return  # reported with the product
    tested = target["base_url"]
    if origin(deployment) is None or origin(deployment) != origin(tested):
        report.problems.append(f"the product's deployment_url {deployment} is not where the run tested: "
                               f"{reports.RESULTS_FILE} target {tested} (origins {show_origin(origin(deployment))} "
                               f"and {show_origin(origin(tested))})")


# -- verify: results -------------------------------------------------------------------------


def _load_results(report: Verification, files: dict[str, bytes]) -> dict[str, Any] | None:
    name = reports.RESULTS_FILE
    if name not in files:
        return None
    try:
        results = _parse_json(files[name])
    except ValueError as error:
        report.problems.append(f"{name} is not valid JSON: {error}")
        return None
    errors = sorted(schemas.validator("results.schema.json").iter_errors(results), key=lambda e: list(e.path))
    for schema_error in errors[:5]:
        where = "/".join(str(part) for part in schema_error.path) or "(top level)"
        report.problems.append(f"{name} does not match results.schema.json at {where}: {schema_error.message}")
    if errors or not isinstance(results, dict):
        return None
    return results


def _check_results(report: Verification, results: dict[str, Any]) -> None:
    name = reports.RESULTS_FILE
    manifest = report.manifest
    for key in ("suite", "contract"):
        if manifest[key].get("version") != results[key]["version"]:
            report.problems.append(f"{name} {key} version {results[key]['version']!r} differs from "
                                   f"{MANIFEST_FILE}'s")
    if results["contract"]["sha256"] != catalogue.contract_digest():
        report.problems.append(f"{name} was judged by another contract (sha256 {results['contract']['sha256']})")
    if manifest.get("verdict") != results["verdict"]:
        report.problems.append(f"{MANIFEST_FILE} verdict {manifest.get('verdict')!r} differs from {name}'s "
                               f"({results['verdict']!r})")
    _check_certify_run(report, results)
    exempted = _check_requirements(report, results)
    _check_verdict(report, results, exempted)


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
    if not isinstance(seed, int) or seed != report.manifest["hypothesis"].get("seed"):
        report.problems.append(f"{reports.RESULTS_FILE}: Hypothesis seed {seed!r} is not recorded in "
                               f"{MANIFEST_FILE}")
    ran = results.get("hypothesis") or {}
    for key, expected in (("profile", CERTIFY_HYPOTHESIS_PROFILE), ("seed", seed)):
        if key in ran and ran[key] != expected:
            report.problems.append(f"{reports.RESULTS_FILE}: Hypothesis ran with {key} {ran[key]!r}, "
                                   f"not {expected!r}")


def bearer_exempt(results: dict[str, Any]) -> frozenset[str]:
    """The MUSTs this run may leave not checked (see :func:`conformance.results.bearer_exempt`)."""
    outcomes = {rid: (entry or {}).get("outcome") for rid, entry in results["requirements"].items()}
    return results_model.bearer_exempt(results["configuration"], outcomes)


def _check_requirements(report: Verification, results: dict[str, Any]) -> set[str]:
    """Every MUST passed (but see :func:`bearer_exempt`), nothing unjudged; SHOULD failures are
    warnings, an unclaimed MAY a note. Returns the exempted MUSTs that were not checked."""
    reported = results["requirements"]
    checks = {check["id"]: check for check in results["checks"]}
    exempt, exempted = bearer_exempt(results), set()
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
        elif outcome == "not_checked" and rid in exempt:
            exempted.add(rid)
        elif requirement.level == "MUST" or outcome == "error":
            report.problems.append(f"{label} is {outcome.replace('_', ' ')}: {reason}")
        elif outcome == "not_checked" and requirement.level == "SHOULD":
            report.problems.append(f"{label} is not checked: {reason}")
        elif outcome == "not_checked":
            report.notes.append(f"{label} not claimed (not checked): {reason}")
        else:
            report.notes.append(f"warning: {label} failed: {reason}")
    if exempted:
        report.uncovered.append(_bearer_uncovered(sorted(exempted)))
    return exempted


def _bearer_uncovered(exempted: list[str]) -> str:
    return (f"this certificate does not cover bearer-token authentication: the run had no bearer token, "
            f"so {', '.join(exempted)} (MUST) and {BEARER_MAY} (MAY) were not checked "
            f"(a run given {setting_label(BEARER_SETTING)} checks them)")


def _check_verdict(report: Verification, results: dict[str, Any], exempted: set[str]) -> None:
    """Conformant; or incomplete only for MUSTs exempted (any other unchecked MUST is a problem already)."""
    verdict = results["verdict"]
    if verdict == "conformant" or (verdict == "incomplete" and exempted):
        return
    report.problems.append(f"{reports.RESULTS_FILE} verdict is {verdict!r}, not 'conformant': "
                           f"{results.get('verdict_reason')}")


def _check_passed_backed_by_checks(report: Verification, rid: str, entry: dict[str, Any],
                                   checks: dict[str, dict[str, Any]]) -> None:
    if not entry["checks"]:
        report.problems.append(f"{rid} is reported passed but no check ran for it")
    elif not any(checks.get(check_id, {}).get("outcome") == "passed" for check_id in entry["checks"]):
        report.problems.append(f"{rid} is reported passed but none of its checks passed")
    for check_id in entry["checks"]:
        check = checks.get(check_id)
        if check is None:
            report.problems.append(f"{rid} is reported passed by check {check_id}, which is not in "
                                   f"{reports.RESULTS_FILE}")
        elif check["outcome"] != "passed" and not _had_nothing_to_judge(check):
            report.problems.append(f"{rid} is reported passed but its check {check_id} is {check['outcome']}")


def _had_nothing_to_judge(check: dict[str, Any]) -> bool:
    """A check judging only what the run happened to show, shown nothing (the requirement's other
    checks judged it)."""
    message = check.get("message")
    return (check["outcome"] == "not_checked" and isinstance(message, str)
            and message.startswith(results_model.NOTHING_TO_JUDGE))


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
    failing = [str(case.get("name")) for case in cases
               if case.find("failure") is not None or case.find("error") is not None]
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
