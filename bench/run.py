"""Benchmarks, measured as ratios against a baseline in the same run; writes docs/benchmarks.md.

The emulator runs in its own process; each client run is a fresh subprocess; modes are
interleaved in a shuffled order every round; medians and min-max are reported, with CPU time
(``time.process_time``) beside wall time.

Usage: python bench/run.py [--quick] [--rounds N] [--events N]
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
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("raw_httpx", "trio_llm")
BASELINE = "raw_httpx"


def start_emulator(events: int, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    command = [
        sys.executable, "-m", "trio_llm", "emulate", "--port", "0", "--words", str(events), "--words-per-chunk", "1",
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while lines[-1] and not lines[-1].startswith("  api key"):  # one line per provider, then the key
        lines.append(process.stdout.readline())
    urls = dict(line.split() for line in lines[1:-1])
    return process, urls["gemini"], lines[-1].split()[2]


def run_client(mode: str, url: str, key: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, str(HERE / "client.py"), mode, url, key], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def summarize(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events (under 2 minutes)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    events = args.events or (2_000 if args.quick else 10_000)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)

    emulator, url, key = start_emulator(events)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    started = time.perf_counter()
    try:
        for round_number in range(rounds):
            order = list(MODES)
            rng.shuffle(order)
            for mode in order:
                result = run_client(mode, url, key)
                if result["events"] != events:
                    raise SystemExit(f"{mode} saw {result['events']} events, expected {events}")
                results[mode].append(result)
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    # Fan-out: 1,000 streams at once, each: first event after 100 ms, 20 events 10 ms apart.
    targets = 200 if args.quick else 1000
    emulator, url, key = start_emulator(20, "--first-chunk-delay", "0.1", "--chunk-delay", "0.01")
    try:
        fan = [run_client(f"gather{targets}", url, key) for _ in range(1 if args.quick else 3)]
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    elapsed = time.perf_counter() - started

    per_event = {m: [r["cpu_s"] / events * 1e6 for r in results[m]] for m in MODES}
    wall_rate = {m: [events / r["wall_s"] for r in results[m]] for m in MODES}
    base = statistics.median(per_event[BASELINE])
    lines = [
        "# Benchmarks",
        "",
        "Written by `nox -s bench` (`python bench/run.py`); numbers from the last run on the machine below.",
        "Each client run is a fresh subprocess; the emulator runs in its own process; modes are",
        "interleaved in a shuffled order every round. CPU is the client's `time.process_time()`.",
        "",
        f"- machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        f"- trio_llm {metadata.version('trio-llm')}, trio {metadata.version('trio')}, "
        f"httpx {metadata.version('httpx')}, httpcore {metadata.version('httpcore')}, "
        f"cattrs {metadata.version('cattrs')}",
        f"- rounds: {rounds}, shuffle seed {seed}, total time {elapsed:.0f} s",
        "",
        f"## Streaming: one Gemini stream of {events:,} text events over loopback",
        "",
        "| client | CPU µs/event (median) | min–max | events/s wall (median) | ratio to raw httpx (CPU) |",
        "|---|---|---|---|---|",
    ]
    for mode in MODES:
        median, low, high = summarize(per_event[mode])
        rate = statistics.median(wall_rate[mode])
        lines.append(f"| {mode} | {median:.1f} | {low:.1f}–{high:.1f} | {rate:,.0f} | {median / base:.2f}× |")
    lines += [
        "",
        "`raw_httpx` is the floor for a Python client: httpx under trio, SSE lines split by httpx,",
        "`json.loads` per event, the text picked out by hand — no typed events, no validation, no",
        "timeouts, no truncation check. `trio_llm` decodes each event into typed objects through its",
        "sans-IO SSE decoder and a cattrs converter, with per-phase deadlines and checkpoints.",
        "",
        f"## Fan-out: `gather` over {targets:,} Gemini streams at once",
        "",
        "Each stream: first event after 100 ms, then 20 events 10 ms apart (ideal ≈ 0.29 s). One",
        "provider, one connection per stream, the emulator in its own process on the other core.",
        "",
        "| run | wall (s) | one stream alone (s) | slowest target's own time (s) | client CPU (s) | failures |",
        "|---|---|---|---|---|---|",
        *(
            f"| {n + 1} | {f['wall_s']:.2f} | {f['single_s']:.2f} | {f['slowest_s']:.2f} | {f['cpu_s']:.2f} "
            f"| {f['failures']:.0f} |"
            for n, f in enumerate(fan)
        ),
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
