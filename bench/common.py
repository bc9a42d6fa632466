"""What the client processes share: measuring CPU, memory and sockets, and the JSON protocol.

Neither trio nor asyncio is imported here: the trio clients (``client.py``) and the asyncio
peers (``peers.py``) both use it. Linux only (``/proc``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

PROMPT = "Benchmark prompt"
GEMINI_MODEL = "gemini-2.5-flash"
GIGACHAT_MODEL = "GigaChat"
OPENAI_MODEL = "gpt-4o-mini"
AMIGOCHAT_MODEL = "gpt-4o-mini"

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far (``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss() -> int:
    """This process's resident set size in bytes."""
    with open("/proc/self/status", encoding="ascii") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sockets(pid: int | str = "self") -> int:
    """How many sockets process ``pid`` has open (listening ones included)."""
    count = 0
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            if os.readlink(f"{directory}/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # closed while we looked
    return count


class Meter:
    """Wall time, this process's CPU time and the emulator's CPU time over one measured span."""

    def __init__(self, emulator_pid: int) -> None:
        self.emulator_pid = emulator_pid
        self.wall = self.cpu = self.emulator = 0.0

    def __enter__(self) -> Meter:
        self.emulator = process_cpu(self.emulator_pid)
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cpu = time.process_time() - self.cpu
        self.wall = time.perf_counter() - self.wall
        self.emulator = process_cpu(self.emulator_pid) - self.emulator

    def result(self) -> dict[str, float]:
        # The emulator's CPU is read in clock ticks (10 ms): its share is coarse on short spans.
        return {
            "cpu_s": self.cpu,
            "wall_s": self.wall,
            "emulator_busy": self.emulator / self.wall if self.wall else 0.0,
        }


def config() -> dict[str, Any]:
    """The run's configuration: one JSON object, the process's only argument."""
    config: dict[str, Any] = json.loads(sys.argv[1])
    return config


def emit(result: dict[str, Any]) -> None:
    """The process's answer: one JSON line, the last thing it prints."""
    print(json.dumps(result), flush=True)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
