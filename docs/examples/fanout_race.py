"""race: the first complete reply wins; the others are cancelled and closed at once."""

import trio

import trio_llm
from trio_llm.testing import Emulator


async def main() -> None:
    # Two stand-ins for two providers: one slow to start, one quick.
    async with Emulator(first_chunk_delay=2.0) as slow, Emulator() as quick:
        outcomes: list[trio_llm.Outcome] = []
        reply = await trio_llm.race([slow.gemini(), quick.gemini()], "Hi", outcomes=outcomes, max_tokens=8)
        print(reply.text)
        for outcome in outcomes:
            state = "won" if outcome.reply is reply else ("cancelled" if outcome.cancelled else "finished")
            print(f"{outcome.label}: {state} after {outcome.elapsed:.2f} s")


trio.run(main)
