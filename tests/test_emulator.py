"""The emulator itself: wire details other clients rely on, errors, counters, interop."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import IO

import httpx
import pytest
import trio

from trio_llm.testing import Emulator, Fault


@pytest.fixture
async def client(emu: Emulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=emu.url_for("gemini"), headers={"x-goog-api-key": emu.api_key})


BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


async def test_stream_without_alt_sse_is_one_json_array(emu: Emulator, client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.post("/models/gemini-2.5-flash:streamGenerateContent", json=BODY)
    chunks = json.loads(response.content)
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(chunks, list) and len(chunks) > 1
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks).endswith(".")


async def test_sse_events_are_crlf_framed_with_no_done_sentinel(emu: Emulator, client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.post("/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json=BODY)
    text = response.text
    assert response.headers["content-type"] == "text/event-stream"
    assert text.startswith("data: {") and text.endswith("\r\n\r\n")
    assert "[DONE]" not in text


async def test_the_same_prompt_gets_the_same_answer(emu: Emulator, client: httpx.AsyncClient) -> None:
    async with client:
        first = (await client.post("/models/gemini-2.5-flash:generateContent", json=BODY)).json()
        second = (await client.post("/models/gemini-2.5-flash:generateContent", json=BODY)).json()
    assert first == second


async def test_key_in_the_query_string_is_accepted_for_other_clients(emu: Emulator) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.url_for('gemini')}/models/gemini-2.5-flash:generateContent", params={"key": emu.api_key}, json=BODY
        )
    assert response.status_code == 200


async def test_no_key_gets_googles_403(emu: Emulator) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emu.url_for('gemini')}/models/gemini-2.5-flash:generateContent", json=BODY)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "valid role"),
        ({**BODY, "generation_confg": {}}, 'Unknown name "generation_confg"'),
        ({"contents": [{"role": "user", "parts": [{"txt": "x"}]}]}, 'Unknown name "txt"'),
    ],
)
async def test_malformed_requests_get_googles_400(
    emu: Emulator, client: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    async with client:
        response = await client.post("/models/gemini-2.5-flash:generateContent", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


async def test_unknown_routes_are_404(emu: Emulator, client: httpx.AsyncClient) -> None:
    async with client:
        assert (await client.get("/nothing-here")).status_code == 404
        origin = emu.url_for("gemini").removesuffix("/gemini/v1beta")
        assert (await client.get(f"{origin}/no-such-provider")).status_code == 404


async def test_model_pages_chain_by_token(emu: Emulator, client: httpx.AsyncClient) -> None:
    names: list[str] = []
    token = ""
    async with client:
        while True:
            page = (await client.get("/models", params={"pageSize": "3", "pageToken": token})).json()
            assert len(page["models"]) <= 3
            names += [m["name"] for m in page["models"]]
            token = page.get("nextPageToken", "")
            if not token:
                break
    assert len(names) == len(set(names)) == 10


async def test_faults_are_taken_in_order_then_normal_service(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.inject("gemini", Fault(status=500), times=2)
    emu.inject("gemini", Fault(status=429))
    async with client:
        statuses = [
            (await client.post("/models/gemini-2.5-flash:generateContent", json=BODY)).status_code for _ in range(4)
        ]
    assert statuses == [500, 500, 429, 200]
    assert emu.count("gemini", "chat") == 4


async def test_counters_and_recorded_requests(emu: Emulator, client: httpx.AsyncClient) -> None:
    async with client:
        await client.post("/models/gemini-2.5-flash:generateContent", json=BODY)
        assert emu.open_connections == 1
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
    (recorded,) = emu.requests_for("gemini")
    assert recorded.json() == BODY
    assert recorded.route == "chat"
    assert emu.requests == 1 and emu.peak_connections == 1


async def test_url_for_an_unknown_name_says_what_is_served(emu: Emulator) -> None:
    with pytest.raises(KeyError, match=r"it serves .*gemini"):
        emu.url_for("nope")


def read_banner(stdout: IO[str]) -> dict[str, tuple[str, str]]:
    """``trio-llm emulate``'s banner: each provider's URL, with the key."""
    lines = [stdout.readline()]
    while lines[-1] and not lines[-1].startswith("  api key"):
        lines.append(stdout.readline())
    key = lines[-1].split()[2]
    return {name: (url, key) for name, url in (line.split() for line in lines[1:-1])}


def test_googles_own_sdk_works_against_the_emulator() -> None:
    genai = pytest.importorskip("google.genai", reason="the interop extra (google-genai) is not installed")
    types = pytest.importorskip("google.genai.types")
    command = [sys.executable, "-m", "trio_llm", "emulate", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url, key = read_banner(process.stdout)["gemini"]
            options = types.HttpOptions(base_url=url.removesuffix("/v1beta"), api_version="v1beta")
            client = genai.Client(api_key=key, http_options=options)
            reply = client.models.generate_content(model="gemini-2.5-flash", contents="Hello")
            streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Hello"
            ))  # fmt: skip
            models = [m.name for m in client.models.list()]
            bad = genai.Client(api_key="wrong", http_options=options)
            with pytest.raises(genai.errors.ClientError) as caught:
                bad.models.generate_content(model="gemini-2.5-flash", contents="Hello")
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert reply.text == streamed
    assert reply.usage_metadata.candidates_token_count == 40
    assert "models/gemini-2.5-pro" in models and len(models) == 10
    assert caught.value.code == 400 and "API key not valid" in str(caught.value)


def test_openais_own_sdk_works_against_the_emulator() -> None:
    openai = pytest.importorskip("openai", reason="the interop extra (openai) is not installed")
    command = [sys.executable, "-m", "trio_llm", "emulate", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url, key = read_banner(process.stdout)["openai"]
            client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
            chunks = list(client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}],
                stream=True, stream_options={"include_usage": True},
            ))  # fmt: skip
            tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
            called = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Use get_weather for Oslo"}], tools=[tool]
            )
            models = [m.id for m in client.models.list()]
            bad = openai.OpenAI(base_url=url, api_key="wrong-key-123456", max_retries=0)
            with pytest.raises(openai.AuthenticationError) as caught:
                bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
            with pytest.raises(openai.NotFoundError) as missing:
                client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "Hi"}])
        finally:
            process.terminate()
            process.wait(timeout=10)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reply.choices[0].message.content == streamed
    assert reply.choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 40
    (call,) = called.choices[0].message.tool_calls or []
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Oslo"})
    assert "gpt-4o-mini" in models
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert missing.value.code == "model_not_found"


def test_a_long_reply_has_exactly_its_words_and_repeats_after_twenty_thousand() -> None:
    from trio_llm.testing._replies import chunk_words, reply_text, word_count

    short = reply_text("Hi", 20_000)
    long = reply_text("Hi", 50_000)
    assert long.startswith(short[:-1]) and long.endswith(".")
    assert len(long.split(" ")) == 50_000 == word_count(long)
    assert chunk_words(long, 50_000) == [long]
    assert "".join(chunk_words(long, 7)) == long


@pytest.mark.parametrize(
    "text",
    ["", " ", "one", " two words ", "a  b", "x " * 3000, "tab\tand\nnewline " * 600, "é " * 3000, " lead" * 1000],
)
def test_word_count_is_the_number_of_whitespace_separated_words(text: str) -> None:
    from trio_llm.testing._replies import word_count, word_pieces

    assert word_count(text) == len(text.split())
    assert word_pieces(text) == (len(text.split(" ")) if text else 0)


async def test_with_a_tick_waits_end_on_the_tick_and_streams_share_timers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Emulator(words=5, words_per_chunk=1, first_chunk_delay=0.1, chunk_delay=0.01, tick=0.004) as emu:
        gemini = emu.gemini()
        started = trio.current_time()
        arrivals: list[list[float]] = [[], []]

        async def read(times: list[float]) -> None:
            async with gemini.stream("Hi") as events:
                async for _event in events:
                    times.append(trio.current_time() - started)

        async with trio.open_nursery() as nursery:
            for times in arrivals:
                nursery.start_soon(read, times)
    for times in arrivals:
        assert len(times) >= 5
        assert 0.1 <= times[0] < 0.1 + 0.004 + 1e-9  # the first event: rounded up to the tick
        assert all(later - earlier < 0.01 + 0.004 + 1e-9 for earlier, later in itertools.pairwise(times[:5]))
    assert times == arrivals[0]  # both streams woke on the same ticks


async def test_a_client_leaving_while_the_stream_waits_for_a_tick_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Emulator(words=50, words_per_chunk=1, chunk_delay=1.0, tick=0.01) as emu:
        async with emu.gemini().stream("Hi") as events:
            await events.__anext__()
        with trio.fail_after(5):
            await emu.wait_for_connections(0)
