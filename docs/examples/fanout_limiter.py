"""A shared CapacityLimiter caps requests in flight across every helper that is given it."""

import trio

import trio_llm
from trio_llm.testing import Emulator


async def main() -> None:
    async with Emulator(chunk_delay=0.01) as emu:
        gemini = emu.gemini()
        limiter = trio.CapacityLimiter(4)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: trio_llm.gather([gemini] * 10, "Hi", limiter=limiter))
            nursery.start_soon(lambda: trio_llm.race([gemini] * 5, "Hi", limiter=limiter))
        print(f"{emu.count('gemini', 'chat')} requests, at most {emu.peak_connections} at once")


trio.run(main)
