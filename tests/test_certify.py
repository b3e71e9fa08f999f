"""Certification bundles: real certify runs against a reference deployment, then the bundle
altered the ways an accident or a forger would (by hand, as an attacker builds them), and the
CI recipes checked against the CLI."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import re
import shlex
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance import catalogue, certify, config
from conformance.checks.test_auth import NO_LONGER_USABLE
from conformance.cli import build_parser, main
from conformance.reference import ReferenceServer
from conformance.results import NOTHING_TO_JUDGE
from conformance.terminal import visible
from conftest import clean_env
from tests.peak_memory import PEAK_MIB

ROOT = Path(__file__).resolve().parent.parent
CI_DIR = ROOT / "examples" / "ci"
PRODUCT = ROOT / "examples" / "ci" / "product.toml"
EXAMPLE_URL = "https://api.example.com"
BEARER_ENV = config.SPECS_BY_NAME[certify.BEARER_SETTING].env
MiB = 1024 * 1024


def conformance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@dataclass
class Verified:
    """What ``conformance verify`` printed and returned."""

    code: int
    stdout: str
    stderr: str

    @property
    def head(self) -> str:
        return self.stdout.splitlines()[0]

    def lines(self, kind: str) -> list[str]:
        prefix = f"  {kind}: "
        return [line.removeprefix(prefix) for line in self.stdout.splitlines() if line.startswith(prefix)]

    @property
    def problems(self) -> list[str]:
        return self.lines("problem")

    def has_problem(self, fragment: str) -> bool:
        return any(fragment in line for line in self.problems)


def verify(bundle: Path, public_key: Path | None = None) -> Verified:
    """``conformance verify`` through the CLI's own entry point, in this process (fast)."""
    out, err = io.StringIO(), io.StringIO()
    args = ["verify", str(bundle), *(["--public-key", str(public_key)] if public_key else [])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return Verified(code, out.getvalue(), err.getvalue())


def problems(result: subprocess.CompletedProcess) -> list[str]:
    return [line.removeprefix("  problem: ") for line in result.stdout.splitlines()
            if line.startswith("  problem: ")]


# -- genuine bundles, one set per module ------------------------------------------------------


@dataclass
class Bundles:
    signed: Path  # certify run against a reference deployment by URL, bearer token configured
    no_bearer: Path  # the same without a bearer token
    unsigned: Path  # the signed run's reports packed without a key
    private_key: Path
    public_key: Path
    run_stdout: str
    base_url: str

    @property
    def vendor(self) -> Ed25519PrivateKey:
        return certify.load_private_key(self.private_key)


def certify_run(reports: Path, product: Path, private_key: Path, env: dict[str, str]) -> str:
    run = conformance("run", "--profile", "certify", "--product", str(product), "--signing-key", str(private_key),
                      "--report-dir", str(reports), env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """Two certify runs against a reference deployment given by URL (as a vendor tests theirs),
    signed: with and without a bearer token; the first run's reports packed unsigned too."""
    base = tmp_path_factory.mktemp("certify")
    private_key, public_key = base / "vendor.pem", base / "vendor.pub.pem"
    made = conformance("keygen", "--private-key", str(private_key))
    assert made.returncode == 0, made.stderr
    with ReferenceServer() as server:
        product = base / "product.toml"
        product.write_text(PRODUCT.read_text().replace(EXAMPLE_URL, server.base_url))
        env = server.suite_env(base)
        run_stdout = certify_run(base / "with-bearer", product, private_key, env)
        certify_run(base / "no-bearer", product, private_key, {**env, BEARER_ENV: ""})
        base_url = server.base_url
    signed, no_bearer = base / "signed.zip", base / "no-bearer.zip"
    (base / "with-bearer" / certify.BUNDLE_FILE).rename(signed)
    (base / "no-bearer" / certify.BUNDLE_FILE).rename(no_bearer)
    seed = json.loads((base / "with-bearer" / "results.json").read_text())["configuration"]["seed"]
    unsigned = certify.write_bundle(config.Settings(report_dir=base / "with-bearer", product=product,
                                                    profile="certify", hypothesis_profile="ci", seed=seed))
    return Bundles(signed, no_bearer, unsigned, private_key, public_key, run_stdout, base_url)


# -- building bundles by hand --------------------------------------------------------------------


def read_bundle(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pack(dest: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """A zip of exactly these entries, in this order (duplicates too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return dest


def redo_manifest(files: dict[str, bytes], edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """The manifest's digests made to match ``files`` again, then ``edit`` applied."""
    manifest = json.loads(files[certify.MANIFEST_FILE])
    for name, entry in manifest["files"].items():
        entry.update(sha256=hashlib.sha256(files[name]).hexdigest(), bytes=len(files[name]))
    if edit is not None:
        edit(manifest)
    files[certify.MANIFEST_FILE] = (json.dumps(manifest, indent=2) + "\n").encode()


def write_altered(source: Path, dest: Path, changes: dict[str, bytes], *, refresh_digests: bool = False,
                  sign_with: Ed25519PrivateKey | None = None,
                  manifest_edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of ``source`` with some files replaced; optionally the manifest redone to match
    (and edited), and signed again."""
    files = {**read_bundle(source), **changes}
    if refresh_digests or sign_with is not None or manifest_edit is not None:
        redo_manifest(files, manifest_edit)
    if sign_with is not None:
        files[certify.SIGNATURE_FILE] = sign_with.sign(files[certify.MANIFEST_FILE]).hex().encode()
    return pack(dest, files.items())


def altered_results(source: Path, alter: Callable[[dict[str, Any]], Any]) -> bytes:
    results = json.loads(read_bundle(source)["results.json"])
    alter(results)
    return json.dumps(results, indent=2).encode()


def resigned(bundles: Bundles, dest: Path, alter_results: Callable[[dict[str, Any]], Any], *,
             source: Path | None = None) -> Path:
    """The signed bundle with results.json changed and everything redone and signed with the
    vendor's own key: a forgery only verify's own checks can catch."""
    source = source or bundles.signed
    return write_altered(source, dest, {"results.json": altered_results(source, alter_results)},
                         sign_with=bundles.vendor)


def with_product(bundles: Bundles, dest: Path, **values: str) -> Path:
    """The signed bundle describing another product (product.toml and manifest), re-signed."""
    text = read_bundle(bundles.signed)[certify.PRODUCT_FILE].decode()
    for key, value in values.items():
        line = f"{key} = {json.dumps(value)}"
        text = re.sub(rf"(?m)^{key} = .*$", lambda _, line=line: line, text)
    product = certify.parse_product(text)
    return write_altered(bundles.signed, dest, {certify.PRODUCT_FILE: text.encode()}, sign_with=bundles.vendor,
                         manifest_edit=lambda manifest: manifest.update(product=product))


def patch_entry_header(path: Path, name: str, *, size: int | None = None, clear_utf8: bool = False) -> None:
    """Rewrite an entry's local and central headers in place: the declared uncompressed size
    (a lying header) or the UTF-8 flag (bit 11)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename == name)
        central = archive.start_dir
    data = bytearray(path.read_bytes())
    while struct.unpack_from("<I", data, central + 42)[0] != info.header_offset:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, central + 28)
        central += 46 + name_len + extra_len + comment_len
    local = info.header_offset
    if size is not None:
        struct.pack_into("<I", data, local + 22, size)
        struct.pack_into("<I", data, central + 24, size)
    if clear_utf8:
        for where in (local + 6, central + 8):
            struct.pack_into("<H", data, where, struct.unpack_from("<H", data, where)[0] & ~0x800)
    path.write_bytes(bytes(data))


def zip_bomb(source: Path, dest: Path, *, member: str = "report.html", size: int = 200 * MiB) -> Path:
    """``source`` with ``member`` replaced by ``size`` bytes of zeros, written streaming
    (about 1/1000 of that compressed)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in read_bundle(source).items():
            if name != member:
                archive.writestr(name, data)
        with archive.open(member, "w") as stream:
            zeros = bytes(MiB)
            for _ in range(size // MiB):
                stream.write(zeros)
    return dest


# -- a genuine bundle verifies only under the vendor's key ------------------------------------


def test_signed_bundle_verifies_with_the_vendor_key(bundles):
    assert "certification bundle:" in bundles.run_stdout
    result = conformance("verify", str(bundles.signed), "--public-key", str(bundles.public_key))
    assert result.returncode == 0, result.stdout + result.stderr
    head = result.stdout.splitlines()[0]
    assert head.startswith(f"{bundles.signed}: VERIFIED: Example Audio Ltd"), result.stdout
    assert f"tested at {bundles.base_url}" in head
    fingerprint = certify.fingerprint(bundles.vendor.public_key())
    assert head.endswith(f"signed by {fingerprint})")
    assert "signature verified with --public-key" in result.stdout
    assert "NOT COVERED" not in result.stdout  # a bearer token was configured
    manifest = json.loads(read_bundle(bundles.signed)[certify.MANIFEST_FILE])
    assert manifest["signed"] is True and manifest["hypothesis"]["profile"] == "ci"
    assert isinstance(manifest["hypothesis"]["seed"], int)
    assert set(manifest["files"]) == {"results.json", "junit.xml", "report.html", "product.toml"}


def test_without_a_public_key_a_genuine_bundle_is_integrity_only_never_verified(bundles):
    result = verify(bundles.signed)
    assert result.code == certify.EXIT_INTEGRITY_ONLY == 4, result.stdout
    assert result.head == f"{bundles.signed}: {certify.NO_TRUST_ANCHOR}"
    assert "VERIFIED" not in result.stdout and "CERTIFIED" in result.head
    fingerprint = certify.fingerprint(bundles.vendor.public_key())
    assert any(f"claims a signature by {fingerprint}; it was NOT checked" in line
               for line in result.lines("note")), result.stdout


def test_unsigned_bundle_is_integrity_only_and_says_it_is_unsigned(bundles):
    result = verify(bundles.unsigned)
    assert result.code == 4, result.stdout
    assert result.head.endswith(certify.NO_TRUST_ANCHOR)
    assert any(line.startswith("UNSIGNED bundle") for line in result.lines("note")), result.stdout
    assert json.loads(read_bundle(bundles.unsigned)[certify.MANIFEST_FILE])["signed"] is False


def test_unsigned_bundle_fails_when_a_signature_is_expected(bundles):
    result = verify(bundles.unsigned, bundles.public_key)
    assert result.code == 1
    assert result.has_problem("the bundle is unsigned, but --public-key"), result.stdout


def test_verify_documents_its_exit_codes():
    epilog = subparsers()["verify"].epilog
    for code, words in ((0, "verified"), (1, "not verified"), (2, "usage error"), (4, "integrity only")):
        assert re.search(rf"^\s+{code}\s+{words}", epilog, re.MULTILINE), epilog


# -- forged trust: without the key nothing is VERIFIED, with it a forgery fails -----------------


def _drop_signature(manifest: dict[str, Any]) -> None:
    manifest.update(signed=False, signature=None)


def test_edited_results_with_redone_digests_and_no_signature_is_not_verified(bundles, tmp_path):
    """The attack: results.json edited, digests recomputed, signature dropped."""
    files = read_bundle(bundles.signed)
    files["results.json"] = altered_results(bundles.signed, lambda r: r.update(requests=r["requests"] + 1))
    del files[certify.SIGNATURE_FILE]
    redo_manifest(files, _drop_signature)
    bundle = pack(tmp_path / "forged.zip", files.items())
    without_key = verify(bundle)
    assert without_key.code == 4 and without_key.head.endswith(certify.NO_TRUST_ANCHOR), without_key.stdout
    with_key = verify(bundle, bundles.public_key)
    assert with_key.code == 1 and with_key.has_problem("the bundle is unsigned, but --public-key"), with_key.stdout


def test_garbage_signature_claiming_the_vendor_fingerprint_is_not_a_trust_anchor(bundles, tmp_path):
    files = read_bundle(bundles.signed)
    files["results.json"] = altered_results(bundles.signed, lambda r: r.update(requests=r["requests"] + 1))
    redo_manifest(files)  # still "signed": true, still naming the vendor's fingerprint
    files[certify.SIGNATURE_FILE] = b"00" * 64
    bundle = pack(tmp_path / "forged.zip", files.items())
    without_key = verify(bundle)
    assert without_key.code == 4 and "VERIFIED" not in without_key.stdout, without_key.stdout
    assert any("a claimed key fingerprint proves nothing" in line for line in without_key.lines("note"))
    with_key = verify(bundle, bundles.public_key)
    assert with_key.code == 1
    assert with_key.has_problem("the signature of manifest.json does not verify with --public-key"), with_key.stdout


def test_signature_by_the_key_but_naming_another_key_fails(bundles, tmp_path):
    other = certify.fingerprint(Ed25519PrivateKey.generate().public_key())
    bundle = write_altered(bundles.signed, tmp_path / "forged.zip", {}, sign_with=bundles.vendor,
                           manifest_edit=lambda m: m["signature"].update(public_key=other))
    result = verify(bundle, bundles.public_key)
    assert result.code == 1 and result.has_problem(f"manifest.json names the signing key {other}"), result.stdout


def test_a_problem_without_a_key_exits_1_not_4(bundles, tmp_path):
    forged = altered_results(bundles.unsigned, _fail_requirement)
    bundle = write_altered(bundles.unsigned, tmp_path / "forged.zip", {"results.json": forged}, refresh_digests=True)
    result = verify(bundle)
    assert result.code == 1 and "NOT VERIFIED" in result.head
    assert any("no trusted public key was given" in line for line in result.lines("note")), result.stdout


# -- forged zip structure: refused, even with a valid signature --------------------------------


def _entries(bundles: Bundles) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    return list(read_bundle(bundles.signed).items())


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _renamed(bundles: Bundles, new_name: str) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    return [(new_name if name == "results.json" else name, data) for name, data in _entries(bundles)]


STRUCTURE_FORGERIES: dict[str, tuple[Callable[[Bundles], list[tuple[str | zipfile.ZipInfo, bytes]]], str]] = {
    # the forged results.json first, the genuine one last (zipfile reads the last by name)
    "duplicate entry": (lambda b: [("results.json", b"{}"), *_entries(b)],
                        'entry "results.json" appears 2 times in the zip'),
    "unexpected entry": (lambda b: [*_entries(b), ("README.txt", b"trust me")],
                         'entry "README.txt": not a file the bundle writer makes'),
    "absolute name": (lambda b: [*_entries(b), ("/results.json", b"{}")], 'entry "/results.json": an absolute name'),
    "dot-dot": (lambda b: [*_entries(b), ("../results.json", b"{}")],
                "entry \"../results.json\": a '..' component in its name"),
    "backslash": (lambda b: [*_entries(b), ("reports\\results.json", b"{}")],
                  'entry "reports\\results.json": a backslash or drive letter in its name'),
    "drive letter": (lambda b: [*_entries(b), ("C:results.json", b"{}")],
                     'entry "C:results.json": a backslash or drive letter in its name'),
    "symlink": (lambda b: [*[(n, d) for n, d in _entries(b) if n != "junit.xml"],
                           (_symlink("junit.xml"), b"/etc/passwd")],
                'entry "junit.xml": a symbolic link'),
}


@pytest.mark.parametrize("forgery", sorted(STRUCTURE_FORGERIES))
def test_forged_zip_structure_is_refused_even_with_a_valid_signature(bundles, tmp_path, forgery):
    build, expected = STRUCTURE_FORGERIES[forgery]
    bundle = pack(tmp_path / "forged.zip", build(bundles))
    result = verify(bundle, bundles.public_key)
    assert result.code == 1 and "NOT VERIFIED" in result.head, result.stdout
    assert any(line.startswith(expected) for line in result.problems), result.stdout


def test_zip_of_many_entries_is_refused_without_listing_them(bundles, tmp_path):
    bundle = pack(tmp_path / "many.zip", [*_entries(bundles), *((f"{i}.txt", b"") for i in range(5000))])
    result = verify(bundle, bundles.public_key)
    assert result.code == 1 and result.problems == [f"the zip has 5006 entries; a bundle has at most "
                                                    f"{len(certify.ENTRY_CAPS)}"], result.stdout[:500]


def test_entry_name_not_marked_utf8_is_refused(bundles, tmp_path):
    bundle = pack(tmp_path / "forged.zip", [*_entries(bundles), ("r\u00e9sults.json", b"{}")])
    patch_entry_header(bundle, "r\u00e9sults.json", clear_utf8=True)
    with zipfile.ZipFile(bundle) as archive:  # now read as cp437, as unzip tools would
        assert not archive.infolist()[-1].flag_bits & 0x800
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    assert result.has_problem("its name has non-ASCII bytes but is not marked UTF-8"), result.stdout


# -- bombs: refused quickly, in bounded memory --------------------------------------------------

MEASURE = """\
import sys, time
from conformance.cli import main
started = time.perf_counter()
code = main(["verify", *sys.argv[1:]])
print(f"MEASURED code={code} peak_kib={int(peak_mib() * 1024)} "
      f"seconds={time.perf_counter() - started:.3f}")
"""


def measured_verify(*args: str) -> tuple[int, int, float, str]:
    """Exit code, peak RSS (MiB) and seconds of ``conformance verify`` in a fresh process."""
    run = subprocess.run([sys.executable, "-c", PEAK_MIB + MEASURE, *args], env=clean_env(), capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    found = re.search(r"MEASURED code=(\d+) peak_kib=(\d+) seconds=([\d.]+)", run.stdout)
    assert found, run.stdout + run.stderr
    return int(found[1]), int(found[2]) // 1024, float(found[3]), run.stdout


def test_zip_bomb_is_refused_quickly_in_bounded_memory(bundles, tmp_path):
    bomb = zip_bomb(bundles.signed, tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2 * MiB
    code, peak_mib, seconds, stdout = measured_verify(str(bomb), "--public-key", str(bundles.public_key))
    assert code == 1, stdout
    assert f'entry "report.html": declares {200 * MiB} bytes, over this verifier\'s cap' in stdout
    assert peak_mib < 100 and seconds < 10, (peak_mib, seconds)


def test_zip_bomb_with_a_lying_size_header_is_refused_in_bounded_memory(bundles, tmp_path):
    bomb = zip_bomb(bundles.signed, tmp_path / "bomb.zip")
    patch_entry_header(bomb, "report.html", size=MiB)  # claims 1 MiB, inflates to 200 MiB
    code, peak_mib, seconds, stdout = measured_verify(str(bomb))
    assert code == 1, stdout
    assert 'problem: entry "report.html" cannot be read: Bad CRC-32' in stdout or \
        'inflates to more than the' in stdout, stdout
    assert peak_mib < 100 and seconds < 10, (peak_mib, seconds)


def test_entries_over_the_total_cap_are_refused(bundles, tmp_path):
    """Each report at its own cap: every entry is allowed, all of them together are not."""
    reports = ("results.json", "junit.xml", "report.html")
    bomb = pack(tmp_path / "total.zip", [(name, data) for name, data in _entries(bundles) if name not in reports])
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in reports:
            with archive.open(name, "w") as stream:
                for _ in range(certify.ENTRY_CAPS[name] // MiB):
                    stream.write(bytes(MiB))
    assert sum(certify.ENTRY_CAPS[name] for name in reports) > certify.TOTAL_CAP
    result = verify(bomb, bundles.public_key)
    assert result.code == 1
    assert result.has_problem(f"in all, over this verifier's cap of {certify.TOTAL_CAP}"), result.stdout


# -- forged content, re-signed with the vendor's own key ----------------------------------------


def test_run_against_the_bundled_reference_is_refused(bundles, tmp_path):
    bundle = resigned(bundles, tmp_path / "forged.zip", lambda r: r["target"].update(reference=True))
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    assert result.has_problem("results.json: the run tested the suite's bundled reference deployment"), result.stdout


@pytest.mark.parametrize("elsewhere", [
    lambda base: EXAMPLE_URL,  # another host
    lambda base: base.replace("http://", "https://"),  # another scheme
    lambda base: base + "0",  # another port
    lambda base: base.replace("127.0.0.1", "localhost"),  # another name, even for the same address
], ids=["host", "scheme", "port", "name"])
def test_deployment_url_elsewhere_than_the_tested_target_is_refused(bundles, tmp_path, elsewhere):
    url = elsewhere(bundles.base_url)
    bundle = with_product(bundles, tmp_path / "forged.zip", deployment_url=url)
    result = verify(bundle, bundles.public_key)
    assert result.code == 1, result.stdout
    assert result.has_problem(f"the product's deployment_url {url} is not where the run tested"), result.stdout


def test_deployment_url_with_the_same_origin_verifies(bundles, tmp_path):
    url = bundles.base_url.upper().replace("HTTP://", "http://") + "/v1/"  # host case and a path do not matter
    bundle = with_product(bundles, tmp_path / "same.zip", deployment_url=url)
    result = verify(bundle, bundles.public_key)
    assert result.code == 0, result.stdout


def test_origin_normalizes_default_ports_and_case():
    assert certify.origin("https://API.example.com") == certify.origin("https://api.example.com:443/x?y")
    assert certify.origin("http://example.com") == ("http", "example.com", 80)
    assert certify.origin("http://[::1]:8000/") == ("http", "::1", 8000)
    assert certify.origin("http://example.com:443") != certify.origin("https://example.com")
    assert certify.origin("ftp://example.com") is None and certify.origin("http://x:99999") is None


def test_other_contract_version_is_refused_naming_the_supported_ones(bundles, tmp_path):
    def older(results):
        results["contract"]["version"] = "0.9"
    bundle = write_altered(bundles.signed, tmp_path / "forged.zip",
                           {"results.json": altered_results(bundles.signed, older)}, sign_with=bundles.vendor,
                           manifest_edit=lambda m: m["contract"].update(version="0.9"))
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    supported = " or ".join(certify.SUPPORTED_CONTRACT_VERSIONS)
    assert catalogue.CONTRACT_VERSION in certify.SUPPORTED_CONTRACT_VERSIONS
    assert result.has_problem("contract version '0.9' is not supported: this verifier (conformance "), result.stdout
    assert result.has_problem(f"checks bundles of contract version {supported} only"), result.stdout


# -- terminal injection ------------------------------------------------------------------------------

INJECTION = "\x1b[2K\x1b[1A\r\x07\x9b2J\u202e\u2066\n"


def test_bundle_text_cannot_steer_the_terminal(bundles, tmp_path):
    """A NOT VERIFIED bundle whose texts try to erase the verdict and print a fake VERIFIED line."""
    fake = f"\x1b[2K\r{bundles.signed}: VERIFIED: all good"

    def fail_with_escapes(results):
        results["requirements"]["AUTH-04"].update(outcome="failed", reason=f"{INJECTION}{fake}\ud800")
    product_bundle = with_product(bundles, tmp_path / "product.zip", vendor=f"Evil{INJECTION}{fake}")
    bundle = resigned(bundles, tmp_path / "forged.zip", fail_with_escapes, source=product_bundle)
    named = pack(tmp_path / "named.zip", [*_entries(bundles), (f"x{INJECTION}.json", b"{}")])
    for forged in (bundle, named):
        run = conformance("verify", str(forged), "--public-key", str(bundles.public_key))
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stdout + run.stderr
        for raw in ("\x1b", "\r", "\x07", "\x9b", "\u202e", "\u2066"):
            assert raw not in run.stdout, repr(raw)
        lines = run.stdout.splitlines()
        assert lines[0].startswith(f"{forged}: NOT VERIFIED") and all(line.startswith("  ") for line in lines[1:])
        assert "\\x1b[2K" in run.stdout and "\\u202e" in run.stdout
    result = verify(bundle, bundles.public_key)
    shown = "\\x1b[2K\\x1b[1A\\r\\x07\\x9b2J\\u202e\\u2066\\n"
    assert result.has_problem(f"AUTH-04 (MUST) is failed: {shown}"), result.stdout
    assert result.stdout.count("\n") == 1 + len(result.problems) + len(result.lines("note"))


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[31m", "\\x1b[31m"), ("a\rb", "a\\rb"), ("a\nb", "a\\nb"), ("\x07", "\\x07"), ("\x7f", "\\x7f"),
    ("\x9b", "\\x9b"), ("\u202a\u202b\u202c\u202d\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"), ("\u2028", "\\u2028"), ("\ud800", "\\ud800"),
    ("Müller & Söhne \\ 東京 ✓", "Müller & Söhne \\ 東京 ✓"),
])
def test_visible_shows_control_characters(raw, shown):
    assert visible(raw) == shown
    assert visible(raw).isprintable()


# -- AUTH-08: bearer tokens are optional, but then not covered -----------------------------------


def _needs_auth_08() -> None:
    if "AUTH-08" not in catalogue.REQUIREMENTS:
        pytest.skip("the contract has no AUTH-08 yet")


def test_bundle_without_a_bearer_token_verifies_but_does_not_cover_bearer_tokens(bundles):
    result = verify(bundles.no_bearer, bundles.public_key)
    assert result.code == 0, result.stdout
    assert json.loads(read_bundle(bundles.no_bearer)["results.json"])["configuration"]["bearer_token"] == \
        "not configured"
    if "AUTH-08" in catalogue.REQUIREMENTS:
        assert result.lines("NOT COVERED") == [certify._bearer_uncovered(["AUTH-08"])], result.stdout
        assert "does not cover bearer-token authentication" in result.stdout


def test_auth_08_unchecked_although_a_bearer_token_was_configured_fails(bundles, tmp_path):
    _needs_auth_08()

    def unchecked(results):
        results["requirements"]["AUTH-08"].update(outcome="not_checked", reason="forged", checks=[])
        results.update(verdict="incomplete", verdict_reason="MUST not checked: AUTH-08")
    bundle = resigned(bundles, tmp_path / "forged.zip", unchecked)
    result = verify(bundle, bundles.public_key)
    assert result.code == 1 and result.has_problem("AUTH-08 (MUST) is not checked: forged"), result.stdout
    assert "NOT COVERED" not in result.stdout


def test_auth_08_unchecked_while_bearer_tokens_are_claimed_fails(bundles, tmp_path):
    _needs_auth_08()

    def claim_bearer(results):
        results["requirements"]["AUTH-07"].update(outcome="passed", reason=None)
    bundle = resigned(bundles, tmp_path / "forged.zip", claim_bearer, source=bundles.no_bearer)
    result = verify(bundle, bundles.public_key)
    assert result.code == 1 and result.has_problem("AUTH-08 (MUST) is not checked"), result.stdout


def test_bearer_exemption_needs_no_token_and_an_unclaimed_auth_07(bundles, monkeypatch):
    if "AUTH-08" not in catalogue.REQUIREMENTS:  # the rule itself, before the contract has AUTH-08
        monkeypatch.setitem(catalogue.REQUIREMENTS, "AUTH-08", catalogue.Requirement("AUTH-08", "MUST", "", ""))
    results = json.loads(read_bundle(bundles.signed)["results.json"])
    results["requirements"].setdefault("AUTH-08", {})
    results["requirements"]["AUTH-07"]["outcome"] = "not_checked"
    assert certify.bearer_exempt(results) == frozenset()  # a bearer token was configured
    results["configuration"][certify.BEARER_SETTING] = "not configured"
    assert certify.bearer_exempt(results) == {"AUTH-08"}
    results["requirements"]["AUTH-07"]["outcome"] = "passed"
    assert certify.bearer_exempt(results) == frozenset()
    assert all(catalogue.REQUIREMENTS[rid].level == "MUST" for rid in certify.BEARER_MUSTS
               if rid in catalogue.REQUIREMENTS)


# -- altered bundles fail, naming the problem ----------------------------------------------


@pytest.mark.parametrize("name", ["results.json", "junit.xml", "report.html", "product.toml",
                                  "manifest.json", "manifest.sig"])
def test_one_changed_byte_in_any_file_fails(bundles, tmp_path, name):
    data = bytearray(read_bundle(bundles.signed)[name])
    data[len(data) // 2] ^= 0x01
    bundle = write_altered(bundles.signed, tmp_path / "altered.zip", {name: bytes(data)})
    result = verify(bundle, bundles.public_key)
    assert result.code == 1, result.stdout
    assert any(name in line for line in result.problems), result.stdout


def test_requirement_removed_from_results_fails_naming_it(bundles, tmp_path):
    forged = altered_results(bundles.unsigned, lambda r: r["requirements"].pop("AUTH-04"))
    bundle = write_altered(bundles.unsigned, tmp_path / "forged.zip", {"results.json": forged},
                           refresh_digests=True)
    result = verify(bundle)
    assert result.code == 1
    assert "AUTH-04 (MUST) is missing from results.json" in result.problems, result.stdout


def _fail_requirement(results):
    results["requirements"]["AUTH-04"].update(outcome="failed", reason="forged")


def _fail_check(results):
    check = next(c for c in results["checks"] if "AUTH-04" in c["requirements"])
    check["outcome"] = "failed"


def _nothing_to_judge(results):
    # The skip a check that had nothing to judge may show in a certificate, on the only check of
    # a requirement: the requirement was then judged by nothing.
    check = next(c for c in results["checks"] if c["requirements"] == ["AUTH-04"])
    check.update(outcome="not_checked", message=f"{NOTHING_TO_JUDGE}forged")


@pytest.mark.parametrize("flip, expected", [
    (_fail_requirement, "AUTH-04 (MUST) is failed: forged"),
    (_fail_check, "AUTH-04 is reported passed but its check test_auth.py::"),
    (_nothing_to_judge, "AUTH-04 is reported passed but none of its checks passed"),
])
def test_flipped_outcome_fails_naming_the_requirement(bundles, tmp_path, flip, expected):
    bundle = resigned(bundles, tmp_path / "forged.zip", flip)
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    assert any(line.startswith(expected) for line in result.problems), result.stdout


def test_flipped_outcome_with_redone_digests_fails_the_signature(bundles, tmp_path):
    forged = altered_results(bundles.signed, _fail_requirement)
    bundle = write_altered(bundles.signed, tmp_path / "forged.zip", {"results.json": forged},
                           refresh_digests=True)
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    assert result.has_problem("signature of manifest.json does not verify"), result.stdout


def test_bundle_signed_with_another_key_fails(bundles, tmp_path):
    bundle = write_altered(bundles.signed, tmp_path / "resigned.zip", {},
                           sign_with=Ed25519PrivateKey.generate())
    result = verify(bundle, bundles.public_key)
    assert result.code == 1
    assert result.has_problem("does not verify with --public-key"), result.stdout


@pytest.mark.parametrize("manifest", [b"[]", b'{"format": 1}', b"not json", b"[" * 100_000])
def test_malformed_manifest_fails_naming_it(bundles, tmp_path, manifest):
    bundle = write_altered(bundles.unsigned, tmp_path / "malformed.zip", {certify.MANIFEST_FILE: manifest})
    result = verify(bundle)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert any(line.startswith("manifest.json") for line in result.problems), result.stdout


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


@pytest.mark.parametrize("requirement", sorted(certify.MUST_ANY_SETTINGS))
def test_certify_without_any_setting_a_must_needs_exits_2_before_any_request(run_suite, reference, requirement):
    names = certify.MUST_ANY_SETTINGS[requirement]
    server = reference(jobs=20)
    run = run_suite("--profile", "certify", "--product", str(PRODUCT), server=server,
                    env={config.SPECS_BY_NAME[name].env: "" for name in names})
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and all(config.setting_label(name) in lines[0] for name in names), run.stderr
    assert f"MUST {requirement}" in lines[0] and server.request_count == 0


@pytest.mark.parametrize("requirement", sorted(certify.MUST_ANY_SETTINGS))
def test_one_of_the_settings_a_must_needs_is_enough(requirement):
    secret = config.Secret("conformance-test-key")
    settings = config.Settings(profile="certify", base_url=EXAMPLE_URL, org="org_test", api_key=secret,
                               product=PRODUCT, hypothesis_profile="ci", seed=1,
                               **{name: secret for name in certify.MUST_SETTINGS})
    for name in certify.MUST_ANY_SETTINGS[requirement]:
        assert certify.prepare(config.with_overrides(settings, **{name: secret})).seed == 1


def test_certify_of_a_deployment_url_elsewhere_exits_2_before_any_request(run_suite, reference):
    server = reference(jobs=20)
    run = run_suite("--profile", "certify", "--product", str(PRODUCT), server=server)
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--product" in lines[0] and f"deployment_url {EXAMPLE_URL}" in lines[0], run.stderr
    assert server.request_count == 0


@pytest.mark.parametrize("args, named", [
    ([], "--product"),
    (["--product", "/nonexistent/product.toml"], "--product"),
    (["--product", "{missing_key}"], "--product"),
    (["--product", str(PRODUCT), "--signing-key", str(PRODUCT)], "--signing-key"),
    (["--product", str(PRODUCT), "--examples", "3"], "--examples"),
    (["--product", str(PRODUCT), "--", "-k", "limit"], "pytest arguments"),
    (["--product", str(PRODUCT)], "--base-url"),  # the bundled reference certifies nothing
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
    any_of = {name for names in certify.MUST_ANY_SETTINGS.values() for name in names}
    # api_key is always required; the bearer token serves AUTH-07 (MAY) and the MUSTs a deployment
    # without bearer support may leave unchecked (certify.BEARER_MUSTS)
    optional = {"api_key", certify.BEARER_SETTING}
    assert catalogue.get(certify.BEARER_MAY).level == "MAY"
    assert set(certify.MUST_SETTINGS) == used - optional - any_of
    assert any_of <= set(config.SPECS_BY_NAME)
    assert set(certify.MUST_ANY_SETTINGS["AUTH-09"]) == set(NO_LONGER_USABLE)  # AUTH-09 takes any of these
    musts = [*certify.MUST_SETTINGS.values(), *certify.MUST_ANY_SETTINGS]
    assert all(catalogue.get(rid).level == "MUST" for rid in musts)


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
