"""The reference deployment's SQLite database: schema, deterministic seeding and read queries."""

from __future__ import annotations

import calendar
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.reference import tokens
from conformance.schemas import modes, statuses

DEFAULT_JOBS = 300
DEFAULT_SEED = 20261124

ORGANIZATION_ID = "org_ref_main"
FOREIGN_ORGANIZATION_ID = "org_ref_foreign"
CAPABILITY = "USE_MUSIC_GENERATION"

ENGINES = ("studio", "studio-pro", "lyra")
_MODES = modes()
SECOND_MEMBER_JOBS = 40
NO_CAPABILITY_MEMBER_JOBS = 4
FOREIGN_MEMBER_JOBS = 30

# created_at values fall in the 240 days before this instant.
_NEWEST_JOB_EPOCH = calendar.timegm((2026, 6, 28, 10, 30, 0))
_SPAN_SECONDS = 240 * 24 * 3600
_CREATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Bearer tokens: the main member's expires long after any run, the expired one long ago.
_TOKEN_EXPIRES = calendar.timegm((2099, 12, 31, 0, 0, 0))
_EXPIRED_TOKEN_ISSUED = calendar.timegm((2019, 12, 31, 9, 0, 0))
_EXPIRED_TOKEN_EXPIRES = calendar.timegm((2020, 1, 1, 9, 0, 0))

# API key statuses: only an active key authenticates; the others are refused with their code.
ACTIVE = "active"
REVOKED = "deactivated"

# Relative frequency of each status; statuses not named here weigh 1.
_STATUS_WEIGHTS = {"succeeded": 10, "failed": 3, "cancelled": 2}
_MIN_JOBS_PER_STATUS = 5
_JOBS_PER_TIE_RUN = 25  # one run of equal created_at values per this many jobs

_ERROR_MESSAGES = (
    "The engine timed out while rendering the track. Please try again.",
    "Audio rendering failed. Please try again.",
    "The reference audio could not be decoded.",
)
_REFUSAL_REASONS = (
    "The prompt asks to imitate a living artist.",
    "The lyrics contain copyrighted material.",
    "The prompt violates the content policy.",
)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    capabilities TEXT NOT NULL,  -- space-separated
    PRIMARY KEY (user_id, org_id)
);
CREATE TABLE api_keys (
    key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL DEFAULT 'active'  -- active, deactivated, paused or expired
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    status TEXT NOT NULL,
    progress INTEGER NOT NULL,
    engine TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at TEXT NOT NULL,  -- YYYY-MM-DDTHH:MM:SSZ, so text order is time order
    result_track_id TEXT,
    error_message TEXT,
    refusal_reason TEXT
);
"""
INDEXES = "CREATE INDEX jobs_listing ON jobs (user_id, org_id, created_at, id);"

JOB_COLUMNS = (
    "id, status, progress, engine, mode, created_at, result_track_id, error_message, refusal_reason"
)
LISTING_ORDER = "created_at DESC, id DESC"
# SQLite binds integers up to 2**63 - 1; any larger offset is past the end anyway.
MAX_SQL_INTEGER = 2**63 - 1


@dataclass(frozen=True)
class Fixture:
    """What a seeded database holds for a test or a suite run: ids, credentials, the db file."""

    organization_id: str
    api_key: str = field(repr=False)
    no_capability_api_key: str = field(repr=False)
    foreign_organization_id: str
    second_user_api_key: str = field(repr=False)
    bearer_token: str = field(repr=False)
    revoked_api_key: str = field(repr=False)
    expired_bearer_token: str = field(repr=False)
    database_path: Path

    def expected_jobs(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """The key holder's jobs in the organization, newest first, rendered as in the list."""
        key = self.api_key if api_key is None else api_key
        with read_only(self.database_path) as db:
            user_id = user_for_api_key(db, key)
            if user_id is None:
                raise KeyError("no member of the reference database holds that API key")
            rows = fetch_jobs(db, user_id=user_id, organization_id=self.organization_id)
        return [job_view(row) for row in rows]

    def write_dataset(self, path: Path) -> Path:
        """Write the main member's expected listing as a DAT-01 oracle file."""
        dataset = {"organization_id": self.organization_id, "jobs": self.expected_jobs()}
        path.write_text(json.dumps(dataset, indent=2) + "\n", encoding="utf-8")
        return path


# Reading


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection whose rows can be read by column name."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(connect_read_only(path)) as db:
        yield db


def user_for_api_key(db: sqlite3.Connection, key: str) -> str | None:
    """The holder of an active key, or None."""
    return _scalar(db, "SELECT user_id FROM api_keys WHERE key = ? AND status = ?", key, ACTIVE)


def api_key_status(db: sqlite3.Connection, key: str) -> tuple[str, str] | None:
    """The holder of a key and its status (``active``, ``deactivated``, ...), or None when unknown."""
    row = db.execute("SELECT user_id, status FROM api_keys WHERE key = ?", (key,)).fetchone()
    return None if row is None else (row[0], row[1])


def token_secret(db: sqlite3.Connection) -> bytes:
    """The secret this database's bearer tokens are signed with."""
    return bytes.fromhex(_scalar(db, "SELECT value FROM meta WHERE key = 'token_secret'"))


def user_exists(db: sqlite3.Connection, user_id: str) -> bool:
    return _scalar(db, "SELECT 1 FROM users WHERE id = ?", user_id) is not None


def member_capabilities(
    db: sqlite3.Connection, user_id: str, organization_id: str
) -> frozenset[str] | None:
    """The member's capabilities in the organization, or None when not a member."""
    capabilities = _scalar(
        db,
        "SELECT capabilities FROM memberships WHERE user_id = ? AND org_id = ?",
        user_id,
        organization_id,
    )
    return None if capabilities is None else frozenset(capabilities.split())


def main_user_id(db: sqlite3.Connection) -> str:
    """The member whose jobs the default fixture key lists."""
    return _scalar(db, "SELECT value FROM meta WHERE key = 'main_user_id'")


def fetch_jobs(
    db: sqlite3.Connection,
    *,
    user_id: str,
    organization_id: str,
    status: str | None = None,
    limit: int = -1,
    offset: int = 0,
    order_by: str = LISTING_ORDER,
) -> list[sqlite3.Row]:
    """One window of the member's jobs in the organization; ``limit=-1`` means no limit."""
    sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = ? AND org_id = ?"
    params: list[Any] = [user_id, organization_id]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    sql += f" ORDER BY {order_by} LIMIT ? OFFSET ?"
    params += [limit, min(offset, MAX_SQL_INTEGER)]
    return db.execute(sql, params).fetchall()


def job_view(row: sqlite3.Row) -> dict[str, Any]:
    """A job as the list view renders it: no playback URL, no track summary."""
    return {
        "id": row["id"],
        "status": row["status"],
        "progress": row["progress"],
        "engine": row["engine"],
        "mode": row["mode"],
        "created_at": row["created_at"],
        "result_track_id": row["result_track_id"],
        "error_message": row["error_message"],
        "refusal_reason": row["refusal_reason"],
        "playback_url": None,
        "track": None,
    }


def _scalar(db: sqlite3.Connection, sql: str, *params: Any) -> Any:
    row = db.execute(sql, params).fetchone()
    return None if row is None else row[0]


# Seeding


def seed_database(path: Path, *, jobs: int = DEFAULT_JOBS, seed: int = DEFAULT_SEED) -> Fixture:
    """Create (or replace) the database at ``path``; identical arguments give identical contents."""
    rng = random.Random(seed)
    unique = _UniqueHex(rng)
    main, second, viewer, foreign = (unique.new("usr_", 40) for _ in range(4))
    api_keys = {user: _api_key(unique) for user in (main, second, viewer, foreign)}
    token_secret = rng.randbytes(32)  # drawn before the jobs, so a seed's jobs stay the same
    memberships = [
        (main, ORGANIZATION_ID, CAPABILITY),
        (second, ORGANIZATION_ID, CAPABILITY),
        (viewer, ORGANIZATION_ID, "VIEW_TRACKS"),
        (foreign, FOREIGN_ORGANIZATION_ID, CAPABILITY),
    ]
    job_rows = [
        *_jobs_for(rng, unique, main, ORGANIZATION_ID, jobs),
        *_jobs_for(rng, unique, second, ORGANIZATION_ID, SECOND_MEMBER_JOBS),
        *_jobs_for(rng, unique, viewer, ORGANIZATION_ID, NO_CAPABILITY_MEMBER_JOBS),
        *_jobs_for(rng, unique, foreign, FOREIGN_ORGANIZATION_ID, FOREIGN_MEMBER_JOBS),
    ]
    rng.shuffle(job_rows)  # so that insertion (rowid) order says nothing about the listing order
    revoked_api_key = _api_key(unique)
    bearer_token = _bearer_token(token_secret, main, _NEWEST_JOB_EPOCH, _TOKEN_EXPIRES)
    expired_bearer_token = _bearer_token(token_secret, main, _EXPIRED_TOKEN_ISSUED, _EXPIRED_TOKEN_EXPIRES)
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.executescript(SCHEMA)
        with db:
            db.execute("INSERT INTO meta VALUES ('main_user_id', ?)", (main,))
            db.execute("INSERT INTO meta VALUES ('token_secret', ?)", (token_secret.hex(),))
            db.executemany(
                "INSERT INTO organizations VALUES (?, ?)",
                [(ORGANIZATION_ID, "Reference Studio"), (FOREIGN_ORGANIZATION_ID, "Foreign Label")],
            )
            db.executemany(
                "INSERT INTO users VALUES (?, ?)",
                [(main, "main"), (second, "second"), (viewer, "viewer"), (foreign, "foreign")],
            )
            db.executemany("INSERT INTO memberships VALUES (?, ?, ?)", memberships)
            key_rows = [(key, user, ACTIVE) for user, key in api_keys.items()]
            key_rows.append((revoked_api_key, main, REVOKED))
            db.executemany("INSERT INTO api_keys VALUES (?, ?, ?)", key_rows)
            db.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", job_rows)
            db.execute(INDEXES)
    return Fixture(
        organization_id=ORGANIZATION_ID,
        api_key=api_keys[main],
        no_capability_api_key=api_keys[viewer],
        foreign_organization_id=FOREIGN_ORGANIZATION_ID,
        second_user_api_key=api_keys[second],
        bearer_token=bearer_token,
        revoked_api_key=revoked_api_key,
        expired_bearer_token=expired_bearer_token,
        database_path=path,
    )


class _UniqueHex:
    """Prefixed random hex ids, never the same one twice."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def new(self, prefix: str, bits: int = 48) -> str:
        while True:
            value = f"{prefix}{self._rng.getrandbits(bits):0{bits // 4}x}"
            if value not in self._seen:
                self._seen.add(value)
                return value


def _api_key(unique: _UniqueHex) -> str:
    return unique.new("fk_live_", 128)


def _bearer_token(secret: bytes, user_id: str, issued_at: int, expires_at: int) -> str:
    """A signed JWT (HS256) for the member, valid from ``issued_at`` until ``expires_at``."""
    claims = {"sub": user_id, "org": ORGANIZATION_ID, "iat": issued_at, "exp": expires_at}
    return tokens.issue(secret, claims)


def _jobs_for(
    rng: random.Random, unique: _UniqueHex, user_id: str, organization_id: str, count: int
) -> list[tuple[Any, ...]]:
    created = _created_at_values(rng, count, tie_runs=count // _JOBS_PER_TIE_RUN)
    job_statuses = _status_values(rng, count)
    return [
        _job_row(rng, unique, user_id, organization_id, status, created_at)
        for status, created_at in zip(job_statuses, created, strict=True)
    ]


def _created_at_values(rng: random.Random, count: int, *, tie_runs: int) -> list[str]:
    """``count`` timestamps, ``tie_runs`` of them repeated 2–6 times, in random order."""
    run_sizes = [rng.randint(2, 6) for _ in range(tie_runs)]
    while sum(run_sizes) > count:
        run_sizes.pop()
    distinct = count - sum(size - 1 for size in run_sizes)
    seconds = rng.sample(range(_SPAN_SECONDS), distinct)
    sizes = run_sizes + [1] * (distinct - len(run_sizes))
    values = [
        time.strftime(_CREATED_AT_FORMAT, time.gmtime(_NEWEST_JOB_EPOCH - second))
        for second, size in zip(seconds, sizes, strict=True)
        for _ in range(size)
    ]
    rng.shuffle(values)
    return values


def _status_values(rng: random.Random, count: int) -> list[str]:
    """Random statuses, each one at least five times when ``count`` allows it."""
    choices = statuses()
    per_status = min(_MIN_JOBS_PER_STATUS, count // len(choices))
    values = [status for status in choices for _ in range(per_status)]
    weights = [_STATUS_WEIGHTS.get(status, 1) for status in choices]
    values += rng.choices(choices, weights=weights, k=count - len(values))
    rng.shuffle(values)
    return values


def _job_row(
    rng: random.Random,
    unique: _UniqueHex,
    user_id: str,
    organization_id: str,
    status: str,
    created_at: str,
) -> tuple[Any, ...]:
    succeeded = status == "succeeded"
    return (
        unique.new("mgen_"),
        user_id,
        organization_id,
        status,
        _progress(rng, status),
        rng.choice(ENGINES),
        rng.choice(_MODES),
        created_at,
        unique.new("mtrack_") if succeeded else None,
        rng.choice(_ERROR_MESSAGES) if status == "failed" else None,
        rng.choice(_REFUSAL_REASONS) if status == "refused" else None,
    )


def _progress(rng: random.Random, status: str) -> int:
    if status == "succeeded":
        return 100
    if status == "running":
        return rng.randint(1, 99)
    if status in ("failed", "cancelled"):
        return rng.randint(0, 99)
    return 0  # queued and refused jobs never started

