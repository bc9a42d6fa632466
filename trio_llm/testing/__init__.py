"""Testing helpers: the provider emulator and what tests need around it.

The emulator is a real HTTP/1.1 server on loopback that speaks each provider's wire protocol,
so the demo, the tests and the benchmarks run with no keys and no network::

    async with trio_llm.testing.Emulator() as emu:
        async with emu.gemini() as gemini:
            reply = await gemini.complete("Hello")
"""

from ._emulator import Emulator as Emulator
from ._emulator import Fault as Fault
from ._server import FormField as FormField
from ._server import RecordedRequest as RecordedRequest

__all__ = ["Emulator", "Fault", "FormField", "RecordedRequest"]
