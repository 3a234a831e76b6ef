"""Run every benchmark and its peers in one go, then write docs/benchmarks.md.

    .venv/bin/python -m bench            # the full run (about 30 minutes on 2 cores)
    .venv/bin/python -m bench --quick    # small sizes, a few minutes: a smoke check

Each benchmark runs in a child process of its own with a time limit, and starts and
stops every server it needs (PostgreSQL databases, Redis, nodes, peers) on
loopback. Results go to bench/results/<time>/ as JSON; the report, its tables and
its plots are written from them by bench/report.py. While the run lasts, a monitor
notes the load and the busiest processes that are not this run's, so the report
can say whether the machine was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import ROOT, log, machine, versions

RESULTS_DIR = ROOT / "bench" / "results"
MONITOR_EVERY_S = 15.0


def plan(quick: bool) -> list[tuple[str, list[str], float]]:
    """Every run: its name, its command line and its time limit in seconds."""
    runs: list[tuple[str, list[str], float]] = []
    sizes = [200] if quick else [1000, 5000, 10_000]
    rate = "50" if quick else "100"
    duration = "5" if quick else "20"
    for sockets in sizes:
        for nodes in (1, 2):
            for system in ("sessionclock", "socketio"):
                name = f"push-{system}-{nodes}n-{sockets}"
                args = [
                    "bench/push_latency.py",
                    f"--system={system}",
                    f"--sessions={sockets // 2}",
                    f"--nodes={nodes}",
                    f"--rate={rate}",
                    f"--duration-s={duration}",
                ]
                runs.append((name, args, 900))
                if system == "sessionclock" and sockets == sizes[-1] and nodes == 2:
                    # py-spy takes CPU from the same two cores: the measured runs
                    # go unobserved, and a run of its own shows where time goes.
                    profiled = [*args, "--profile={profile}"]
                    runs.append((f"profile-{name}", profiled, 900))
                    runs.append((f"stages-{name}", [*args, "--stages"], 900))

    total, ending, sample, lead = (
        ("5000", "500", "100", "15") if quick else ("100000", "10000", "2000", "50")
    )
    period = "5" if quick else "20"
    expiry = ["bench/expiry.py", f"--total={total}", f"--ending={ending}"]
    expiry += [f"--sample={sample}", f"--lead-s={lead}"]
    runs.append(("expiry-sessionclock", [*expiry, "--system=sessionclock"], 600))
    for peer in ("apscheduler", "redis"):
        runs.append((f"expiry-{peer}", [*expiry, f"--system={peer}"], 600))
    cron = [*expiry, "--system=cron"]
    runs.append(("expiry-cron", [*cron, f"--cron-period-s={period}"], 600))
    if not quick:
        # The seed system's own period: the run waits up to five minutes for its
        # sweep, at one phase; the report adds the spread over every phase.
        runs.append(("expiry-cron-300", [*cron, "--cron-period-s=300"], 900))

    trials = "3" if quick else "30"
    runs.append(("clock", ["bench/clock_agreement.py", f"--trials={trials}"], 600))
    runs.append(
        (
            "clock-symmetric",
            [
                "bench/clock_agreement.py",
                f"--trials={trials}",
                "--up-ms",
                "20",
                "80",
                "--down-ms",
                "20",
                "80",
            ],
            600,
        )
    )

    clients = "1000" if quick else "10000"
    bounds = ["bench/clock_bounds.py", f"--clients={clients}"]
    runs.append(("clock-bounds", bounds, 600))

    rows = "5000" if quick else "100000"
    for backend in ("sqlite", "postgresql"):
        cleanup = ["bench/cleanup.py", f"--backend={backend}"]
        cleanup += [f"--overdue={rows}", f"--ended={rows}"]
        runs.append((f"cleanup-{backend}", cleanup, 900))

    polling = ["bench/polling.py"]
    polling += ["--sessions=300", "--duration-s=3"] if quick else ["--sessions=5000"]
    runs.append(("polling", polling, 600))
    runs.append(("profile-polling", [*polling, "--profile={profile}"], 600))
    profiled_expiry = [*expiry, "--system=sessionclock", "--profile={profile}"]
    runs.append(("profile-expiry-sessionclock", profiled_expiry, 600))
    return runs


class Monitor(threading.Thread):
    """Notes the load and the busiest processes outside this run, now and then."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(MONITOR_EVERY_S):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self._stop.set()

    @staticmethod
    def sample() -> dict[str, Any]:
        ours = {os.getpid()}
        ours.update(child.pid for child in psutil.Process().children(recursive=True))
        others = []
        for process in psutil.process_iter(["pid", "name", "cmdline"]):
            command = " ".join(process.info["cmdline"] or [process.info["name"]])
            # PostgreSQL's backends for this run's own databases are this run's.
            if process.info["pid"] in ours or "sessionclock_bench" in command:
                continue
            try:
                share = process.cpu_percent(interval=None)
            except psutil.Error:
                continue
            if share >= 20:
                others.append({"cpu_percent": share, "command": command[:80]})
        return {
            "at": time.strftime("%H:%M:%S", time.gmtime()),
            "load_average": [round(value, 2) for value in os.getloadavg()],
            "others": sorted(others, key=lambda o: -o["cpu_percent"])[:5],
        }


def commit() -> str:
    """The commit the run measures, marked when the tree has changes on top."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not head:
        return "unknown"
    return f"{head} with changes" if changed else head


def run_one(name: str, args: list[str], limit_s: float, folder: Path) -> dict[str, Any]:
    """One benchmark in a child process; its JSON answer, or what went wrong."""
    profile = folder / f"{name}.profile.txt"
    command = [sys.executable, *(a.replace("{profile}", str(profile)) for a in args)]
    log(f"run {name}: {' '.join(command[1:])}")
    started_s = time.perf_counter()
    with (folder / f"{name}.log").open("w") as errors:
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=errors,
                timeout=limit_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"name": name, "error": f"took longer than {limit_s} s"}
    took_s = round(time.perf_counter() - started_s, 1)
    if done.returncode != 0:
        return {"name": name, "error": f"exit {done.returncode}", "took_s": took_s}
    result: dict[str, Any] = json.loads(done.stdout)
    result.update(name=name, took_s=took_s)
    log(f"done {name} in {took_s} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, minutes")
    parser.add_argument("--only", nargs="+", help="run names that start with these")
    parser.add_argument(
        "--into",
        type=Path,
        help="a results folder of an earlier run: run again what --only names there",
    )
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    runs = plan(args.quick)
    if args.only:
        runs = [run for run in runs if run[0].startswith(tuple(args.only))]
    psutil.cpu_percent(interval=None)
    monitor = Monitor()
    if args.into is not None:
        folder = args.into
        record: dict[str, Any] = json.loads((folder / "results.json").read_text())
        record.setdefault("reruns", []).append(
            {
                "runs": [name for name, _, _ in runs],
                "before": Monitor.sample(),
                "commit": commit(),
            }
        )
    else:
        folder = RESULTS_DIR / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        folder.mkdir(parents=True)
        record = {
            "mode": "quick" if args.quick else "full",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit(),
            "machine": machine(),
            "versions": versions(),
            "before": Monitor.sample(),
            "runs": [],
            "monitor": [],
        }
    monitor.start()
    try:
        for name, command, limit_s in runs:
            result = run_one(name, command, limit_s, folder)
            # A run made again replaces the earlier one of the same name, which is
            # kept aside so that the report can say what it had found.
            earlier = [r for r in record["runs"] if r["name"] == name]
            record.setdefault("replaced", []).extend(earlier)
            record["runs"] = [r for r in record["runs"] if r["name"] != name]
            record["runs"].append(result)
            (folder / "results.json").write_text(json.dumps(record, indent=2))
    finally:
        monitor.stop()
        record["monitor"] = record.get("monitor", []) + monitor.samples
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (folder / "results.json").write_text(json.dumps(record, indent=2))
    log(f"results in {folder}")
    if not args.no_report:
        from bench.report import write_report

        write_report(folder / "results.json")


if __name__ == "__main__":
    main()
