"""gather: every target, one Outcome each, in order; a failure is an outcome, not an exception."""

import trio

import trio_llm
from trio_llm.testing import Emulator, Fault


async def main() -> None:
    async with Emulator() as emu:
        gemini = emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1))
        emu.inject("gemini", Fault(status=503))  # the first request to arrive fails
        targets = [(gemini, "gemini-2.5-flash"), (gemini, "gemini-2.5-pro"), (gemini, "gemini-2.5-flash-lite")]
        for outcome in await trio_llm.gather(targets, "Hi", max_tokens=6):
            if outcome.ok:
                print(f"{outcome.label}: {outcome.reply.text!r} ({outcome.usage.total_tokens} tokens)")
            else:
                print(f"{outcome.label}: failed: {outcome.error}")


trio.run(main)
