"""The suite against hostile deployments: peak memory and wall time of a whole run for each
bomb a deployment can send (the trust issue's bound: under 512 MiB whatever it sends).

Used by ``benchmarks/run.py``; each case is a :class:`tests.hostile.HostileServer` in front of
(or instead of) a reference deployment, and the suite runs in a subprocess that reports its
own peak resident memory (``VmHWM``) when it ends.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.reference import ReferenceServer  # noqa: E402
from tests.hostile import HostileServer, Reply, Request  # noqa: E402
from tests.peak_memory import PEAK_MIB  # noqa: E402

MEMORY_BOUND_MIB = 512
RUN_TIMEOUT_S = 300
GIB = 1024**3
RUN_AND_MEASURE = PEAK_MIB + """
import sys
from conformance.cli import main
code = main(["run", *sys.argv[1:]])
print(f"PEAK_MIB={peak_mib():.0f}", file=sys.__stderr__)
sys.exit(code)
"""


def _zeros_gzip(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed, built in chunks (about 1 KB per MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + compressor.flush()


def _endless(piece: bytes, seconds: float) -> Iterator[bytes]:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        yield piece
        time.sleep(0.05)


def _cases() -> dict[str, Callable[[Request, Reply | None], Reply]]:
    one_gib = _zeros_gzip(GIB)
    double = gzip.compress(one_gib, 9)
    deep = b"[" * 200_000 + b"]" * 200_000
    json_type = ("Content-Type", "application/json")

    def on_pages(body: Reply) -> Callable[[Request, Reply | None], Reply]:
        def answer(request: Request, reply: Reply | None) -> Reply:
            assert reply is not None
            return body if reply.status == 200 else reply
        return answer

    return {
        "gzip, gzip: 1 GiB in ~1 KB": on_pages(Reply(headers=(json_type, ("Content-Encoding", "gzip, gzip")),
                                                      body=double)),
        "gzip: 1 GiB in ~1 MB": on_pages(Reply(headers=(json_type, ("Content-Encoding", "gzip")), body=one_gib)),
        "JSON nested 200,000 deep": on_pages(Reply(headers=(json_type,), body=deep)),
        "endless body (10 s trickle)": on_pages(Reply(headers=(json_type,), body=_endless(b"[" * 4096, 10),
                                                      content_length=False)),
        "1,500 headers of 1 KB": on_pages(Reply(headers=(json_type, *((f"X-H{n}", "v" * 1024) for n in range(1500))),
                                                body=b'{"jobs": [], "limit": 50, "offset": 0}')),
    }


@dataclass
class HostileRun:
    case: str
    exit_code: int
    wall_s: float
    peak_mib: float
    verdict: str


def run_case(name: str, answer: Callable[[Request, Reply | None], Reply], server: ReferenceServer) -> HostileRun:
    with tempfile.TemporaryDirectory(prefix="conformance-hostile-") as folder, \
            HostileServer(answer, upstream=server.base_url) as hostile:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "FREDDY_"))}
        env.update(hostile.suite_env(server, Path(folder)))
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-c", RUN_AND_MEASURE, "--report-dir", f"{folder}/r"],
                                   env=env, cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                                   stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        peak = next((float(line.split("=")[1]) for line in completed.stderr.splitlines()
                     if line.startswith("PEAK_MIB=")), float("nan"))
        results = Path(folder) / "r" / "results.json"
        verdict = json.loads(results.read_text(encoding="utf-8"))["verdict"] if results.is_file() else "-"
    return HostileRun(name, completed.returncode, wall, peak, verdict)


def hostile_runs() -> list[HostileRun]:
    with ReferenceServer() as server:
        return [run_case(name, answer, server) for name, answer in _cases().items()]


def print_hostile(runs: list[HostileRun]) -> None:
    print(f"\nhostile deployments (one whole run each; the bound is {MEMORY_BOUND_MIB} MiB)")
    print(f"{'case':<30} {'exit':>4} {'wall s':>7} {'peak MiB':>9}  verdict")
    for run in runs:
        flag = "" if run.peak_mib < MEMORY_BOUND_MIB else "  OVER THE BOUND"
        print(f"{run.case:<30} {run.exit_code:>4} {run.wall_s:>7.1f} {run.peak_mib:>9.0f}  {run.verdict}{flag}")


if __name__ == "__main__":
    print_hostile(hostile_runs())
