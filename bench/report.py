"""docs/benchmarks.md from one run's results: the targets first, then every scenario.

Numbers are medians over the rounds with (min-max); every ratio is against a baseline measured
in the same run. What the numbers alone do not say (why a target is missed, what was changed
to meet the others, what profiling found) is written below, in ``NOTES`` and ``HISTORY``,
next to the code that measures, so that every run rewrites the page whole.
"""

from __future__ import annotations

import statistics
from importlib import metadata
from typing import Any

from run import CLIENT_CPU, EMULATOR_CPU, MIB, PEER_PACKAGES, ROUTE_PEERS, machine, versions

PEER_LABELS = {"google_genai": "google-genai", "gigachat_sdk": "gigachat SDK", "openai_sdk": "openai SDK"}
ROUTE_LABELS = {"gemini": "Gemini", "gigachat": "GigaChat (TLS)", "openai": "OpenAI-compatible"}
#: Events a fan-out stream delivers to the client: 20 text events, and the chat routes' finish,
#: usage and [DONE] frames (Gemini's last text event carries its finish), one socket read each.
FANOUT_READS = 22


def med(values: list[float]) -> float:
    return statistics.median(values)


def cell(values: list[float], scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """``median (min-max)``, or the one value."""
    if not values:
        return "—"
    middle, low, high = med(values) * scale, min(values) * scale, max(values) * scale
    if len(values) == 1:
        return f"{middle:,.{digits}f}{unit}"
    return f"{middle:,.{digits}f}{unit} ({low:,.{digits}f}–{high:,.{digits}f})"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "—"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(not installed)"


class Report:
    def __init__(self, bench: Any, elapsed: float) -> None:
        self.bench = bench
        self.r = bench.results
        self.elapsed = elapsed
        self.summary: list[str] = []
        self.body: list[str] = []
        self.facts: dict[str, str] = {}  # numbers of this run that the notes quote

    def stream_us(self, route: str, client: str) -> list[float]:
        return [run["cpu_s"] / run["events"] * 1e6 for run in self.r["stream"].get((route, client), [])]

    def request_us(self, concurrency: int, client: str) -> list[float]:
        return [run["cpu_s"] / run["requests"] * 1e6 for run in self.r["requests"].get((concurrency, client), [])]

    # -- sections --------------------------------------------------------------------------

    def streaming(self) -> None:
        if not self.r.get("stream"):
            return
        events = self.bench.events
        self.body += [
            f"## Client CPU per streamed event: one stream of {events:,} text events",
            "",
            f"One reply of {events:,} one-word text events over keep-alive loopback (GigaChat over TLS, as the",
            "real service), each client in its own process: one warm-up stream (the connection, the token,",
            f"caches), then {self.bench.reps} timed streams, of which the least CPU is the process's sample",
            "(noise only adds to it); the table shows the median (min–max) of the samples over the rounds.",
            "",
            "| route | client | CPU µs/event | ratio to raw httpx | events/s (wall) | emulator busy |",
            "|---|---|---|---|---|---|",
        ]
        for route, peer in ROUTE_PEERS.items():
            base = med(self.stream_us(route, "raw_httpx"))
            for client in ("raw_httpx", "trio_llm", peer):
                runs = self.r["stream"].get((route, client), [])
                if not runs:
                    continue
                values = self.stream_us(route, client)
                rate = med([run["events"] / run["wall_s"] for run in runs])
                busy = med([run["emulator_busy"] for run in runs])
                self.body.append(
                    row(
                        ROUTE_LABELS[route],
                        PEER_LABELS.get(client, client),
                        cell(values, digits=2),
                        ratio(med(values), base),
                        f"{rate:,.0f}",
                        f"{busy:.0%}",
                    )
                )
        self.body += [
            "",
            "- `raw_httpx` is the floor: httpx under trio, SSE lines split by `aiter_lines()`, `json.loads`",
            "  per event, the text picked out by hand; no typed events, no validation, no deadlines. It sends",
            "  the same requests as trio_llm.",
            "- `trio_llm` decodes every event into typed objects (its sans-IO SSE decoder, a fast path for",
            "  plain text chunks that checks every field it reads and leaves anything else to the cattrs",
            "  converter), with per-phase deadlines, a cancel point in every `__anext__` and a schedule point",
            "  every 32 buffered events.",
            "- The SDKs run under asyncio (they require it), each in its own process: google-genai",
            f"  {version('google-genai')} (on httpx2), gigachat {version('gigachat')} (on httpx; TLS verified with",
            f"  the emulator's CA as `ca_bundle_file`), openai {version('openai')} (on httpx2, `max_retries=0`);",
            "  each yields a pydantic model per chunk.",
            "",
        ]
        for route, key in (("gemini", "Gemini"), ("gigachat", "GigaChat")):
            mine, base = med(self.stream_us(route, "trio_llm")), med(self.stream_us(route, "raw_httpx"))
            self.summary.append(
                row(
                    f"CPU per streamed event, 10k-event {key} stream",
                    f"raw httpx + json under trio: {base:.2f} µs",
                    "≤ 1.3×",
                    f"{mine:.2f} µs = **{mine / base:.2f}×**",
                    verdict(mine / base <= 1.3),
                )
            )
        for route, peer in ROUTE_PEERS.items():
            mine, theirs = med(self.stream_us(route, "trio_llm")), med(self.stream_us(route, peer))
            self.facts[f"{route}_sdk_ratio"] = f"{theirs / mine:.2f}"
            self.summary.append(
                row(
                    f"the same, against the official SDK ({ROUTE_LABELS[route]} route)",
                    f"{PEER_LABELS[peer]} under asyncio: {theirs:.2f} µs",
                    "faster",
                    f"{mine:.2f} µs: **{theirs / mine:.2f}× faster** ({1 - mine / theirs:.0%} less CPU)",
                    verdict(mine < theirs),
                )
            )

    def requests(self) -> None:
        if not self.r.get("requests"):
            return
        self.body += [
            "## Per-request overhead, not streamed",
            "",
            "Gemini `generateContent` (a ~1 KiB JSON reply of 100 words) in a closed loop from as many tasks",
            "as requests in flight, after a warm-up that opens every connection; then three timed blocks of",
            "requests, each after `gc.collect()`. CPU per request is the client's over all three blocks;",
            "latency is per request, wall clock.",
            "",
            "| in flight | client | CPU µs/request | ratio to raw httpx | requests/s | p50 ms | p99 ms | emulator |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for concurrency in self.bench.requests:
            base = med(self.request_us(concurrency, "raw_httpx"))
            for client in ("raw_httpx", "raw_httpx_sharded", "trio_llm"):
                runs = self.r["requests"].get((concurrency, client), [])
                if not runs:
                    continue
                values = self.request_us(concurrency, client)
                self.body.append(
                    row(
                        str(concurrency),
                        client,
                        cell(values, digits=0),
                        ratio(med(values), base),
                        f"{med([r['rate'] for r in runs]):,.0f}",
                        f"{med([r['p50_s'] for r in runs]) * 1e3:.2f}",
                        f"{med([r['p99_s'] for r in runs]) * 1e3:.1f}",
                        f"{med([r['emulator_busy'] for r in runs]):.0%}",
                    )
                )
        self.body += [
            "",
            "- `raw_httpx` is one `httpx.AsyncClient`, as one writes it, keeping every connection alive;",
            "  `raw_httpx_sharded` is raw httpx with one client per request in flight, which is what trio_llm",
            "  does (httpcore's pool works per request in proportion to its connections); `trio_llm` is",
            "  `Gemini.complete()`: a typed request, deadlines, the reply's types checked, a `Reply`.",
            "- At 16 and 128 the requests/s are the emulator's limit (it is ~90% busy with sharded raw httpx);",
            "  CPU per request is the client's own, measured the same way for every client.",
            "",
        ]
        for concurrency in self.bench.requests:
            base = med(self.request_us(concurrency, "raw_httpx"))
            mine = med(self.request_us(concurrency, "trio_llm"))
            sharded = self.request_us(concurrency, "raw_httpx_sharded")
            extra = f"; {mine / med(sharded):.2f}× sharded raw httpx" if sharded else ""
            self.facts[f"c{concurrency}"] = f"{mine / base:.2f}"
            self.summary.append(
                row(
                    f"per-request overhead, not streamed, concurrency {concurrency}",
                    f"raw httpx under trio: {base:,.0f} µs CPU",
                    "≤ 1.15×",
                    f"{mine:.0f} µs = **{mine / base:.2f}×**{extra}",
                    verdict(mine / base <= 1.15)
                    + (" in this run; at the edge (see below)" if concurrency == 1 else ""),
                )
            )

    def fanout(self) -> None:
        runs = self.r.get("fanout", {})
        if not runs:
            return
        count = self.bench.fanout
        self.body += [
            f"## Fan-out: {count:,} concurrent streams across the providers",
            "",
            f"{count:,} streams at once, a quarter each to Gemini, GigaChat (TLS, OAuth), OpenAI-compatible and",
            "AmigoChat; each stream: first event after 100 ms, then 20 text events 10 ms apart (the",
            "chat-completions routes send their finish, usage and `[DONE]` frames 10 ms apart too). The ideal is",
            "the wall time of the slowest provider's single stream, measured alone in the same process just",
            'before. "cold" opens every connection (and 250 TLS handshakes); "warm" runs again on the',
            "connections kept from the cold run. trio_llm runs `trio_llm.gather`; raw httpx a nursery of tasks",
            "(one client for all, or one client per stream: sharded). The emulator runs with `--tick 0.001`.",
            "",
            "| client | run | wall s | ideal s | wall / ideal | client CPU s | emulator busy | failures |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for client in ("raw_httpx", "raw_httpx_sharded", "trio_llm"):
            results = runs.get(client, [])
            if not results:
                continue
            ideal = [max(result["alone_s"].values()) for result in results]
            for phase in ("cold", "warm"):
                if phase not in results[0]:
                    continue
                walls = [result[phase]["wall_s"] for result in results]
                self.body.append(
                    row(
                        client,
                        phase,
                        cell(walls, digits=2),
                        cell(ideal, digits=3),
                        cell([w / i for w, i in zip(walls, ideal, strict=True)], digits=1, unit="×"),
                        cell([result[phase]["cpu_s"] for result in results], digits=2),
                        f"{med([result[phase]['emulator_busy'] for result in results]):.0%}",
                        str(sum(result[phase]["failures"] for result in results)),
                    )
                )
        self.body.append("")
        for client in ("raw_httpx_sharded", "trio_llm"):
            results = runs.get(client, [])
            if results:
                cpu = med([result["warm"]["cpu_s"] for result in results])
                self.facts[f"{client}_warm_cpu"] = f"{cpu:.2f}"
                self.facts[f"{client}_warm_wall"] = f"{med([result['warm']['wall_s'] for result in results]):.2f}"
                self.facts[f"{client}_event_us"] = f"{cpu / (count * FANOUT_READS) * 1e6:.0f}"
        one = runs.get("raw_httpx", [])
        self.facts["raw_one_client"] = (
            f"it takes {med([result['cold']['wall_s'] for result in one]):.1f} s"
            if one
            else "it takes ~17 s (measured once in a full run, not in a quick one)"
        )
        mine = runs.get("trio_llm", [])
        if mine:
            ideal = med([max(result["alone_s"].values()) for result in mine])
            self.facts["ideal"] = f"{ideal:.3f}"
            failures = sum(result[phase]["failures"] for result in mine for phase in ("cold", "warm"))
            for phase in ("warm", "cold"):
                wall = med([result[phase]["wall_s"] for result in mine])
                self.summary.append(
                    row(
                        f"{count:,} concurrent streams across the providers ({phase} connections)",
                        f"ideal: one stream alone, {ideal:.3f} s",
                        "≤ 1.15× ideal, 0 failures",
                        f"{wall:.2f} s = **{wall / ideal:.1f}×**, {failures} failures",
                        verdict(wall / ideal <= 1.15 and failures == 0),
                    )
                )

    def memory(self) -> None:
        runs = self.r.get("memory", {})
        if not runs:
            return
        self.body += [
            "## Memory per open stream",
            "",
            "Gemini streams opened at once and held open after their first event (the next comes only after",
            "0.5 s and nobody reads it); the process's resident set size (`VmRSS`) and the objects the garbage",
            "collector tracks, before and while they are open, after a warm-up of 50 streams.",
            "",
            "| streams | client | KiB per stream | ratio to raw httpx | GC objects per stream |",
            "|---|---|---|---|---|",
        ]
        for count in self.bench.memory:
            base = med([run["bytes_per_stream"] for run in runs.get((count, "raw_httpx"), [])] or [0.0])
            for client in ("raw_httpx", "trio_llm"):
                results = runs.get((count, client), [])
                if not results:
                    continue
                values = [run["bytes_per_stream"] for run in results]
                self.body.append(
                    row(
                        f"{count:,}",
                        client,
                        cell(values, scale=1 / 1024),
                        ratio(med(values), base),
                        cell([run["objects_per_stream"] for run in results], digits=0),
                    )
                )
            mine = [run["bytes_per_stream"] for run in runs.get((count, "trio_llm"), [])]
            if mine:
                self.summary.append(
                    row(
                        f"memory per open stream, {count:,} held open",
                        f"raw httpx under trio: {base / 1024:.1f} KiB",
                        "report",
                        f"{med(mine) / 1024:.1f} KiB = {med(mine) / base:.2f}×",
                        "reported",
                    )
                )
        self.body += [
            "",
            "trio_llm holds, per open stream, its `EventStream` and decoder, and one `httpx.AsyncClient` per",
            "stream in flight (~3 KiB with its pool; see the notes on pools); raw httpx's one client holds",
            "all the connections.",
            "",
        ]

    def soak(self) -> None:
        runs = self.r.get("soak", {}).get("trio_llm", [])
        if not runs:
            return
        run = runs[0]
        samples = run["samples"]  # after each burst: (seconds, RSS, GC objects, allocated blocks, calls)
        duration = samples[-1][0]
        later = samples[1:]
        third = max(1, len(later) // 3)
        first, last = later[:third], later[-third:]
        growth = [min(s[i] for s in last) - min(s[i] for s in first) for i in (1, 2, 3)]
        calls = samples[-1][4] - first[0][4]
        ok = growth[0] <= MIB and growth[1] <= calls / 100 and growth[2] <= calls / 10
        # Under a minute the allocator is still settling (RSS rises for the first ~15 s here).
        judged = verdict(ok) if duration >= 60 else "not judged: too short (a quick run)"
        self.body += [
            f"## Soak: {duration:.0f} s of calls",
            "",
            f"16 tasks call in a loop for {duration:.0f} s, round robin over Gemini, GigaChat, OpenAI-compatible",
            "and AmigoChat: a whole stream, a stream left after its first event (closed mid-body), and a",
            f"non-streamed call, in turn: {samples[-1][4]:,} calls ({run['streams']:,} whole streams, "
            f"{run['left_early']:,} left early,",
            f"{run['completes']:,} not streamed) in {len(samples)} bursts. After each burst, with nothing in flight",
            "and after `gc.collect()`: the RSS, the objects the garbage collector tracks and the memory blocks",
            "Python's allocator holds (`sys.getallocatedblocks()`). The first burst is the warm-up (caches,",
            "connections, one client per concurrent call).",
            "",
            "| after burst | s | calls | RSS MiB | GC objects | allocated blocks |",
            "|---|---|---|---|---|---|",
            *(
                row(str(n + 1), f"{s[0]:.0f}", f"{s[4]:,}", f"{s[1] / MIB:.2f}", f"{s[2]:,}", f"{s[3]:,}")
                for n, s in enumerate(samples)
            ),
            "",
            "Growth: the least value in the last third of the bursts after the warm-up minus the least in the",
            "first third (the least, because how many keep-alive connections happen to be open at a pause moves",
            f"the counts by ~1,000 objects either way): RSS {growth[0] / MIB:+.2f} MiB, {growth[1]:+,} objects,",
            f"{growth[2]:+,} blocks over {calls:,} calls. No growth means: under 1 MiB, under one object per 100",
            "calls and one block per 10 calls.",
            "",
        ]
        self.summary.append(
            row(
                f"no growth in a soak ({duration:.0f} s in this run; see the notes for 5 minutes)",
                "its own state after the warm-up",
                "no growth",
                f"RSS {growth[0] / MIB:+.2f} MiB, {growth[1]:+,} objects, {growth[2]:+,} blocks over {calls:,} calls",
                judged,
            )
        )

    def cancel(self) -> None:
        runs = self.r.get("cancel", {})
        if not runs:
            return
        count = self.bench.cancel
        self.body += [
            f"## Cancelling {count:,} in-flight streams",
            "",
            f"{count:,} streams across the four providers, all mid-stream (each has delivered an event; the next",
            "comes every 0.5 s), then their nursery is cancelled. Sockets are counted in `/proc`: the client's",
            "own, and the emulator's (it closes its side as soon as it sees the client's FIN).",
            "",
            "| client | sockets open | cancel returns after s | client's left | emulator's all closed after s | left |",
            "|---|---|---|---|---|---|",
        ]
        for client in ("raw_httpx", "trio_llm"):
            results = runs.get(client, [])
            if results:
                self.body.append(
                    row(
                        client,
                        cell([r["client_open"] for r in results], digits=0),
                        cell([r["cancel_s"] for r in results], digits=3),
                        cell([r["client_left"] for r in results], digits=0),
                        cell([r["emulator_closed_s"] for r in results], digits=3),
                        cell([r["emulator_left"] for r in results], digits=0),
                    )
                )
        self.body.append("")
        mine = runs.get("trio_llm", [])
        if mine:
            worst = max(r["emulator_closed_s"] for r in mine)
            left = max(r["emulator_left"] + r["client_left"] for r in mine)
            self.summary.append(
                row(
                    f"cancelling {count:,} in-flight streams",
                    "—",
                    "every socket closed within 1 s",
                    f"all closed after {worst:.2f} s (the worst of {len(mine)}), {left} left",
                    verdict(worst <= 1.0 and left == 0),
                )
            )

    def large(self) -> None:
        runs = self.r.get("large", {})
        if not runs:
            return
        self.body += [
            "## Large single events",
            "",
            "One Gemini stream whose one text event carries the whole reply (1, 8 and 64 MiB of text in one",
            "SSE event, as Gemini sends a generated image), after a warm-up request that opens the connection.",
            "CPU is the client's for the stream; the peak is how much the process's highest RSS grew.",
            "",
            "| MiB | client | CPU s | ratio to raw httpx | MiB/s of CPU | wall s | peak RSS growth MiB |",
            "|---|---|---|---|---|---|---|",
        ]
        for mib in self.bench.sizes:
            base = med([r["cpu_s"] for r in runs.get((mib, "raw_httpx"), [])] or [0.0])
            for client in ("raw_httpx", "trio_llm"):
                results = runs.get((mib, client), [])
                if results:
                    cpu = [r["cpu_s"] for r in results]
                    self.body.append(
                        row(
                            str(mib),
                            client,
                            cell(cpu, digits=3),
                            ratio(med(cpu), base),
                            f"{med([r['chars'] / MIB / r['cpu_s'] for r in results]):.0f}",
                            cell([r["wall_s"] for r in results], digits=2),
                            cell([r["peak_growth"] for r in results], scale=1 / MIB, digits=0),
                        )
                    )
        factors = {}
        for client in ("raw_httpx", "trio_llm"):
            small = [r["cpu_s"] for r in runs.get((1, client), [])]
            big = [r["cpu_s"] for r in runs.get((64, client), [])]
            if small and big:
                factors[client] = med(big) / med(small)
        text = "; ".join(f"{client}: 64 MiB took {factor:.0f}× the CPU of 1 MiB" for client, factor in factors.items())
        self.body += ["", f"Linearity: {text} (64× is linear; a fixed cost per stream makes it less).", ""]
        if "trio_llm" in factors:
            big = med([r["cpu_s"] for r in runs.get((64, "trio_llm"), [])])
            base = med([r["cpu_s"] for r in runs.get((64, "raw_httpx"), [])] or [0.0])
            self.summary.append(
                row(
                    "large single event, 1 / 8 / 64 MiB",
                    f"raw httpx, 64 MiB: {base:.2f} s CPU",
                    "linear: 64 MiB ≤ 80× 1 MiB",
                    f"64 MiB = **{factors['trio_llm']:.0f}×** 1 MiB; {ratio(big, base)} raw httpx at 64 MiB",
                    verdict(factors["trio_llm"] <= 80),
                )
            )

    def imports(self) -> None:
        runs = self.r.get("import", {})
        if not runs:
            return
        base = med([r["seconds"] for r in runs["httpx"]])
        self.body += [
            "## Import time",
            "",
            "`import X` timed inside a fresh interpreter (its own start not counted), "
            f"{self.bench.imports} times each, shuffled.",
            "",
            "| module | ms | ratio to httpx |",
            "|---|---|---|",
        ]
        for module in ("httpx", "trio", "trio_llm", "gigachat", "google.genai", "openai"):
            values = [r["seconds"] for r in runs.get(module, [])]
            if values:
                self.body.append(row(f"`{module}`", cell(values, scale=1e3, digits=0), ratio(med(values), base)))
        self.body += [
            "",
            "`import trio_llm` is trio, httpx, attrs and cattrs plus its own modules; the providers' converters",
            "and the emulator are not imported until used.",
            "",
        ]
        mine = med([r["seconds"] for r in runs["trio_llm"]])
        trio_ms = med([r["seconds"] for r in runs["trio"]]) * 1e3
        self.summary.append(
            row(
                "`import trio_llm` time",
                f"`import httpx`: {base * 1e3:.0f} ms",
                "report",
                f"{mine * 1e3:.0f} ms = {mine / base:.1f}× (`import trio` alone: {trio_ms:.0f} ms)",
                "reported",
            )
        )

    def write(self) -> str:
        for section in (
            self.streaming,
            self.requests,
            self.fanout,
            self.memory,
            self.soak,
            self.cancel,
            self.large,
            self.imports,
        ):
            section()
        bench = self.bench
        pinned = (
            f"emulator pinned to CPU {min(EMULATOR_CPU)}, clients to CPU {min(CLIENT_CPU)}"
            if EMULATOR_CPU and CLIENT_CPU
            else "not pinned (one CPU)"
        )
        timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in bench.timings.items())
        head = [
            "# Benchmarks",
            "",
            "Written by `nox -s bench` (`python bench/run.py`; `-- --quick` for a shorter run): trio_llm",
            "against the raw-httpx floor and against the official SDKs, side by side, in one run on one",
            "loopback emulator. The emulator runs in its own process (`python -m trio_llm emulate`); every",
            "client run is a fresh subprocess; the runs of a scenario are shuffled in every round; numbers",
            "are medians with (min–max) over the rounds. CPU is each client process's own",
            "`time.process_time()` over the timed part, and *emulator busy* the emulator's CPU share over the",
            "same span (it must not be what limits the client).",
            "",
            f"- machine: {machine()}",
            f"- {versions()}",
            f"- mode: {'quick' if bench.args.quick else 'full'}; rounds: {bench.rounds} (fan-out, memory, cancel,"
            f" large: {bench.few_rounds}); shuffle seed {bench.seed}; {pinned}",
            f"- run time: {self.elapsed:.0f} s ({timings})",
            f"- installed only in the bench session: {', '.join(sorted(PEER_PACKAGES.values()))}",
            "",
            "## The targets",
            "",
            "| metric | baseline (same run) | target | trio_llm | verdict |",
            "|---|---|---|---|---|",
            *self.summary,
            "",
            *(line.format_map(_Facts(self.facts)) for line in NOTES),
            "",
            *HISTORY,
            "",
        ]
        return "\n".join(head + self.body).rstrip() + "\n"


class _Facts(dict[str, str]):
    """Numbers of this run for the notes; one not measured (a partial run) reads as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


#: Why the missed targets are missed, with this run's numbers where they show it.
NOTES = [
    "## The misses, and what is not ours",
    "",
    "**1,000 concurrent streams: the client's CPU, not trio_llm's code, sets the wall time.** Every",
    "event of a fan-out stream arrives alone (10 ms apart), so each costs one pass through the whole",
    "read path: trio's epoll wake-up and `recv`, httpcore's read (a cancel scope per read) and h11, httpx's",
    "four nested body iterators, then the decoder. The floor is raw httpx with the same sharding as",
    "trio_llm: {raw_httpx_sharded_warm_cpu} s of CPU for the warm run, ~{raw_httpx_sharded_event_us} µs per",
    "delivered event all included, against {trio_llm_warm_cpu} s (~{trio_llm_event_us} µs) for trio_llm,",
    "whose wall time ({trio_llm_warm_wall} s) is its CPU time: the client is saturated while the emulator",
    "is not. Meeting 1.15× the ideal ({ideal} s) needs all 1,000 streams in ~0.4 s of CPU, under 20 µs an",
    "event including the socket read: below what trio and httpx take to read a socket on this machine",
    "(a bare `trio.lowlevel.checkpoint()` costs 3.6 µs, a cancel scope 4.6 µs). With one httpx client for",
    "all 1,000 connections {raw_one_client} (httpcore's pool rescans every connection on every request it",
    "adds or removes): that is why trio_llm leases one client per call in flight.",
    "",
    "**Per-request overhead at concurrency 1 is at the edge of the target: {c1}× in this run.** With",
    "one request in flight the client waits for every reply, and how its CPU idles between requests",
    "makes the rounds noisy: three full runs on this machine, while this suite was written, gave",
    "1.17×, 1.27× and 1.04× (medians of 5 rounds), and the least noisy comparison, the two clients",
    "alternating in blocks of 100 calls in one process, 1.16-1.17×: ~90-100 µs of CPU a call more than",
    "`client.post()` + `response.json()`. Taken as missed by a few percent. Profiled (cProfile, and A/B",
    "runs in one process with one part taken out at a time): ~30 µs is checking the reply's types and",
    "making typed events and a `Reply` (a non-streamed body goes through the cattrs converter: 5.5 µs",
    "for the response, 2 µs for the usage); ~10 µs building the typed request; ~15 µs the deadlines'",
    "cancel scopes (4.6 µs each here: around sending, around reading, closing the response shielded)",
    "and the checkpoints; ~30 µs the stream object's own bookkeeping (attempts, per-phase deadlines,",
    "events delivered one by one); and the garbage collector's share of the extra objects (1.16× with",
    "collection off, against 1.19× with it in the same comparison). None of it is one cost to remove. At",
    "16 and 128 in flight trio_llm costs less than one httpx client ({c16}×, {c128}×), because httpcore's",
    "pool costs more than all of trio_llm; against raw httpx sharded as trio_llm shards it, the overhead",
    "is the same ~100 µs as at concurrency 1.",
    "",
    "**GigaChat SDK: faster by a small margin ({gigachat_sdk_ratio}×).** The `gigachat` SDK parses each",
    "chunk with pydantic-core's `model_validate_json` (JSON and validation in Rust) on asyncio, whose",
    "socket reads cost less than trio's; it is within a few percent of raw httpx under trio. google-genai",
    "({gemini_sdk_ratio}×) and openai ({openai_sdk_ratio}×) build a full pydantic model per chunk in Python",
    "(~75-125 µs).",
    "",
    "**Soak length.** The issue asks for 5 minutes; the full run affords 90 s (`--soak 300` runs 5",
    "minutes). One 5-minute soak was run on this machine (`python bench/run.py --only soak --soak 300`,",
    "10 bursts, 255,931 calls): RSS 40.26 MiB after the first 30 s burst, between 40.43 and 40.98 after",
    "every later one, with no trend; GC objects between 35,148 and 37,405 and allocated blocks between",
    "146,903 and 151,469, up and down with no trend.",
]

#: What was changed for this suite, measured with this suite on this machine: the library at the
#: issue's start (0e102e1) against the library after the changes, clients alternating in one run.
HISTORY = [
    "## What was changed to get here",
    "",
    "Measured with this suite on this machine, the library as the issue found it (commit 0e102e1) and",
    "as it is now, alternating in one run against one emulator (medians of 2-4 rounds):",
    "",
    "| metric | before | after | change |",
    "|---|---|---|---|",
    "| Gemini stream, CPU µs/event | 8.24 | 5.15 | −37% |",
    "| GigaChat stream, CPU µs/event | 7.62 | 5.19 | −32% |",
    "| OpenAI-compatible stream, CPU µs/event | 6.89 | 4.53 | −34% |",
    "| not streamed, concurrency 1, CPU µs/request | 736 | 670 | −9% |",
    "| not streamed, concurrency 16, CPU µs/request | 1,128 | 570 | −49% |",
    "| not streamed, concurrency 128, CPU µs/request | 2,035 | 517 | −75% |",
    "| 1,000-stream fan-out, cold, wall s | 2.53 | 2.37 | −6% |",
    "| 1,000-stream fan-out, warm (kept connections), wall s | 3.85 | 2.14 | −44% |",
    "| memory, 1,000 open streams, KiB/stream | 31.1 | 30.9 | −1% |",
    "",
    "- **Decoders** (found with the decoders fed the emulator's bytes from memory: Gemini 6.2 µs/event",
    "  there, of which 2.5 µs `json.loads`, 1.6 µs SSE framing, 1.9 µs the interpreter): JSON is parsed",
    "  by the standard scanner directly, skipping `json.loads`' two regular-expression passes (2.5 →",
    "  1.5 µs; anything with whitespace around it, or not JSON, still goes to `json.loads`); SSE data",
    "  lines are taken inline and no `SSEEvent` is built for callers that read only the data (1.6 → 0.6",
    "  µs); the usage counts are checked without a generator; plain text chunks become events at once.",
    "  Gemini 6.2 → 3.6 µs/event from memory.",
    "- **Schedule points**: every 32 buffered events instead of 8 (each costs ~3.5 µs: 1,226 passes",
    "  through trio's run loop for a 10k-event stream, against 43 for raw httpx); every `__anext__` is",
    "  still a cancel point.",
    "- **Per request**: the debug log's URL copy (~30 µs) only when DEBUG is on; the retry RNG made on",
    "  the first retry (seeding from `os.urandom` cost 11 µs); one cancel scope for all the reads",
    "  before an event and one to close a response (each costs 4.6 µs).",
    "- **Pools**: one request in flight per httpx client instead of 32, leased in O(1) (the first",
    "  pool with room was found by a linear scan); httpcore rescans a pool's connections, polling each",
    "  idle one's socket, on every request it adds or removes. One SSL context per plain-HTTP",
    "  provider instead of one per client (~25 KiB and 0.1 ms each).",
    "- **Correctness**: new property tests compare each fast path with the converter on the same",
    "  payloads; they found that both let through fields they did not check (Gemini's `finishMessage`",
    "  and `role`, chat-completions' `message`, `text` and a float index), which now go to the converter.",
    "- **Emulator** (its CPU is the benchmarks' budget too): a whole reply in one write instead of two;",
    "  long replies made without millions of splits (a 64 MiB event cost ~7 s of its CPU, now ~1 s); an",
    "  optional tick (`--tick`) on which streams waiting for their next event share one timer; `--ca-file`",
    "  so that clients in other processes (the gigachat SDK, raw httpx) can verify its TLS.",
]


def write_report(bench: Any, elapsed: float) -> str:
    return Report(bench, elapsed).write()
