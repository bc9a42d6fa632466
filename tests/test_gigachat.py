"""GigaChat against the emulator over TLS (a trustme CA), on real loopback sockets.

Anything about time (token lifetimes, refresh margins, delays) runs on trio's MockClock: the
emulator measures token lifetimes on trio's clock too, so jumping the clock expires them.
"""

from __future__ import annotations

import base64
import functools
import logging
import ssl
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import trio_llm
from trio_llm import Finish, FinishReason, TextDelta, ToolCall, Usage
from trio_llm._cli import main
from trio_llm.testing import Emulator, Fault

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)
WEATHER = trio_llm.Tool(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
)


async def collect(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


def default_trust(emu: Emulator, **kwargs: Any) -> trio_llm.GigaChat:
    """A GigaChat for the emulator with the default trust store (public roots + Russian CA)."""
    kwargs.setdefault("credentials", emu.credentials)
    return trio_llm.GigaChat(base_url=emu.url_for("gigachat"), auth_url=emu.url_for("gigachat-auth"), **kwargs)


@pytest.fixture
def emu_ca(emu: Emulator, tmp_path: Path) -> Path:
    path = tmp_path / "emulator-ca.pem"
    path.write_bytes(emu.ca_pem)
    return path


@pytest.fixture
def no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIGACHAT_CREDENTIALS", raising=False)
    monkeypatch.delenv("GIGACHAT_SCOPE", raising=False)


async def oauth_post(emu: Emulator, headers: dict[str, str], scope: str = "GIGACHAT_API_PERS") -> httpx.Response:
    async with httpx.AsyncClient(verify=emu.client_ssl_context()) as client:
        return await client.post(emu.url_for("gigachat-auth"), headers=headers, data={"scope": scope})


async def issue_token(emu: Emulator) -> str:
    response = await oauth_post(emu, {"authorization": f"Basic {emu.credentials}", "rquid": str(uuid.uuid4())})
    token: str = response.json()["access_token"]
    return token


# -- streaming and complete --------------------------------------------------------------------


async def test_stream_yields_text_then_one_usage_then_one_finish_at_done(emu: Emulator) -> None:
    events = await collect(emu.gigachat().stream("Привет"))
    assert len(events) > 3
    assert all(isinstance(e, TextDelta) for e in events[:-2])
    assert events[-2] == Usage(1, emu.words, 1 + emu.words)
    assert events[-1] == Finish(FinishReason.STOP, "stop")


async def test_complete_gives_the_same_reply_as_the_stream_without_streaming(emu: Emulator) -> None:
    giga = emu.gigachat()
    streamed = trio_llm.Reply.from_events(await collect(giga.stream("Same prompt")))
    reply = await giga.complete("Same prompt")
    assert (reply.text, reply.usage, reply.finish) == (streamed.text, streamed.usage, streamed.finish)
    assert (reply.provider, reply.model) == ("gigachat", "GigaChat")
    stream_body, complete_body = (r.json() for r in emu.requests_for("gigachat", "chat"))
    assert (stream_body["stream"], complete_body["stream"]) == (True, False)


async def test_oauth_request_is_basic_credentials_a_fresh_rquid_and_the_scope_form(emu: Emulator) -> None:
    await emu.gigachat().complete("Hi")
    await emu.gigachat().complete("Hi")  # another instance: its own token
    first, second = emu.requests_for("gigachat", "oauth")
    for request in (first, second):
        assert request.method == "POST" and request.path == "/gigachat/api/v2/oauth"
        assert request.headers["authorization"] == f"Basic {emu.credentials}"
        assert uuid.UUID(request.headers["rquid"]).version == 4
        assert request.headers["accept"] == "application/json"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.body == b"scope=GIGACHAT_API_PERS"
    assert first.headers["rquid"] != second.headers["rquid"]


async def test_chat_request_carries_the_token_and_only_the_options_that_were_set(emu: Emulator) -> None:
    giga = emu.gigachat(repetition_penalty=1.1, update_interval=0.5)
    await collect(giga.stream("Hi", temperature=0.3, max_tokens=50))
    await giga.complete("Hi", model="GigaChat-2-Max")
    streamed, whole = emu.requests_for("gigachat", "chat")
    assert streamed.path == "/gigachat/api/v1/chat/completions"
    assert streamed.headers["authorization"].startswith("Bearer emu-token-")
    assert (streamed.headers["accept"], whole.headers["accept"]) == ("text/event-stream", "application/json")
    assert streamed.json() == {
        "model": "GigaChat",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "update_interval": 0.5,
        "temperature": 0.3,
        "max_tokens": 50,
        "repetition_penalty": 1.1,
    }
    assert whole.json() == {
        "model": "GigaChat-2-Max",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
        "update_interval": 0.5,
        "repetition_penalty": 1.1,
    }


async def test_the_token_is_cached_on_the_instance(emu: Emulator) -> None:
    giga = emu.gigachat()
    for _ in range(3):
        await giga.complete("Hi")
        await collect(giga.stream("Hi"))
    await giga.models()
    assert emu.oauth_requests == emu.count("gigachat", "oauth") == 1
    tokens = {r.headers["authorization"] for r in emu.requests_for("gigachat") if r.route != "oauth"}
    assert len(tokens) == 1


async def test_max_tokens_finishes_with_length(emu: Emulator) -> None:
    reply = await emu.gigachat().complete("Long story please", max_tokens=5)
    assert len(reply.text.split()) == 5
    assert reply.finish == Finish(FinishReason.LENGTH, "length")


async def test_credentials_and_scope_come_from_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGACHAT_CREDENTIALS", emu.credentials)
    monkeypatch.setenv("GIGACHAT_SCOPE", "GIGACHAT_API_PERS")
    giga = trio_llm.GigaChat(
        base_url=emu.url_for("gigachat"), auth_url=emu.url_for("gigachat-auth"), ssl_context=emu.client_ssl_context()
    )
    assert (await giga.complete("Hi")).text


async def test_the_emulator_serves_gigachat_next_to_gemini_over_tls(emu: Emulator) -> None:
    assert emu.url_for("gigachat").startswith("https://127.0.0.1:")
    assert emu.url_for("gigachat").endswith("/gigachat/api/v1")
    assert emu.url_for("gigachat-auth").endswith("/gigachat/api/v2/oauth")
    assert base64.b64decode(emu.credentials, validate=True).count(b":") == 1
    assert isinstance(emu.provider("gigachat"), trio_llm.GigaChat)


# -- functions ---------------------------------------------------------------------------------


async def test_function_call_round_trip(emu: Emulator) -> None:
    giga = emu.gigachat()
    question = trio_llm.user("Use get_weather for Moscow")
    reply = await giga.complete([question], tools=[WEATHER])
    (call,) = reply.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Moscow", "days": 1})
    assert uuid.UUID(call.id)  # GigaChat's functions_state_id
    assert reply.finish == Finish(FinishReason.TOOL_CALLS, "function_call")
    sent = emu.requests_for("gigachat", "chat")[0].json()
    assert sent["functions"] == [{"name": "get_weather", "description": WEATHER.description, "parameters": dict(WEATHER.parameters)}]  # fmt: skip
    assert sent["function_call"] == "auto"

    answer = await giga.complete(
        [question, trio_llm.assistant("", tool_calls=reply.tool_calls), trio_llm.tool_result(call.id, {"temp": -3})],
        tools=[WEATHER],
    )
    assert answer.text == 'The tool get_weather answered {"temp": -3}.'
    messages = emu.requests_for("gigachat", "chat")[1].json()["messages"]
    assert messages[1] == {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": call.arguments}, "functions_state_id": call.id}  # fmt: skip
    assert messages[2] == {"role": "function", "name": "get_weather", "content": '{"temp": -3}'}


async def test_streamed_function_call_is_one_tool_call_event(emu: Emulator) -> None:
    events = await collect(emu.gigachat().stream("Call get_weather for Oslo", tools=[WEATHER]))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.arguments["city"] for c in calls] == ["Oslo"]
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finish(FinishReason.TOOL_CALLS, "function_call")


async def test_without_tools_the_model_calls_no_function(emu: Emulator) -> None:
    reply = await emu.gigachat().complete("Use get_weather for Moscow")
    assert not reply.tool_calls and reply.finish == Finish(FinishReason.STOP, "stop")


# -- bad input: clear errors before any I/O ------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "options", "match"),
    [
        ([trio_llm.user("Hi"), trio_llm.system("Be brief")], {}, r"messages\[1\]\.role: GigaChat accepts a system message only as the first"),
        ([trio_llm.user("Hi"), trio_llm.assistant("", tool_calls=[ToolCall("c1", "get_weather", {})]), trio_llm.tool_result("c1", "sunny")], {}, r"messages\[2\]\.content: GigaChat needs a tool result in JSON"),
        ([{"role": "user", "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}]}], {}, "GigaChat takes images only as uploaded files"),
        ("Hi", {"top_k": 5}, "GigaChat has no top_k"),
        ("Hi", {"stop": ["END"]}, "GigaChat has no stop sequences"),
        ("Hi", {"temperature": 3}, "temperature must be a number from 0 to 2"),
    ],
)  # fmt: skip
async def test_bad_requests_are_refused_before_any_io(
    emu: Emulator, messages: Any, options: dict[str, Any], match: str
) -> None:
    giga = emu.gigachat()
    with pytest.raises(trio_llm.InvalidRequestError, match=match):
        giga.stream(messages, **options)
    with pytest.raises(trio_llm.InvalidRequestError, match=match):
        await giga.complete(messages, **options)
    assert emu.requests == 0


async def test_images_via_media_are_refused_before_any_io(emu: Emulator, png: bytes) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="uploaded files"):
        await emu.gigachat().complete("Describe", media=[(png, "pixel.png")])
    assert emu.requests == 0


@pytest.mark.usefixtures("no_env_credentials")
async def test_missing_credentials_are_refused_before_any_io(emu: Emulator) -> None:
    giga = emu.gigachat(credentials=None)
    with pytest.raises(trio_llm.MissingAuthError, match="GIGACHAT_CREDENTIALS"):
        giga.stream("Hi")
    with pytest.raises(trio_llm.MissingAuthError):
        await giga.complete("Hi")
    assert emu.requests == 0


@pytest.mark.parametrize("credentials", ["client:secret", "Basic ZGVtbzpkZW1v", "%%%"])
async def test_credentials_that_are_not_base64_fail_at_construction(emu: Emulator, credentials: str) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match="credentials") as caught:
        emu.gigachat(credentials=credentials)
    assert credentials not in str(caught.value)
    assert emu.requests == 0


async def test_unknown_model_is_refused_by_the_service_then_up_front_once_the_list_is_known(emu: Emulator) -> None:
    giga = emu.gigachat()
    with pytest.raises(trio_llm.ModelNotFoundError, match="404 No such model"):
        await giga.complete("Hi", model="GigaChat-Ultra")
    assert emu.count("gigachat", "chat") == 1
    await giga.models()
    with pytest.raises(
        trio_llm.ModelNotFoundError, match="unknown model 'GigaChat-Ultra'; the service offers: GigaChat,"
    ):
        giga.stream("Hi", model="GigaChat-Ultra")
    assert emu.count("gigachat", "chat") == 1
    assert (await giga.complete("Hi", model="gigachat")).model == "GigaChat"  # an alias


# -- models ------------------------------------------------------------------------------------


async def test_models_lists_the_chat_models_of_the_service_and_caches_them(emu: Emulator) -> None:
    giga = emu.gigachat()
    models = await giga.models()
    assert models == ["GigaChat", "GigaChat-2", "GigaChat-2-Max", "GigaChat-2-Pro", "GigaChat-Max", "GigaChat-Pro"]
    assert "Embeddings" not in models
    assert await giga.models() == models
    (request,) = emu.requests_for("gigachat", "models")
    assert request.path == "/gigachat/api/v1/models"
    assert request.headers["authorization"].startswith("Bearer ")


@pytest.mark.usefixtures("no_env_credentials")
async def test_models_without_credentials_is_the_seeds_list_and_sends_nothing(emu: Emulator) -> None:
    giga = emu.gigachat(credentials=None)
    models = await giga.models()
    assert models == list(trio_llm.GigaChat.models) == ["GigaChat-2", "GigaChat-2-Pro", "GigaChat-2-Max", "GigaChat", "GigaChat-Pro", "GigaChat-Max"]  # fmt: skip
    assert emu.requests == 0
    assert giga.resolve_model("GigaChat-3-Ultra") == "GigaChat-3-Ultra"  # the fallback list refuses nothing


async def test_models_with_a_revoked_token_refreshes_once(emu: Emulator) -> None:
    giga = emu.gigachat()
    await giga.complete("Hi")
    emu.revoke_tokens()
    assert await giga.models()
    assert (emu.oauth_requests, emu.count("gigachat", "models")) == (2, 2)


# -- tokens: single flight, expiry, 401 (MockClock) --------------------------------------------


async def test_a_thousand_concurrent_calls_on_an_expired_token_make_exactly_one_oauth_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Emulator(words=3) as emu, emu.gigachat() as giga:
        await giga.complete("Hi")
        autojump_clock.jump(emu.token_lifetime)  # expired for the client and for the emulator
        replies: list[trio_llm.Reply] = []

        async def call() -> None:
            replies.append(await giga.complete("Hi"))

        async with trio.open_nursery() as nursery:
            for _ in range(1000):
                nursery.start_soon(call)
        assert len(replies) == 1000 and all(r.finish for r in replies)
        assert emu.oauth_requests == 2
        assert emu.count("gigachat", "chat") == 1001  # no call was refused and sent again


async def test_the_token_is_refreshed_when_less_than_60_s_remain(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(words=3) as emu, emu.gigachat() as giga:
        await giga.complete("Hi")
        autojump_clock.jump(emu.token_lifetime - 65)
        await giga.complete("Hi")
        assert emu.oauth_requests == 1
        autojump_clock.jump(10)  # 55 s left: still accepted by the service, but renewed first
        await giga.complete("Hi")
        assert emu.oauth_requests == 2
        assert emu.count("gigachat", "chat") == 3


async def test_token_expiry_in_the_middle_of_a_run_causes_one_refresh(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(words=3, token_lifetime=300) as emu, emu.gigachat() as giga:

        async def worker() -> None:
            for _ in range(10):
                await giga.complete("Hi")
                await trio.sleep(30)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(worker)
        assert trio.current_time() >= 300
        assert emu.oauth_requests == 2
        assert emu.count("gigachat", "chat") == 200


async def test_a_401_on_chat_refreshes_once_and_retries_once(emu: Emulator) -> None:
    giga = emu.gigachat()
    await giga.complete("Hi")
    emu.revoke_tokens()
    assert (await giga.complete("Hi")).finish
    assert (emu.oauth_requests, emu.count("gigachat", "chat")) == (2, 3)
    refused, retried = (r.headers["authorization"] for r in emu.requests_for("gigachat", "chat")[1:])
    assert refused != retried
    emu.revoke_tokens()
    async with giga.stream("Hi") as events:
        assert [e async for e in events][-1] == Finish(FinishReason.STOP, "stop")
        assert events.attempts == 2
    assert (emu.oauth_requests, emu.count("gigachat", "chat")) == (3, 5)


async def test_a_token_refused_again_after_the_refresh_is_an_error_not_a_loop(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(status=401, message="Token has expired"), times=5)
    with pytest.raises(trio_llm.AuthenticationError, match="401 Token has expired"):
        await emu.gigachat().complete("Hi")
    assert (emu.oauth_requests, emu.count("gigachat", "chat")) == (2, 2)


async def test_no_refresh_and_no_retry_once_an_event_reached_the_caller(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(error_after=2, error_status=401, message="Token has expired"))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.AuthenticationError, match="Token has expired"):
        async with emu.gigachat().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2 and all(isinstance(e, TextDelta) for e in received)
    assert (emu.oauth_requests, emu.count("gigachat", "chat")) == (1, 1)


async def test_a_revoked_token_makes_one_oauth_request_for_hundreds_of_refused_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 300, not 1,000: a thousand requests queued at once in httpcore's pool cost seconds of
    # its (quadratic) bookkeeping, and prove nothing more about the token.
    async with Emulator(words=3) as emu, emu.gigachat() as giga:
        await giga.complete("Hi")
        emu.revoke_tokens()
        replies: list[trio_llm.Reply] = []

        async def call() -> None:
            replies.append(await giga.complete("Hi"))

        async with trio.open_nursery() as nursery:
            for _ in range(300):
                nursery.start_soon(call)
        assert len(replies) == 300
        assert emu.oauth_requests == 2
        refused = emu.count("gigachat", "chat") - 301
        assert 100 < refused <= 300  # each refused call was sent again once, with the new token


async def test_a_pre_issued_access_token_is_used_as_is(emu: Emulator, no_env_credentials: None) -> None:
    token = await issue_token(emu)
    giga = emu.gigachat(credentials=None, access_token=token)
    assert (await giga.complete("Hi")).text
    assert emu.oauth_requests == 1  # the one made above, none by the provider
    assert emu.requests_for("gigachat", "chat")[0].headers["authorization"] == f"Bearer {token}"
    emu.revoke_tokens()
    with pytest.raises(trio_llm.AuthenticationError, match="Token has expired"):
        await giga.complete("Hi")  # nothing to renew it with
    assert emu.oauth_requests == 1


async def test_a_refused_pre_issued_token_is_replaced_using_the_credentials(emu: Emulator) -> None:
    giga = emu.gigachat(access_token=await issue_token(emu))
    emu.revoke_tokens()
    assert (await giga.complete("Hi")).text
    assert emu.oauth_requests == 2


async def test_a_failed_refresh_fails_every_waiter_with_one_oauth_request(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(status=401, message="credentials doesn't match db data"), route="oauth")
    giga = emu.gigachat()
    errors: list[trio_llm.AuthenticationError] = []

    async def call() -> None:
        try:
            await giga.complete("Hi")
        except trio_llm.AuthenticationError as error:
            errors.append(error)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(call)
    assert len(errors) == 50 and len({id(e) for e in errors}) == 50  # one copy each
    assert {str(e) for e in errors} == {"gigachat: 401 OAuth: credentials doesn't match db data (code 401); check the authorization key (credentials= or GIGACHAT_CREDENTIALS)"}  # fmt: skip
    assert emu.oauth_requests == 1 and emu.count("gigachat", "chat") == 0
    assert (await giga.complete("Hi")).text  # the failure is not cached: the next call asks again
    assert emu.oauth_requests == 2


async def test_a_caller_cancelled_while_fetching_the_token_fails_nobody_else(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Emulator(words=3) as emu, emu.gigachat() as giga:
        emu.inject("gigachat", Fault(delay=30), route="oauth")
        outcomes: list[str] = []

        async def impatient() -> None:
            with trio.move_on_after(5):
                await giga.complete("Hi")
                outcomes.append("impatient answered")
            outcomes.append(f"impatient gave up at {trio.current_time():.0f}")

        async def patient() -> None:
            await giga.complete("Hi")
            outcomes.append(f"patient answered at {trio.current_time():.0f}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(impatient)
            await trio.testing.wait_all_tasks_blocked()  # it holds the lock, waiting for the OAuth reply
            nursery.start_soon(patient)
            nursery.start_soon(patient)
        assert outcomes == ["impatient gave up at 5", "patient answered at 5", "patient answered at 5"]
        assert emu.oauth_requests == 2  # the abandoned one and one more, not one per waiter


async def test_oauth_server_errors_are_retried_like_any_request(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(words=3) as emu:
        emu.inject("gigachat", Fault(status=503), route="oauth")
        assert (await emu.gigachat().complete("Hi")).text
        assert emu.oauth_requests == 2


# -- OAuth and chat errors over the wire -------------------------------------------------------


async def test_wrong_credentials_are_an_authentication_error_with_sbers_message(emu: Emulator) -> None:
    other = base64.b64encode(b"someone:else").decode()
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.gigachat(credentials=other).complete("Hi")
    assert caught.value.status_code == 401
    assert "OAuth: credentials doesn't match db data (code 6)" in str(caught.value)
    assert emu.oauth_requests == 1 and emu.count("gigachat", "chat") == 0


async def test_a_scope_the_key_does_not_have_is_an_authentication_error_naming_the_scope(emu: Emulator) -> None:
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.gigachat(scope="GIGACHAT_API_CORP").complete("Hi")
    assert caught.value.status_code == 400
    assert "scope from db not fully includes consumed scope (code 7)" in str(caught.value)
    assert "'GIGACHAT_API_CORP'" in str(caught.value)
    assert emu.requests_for("gigachat", "oauth")[0].body == b"scope=GIGACHAT_API_CORP"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, trio_llm.BadRequestError),
        (402, trio_llm.RateLimitError),
        (403, trio_llm.PermissionDeniedError),
        (404, trio_llm.NotFoundError),
        (413, trio_llm.BadRequestError),
        (422, trio_llm.BadRequestError),
        (429, trio_llm.RateLimitError),
        (500, trio_llm.ServerError),
        (409, trio_llm.APIStatusError),
    ],
)
async def test_error_statuses_map_to_the_typed_tree(emu: Emulator, status: int, error_class: type) -> None:
    emu.inject("gigachat", Fault(status=status, message="nope", headers={"x-request-id": "rid-7"}), times=2)
    giga = emu.gigachat(retry=NO_RETRY)
    with pytest.raises(error_class) as caught:
        await giga.complete("Hi")
    assert type(caught.value) is error_class
    assert str(caught.value) == f"gigachat: {status} nope (request id rid-7)"
    assert caught.value.body == {"status": status, "message": "nope"}
    with pytest.raises(error_class):
        await collect(giga.stream("Hi"))


async def test_rate_limit_carries_retry_after(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(status=429, retry_after="9"))
    with pytest.raises(trio_llm.RateLimitError) as caught:
        await emu.gigachat(retry=NO_RETRY).complete("Hi")
    assert caught.value.retry_after == 9.0


async def test_an_error_inside_the_stream_is_typed_after_the_text_before_it(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(error_after=2, error_status=503, message="overloaded"))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.ServerError, match="503 overloaded"):
        async with emu.gigachat().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2


@pytest.mark.parametrize("cut_after", [2, 1000])
async def test_a_stream_without_done_is_truncated_never_a_normal_stop(emu: Emulator, cut_after: int) -> None:
    # 1000: every event is sent, the finish and usage chunk included, but not [DONE].
    emu.inject("gigachat", Fault(truncate_after=cut_after))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.StreamTruncatedError):
        async with emu.gigachat().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert received and all(isinstance(e, TextDelta) for e in received)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("blacklist", FinishReason.CONTENT_FILTER), ("error", FinishReason.ERROR), ("something_new", FinishReason.OTHER)],
)
async def test_gigachat_finish_reasons(emu: Emulator, raw: str, reason: FinishReason) -> None:
    emu.inject("gigachat", Fault(finish_reason=raw), times=2)
    assert (await emu.gigachat().complete("Hi")).finish == Finish(reason, raw)
    assert (await collect(emu.gigachat().stream("Hi")))[-1] == Finish(reason, raw)


async def test_a_malformed_event_is_a_protocol_error(emu: Emulator) -> None:
    emu.inject("gigachat", Fault(malformed_after=1))
    with pytest.raises(trio_llm.ProtocolError, match="malformed JSON"):
        await collect(emu.gigachat().stream("Hi"))


# -- TLS ---------------------------------------------------------------------------------------


async def test_a_server_certificate_from_an_unknown_ca_is_refused_with_what_was_trusted(emu: Emulator) -> None:
    with pytest.raises(trio_llm.CertificateError) as caught:
        await default_trust(emu).complete("Hi")
    message = str(caught.value)
    assert "did not verify" in message
    assert "Russian Trusted Root CA" in message and "public root CAs" in message
    assert "ca_file=" in message and "ssl_context=" in message
    assert emu.requests == 0  # refused at the handshake: no request was sent
    with pytest.raises(trio_llm.CertificateError):
        await default_trust(emu).models()


async def test_a_certificate_error_names_the_ca_file_that_was_added(emu: Emulator, tmp_path: Path) -> None:
    unrelated = tmp_path / "unrelated-ca.pem"
    unrelated.write_bytes(Emulator().ca_pem)  # another emulator's CA: not the one serving here
    with pytest.raises(trio_llm.CertificateError) as caught:
        await default_trust(emu, ca_file=unrelated).complete("Hi")
    assert f"and the CA in ca_file={str(unrelated)!r}" in str(caught.value)


async def test_ca_file_adds_a_ca_to_the_default_trust(emu: Emulator, emu_ca: Path) -> None:
    assert (await default_trust(emu, ca_file=emu_ca).complete("Hi")).text
    assert (await emu.gigachat(ca_file=str(emu_ca)).complete("Hi")).text


async def test_the_public_roots_honour_ssl_cert_file_like_httpx(
    emu: Emulator, emu_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(emu_ca))
    assert (await default_trust(emu).complete("Hi")).text


async def test_an_ssl_context_replaces_the_whole_trust_store(emu: Emulator) -> None:
    assert (await emu.gigachat(ssl_context=emu.client_ssl_context()).complete("Hi")).text
    with pytest.raises(trio_llm.CertificateError, match="Only the CAs of the ssl_context you passed"):
        await emu.gigachat(ssl_context=ssl.create_default_context()).complete("Hi")


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback that records the tunnels it opened."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []

    async def handle(self, client: trio.SocketStream) -> None:
        async with client:
            head = b""
            while b"\r\n\r\n" not in head:
                data = await client.receive_some(4096)
                if not data:
                    return
                head += data
            method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.tunnels.append(f"{method} {target}")
            host, _, port = target.rpartition(":")
            async with await trio.open_tcp_stream(host, int(port)) as upstream:
                await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pipe, upstream, client, nursery.cancel_scope)

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # one side hung up: the tunnel is over
        scope.cancel()


@pytest.fixture
async def proxy(nursery: trio.Nursery) -> tuple[ConnectProxy, str]:
    """The proxy, served until the test ends (pytest-trio cancels its nursery)."""
    server = ConnectProxy()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    return server, f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


async def test_a_proxy_still_works_with_the_custom_ca(
    emu: Emulator, emu_ca: Path, proxy: tuple[ConnectProxy, str]
) -> None:
    server, url = proxy
    async with default_trust(emu, ca_file=emu_ca, proxy=url) as giga:
        assert (await giga.complete("Hi")).text
    origin = emu.url_for("gigachat").split("/")[2]
    assert server.tunnels and set(server.tunnels) == {f"CONNECT {origin}"}
    assert emu.oauth_requests == 1 and emu.count("gigachat", "chat") == 1


# -- secrets -----------------------------------------------------------------------------------


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("trio_llm", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


async def test_credentials_and_tokens_appear_in_no_repr_error_traceback_or_log(
    emu: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    wrong = base64.b64encode(b"wrong-client:wrong-secret").decode()
    pre_issued = await issue_token(emu)
    texts: list[str] = []

    def record_error(error: BaseException) -> None:
        texts.extend([str(error), repr(error), "".join(traceback.format_exception(error))])
        texts.append(repr(getattr(error, "body", None)))

    giga = emu.gigachat(retry=NO_RETRY)
    async with giga.stream("Hi") as events:
        texts.append(repr(events))
        texts.extend([repr(event) async for event in events])
    texts.append(repr(await giga.complete("Hi", tools=[WEATHER])))
    await giga.models()
    emu.revoke_tokens()
    await giga.complete("Hi")  # a 401, a refresh and a retry
    for fault in (Fault(status=401), Fault(status=403), Fault(status=500), Fault(truncate_after=1), Fault(error_after=1, error_status=401)):  # fmt: skip
        emu.inject("gigachat", fault, times=2)
        with pytest.raises(trio_llm.TrioLLMError) as caught:
            await collect(giga.stream("Hi"))
        record_error(caught.value)
    for broken in (
        emu.gigachat(credentials=wrong),
        emu.gigachat(scope="GIGACHAT_API_B2B"),
        default_trust(emu),
        emu.gigachat(access_token=pre_issued, credentials=wrong),
    ):
        emu.revoke_tokens()
        with pytest.raises(trio_llm.TrioLLMError) as caught:
            await broken.complete("Hi")
        record_error(caught.value)
        texts.append(repr(broken))
    emu.inject("gigachat", Fault(status=500, message="down"), route="oauth")
    with pytest.raises(trio_llm.ServerError) as caught:
        await emu.gigachat(retry=NO_RETRY).complete("Hi")
    record_error(caught.value)
    texts.append(repr(giga))

    tokens = {r.headers["authorization"].split(" ", 1)[1] for r in emu.requests_for("gigachat") if r.route != "oauth"}
    assert pre_issued in tokens and len(tokens) >= 3
    assert debug_logs.records, "DEBUG logging captured nothing: the test would prove nothing"
    assert any("oauth" in r.getMessage() for r in debug_logs.records)  # the token requests were logged
    texts.append(debug_logs.text)
    everything = "\n".join(texts)
    secrets = [emu.credentials, wrong, *tokens]
    secrets += [base64.b64decode(emu.credentials).decode().split(":")[1], "wrong-secret"]
    for secret in secrets:
        assert secret not in everything


# -- cleanup -----------------------------------------------------------------------------------


async def test_break_closes_the_connection_at_once(emu: Emulator) -> None:
    async with emu.gigachat().stream("Hi") as events:
        async for _event in events:
            break
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_cancellation_mid_stream_closes_the_connection(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(chunk_delay=1.0) as emu:
        received: list[trio_llm.Event] = []
        with trio.move_on_after(2.5) as scope:
            async with emu.gigachat().stream("Hi") as events:
                async for event in events:
                    received.append(event)
        assert scope.cancelled_caught and 1 <= len(received) < 5
        with trio.fail_after(5):
            await emu.wait_for_connections(0)


async def test_cancellation_while_waiting_for_the_token_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Emulator() as emu:
        emu.inject("gigachat", Fault(delay=100), route="oauth")
        with trio.move_on_after(3) as scope:
            await emu.gigachat().complete("Hi")
        assert scope.cancelled_caught and trio.current_time() == pytest.approx(3)
        with trio.fail_after(5):
            await emu.wait_for_connections(0)
        assert emu.count("gigachat", "chat") == 0


async def test_an_oauth_reply_slower_than_first_event_is_a_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator() as emu:
        emu.inject("gigachat", Fault(delay=100), route="oauth")
        giga = emu.gigachat(timeouts=trio_llm.Timeouts(first_event=7), retry=NO_RETRY)
        with pytest.raises(trio_llm.FirstEventTimeout):
            await giga.models()
        assert trio.current_time() == pytest.approx(7)


# -- the emulator's OAuth and API, as any client sees them ---------------------------------------


async def test_emulator_oauth_checks_credentials_rquid_and_scope(emu: Emulator) -> None:
    good = f"Basic {emu.credentials}"
    cases = [
        ({}, "GIGACHAT_API_PERS", 401, {"code": 4, "message": "Can't decode 'Authorization' header"}),
        ({"authorization": "Basic d3Jvbmc6a2V5", "rquid": str(uuid.uuid4())}, "GIGACHAT_API_PERS", 401, {"code": 6, "message": "credentials doesn't match db data"}),
        ({"authorization": good}, "GIGACHAT_API_PERS", 400, None),
        ({"authorization": good, "rquid": "not-a-uuid"}, "GIGACHAT_API_PERS", 400, None),
        ({"authorization": good, "rquid": str(uuid.uuid4())}, "", 400, {"code": 5, "message": "scope is empty"}),
        ({"authorization": good, "rquid": str(uuid.uuid4())}, "GIGACHAT", 400, {"code": 1, "message": "scope data format invalid"}),
    ]  # fmt: skip
    for headers, scope, status, body in cases:
        response = await oauth_post(emu, headers, scope)
        assert response.status_code == status
        if body is not None:
            assert response.json() == body
    ok = await oauth_post(emu, {"authorization": good, "rquid": str(uuid.uuid4())})
    assert ok.status_code == 200 and set(ok.json()) == {"access_token", "expires_at"}
    assert emu.oauth_requests == len(cases) + 1


async def test_emulator_tokens_live_for_token_lifetime_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(token_lifetime=120) as emu:
        token = await issue_token(emu)
        async with httpx.AsyncClient(verify=emu.client_ssl_context()) as client:
            url = emu.url_for("gigachat") + "/models"
            assert (await client.get(url, headers={"authorization": f"Bearer {token}"})).status_code == 200
            autojump_clock.jump(120)
            expired = await client.get(url, headers={"authorization": f"Bearer {token}"})
            assert (expired.status_code, expired.json()) == (401, {"status": 401, "message": "Token has expired"})
            missing = await client.get(url)
            assert missing.status_code == 401


# -- the command line --------------------------------------------------------------------------


def test_cli_chat_and_models_with_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--emulator", "-p", "gigachat", "--system", "Отвечай кратко", "--max-tokens", "4", "Привет"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert len(out.split()) == 4
    assert "[finish] length (length)" in err
    assert main(["models", "--emulator", "-p", "gigachat"]) == 0
    assert "GigaChat-2-Max" in capsys.readouterr().out.splitlines()


@pytest.mark.usefixtures("no_env_credentials")
def test_cli_without_credentials_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "-p", "gigachat", "Привет"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("trio-llm: error: gigachat: no credentials: pass credentials=")
    assert "Traceback" not in err
