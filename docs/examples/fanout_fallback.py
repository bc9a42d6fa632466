"""fallback: in order; move on only if a target failed before its first content event."""

import trio

import trio_llm
from trio_llm.testing import Emulator, Fault


async def main() -> None:
    async with Emulator() as primary, Emulator() as backup:
        primary.inject("gemini", Fault(status=429, headers={"retry-after": "3600"}))  # quota gone for an hour
        reply = await trio_llm.fallback([primary.gemini(), backup.gemini()], "Hi", max_tokens=6)
        print("answered by the backup:", reply.text)

        primary.inject("gemini", Fault(reset_after=2))  # dies after two events reached us
        try:
            await trio_llm.fallback([primary.gemini(), backup.gemini()], "Hi")
        except trio_llm.TransportError as error:
            print("raised, not spliced with the backup's answer:", error)


trio.run(main)
