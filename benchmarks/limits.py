"""The suite against a deployment that enforces the provider's published rate limit (100
requests a minute per key), with no pacing option given: it must learn the limit and end with
a real verdict in at most about 1.1 x requests / limit. Used by ``benchmarks/run.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.reference import ReferenceServer  # noqa: E402

PER_MINUTE = 100
RUN_TIMEOUT_S = 900


@dataclass
class LimitedRun:
    limit_per_s: float
    exit_code: int
    verdict: str
    requests: int
    rate_limited: int
    wall_s: float

    @property
    def bound_s(self) -> float:
        return self.requests / self.limit_per_s

    @property
    def pace_line(self) -> str:
        return f"{self.wall_s / self.bound_s:.2f} x requests/limit" if self.bound_s else "-"


def limited_run(per_minute: float = PER_MINUTE) -> LimitedRun:
    rate = per_minute / 60
    with tempfile.TemporaryDirectory(prefix="conformance-limited-") as folder, \
            ReferenceServer(rate_limit=rate) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "FREDDY_"))}
        env.update(server.suite_env(Path(folder)))
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", f"{folder}/r"],
                                   env=env, cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                                   stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        results_file = Path(folder) / "r" / "results.json"
        results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
        limited = server.modes.rate_limited if server.modes is not None else 0
        return LimitedRun(rate, completed.returncode, results.get("verdict", "-"), server.request_count,
                          limited, wall)


def print_limited(run: LimitedRun) -> None:
    print(f"\nrate limit enforced by the deployment: {run.limit_per_s * 60:g} requests a minute, no --max-rps given")
    print(f"  verdict {run.verdict} (exit {run.exit_code}); {run.requests} requests reached it, {run.rate_limited} "
          f"answered 429; {run.wall_s:.1f} s wall, requests/limit {run.bound_s:.1f} s: {run.pace_line}")


if __name__ == "__main__":
    print_limited(limited_run(float(sys.argv[1]) if len(sys.argv) > 1 else PER_MINUTE))
