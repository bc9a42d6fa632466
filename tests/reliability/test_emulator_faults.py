"""The emulator's fault mechanism on the wire, seen with plain httpx: what the matrix relies on.

A fault injector that silently did something else would make the whole matrix prove nothing,
so the new faults are checked here byte by byte, without trio_llm's client in between.
"""

from __future__ import annotations

import json

import httpx
import pytest

from trio_llm.testing import Emulator, Fault

FORM = {"user_input": (None, b"Hi"), "ai_model": (None, b"gemini-1.5-flash-8b")}


async def dynaspark(emu: Emulator, fault: Fault) -> httpx.Response:
    emu.inject("dynaspark", fault)
    async with httpx.AsyncClient() as client:
        return await client.post(emu.url_for("dynaspark") + "/generate_response", files=FORM)


async def openai_stream(emu: Emulator, fault: Fault) -> bytes:
    emu.inject("openai", fault)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    headers = {"authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(emu.url_for("openai") + "/chat/completions", json=body, headers=headers)
        return response.content


async def test_a_huge_event_is_exactly_the_size_asked_for(emu: Emulator) -> None:
    response = await dynaspark(emu, Fault(huge_event=300_000))
    assert response.json() == {"response": "x" * 300_000}
    assert int(response.headers["content-length"]) == len(response.content)
    frames = (await openai_stream(emu, Fault(huge_event=200_001))).split(b"\n\n")
    texts = [json.loads(f[6:])["choices"][0]["delta"].get("content") for f in frames if f.startswith(b"data: {")]
    assert "x" * 200_001 in texts


async def test_a_clean_truncation_ends_the_response_properly_without_the_end_marker(emu: Emulator) -> None:
    body = await openai_stream(emu, Fault(truncate_after=2, truncate_cleanly=True))  # no RemoteProtocolError
    assert body.count(b"data: ") == 2 and b"[DONE]" not in body
    response = await dynaspark(emu, Fault(truncate_after=0, truncate_cleanly=True))
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(ValueError):
        response.json()  # half a JSON body


async def test_invalid_utf8_is_one_byte_inside_the_event_after_n(emu: Emulator) -> None:
    body = await openai_stream(emu, Fault(invalid_utf8_after=2))
    frames = body.split(b"\n\n")
    assert [b"\xff" in frame for frame in frames[:3]] == [False, False, True]
    assert (await dynaspark(emu, Fault(invalid_utf8_after=0))).content.count(b"\xff") == 1


async def test_unknown_fields_are_added_to_every_object_and_change_no_value(emu: Emulator) -> None:
    plain = (await dynaspark(emu, Fault())).json()
    rewritten = (await dynaspark(emu, Fault(unknown_fields=True))).json()
    assert rewritten.pop("x_trio_llm_unknown")["kind"] == "A_VALUE_FROM_THE_FUTURE"
    assert rewritten == plain


async def test_an_error_object_replaces_a_whole_body_under_status_200(emu: Emulator) -> None:
    response = await dynaspark(emu, Fault(error_after=0, message="out of capacity"))
    assert (response.status_code, response.json()) == (200, {"error": "out of capacity"})


async def test_the_https_listener_serves_every_provider(emu: Emulator) -> None:
    url = emu.url_for("dynaspark", tls=True)
    assert url.startswith("https://") and emu.url_for("dynaspark").startswith("http://")
    async with httpx.AsyncClient(verify=emu.client_ssl_context()) as client:
        response = await client.post(url + "/generate_response", files=FORM)
    assert "response" in response.json()
    assert emu.url_for("gigachat", tls=True) == emu.url_for("gigachat")  # HTTPS only, as ever
