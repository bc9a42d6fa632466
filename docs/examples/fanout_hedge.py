"""hedge: start a backup only if nothing has answered after `delay` seconds."""

import trio

import trio_llm
from trio_llm.testing import Emulator


async def main() -> None:
    async with Emulator(first_chunk_delay=1.0) as sluggish, Emulator() as spare:
        start = trio.current_time()
        reply = await trio_llm.hedge([sluggish.gemini(), spare.gemini()], "Hi", delay=0.25, max_tokens=6)
        backup_started = spare.requests_for("gemini")[0].received_at - start
        print(f"backup started after {backup_started:.2f} s; reply: {reply.text}")


trio.run(main)
