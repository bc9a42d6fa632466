"""merge: every target's stream at once; a failing target ends with an error item."""

import trio

import trio_llm
from trio_llm.testing import Emulator, Fault


async def main() -> None:
    async with Emulator(chunk_delay=0.01) as a, Emulator(chunk_delay=0.015) as b, Emulator() as broken:
        broken.inject("gemini", Fault(status=500))
        targets = [a.gemini(), b.gemini(), broken.gemini(retry=trio_llm.RetryPolicy(max_attempts=1))]
        names = {id(t): f"target {n}" for n, t in enumerate(targets)}
        async with trio_llm.merge(targets, "Hi", max_tokens=4) as items:
            async for item in items:
                what = item.event if item.error is None else f"ended with {type(item.error).__name__}"
                print(names[id(item.target)], what)


trio.run(main)
