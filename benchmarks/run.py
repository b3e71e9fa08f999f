"""How fast the suite is against the reference deployment, and side by side with Schemathesis.

    python benchmarks/run.py [--quick] [--out FILE] [--schemathesis PATH_TO_st]

For 300, 1,000 and 100,000 jobs, with 0 and 25 ms added to every request, the suite runs in
a subprocess against a reference deployment started here, and the script prints the requests
it sent (counted by the deployment), its wall time, CPU time and peak memory (its own rusage,
from ``os.wait4``, so the deployment's CPU is not counted), the floor (a process importing the
suite's modules and sending as many plain httpx GETs) and the suite's CPU over it, and the
least time the latency can add at that concurrency, ``requests x latency / concurrency``,
beside the time it did add (against the same run at 0 ms). The fault matrix runs at the
default and again inside ``--max-requests 100`` and ``60``; then hostile deployments (bombs) and a
deployment enforcing 100 requests a minute. Schemathesis (``st run schemas/openapi.yaml``, the
checks that apply to a read-only endpoint) runs against the same deployment with the same
latency. Then both tools run
against each fault of the reference deployment, at 0 ms: the suite detects a fault when a
requirement fails, Schemathesis when it reports a failure.

Schemathesis is the ``bench`` extra, best installed in a venv of its own
(``python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install 'schemathesis>=4'``), then
``--schemathesis /tmp/stvenv/bin/st``. Without it that part is skipped, and the script says so.
Nothing printed or written holds a credential: keys reach both tools through the environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import hostile, limits  # noqa: E402
from conformance import __version__, catalogue, hypothesis_profiles  # noqa: E402
from conformance.client import DEFAULT_CONCURRENCY  # noqa: E402
from conformance.reference import ReferenceServer  # noqa: E402
from conformance.reference.faults import FAULTS  # noqa: E402

JOBS = (300, 1_000, 100_000)
QUICK_JOBS = (300, 1_000)
BUDGETS = (100, 60)  # the fault matrix runs again inside each --max-requests
LATENCIES_MS = (0, 25)
QUICK_FAULTS = 10
RUN_TIMEOUT_S = 600
OPENAPI = ROOT / "schemas" / "openapi.yaml"
# Schemathesis' checks that the contract gives an expectation for on one read-only operation:
# no 5xx, documented statuses, content types and bodies, invalid input refused, valid input
# accepted, credentials required. Method, header and resource-lifecycle checks do not apply.
ST_CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
             "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance",
             "ignored_auth")
ST_EXAMPLES = 100  # Schemathesis' examples per operation (the suite's ci profile sends fewer)
ST_SEED = 0
ST_CONFIG = """\
# Written by benchmarks/run.py; the key is read from the environment, never written here.
headers = { "X-API-Key" = "${BENCH_API_KEY}" }

[parameters]
"path.organization_id" = "${BENCH_ORG_ID}"
"""


@dataclass
class Run:
    """One tool's run against one deployment."""

    tool: str
    jobs: int
    latency_ms: float
    exit_code: int
    requests: int
    wall_s: float
    cpu_s: float
    peak_mib: float
    failed: list[str] = field(default_factory=list)  # requirement ids, or Schemathesis failure codes
    errors: int = 0
    verdict: str = ""  # the suite's verdict (conformant, incomplete, ...)
    floor_cpu_s: float = 0.0  # interpreter + imports + the same number of plain httpx GETs
    not_checked: list[str] = field(default_factory=list)  # the suite's requirements not checked
    seed_s: float = 0.0  # seconds to seed and start the reference deployment


def measure(command: list[str], env: dict[str, str], cwd: Path, server: ReferenceServer, tool: str,
            jobs: int) -> Run:
    """Run ``command`` to its end; its requests as the deployment counted them, its own rusage."""
    before = server.request_count
    with open(cwd / "stdout.txt", "wb") as out, open(cwd / "stderr.txt", "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            _, status, usage = _wait4(process.pid, RUN_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(tool, jobs, server.latency_ms, process.returncode, server.request_count - before, wall,
               usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _wait4(pid: int, timeout: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        if waited:
            return waited, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def suite_env(server: ReferenceServer, folder: Path) -> dict[str, str]:
    """This process's environment, less any suite setting, pointed at ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "FREDDY_"))}
    env.update(server.suite_env(folder))
    return env


def run_suite(server: ReferenceServer, jobs: int, args: argparse.Namespace, extra: tuple[str, ...] = ()) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as scratch:
        folder = Path(scratch)
        # The suite reports its own peak memory (VmHWM): the rusage of a child forked from this
        # process, which holds the deployment, would count this process's size too.
        command = [sys.executable, "-c", hostile.RUN_AND_MEASURE, "--report-dir", str(folder / "reports"),
                   "--concurrency", str(args.concurrency), *extra]
        run = measure(command, suite_env(server, folder), folder, server, "conformance", jobs)
        peak = re.search(r"^PEAK_MIB=(\d+)", (folder / "stderr.txt").read_text(errors="replace"), re.MULTILINE)
        if peak:
            run.peak_mib = float(peak.group(1))
        results_file = folder / "reports" / "results.json"
        if results_file.is_file():
            results = json.loads(results_file.read_text(encoding="utf-8"))
            run.failed = [rid for rid, r in results["requirements"].items() if r["outcome"] == "failed"]
            run.not_checked = [rid for rid, r in results["requirements"].items() if r["outcome"] == "not_checked"]
            run.verdict = results["verdict"]
            run.errors = sum(1 for r in results["requirements"].values() if r["outcome"] == "error")
        else:
            run.errors = 1
        return run


FLOOR = """\
import sys
import httpx
import conformance.cli, conformance.plugin  # the suite's imports
url, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with httpx.Client(headers={"X-API-Key": key}) as client:
    for number in range(count):
        client.get(url, params={"limit": 1 + number % 100, "offset": number % 50})
"""


def floor_cpu(server: ReferenceServer, requests: int) -> float:
    """CPU seconds of the floor: a Python process that imports what the suite imports and sends
    as many plain httpx GETs to the same deployment."""
    url = f"{server.base_url}/v1/music/{server.fixture.organization_id}/generations"
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch:
        # The key travels as an argument of a process of this script's own, never printed or written.
        run = measure([sys.executable, "-c", FLOOR, url, server.fixture.api_key, str(requests)],
                      suite_env(server, Path(scratch)), Path(scratch), server, "floor", server.jobs)
    return run.cpu_s


def st_command(st: str, server: ReferenceServer, folder: Path) -> list[str]:
    return [st, "--config-file", str(folder / "schemathesis.toml"), "run", str(OPENAPI), "--url", server.base_url,
            "--checks", ",".join(ST_CHECKS), "--max-examples", str(ST_EXAMPLES), "--seed", str(ST_SEED),
            "--generation-database", "none", "--no-color", "--report", "junit",
            "--report-junit-path", str(folder / "junit.xml")]


def run_schemathesis(st: str, server: ReferenceServer, jobs: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-st-") as scratch:
        folder = Path(scratch)
        (folder / "schemathesis.toml").write_text(ST_CONFIG, encoding="utf-8")
        env = dict(os.environ, BENCH_API_KEY=server.fixture.api_key, BENCH_ORG_ID=server.fixture.organization_id)
        run = measure(st_command(st, server, folder), env, folder, server, "schemathesis", jobs)
        run.failed, run.errors = _junit(folder / "junit.xml")
        if not (folder / "junit.xml").is_file():
            run.errors = 1
        return run


def _junit(path: Path) -> tuple[list[str], int]:
    """Schemathesis' failure codes (ST108, ...) and its error count, from its JUnit report."""
    if not path.is_file():
        return [], 0
    root = ElementTree.parse(path).getroot()
    codes: list[str] = []
    for failure in root.iter("failure"):
        codes += re.findall(r"^- (ST\d+|[A-Z][\w ]+)$", failure.text or "", flags=re.MULTILINE) or [
            failure.get("message") or "failure"]
    return sorted(set(codes)), sum(1 for _ in root.iter("error"))


def find_schemathesis(path: str) -> str | None:
    found = shutil.which(path)
    return found if found else (path if Path(path).is_file() and os.access(path, os.X_OK) else None)


# -- the three parts ---------------------------------------------------------------------


def speed(args: argparse.Namespace, st: str | None) -> list[dict[str, Any]]:
    rows = []
    for jobs in args.jobs:
        for latency in LATENCIES_MS:
            started = time.perf_counter()
            with ReferenceServer(jobs=jobs, latency_ms=latency) as server:
                seeded = time.perf_counter() - started
                ours = run_suite(server, jobs, args)
                ours.seed_s = seeded
                ours.floor_cpu_s = floor_cpu(server, ours.requests)
                theirs = run_schemathesis(st, server, jobs) if st else None
            rows.append({"jobs": jobs, "latency_ms": latency, "conformance": asdict(ours),
                         "schemathesis": asdict(theirs) if theirs else None})
            print(f"  ran {jobs:,} jobs at {latency} ms: {ours.requests} requests in {ours.wall_s:.1f} s"
                  + (f"; Schemathesis {theirs.requests} in {theirs.wall_s:.1f} s" if theirs else ""), flush=True)
    for row in rows:
        zero = next(r for r in rows if r["jobs"] == row["jobs"] and r["latency_ms"] == 0)["conformance"]
        ours = row["conformance"]
        row["bound_s"] = ours["requests"] * row["latency_ms"] / 1000 / args.concurrency
        row["added_s"] = ours["wall_s"] - zero["wall_s"] if row["latency_ms"] else 0.0
    return rows


def budget_detection(args: argparse.Namespace, budget: int) -> dict[str, Any]:
    """Every fault again, inside ``--max-requests budget``: which it still detects (naming every
    requirement the fault breaks), and what the budget leaves unchecked on the reference."""
    detected: dict[str, bool] = {}
    for name in sorted(FAULTS):
        behaviour = FAULTS[name]
        jobs = getattr(behaviour, "jobs", None) or 300
        with ReferenceServer(behaviour=name, jobs=jobs) as server:
            ours = run_suite(server, jobs, args, ("--max-requests", str(budget),
                                                  *getattr(behaviour, "suite_args", ())))
        detected[name] = set(behaviour.breaks) <= set(ours.failed)
    with ReferenceServer() as server:
        reference = run_suite(server, 300, args, ("--max-requests", str(budget)))
    return {"budget": budget, "detected": detected, "reference_not_checked": reference.not_checked,
            "reference_requests": reference.requests, "reference_verdict": reference.verdict}


def print_budget(result: dict[str, Any]) -> None:
    detected = result["detected"]
    missed = sorted(name for name, ok in detected.items() if not ok)
    print(f"\nInside --max-requests {result['budget']}: {len(detected) - len(missed)}/{len(detected)} faults "
          f"detected, naming every requirement they break ({100 * (len(detected) - len(missed)) / len(detected):.0f}%)")
    print(f"  missed: {', '.join(missed) or '-'}")
    print(f"  on the reference: {result['reference_requests']} requests, verdict {result['reference_verdict']}, "
          f"not checked: {', '.join(result['reference_not_checked']) or '-'}")


def faults(args: argparse.Namespace, st: str | None) -> dict[str, Any]:
    names = sorted(FAULTS)
    if args.quick:
        names = names[:: max(1, len(names) // QUICK_FAULTS)][:QUICK_FAULTS]
    detected: dict[str, Any] = {}
    for number, name in enumerate(names, 1):
        behaviour = FAULTS[name]
        jobs = getattr(behaviour, "jobs", None) or 300
        with ReferenceServer(behaviour=name, jobs=jobs) as server:
            ours = run_suite(server, jobs, args, tuple(getattr(behaviour, "suite_args", ())))
            theirs = run_schemathesis(st, server, jobs) if st else None
        detected[name] = {
            "breaks": list(behaviour.breaks),
            "conformance": {"detected": bool(ours.failed), "exit_code": ours.exit_code, "failed": ours.failed,
                            "names_breaks": set(behaviour.breaks) <= set(ours.failed)},
            "schemathesis": None if theirs is None else {
                "detected": bool(theirs.failed), "exit_code": theirs.exit_code, "failures": theirs.failed,
                "errors": theirs.errors},
        }
        print(f"  fault {number}/{len(names)} {name}: suite {'detected' if ours.failed else 'MISSED'}"
              + ("" if theirs is None else f", Schemathesis {'detected' if theirs.failed else 'missed'}"), flush=True)
    return detected


# -- printing ----------------------------------------------------------------------------


def print_speed(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nThe suite against the reference deployment (--concurrency {args.concurrency}, Hypothesis ci profile, "
          f"{hypothesis_profiles.CI_EXAMPLES} examples, seed {hypothesis_profiles.CI_SEED}; {os.cpu_count()} CPUs)")
    print(f"{'jobs':>8} {'latency':>8} {'requests':>9} {'wall s':>7} {'cpu s':>6} {'floor s':>7} {'cpu/floor':>9} "
          f"{'peak MiB':>9} {'bound s':>8} {'added s':>8} {'added/bound':>12}  verdict")
    for row in rows:
        ours = row["conformance"]
        ratio = f"{row['added_s'] / row['bound_s']:.2f}" if row["bound_s"] else "-"
        unchecked = f", {len(ours['not_checked'])} not checked" if ours["not_checked"] else ""
        verdict = f"{ours['verdict'] or 'exit ' + str(ours['exit_code'])}{unchecked} (seeded in {ours['seed_s']:.1f} s)"
        floor = ours["floor_cpu_s"]
        over_floor = f"{ours['cpu_s'] / floor:.2f}" if floor else "-"
        print(f"{row['jobs']:>8,} {row['latency_ms']:>5} ms {ours['requests']:>9} {ours['wall_s']:>7.2f} "
              f"{ours['cpu_s']:>6.2f} {floor:>7.2f} {over_floor:>9} {ours['peak_mib']:>9.0f} {row['bound_s']:>8.2f} "
              f"{row['added_s'] if row['latency_ms'] else 0:>8.2f} {ratio:>12}  {verdict}")
    print("bound = requests x latency / concurrency, the least time the latency can add; added = wall time "
          "minus the same run's at 0 ms;\nfloor = CPU of a Python process importing the suite's modules and "
          "sending as many plain httpx GETs to the same deployment")
    at_zero = {row["jobs"]: row["conformance"]["requests"] for row in rows if row["latency_ms"] == 0}
    largest = max(at_zero)
    if 1_000 in at_zero and largest > 1_000:
        print(f"requests at {largest:,} jobs / at 1,000 jobs: {at_zero[largest] / at_zero[1_000]:.2f}")


def print_side_by_side(rows: list[dict[str, Any]], st: str | None) -> None:
    if not st:
        return
    print(f"\nSide by side, same deployment and latency. Schemathesis: st run schemas/openapi.yaml --checks "
          f"{','.join(ST_CHECKS)} --max-examples {ST_EXAMPLES} --seed {ST_SEED} (its default workers and phases)")
    print(f"{'jobs':>8} {'latency':>8} | {'conformance wall s':>18} {'requests':>9} {'cpu s':>6} | "
          f"{'schemathesis wall s':>19} {'requests':>9} {'cpu s':>6}")
    for row in rows:
        ours, theirs = row["conformance"], row["schemathesis"]
        print(f"{row['jobs']:>8,} {row['latency_ms']:>5} ms | {ours['wall_s']:>18.2f} {ours['requests']:>9} "
              f"{ours['cpu_s']:>6.2f} | {theirs['wall_s']:>19.2f} {theirs['requests']:>9} {theirs['cpu_s']:>6.2f}")


def print_faults(detected: dict[str, Any], st: str | None) -> None:
    total = len(detected)
    ours = [name for name, d in detected.items() if d["conformance"]["detected"]]
    named = [name for name, d in detected.items() if d["conformance"]["names_breaks"]]
    print(f"\nFaults of the reference deployment detected (conformance/reference/faults.py, 0 ms; "
          f"{total} of {len(FAULTS)} faults)")
    print(f"  conformance   {len(ours)}/{total} (and names every requirement the fault breaks in {len(named)})")
    if st:
        theirs = [name for name, d in detected.items() if d["schemathesis"]["detected"]]
        print(f"  schemathesis  {len(theirs)}/{total}")
        only_ours = sorted(set(ours) - set(theirs))
        only_theirs = sorted(set(theirs) - set(ours))
        print(f"  only the suite ({len(only_ours)}): {', '.join(only_ours) or '-'}")
        print(f"  only Schemathesis ({len(only_theirs)}): {', '.join(only_theirs) or '-'}")
        by_requirement: dict[str, list[int]] = {}
        for d in detected.values():
            for rid in d["breaks"]:
                counts = by_requirement.setdefault(rid, [0, 0, 0])
                counts[0] += 1
                counts[1] += d["conformance"]["detected"]
                counts[2] += d["schemathesis"]["detected"]
        print("  by the requirement a fault breaks (faults: suite / Schemathesis):")
        order = list(catalogue.REQUIREMENTS)
        line = "    " + ", ".join(f"{rid} {c[1]}/{c[2]} of {c[0]}" for rid, c in
                                  sorted(by_requirement.items(), key=lambda item: order.index(item[0])))
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"100 and 1,000 jobs only, and {QUICK_FAULTS} of the faults")
    parser.add_argument("--out", type=Path, default=Path("benchmark.json"), help="JSON file of the figures")
    parser.add_argument("--schemathesis", default="st", metavar="PATH",
                        help="Schemathesis' st command (default: st on PATH)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="the suite's --concurrency")
    parser.add_argument("--jobs", type=int, nargs="+", help="listing sizes (default: 300 1000 100000)")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault detection parts")
    parser.add_argument("--no-hostile", action="store_true",
                        help="skip the hostile deployments and the rate-limited run (about 2 minutes)")
    args = parser.parse_args(argv)
    args.jobs = tuple(args.jobs or (QUICK_JOBS if args.quick else JOBS))
    # The faults make the reference log tracebacks, and Schemathesis malformed requests that
    # uvicorn logs (it sets its own levels): not this script's output.
    for name in ("uvicorn", "conformance.reference"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    st = find_schemathesis(args.schemathesis)
    if st is None:
        print(f"Schemathesis: '{args.schemathesis}' not found; its side of the comparison is skipped "
              "(install the bench extra in a venv of its own and pass --schemathesis PATH_TO_st)")
    else:
        version = subprocess.run([st, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"Schemathesis: {st} ({version})")
    print(f"conformance {__version__}, Python {platform.python_version()}; speed runs:", flush=True)
    rows = speed(args, st)
    detected = {} if args.no_faults else faults(args, st)
    budgets = [] if args.no_faults else [budget_detection(args, budget) for budget in BUDGETS]
    bombs = [] if args.no_hostile else hostile.hostile_runs()
    limited = None if args.no_hostile else limits.limited_run()
    print_speed(rows, args)
    print_side_by_side(rows, st)
    if detected:
        print_faults(detected, st)
        for budget in budgets:
            print_budget(budget)
    if bombs:
        hostile.print_hostile(bombs)
    if limited is not None:
        limits.print_limited(limited)
    report = {
        "suite": {"version": __version__, "concurrency": args.concurrency, "hypothesis_profile": "ci",
                  "examples": hypothesis_profiles.CI_EXAMPLES, "seed": hypothesis_profiles.CI_SEED},
        "schemathesis": None if st is None else {
            "command": "st run schemas/openapi.yaml", "checks": list(ST_CHECKS), "max_examples": ST_EXAMPLES,
            "seed": ST_SEED, "version": version},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "speed": rows,
        "faults": detected,
        "budgets": budgets,
        "hostile": [asdict(run) for run in bombs],
        "rate_limited": None if limited is None else asdict(limited),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
