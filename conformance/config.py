"""Run configuration: one table of settings, resolved option > environment > file > default.

The same table gives ``conformance run`` its options, the pytest plugin its options, the
environment variable names and the keys of ``conformance.toml``.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONFIG_FILE = "conformance.toml"


class ConfigError(Exception):
    """Invalid configuration. The message is one line that names the setting."""


class Secret:
    """A credential. Prints as ``***`` so it cannot leak through a repr or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class PytestOwner:
    """Other pytest plugins' option for a setting: the plugin modules that provide it (any one
    of them, registered by entry point or ``-p``), the option's ``dest``, and its ini value
    when it has one (read below the settings file)."""

    modules: tuple[str, ...]
    dest: str
    ini: str | None = None


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its attribute name, CLI option, environment variable and meaning."""

    name: str
    option: str
    env: str | None
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    secret: bool = False
    metavar: str | None = None
    flag: bool = False
    # Names the deployment under test or what is sent to it: without a base URL, giving one is
    # a configuration error (the bundled reference is tested only when none is given).
    target: bool = False
    # Given once per value (``--requirement A --requirement B``); the environment variable and
    # a string in the file hold the values comma-separated. It resolves to a tuple.
    repeatable: bool = False
    # The pytest plugin owning this option under plain pytest: while it is active, the
    # conformance plugin adds no option of its own and reads that plugin's.
    pytest_owner: PytestOwner | None = None


def whole_number(text: str) -> int:
    """An integer as a person writes it; the error says so in words, not in Python's."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise ValueError(f"{value} is not allowed: must be 1 or more")
    return value


def _positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise ValueError(f"{text.strip()} is not allowed: must be more than 0 (leave it unset for no limit)")
    return value


HYPOTHESIS_PROFILES = ("quick", "ci", "thorough")


def _profile_name(text: str) -> str:
    if text not in HYPOTHESIS_PROFILES:
        raise ValueError(f"{text!r} is not one of {', '.join(HYPOTHESIS_PROFILES)}")
    return text


RUN_PROFILES = ("standard", "certify")


def _run_profile(text: str) -> str:
    if text not in RUN_PROFILES:
        raise ValueError(f"{text!r} is not one of {', '.join(RUN_PROFILES)}")
    return text


def _requirement_pattern(text: str) -> str:
    from conformance.selection import requirement_pattern

    return requirement_pattern(text)


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("base_url", "--base-url", "CONFORMANCE_BASE_URL",
                "deployment root, e.g. https://api.example.com; without it the bundled "
                "reference deployment is started and tested", metavar="URL", target=True,
                # pytest-base-url's, or pytest-playwright's own when pytest-base-url is absent
                pytest_owner=PytestOwner(("pytest_base_url.plugin", "pytest_playwright.pytest_playwright"),
                                         "base_url", ini="base_url")),
    SettingSpec("org", "--org", "CONFORMANCE_ORG_ID",
                "organization of the main caller", metavar="ID", target=True),
    SettingSpec("api_key", "--api-key", "FREDDY_API_KEY",
                "main caller's key: a member holding USE_MUSIC_GENERATION", secret=True,
                metavar="KEY", target=True),
    SettingSpec("no_capability_api_key", "--no-capability-api-key",
                "CONFORMANCE_NO_CAPABILITY_API_KEY",
                "key of a member lacking USE_MUSIC_GENERATION (AUTH-04)", secret=True,
                metavar="KEY", target=True),
    SettingSpec("foreign_org", "--foreign-org", "CONFORMANCE_FOREIGN_ORG_ID",
                "an organization the main caller does not belong to (AUTH-05)", metavar="ID",
                target=True),
    SettingSpec("second_user_api_key", "--second-user-api-key",
                "CONFORMANCE_SECOND_USER_API_KEY",
                "key of another member of the same organization (ISO-01)", secret=True,
                metavar="KEY", target=True),
    SettingSpec("bearer_token", "--bearer-token", "CONFORMANCE_BEARER_TOKEN",
                "optional bearer token of the main caller (AUTH-07, AUTH-08)", secret=True,
                metavar="TOKEN", target=True),
    SettingSpec("revoked_api_key", "--revoked-api-key", "CONFORMANCE_REVOKED_API_KEY",
                "an API key that exists but may no longer be used: revoked, deactivated, paused "
                "or expired (AUTH-09)", secret=True, metavar="KEY", target=True),
    SettingSpec("expired_bearer_token", "--expired-bearer-token", "CONFORMANCE_EXPIRED_BEARER_TOKEN",
                "a bearer token of the main caller past its expiry (AUTH-09)", secret=True,
                metavar="TOKEN", target=True),
    SettingSpec("dataset", "--dataset", "CONFORMANCE_DATASET",
                'JSON file {"organization_id": ..., "jobs": [...]}: the caller\'s jobs newest '
                "first, as the list view shows them (DAT-01)", parse=Path, metavar="FILE",
                target=True),
    SettingSpec("report_dir", "--report-dir", "CONFORMANCE_REPORT_DIR",
                "where report.html, junit.xml, results.json and summary.md go", parse=Path,
                default=Path("reports"), metavar="DIR"),
    SettingSpec("timeout", "--timeout", "CONFORMANCE_TIMEOUT",
                "seconds each request may take in total, from connecting to the last byte",
                parse=_positive_float, default=10.0,
                metavar="SECONDS"),
    SettingSpec("max_rps", "--max-rps", "CONFORMANCE_MAX_RPS",
                "at most this many requests per second (default: unlimited)",
                parse=_positive_float, metavar="N"),
    SettingSpec("max_requests", "--max-requests", "CONFORMANCE_MAX_REQUESTS",
                "send at most this many requests in all, retries included; checks that would need "
                "more are not checked ('request budget (N)') (default: unlimited)",
                parse=_positive_int, metavar="N"),
    SettingSpec("concurrency", "--concurrency", "CONFORMANCE_CONCURRENCY",
                "at most this many requests in flight at once", parse=_positive_int, default=8,
                metavar="N"),
    SettingSpec("max_listing", "--max-listing", "CONFORMANCE_MAX_LISTING",
                "walk at most this many jobs of the listing; checks say when they covered "
                "a prefix", parse=_positive_int, default=2000, metavar="N"),
    SettingSpec("max_duration", "--max-duration", "CONFORMANCE_MAX_DURATION",
                "seconds the whole run may take; checks not started by then are not checked "
                "('time budget')", parse=_positive_float, default=900.0, metavar="SECONDS"),
    SettingSpec("ca_bundle", "--ca-bundle", "CONFORMANCE_CA_BUNDLE",
                "CA certificates (PEM) to trust for an https target", parse=Path,
                metavar="FILE"),
    SettingSpec("insecure", "--insecure", "CONFORMANCE_INSECURE",
                "do not verify the target's TLS certificate", parse=_boolean, default=False,
                flag=True),
    SettingSpec("requirement", "--requirement", "CONFORMANCE_REQUIREMENT",
                "run only the checks citing this requirement id or glob (AUTH-*); repeatable, "
                "comma-separated in the environment; the other checks are not checked ('not selected')",
                parse=_requirement_pattern, default=(), metavar="ID", repeatable=True),
    SettingSpec("last_failed", "--last-failed", "CONFORMANCE_LAST_FAILED",
                "run only the checks that failed or ended in error in the previous results.json of "
                "the report folder (every check when there is none)", parse=_boolean, default=False,
                flag=True, pytest_owner=PytestOwner(("_pytest.cacheprovider",), "lf")),
    SettingSpec("hypothesis_profile", "--hypothesis-profile", "CONFORMANCE_HYPOTHESIS_PROFILE",
                "Hypothesis profile: quick, ci (few examples) or thorough (many more)",
                parse=_profile_name, default="ci", metavar="NAME"),
    SettingSpec("examples", "--examples", "CONFORMANCE_EXAMPLES",
                "Hypothesis examples per property (overrides the profile's count)",
                parse=_positive_int, metavar="N"),
    SettingSpec("seed", "--seed", "CONFORMANCE_SEED",
                "Hypothesis seed; the same seed sends the same requests", parse=whole_number, metavar="N"),
    SettingSpec("profile", "--profile", "CONFORMANCE_PROFILE",
                "standard, or certify: every MUST must be checkable, Hypothesis runs the ci "
                "profile with a recorded seed, and the run writes certification.zip",
                parse=_run_profile, default="standard", metavar="NAME"),
    SettingSpec("product", "--product", "CONFORMANCE_PRODUCT",
                "certify: TOML file describing the product (vendor, product, version, contact, "
                "deployment_url)", parse=Path, metavar="FILE"),
    SettingSpec("signing_key", "--signing-key", "CONFORMANCE_SIGNING_KEY",
                "certify: Ed25519 private key (PEM, from 'conformance keygen') that signs the "
                "bundle's manifest", parse=Path, metavar="FILE"),
    SettingSpec("judge_anyway", "--judge-anyway", "CONFORMANCE_JUDGE_ANYWAY",
                "judge the deployment even when it refuses the main credential at the preflight "
                "(by default that ends the run: verdict error, exit 3)", parse=_boolean, default=False,
                flag=True),
    SettingSpec("strict", "--strict", "CONFORMANCE_STRICT",
                "release gate: verdict incomplete (a MUST not checked) exits 1, not 0, listing "
                "the MUSTs not checked", parse=_boolean, default=False, flag=True),
    SettingSpec("baseline", "--baseline", "CONFORMANCE_BASELINE",
                "release gate: TOML file of known MUST failures (id, reason, expires; see "
                "'conformance baseline'); exit 1 only on new failures, expired entries or entries "
                "no longer failing", parse=Path, metavar="FILE"),
)

SPECS_BY_NAME: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}


def _default(name: str) -> Any:
    """A setting's default, as the settings table states it (the one place it is written)."""
    return SPECS_BY_NAME[name].default


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one run. Credentials are :class:`Secret`."""

    base_url: str | None = None
    org: str | None = None
    api_key: Secret | None = None
    no_capability_api_key: Secret | None = None
    foreign_org: str | None = None
    second_user_api_key: Secret | None = None
    bearer_token: Secret | None = None
    revoked_api_key: Secret | None = None
    expired_bearer_token: Secret | None = None
    dataset: Path | None = None
    report_dir: Path = _default("report_dir")
    timeout: float = _default("timeout")
    max_rps: float | None = None
    max_requests: int | None = None
    concurrency: int = _default("concurrency")
    max_listing: int = _default("max_listing")
    max_duration: float = _default("max_duration")
    requirement: tuple[str, ...] = _default("requirement")
    last_failed: bool = _default("last_failed")
    ca_bundle: Path | None = None
    insecure: bool = _default("insecure")
    hypothesis_profile: str = _default("hypothesis_profile")
    examples: int | None = None
    seed: int | None = None
    profile: str = _default("profile")
    product: Path | None = None
    signing_key: Path | None = None
    judge_anyway: bool = _default("judge_anyway")
    strict: bool = _default("strict")
    baseline: Path | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    files: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def uses_reference(self) -> bool:
        """True when no target was given: the run tests the bundled reference deployment."""
        return self.base_url is None

    def secrets(self) -> list[str]:
        """Every configured credential's value, for redaction."""
        values = (getattr(self, spec.name) for spec in SETTINGS if spec.secret)
        return [value.reveal() for value in values if value is not None and value.reveal()]

    def public(self) -> dict[str, Any]:
        """The settings with credentials replaced by 'configured' / 'not configured'."""
        described: dict[str, Any] = {}
        for spec in SETTINGS:
            value = getattr(self, spec.name)
            if spec.secret:
                described[spec.name] = "configured" if value is not None else "not configured"
            elif isinstance(value, Path):
                described[spec.name] = str(value)
            elif spec.repeatable:
                described[spec.name] = ",".join(value) or None
            else:
                described[spec.name] = value
        return described


def setting_label(name: str) -> str:
    """How a person sets it: ``--api-key (FREDDY_API_KEY)``."""
    spec = SPECS_BY_NAME[name]
    return f"{spec.option} ({spec.env})" if spec.env else spec.option


def resolve(
    options: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    cwd: Path | None = None,
    pytest_ini: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from command-line ``options`` (None = not given), the environment and a file.

    ``config_file`` is the ``--config`` value; without it ``conformance.toml`` in ``cwd``
    is read when present, and may not choose the target or a credential (a file lying in
    the working folder must not send the keys from the environment somewhere else).
    ``pytest_ini`` holds values of plain pytest's ini file (pytest-base-url's ``base_url``),
    which rank below the settings file. Raises :class:`ConfigError` for anything invalid.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    path = config_file if config_file is not None else cwd / DEFAULT_CONFIG_FILE
    file_values = _read_config_file(config_file, cwd)
    if config_file is None:
        _refuse_target_settings(path, file_values)
    file_values = {**(pytest_ini or {}), **file_values}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SETTINGS:
        raw, source = _pick(spec, options, environ, file_values)
        if raw is None:
            continue
        values[spec.name] = _parse(spec, raw, source)
        sources[spec.name] = source
    settings = Settings(**values, sources=sources, files=(path,) if config_file is not None or path.is_file() else ())
    _refuse_target_without_base_url(settings, environ)
    validate(settings)
    return settings


# Settings that name the deployment under test or what is sent to it (see SettingSpec.target).
TARGET_NAMES: tuple[str, ...] = tuple(spec.name for spec in SETTINGS if spec.target)


def _refuse_target_without_base_url(settings: Settings, environ: Mapping[str, str]) -> None:
    """The bundled reference is tested only when no target setting at all is given: a target
    setting without a base URL (often an undefined CI variable that left the base URL empty)
    must not turn into a passing run against the reference."""
    if settings.base_url is not None:
        return
    given = [name for name in TARGET_NAMES if getattr(settings, name) is not None]
    if not given:
        return
    env = SPECS_BY_NAME["base_url"].env or ""
    empty = f", and {env} is set but empty" if env in environ and environ[env] == "" else ""
    named = ", ".join(f"{setting_label(name)} from the {settings.sources.get(name, 'option')}" for name in given)
    raise ConfigError(f"{named} given without {setting_label('base_url')}{empty}: the bundled reference is "
                      "tested only when no target setting is given; set the base URL of the deployment "
                      "to test, or remove those settings")


def _pick(
    spec: SettingSpec,
    options: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
) -> tuple[Any, str]:
    given = options.get(spec.name)
    if spec.repeatable and not given:
        given = None  # an option given no value at all (an empty list)
    if given is not None and given != "" and not (spec.flag and given is False):
        return given, "option"
    if spec.env and environ.get(spec.env, "") != "":
        return environ[spec.env], "environment"
    if spec.name in file_values and file_values[spec.name] not in ("", None):
        return file_values[spec.name], "file"
    return None, "default"


def _parse(spec: SettingSpec, raw: Any, source: str) -> Any:
    if spec.repeatable:
        return tuple(dict.fromkeys(_parse_one(spec, item, source) for item in _split_values(raw)))
    return _parse_one(spec, raw, source)


def _split_values(raw: Any) -> list[str]:
    """The values of a repeatable setting: a list (options, a TOML array) or a string, each
    comma-separated."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _parse_one(spec: SettingSpec, raw: Any, source: str) -> Any:
    try:
        value = spec.parse(str(raw))
    except ValueError as error:
        raise ConfigError(f"{setting_label(spec.name)} from the {source}: {error}") from None
    return Secret(value) if spec.secret else value


def _read_config_file(config_file: Path | None, cwd: Path) -> dict[str, Any]:
    path = config_file if config_file is not None else cwd / DEFAULT_CONFIG_FILE
    if config_file is None and not path.is_file():
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config: cannot read {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config: {path} is not valid TOML: {error}") from None
    table = data.get("conformance", data)
    unknown = sorted(set(table) - set(SPECS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"--config: {path} has unknown setting {unknown[0]!r}; "
            f"known: {', '.join(SPECS_BY_NAME)}"
        )
    return dict(table)


# What only an explicit --config file may set: where requests go and what they carry.
TARGET_SETTINGS = ("base_url", *(spec.name for spec in SETTINGS if spec.secret))


def _refuse_target_settings(path: Path, file_values: Mapping[str, Any]) -> None:
    chosen = [name for name in TARGET_SETTINGS if name in file_values]
    if chosen:
        raise ConfigError(
            f"{path} was found in the working folder and sets {chosen[0]!r}; a settings file "
            "read without being named may not choose the target or a credential: name it "
            f"with --config {path} if you trust it")


def validate(settings: Settings) -> None:
    """Raise :class:`ConfigError` naming the first setting that cannot work."""
    from conformance.client import credential_flaw  # what a header can carry is the HTTP layer's to say

    for spec in SETTINGS:
        secret = getattr(settings, spec.name) if spec.secret else None
        flaw = credential_flaw(secret.reveal()) if secret is not None else None
        if flaw is not None:
            raise ConfigError(f"{setting_label(spec.name)}: {flaw}; a header cannot carry it")
    if settings.base_url is not None:
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"{setting_label('base_url')}: {settings.base_url!r} is not an http:// or "
                "https:// URL"
            )
        for name in ("org", "api_key"):
            if getattr(settings, name) is None:
                raise ConfigError(f"{setting_label(name)} is required with --base-url")
    if settings.dataset is not None:
        load_dataset(settings.dataset)
    if settings.baseline is not None:
        _check_baseline(settings.baseline)
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        raise ConfigError(f"{setting_label('ca_bundle')}: no such file: {settings.ca_bundle}")
    if settings.report_dir.exists() and not settings.report_dir.is_dir():
        raise ConfigError(f"{setting_label('report_dir')}: {settings.report_dir} is not a folder")


def _check_baseline(path: Path) -> None:
    # Imported here: it reads the catalogue, which only a run with a baseline needs.
    from conformance import baseline

    try:
        baseline.load(path)
    except baseline.InputFileError as error:
        raise ConfigError(f"{setting_label('baseline')}: {error}") from None


def load_dataset(path: Path) -> dict[str, Any]:
    """The DAT-01 oracle file, checked for shape; :class:`ConfigError` names ``--dataset``.
    Read once while the file stays as it was (the settings check reads it, DAT-01 uses it):
    a dataset of 100,000 jobs takes a third of a CPU second to parse."""
    try:
        stat = Path(path).stat()
    except OSError as error:
        raise ConfigError(f"{setting_label('dataset')}: cannot read {path}: {error.strerror or error}") from None
    return _parsed_dataset(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _parsed_dataset(path: Path, size: int, modified_ns: int) -> dict[str, Any]:
    label = setting_label("dataset")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{label}: cannot read {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{label}: {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ConfigError(f'{label}: {path} must be an object {{"organization_id": ..., "jobs": [...]}}')
    if not all(isinstance(job, dict) and isinstance(job.get("id"), str) for job in data["jobs"]):
        raise ConfigError(f"{label}: {path}: every job must be an object with a string id")
    return data


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy with some settings replaced (used when the reference deployment fills them)."""
    current = {f.name: getattr(settings, f.name) for f in fields(settings)}
    current.update(changes)
    return Settings(**current)
