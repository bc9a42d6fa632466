"""Benchmarks of trio_llm against raw httpx and the official SDKs, in one run; writes docs/benchmarks.md.

Every number is a ratio against a baseline measured in the same run, on the same loopback
emulator: the emulator runs in its own process (``python -m trio_llm emulate``), pinned to one
CPU; every client run is a fresh subprocess pinned to the other; the runs of a scenario are
shuffled in every round (the seed is recorded); medians and min-max over the rounds are
reported, CPU time (``time.process_time``) beside wall time, and the emulator's own CPU share.

Usage: python bench/run.py [--quick] [--rounds N] [--soak SECONDS] [--only SCENARIO ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = ("stream", "requests", "fanout", "memory", "cancel", "large", "soak", "import")
ROUTE_PEERS = {"gemini": "google_genai", "gigachat": "gigachat_sdk", "openai": "openai_sdk"}
PEER_PACKAGES = {"google_genai": "google-genai", "gigachat_sdk": "gigachat", "openai_sdk": "openai"}
#: Characters per word of the emulator's reply text (with the space), to size large events.
CHARS_PER_WORD = 5.8
MIB = 1024 * 1024
#: The emulator on one CPU, the clients on the other (when there are two).
EMULATOR_CPU, CLIENT_CPU = ({1}, {0}) if (os.cpu_count() or 1) >= 2 else (None, None)


def _spawn(command: list[str], cpus: set[int] | None, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``command`` on ``cpus`` (its first instructions may run elsewhere: it is pinned
    as soon as it exists, which is well before it is measured)."""
    process = subprocess.Popen(command, text=True, **kwargs)
    if cpus is not None:
        os.sched_setaffinity(process.pid, cpus)
    return process


def _run(command: list[str], cpus: set[int] | None) -> subprocess.CompletedProcess[str]:
    process = _spawn(command, cpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


class Emulator:
    """``python -m trio_llm emulate`` in its own process, and what its banner says."""

    def __init__(self, ca_dir: Path, **settings: float) -> None:
        self.settings = settings
        ca_file = ca_dir / f"ca-{len(os.listdir(ca_dir))}.pem"
        command = [sys.executable, "-m", "trio_llm", "emulate", "--port", "0", "--ca-file", str(ca_file)]
        for name, value in settings.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self.process = _spawn(command, EMULATOR_CPU, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        banner: dict[str, str] = {}
        for line in self.process.stdout:
            if line.startswith("  "):
                name, _, value = line.strip().rpartition(" ")
                banner[name.strip()] = value
            if "ca file" in banner:
                break
        if "ca file" not in banner:
            raise SystemExit(f"the emulator did not start: {command}")
        self.config = {
            "urls": {name: value for name, value in banner.items() if "://" in value},
            "key": banner["api key"],
            "credentials": banner["credentials"],
            "ca_file": banner["ca file"],
            "emulator_pid": self.process.pid,
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def emulator(ca_dir: Path, **settings: float) -> Iterator[dict[str, Any]]:
    server = Emulator(ca_dir, **settings)
    try:
        yield server.config
    finally:
        server.stop()


def run_client(cfg: dict[str, Any]) -> dict[str, Any]:
    script = "peers.py" if cfg["client"] in PEER_PACKAGES else "client.py"
    completed = _run([sys.executable, str(HERE / script), json.dumps(cfg)], CLIENT_CPU)
    if completed.returncode != 0:
        raise SystemExit(f"{cfg['client']} {cfg['scenario']} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def summarize(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    median, low, high = summarize(values)
    return f"{median * scale:.{digits}f} ({low * scale:.{digits}f}–{high * scale:.{digits}f})"


class Bench:
    """The plan, the rounds and the results of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        quick = args.quick
        self.rounds = args.rounds or (2 if quick else 5)
        self.few_rounds = args.rounds or (1 if quick else 3)
        self.events = 2_000 if quick else 10_000
        self.reps = 2 if quick else 3
        self.requests = {1: 450, 16: 720, 128: 1_280} if quick else {1: 1_500, 16: 1_920, 128: 2_688}
        self.fanout = 1_000
        self.memory = (100, 1_000)
        self.cancel = 1_000
        self.sizes = (1, 8, 64)
        self.soak = args.soak if args.soak is not None else (12.0 if quick else 90.0)
        self.imports = 3 if quick else 7
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.results: dict[str, Any] = defaultdict(lambda: defaultdict(list))
        self.timings: dict[str, float] = {}
        self.ca_dir = Path(tempfile.mkdtemp(prefix="trio-llm-bench-"))

    def rounds_of(
        self, scenario: str, jobs: list[tuple[str, dict[str, Any]]], emu: dict[str, Any], rounds: int
    ) -> None:
        """Run every job once per round, in a new shuffled order each round."""
        for number in range(rounds):
            order = list(jobs)
            self.rng.shuffle(order)
            for key, params in order:
                result = run_client({**emu, "scenario": scenario, **params})
                self.results[scenario][key].append(result)
            print(f"  {scenario}: round {number + 1}/{rounds}", file=sys.stderr, flush=True)

    def run(self) -> None:
        for scenario in SCENARIOS:
            if self.args.only and scenario not in self.args.only:
                continue
            started = time.perf_counter()
            print(f"{scenario} ...", file=sys.stderr, flush=True)
            getattr(self, f"run_{scenario}")()
            self.timings[scenario] = time.perf_counter() - started

    def run_stream(self) -> None:
        jobs = []
        for route, peer in ROUTE_PEERS.items():
            for client in ("raw_httpx", "trio_llm", peer):
                jobs.append(((route, client), {"client": client, "route": route, "reps": self.reps}))
        with emulator(self.ca_dir, words=self.events, words_per_chunk=1) as emu:
            self.rounds_of("stream", jobs, emu, self.rounds)
        for key, runs in self.results["stream"].items():
            for run in runs:
                if run["events"] != self.events:
                    raise SystemExit(f"stream {key}: {run['events']} events, expected {self.events}")

    def run_requests(self) -> None:
        jobs = [
            (
                (concurrency, client),
                # One client with 128 connections takes ~5 ms of CPU a request: half as many.
                {"client": client, "concurrency": concurrency, "requests": count // (2 if slow else 1), "blocks": 3},
            )
            for concurrency, count in self.requests.items()
            for client in ("raw_httpx", "raw_httpx_sharded", "trio_llm")
            if concurrency > 1 or client != "raw_httpx_sharded"  # at 1 it is raw_httpx
            for slow in [client == "raw_httpx" and concurrency >= 128]
        ]
        with emulator(self.ca_dir, words=100, words_per_chunk=4) as emu:
            self.rounds_of("requests", jobs, emu, self.rounds)

    def run_fanout(self) -> None:
        jobs = [(client, {"client": client, "streams": self.fanout}) for client in ("raw_httpx_sharded", "trio_llm")]
        with emulator(
            self.ca_dir, words=20, words_per_chunk=1, first_chunk_delay=0.1, chunk_delay=0.01, tick=0.001
        ) as emu:
            self.rounds_of("fanout", jobs, emu, self.few_rounds)
            if not self.args.quick:
                # One client for 1,000 connections: httpcore's pool at its worst (~20 s), once.
                one = ("raw_httpx", {"client": "raw_httpx", "streams": self.fanout, "phases": ["cold"]})
                self.rounds_of("fanout", [one], emu, 1)

    def run_memory(self) -> None:
        jobs = [
            ((count, client), {"client": client, "streams": count})
            for count in self.memory
            for client in ("raw_httpx", "trio_llm")
        ]
        with emulator(self.ca_dir, words=60, words_per_chunk=1, chunk_delay=0.5, tick=0.001) as emu:
            self.rounds_of("memory", jobs, emu, self.few_rounds)

    def run_cancel(self) -> None:
        jobs = [(client, {"client": client, "streams": self.cancel}) for client in ("raw_httpx", "trio_llm")]
        with emulator(self.ca_dir, words=60, words_per_chunk=1, chunk_delay=0.5, tick=0.001) as emu:
            self.rounds_of("cancel", jobs, emu, self.few_rounds)

    def run_large(self) -> None:
        for mib in self.sizes:
            words = round(mib * MIB / CHARS_PER_WORD)
            jobs = [((mib, client), {"client": client, "mib": mib}) for client in ("raw_httpx", "trio_llm")]
            with emulator(self.ca_dir, words=words, words_per_chunk=words) as emu:
                self.rounds_of("large", jobs, emu, self.few_rounds)

    def run_soak(self) -> None:
        if self.soak <= 0:
            return
        params = {"client": "trio_llm", "seconds": self.soak, "concurrency": 16, "bursts": 6 if self.soak < 60 else 10}
        with emulator(self.ca_dir, words=100, words_per_chunk=4) as emu:
            self.rounds_of("soak", [("trio_llm", params)], emu, 1)

    def run_import(self) -> None:
        modules = ["httpx", "trio", "trio_llm", "google.genai", "gigachat", "openai"]
        for _ in range(self.imports):
            order = list(modules)
            self.rng.shuffle(order)
            for module in order:
                code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
                completed = _run([sys.executable, "-c", code], CLIENT_CPU)
                if completed.returncode != 0:
                    raise SystemExit(f"import {module} failed:\n{completed.stderr[-2000:]}")
                self.results["import"][module].append({"seconds": float(completed.stdout)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, events and soak time (under 2 minutes)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the main scenarios")
    parser.add_argument("--soak", type=float, default=None, help="seconds of the soak (90; 12 with --quick)")
    parser.add_argument("--seed", type=int, default=None, help="the shuffle seed (random by default)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args()
    bench = Bench(args)
    started = time.perf_counter()
    bench.run()
    elapsed = time.perf_counter() - started
    from report import write_report

    text = write_report(bench, elapsed)
    args.output.write_text(text, encoding="utf-8")
    if args.json is not None:
        args.json.write_text(
            json.dumps({str(k): {str(kk): vv for kk, vv in v.items()} for k, v in bench.results.items()}, indent=1)
        )
    print(text)
    print(f"total {elapsed:.0f} s; written to {args.output}", file=sys.stderr)


def versions() -> str:
    names = [
        "trio-llm",
        "trio",
        "httpx",
        "httpcore",
        "h11",
        "cattrs",
        "attrs",
        "google-genai",
        "httpx2",
        "gigachat",
        "openai",
        "pydantic",
    ]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()} ({platform.python_build()[0]})"
    )


if __name__ == "__main__":
    main()
