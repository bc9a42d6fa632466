"""race_stream: stream from whichever target produces content first; cancel the rest then."""

import trio

import trio_llm
from trio_llm.testing import Emulator


async def main() -> None:
    async with Emulator(first_chunk_delay=0.5) as slow, Emulator(chunk_delay=0.01) as quick:
        async with trio_llm.race_stream([slow.gemini(), quick.gemini()], "Tell me a story") as events:
            async for event in events:
                if isinstance(event, trio_llm.TextDelta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, trio_llm.Finish):
                    print(f"\n[{event.reason.value}]")
        print("still open on the slow one:", slow.open_connections)


trio.run(main)
