"""No key appears in any repr, exception text, traceback or log record (DEBUG included)."""

from __future__ import annotations

import logging
import traceback

import pytest

import trio_llm
from trio_llm.testing import Emulator, Fault

LOGGERS = ("trio_llm", "httpx", "httpcore")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_nowhere(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


async def test_a_good_key_is_in_no_log_record_or_repr(emu: Emulator, debug_logs: pytest.LogCaptureFixture) -> None:
    gemini = emu.gemini()
    await gemini.complete("Hi")
    async with gemini.stream("Hi") as events:
        assert_nowhere(emu.api_key, repr(events))
        async for _event in events:
            pass
    await gemini.models()
    assert debug_logs.records, "DEBUG logging captured nothing: the test would prove nothing"
    assert_nowhere(emu.api_key, debug_logs.text, repr(gemini), str(gemini))


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=400),
        Fault(status=401),
        Fault(status=403),
        Fault(status=429, retry_after="1"),
        Fault(status=500),
        Fault(status=502, body="<html>proxy</html>"),
        Fault(truncate_after=1),
        Fault(reset_after=1),
        Fault(malformed_after=1),
        Fault(error_after=1),
    ],
)
async def test_a_key_is_in_no_error_text_or_traceback(
    emu: Emulator, debug_logs: pytest.LogCaptureFixture, fault: Fault
) -> None:
    emu.inject("gemini", fault, times=3)
    gemini = emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1))
    with pytest.raises(trio_llm.TrioLLMError) as caught:
        async with gemini.stream("Hi") as events:
            async for _event in events:
                pass
    error = caught.value
    rendered = "".join(traceback.format_exception(error))
    assert_nowhere(emu.api_key, str(error), repr(error), rendered, repr(getattr(error, "body", "")), debug_logs.text)


async def test_a_wrong_key_is_not_echoed_back(emu: Emulator, debug_logs: pytest.LogCaptureFixture) -> None:
    wrong = "AIzaSy-this-is-a-wrong-but-secret-key"
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.gemini(api_key=wrong).complete("Hi")
    rendered = "".join(traceback.format_exception(caught.value))
    assert_nowhere(wrong, str(caught.value), repr(caught.value), rendered, debug_logs.text)


async def test_a_bearer_key_is_in_no_log(emu: Emulator, debug_logs: pytest.LogCaptureFixture) -> None:
    await emu.gemini(use_auth_header=True).complete("Hi")
    assert_nowhere(emu.api_key, debug_logs.text)


def test_provider_repr_hides_the_key() -> None:
    gemini = trio_llm.Gemini(api_key="AIza-top-secret")
    assert "AIza-top-secret" not in repr(gemini)
    assert "api_key" not in repr(gemini)
