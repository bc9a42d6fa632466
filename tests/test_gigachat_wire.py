"""GigaChat's pure parts: the bundled CA, credentials, tokens on trio's clock, request shapes,
error mapping, and decoding its streams (no sockets)."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import uuid
from typing import Any

import pytest

import trio_llm
from trio_llm import Finish, FinishReason, TextDelta, ToolCall, Usage
from trio_llm._provider import ChatRequest
from trio_llm.providers._gigachat import (
    build_body,
    bundled_ca_pem,
    chat_error,
    gigachat_messages,
    oauth_error,
    token_from_reply,
)

FINGERPRINT = "D2:6D:2D:02:31:B7:C3:9F:92:CC:73:85:12:BA:54:10:35:19:E4:40:5D:68:B5:BD:70:3E:97:88:CA:8E:CF:31"
KEY = base64.b64encode(b"0f0e0d0c-client-id:5a5b5c5d-client-secret").decode()
JSON_HEADERS = {"content-type": "application/json"}

# -- the bundled CA ----------------------------------------------------------------------------


def test_bundled_ca_is_the_russian_trusted_root_ca_by_its_fingerprint() -> None:
    der = ssl.PEM_cert_to_DER_cert(bundled_ca_pem())
    assert ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()) == FINGERPRINT


def test_default_context_trusts_the_bundled_ca_on_top_of_the_public_roots() -> None:
    context = trio_llm.GigaChat(KEY)._build_ssl_context()
    subjects = [dict(pair[0] for pair in ca["subject"]) for ca in context.get_ca_certs()]
    assert {"countryName": "RU", "organizationName": "The Ministry of Digital Development and Communications", "commonName": "Russian Trusted Root CA"} in subjects  # fmt: skip
    assert len(subjects) > 100  # certifi's public roots are still there
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_class_level_flags_and_model_list() -> None:
    giga = trio_llm.GigaChat
    assert (giga.name, giga.default_model, giga.needs_auth) == ("gigachat", "GigaChat", True)
    assert giga.supports_stream and giga.supports_tools and giga.supports_system_message
    assert not giga.supports_vision and not giga.supports_images_output and not giga.closed_model_list
    assert isinstance(giga.models, tuple) and "GigaChat-2-Max" in giga.models
    assert callable(giga(KEY).models)


# -- credentials and scope ---------------------------------------------------------------------


def test_credentials_are_stripped_and_kept_as_given() -> None:
    assert trio_llm.GigaChat(f"  {KEY}\n").credentials == KEY


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0f0e0d0c-client-id:5a5b5c5d-client-secret", "looks like client_id:client_secret"),
        (f"Basic {KEY}", "without 'Basic '"),
        ("not base64 at all!", "not base64"),
        (KEY[:-3], "not base64"),  # bad padding
    ],
)
def test_credentials_that_are_not_base64_are_a_configuration_error_that_does_not_quote_them(
    value: str, match: str
) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=match) as caught:
        trio_llm.GigaChat(value)
    assert "client-secret" not in str(caught.value) and KEY[:20] not in str(caught.value)


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGACHAT_CREDENTIALS", KEY)
    monkeypatch.setenv("GIGACHAT_SCOPE", "GIGACHAT_API_B2B")
    giga = trio_llm.GigaChat()
    assert (giga.credentials, giga.scope) == (KEY, "GIGACHAT_API_B2B")
    assert trio_llm.GigaChat(scope="GIGACHAT_API_CORP").scope == "GIGACHAT_API_CORP"  # the argument wins


@pytest.mark.parametrize("scope", ["GIGACHAT_API", "gigachat_api_pers", ""])
def test_an_unknown_scope_is_a_configuration_error(scope: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match="GIGACHAT_API_PERS, GIGACHAT_API_B2B, GIGACHAT_API_CORP"):
        trio_llm.GigaChat(KEY, scope=scope)
    monkeypatch.setenv("GIGACHAT_SCOPE", "GIGACHAT_API_TEAM")
    with pytest.raises(trio_llm.ConfigurationError):
        trio_llm.GigaChat(KEY)


def test_credentials_and_scope_cannot_change_under_a_cached_token() -> None:
    giga = trio_llm.GigaChat(KEY)
    with pytest.raises(AttributeError):
        giga.scope = "GIGACHAT_API_CORP"
    with pytest.raises(AttributeError):
        giga.credentials = KEY


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"update_interval": -1}, "update_interval"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"repetition_penalty": "1.1"}, "repetition_penalty"),
        ({"auth_url": "ftp://example.org/oauth"}, "auth_url"),
        ({"ssl_context": "yes"}, "ssl.SSLContext"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
)
def test_bad_constructor_arguments(options: dict[str, Any], match: str) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=match):
        trio_llm.GigaChat(KEY, **options)


def test_a_ca_file_that_is_not_a_certificate_is_refused(tmp_path: Any) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(trio_llm.ConfigurationError, match="no CA certificate could be loaded"):
        trio_llm.GigaChat(KEY, ca_file=bogus)


def test_an_ssl_context_must_verify_and_replaces_ca_file(tmp_path: Any) -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(trio_llm.ConfigurationError, match="must verify"):
        trio_llm.GigaChat(KEY, ssl_context=lax)
    ca = tmp_path / "ca.pem"
    ca.write_text(bundled_ca_pem())
    with pytest.raises(trio_llm.ConfigurationError, match="not both"):
        trio_llm.GigaChat(KEY, ca_file=ca, ssl_context=ssl.create_default_context())


def test_secrets_are_not_in_the_repr() -> None:
    giga = trio_llm.GigaChat(KEY, access_token="pre-issued-token-value")
    assert KEY not in repr(giga) and "pre-issued-token-value" not in repr(giga)
    assert "credentials" not in repr(giga) and "access_token" not in repr(giga)


# -- tokens on trio's clock --------------------------------------------------------------------


def test_expires_at_becomes_a_deadline_on_trios_clock_once() -> None:
    token = token_from_reply({"access_token": "t", "expires_at": 1_700_001_800_000}, now=5.0, wall_now=1_700_000_000.0)
    assert token.expires_at == pytest.approx(5.0 + 1800)
    assert token.refresh_at == pytest.approx(5.0 + 1800 - 60)
    assert token.usable(5.0 + 1739) and not token.usable(5.0 + 1741)
    assert "'t'" not in repr(token)


def test_a_short_lived_token_is_refreshed_at_half_its_life() -> None:
    token = token_from_reply({"access_token": "t", "expires_at": 1_000_030_000}, now=0.0, wall_now=1_000_000.0)
    assert (token.refresh_at, token.expires_at) == pytest.approx((15.0, 30.0))


def test_an_expires_at_in_the_past_means_a_wrong_clock_and_the_token_is_used_until_refused() -> None:
    token = token_from_reply({"access_token": "t", "expires_at": 1_000}, now=0.0, wall_now=1_700_000_000.0)
    assert token.usable(10**9)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"expires_at": 1},
        {"access_token": "", "expires_at": 1},
        {"access_token": "t"},
        {"access_token": "t", "expires_at": "1700000000000"},
        {"access_token": "t", "expires_at": True},
        {"tok": "t", "exp": 1},  # the user/password endpoint's shape
    ],
)
def test_a_malformed_oauth_reply_is_a_protocol_error(payload: Any) -> None:
    with pytest.raises(trio_llm.ProtocolError):
        token_from_reply(payload, now=0.0, wall_now=0.0)


# -- request shapes ----------------------------------------------------------------------------

WEATHER = trio_llm.Tool("get_weather", "Weather now", {"type": "object", "properties": {"city": {"type": "string"}}})


def request(messages: Any, **options: Any) -> ChatRequest:
    from trio_llm._messages import coerce_messages

    return ChatRequest(messages=coerce_messages(messages), model="GigaChat", **options)


def test_body_has_model_messages_stream_update_interval_and_only_the_options_set() -> None:
    body = build_body(request("Привет"), streaming=True, update_interval=0, repetition_penalty=None)
    assert body == {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}], "stream": True, "update_interval": 0}  # fmt: skip
    body = build_body(
        request("Hi", temperature=0.5, top_p=0.9, max_tokens=7), streaming=False, update_interval=0.5, repetition_penalty=1.1
    )  # fmt: skip
    assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "repetition_penalty", "stream", "update_interval")} == {
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 7, "repetition_penalty": 1.1, "stream": False, "update_interval": 0.5
    }  # fmt: skip


def test_tools_become_functions_called_automatically() -> None:
    body = build_body(request("Hi", tools=(WEATHER,)), streaming=True, update_interval=0, repetition_penalty=None)
    assert body["functions"] == [
        {"name": "get_weather", "description": "Weather now", "parameters": dict(WEATHER.parameters)}
    ]
    assert body["function_call"] == "auto"


def test_a_tool_round_trip_becomes_function_call_and_function_messages() -> None:
    state = str(uuid.uuid4())
    call = ToolCall(state, "get_weather", {"city": "Москва"})
    out = gigachat_messages(
        request(
            [
                trio_llm.system("Be brief"),
                trio_llm.user("Weather?"),
                trio_llm.assistant("", tool_calls=[call]),
                trio_llm.tool_result(state, {"temp": -3}),
            ]
        ).messages
    )
    assert out == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": {"city": "Москва"}}, "functions_state_id": state},
        {"role": "function", "name": "get_weather", "content": '{"temp": -3}'},
    ]  # fmt: skip


def test_a_call_id_that_is_not_a_functions_state_id_is_not_sent() -> None:
    call = ToolCall("call_0_get_weather", "get_weather", {})
    (entry,) = gigachat_messages((trio_llm.assistant("", tool_calls=[call]),))
    assert "functions_state_id" not in entry


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([trio_llm.user("Hi"), trio_llm.system("Late rules")], r"messages\[1\]\.role: GigaChat accepts a system message only as the first"),
        ([trio_llm.system("a"), trio_llm.system("b"), trio_llm.user("Hi")], r"messages\[1\]\.role"),
        ([trio_llm.user("Hi"), trio_llm.tool_result("c1", "sunny", name="weather")], r"messages\[1\]\.content: GigaChat needs a tool result in JSON"),
        ([trio_llm.user("Hi"), trio_llm.tool_result("c9", "{}")], r"messages\[1\]\.tool_call_id: 'c9' answers no earlier tool call"),
        ([trio_llm.assistant("", tool_calls=[ToolCall("a", "f", {}), ToolCall("b", "g", {})])], r"messages\[0\]\.tool_calls: GigaChat makes one function call per message"),
    ],
)  # fmt: skip
def test_gigachats_message_rules_are_clear_errors(messages: list[Any], match: str) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=match):
        gigachat_messages(request(messages).messages)


def test_json_tool_results_of_any_kind_are_accepted() -> None:
    for content in ('"sunny"', "[1, 2]", "3", '{"a": null}'):
        out = gigachat_messages(request([trio_llm.user("Hi"), trio_llm.tool_result("c", content, name="f")]).messages)
        assert out[-1] == {"role": "function", "name": "f", "content": content}


# -- errors ------------------------------------------------------------------------------------


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_oauth_scope_errors_are_authentication_errors_with_sbers_message_and_a_hint() -> None:
    error = oauth_error(400, JSON_HEADERS, body({"code": 7, "message": "scope from db not fully includes consumed scope"}), scope="GIGACHAT_API_CORP")  # fmt: skip
    assert type(error) is trio_llm.AuthenticationError and error.status_code == 400
    assert "scope from db not fully includes consumed scope (code 7)" in str(error)
    assert "'GIGACHAT_API_CORP'" in str(error)
    assert error.body == {"code": 7, "message": "scope from db not fully includes consumed scope"}


@pytest.mark.parametrize(
    ("status", "payload", "cls", "text"),
    [
        (401, {"code": 6, "message": "credentials doesn't match db data"}, trio_llm.AuthenticationError, "credentials doesn't match db data (code 6); check the authorization key"),
        (400, {"code": 5, "message": "scope is empty"}, trio_llm.AuthenticationError, "scope is empty"),
        (400, {"code": 4, "message": "RqUID header is missing"}, trio_llm.BadRequestError, "RqUID"),
        (429, {"code": 9, "message": "too many requests"}, trio_llm.RateLimitError, "too many requests"),
        (503, "<html>down</html>", trio_llm.ServerError, "HTML error page"),
    ],
)  # fmt: skip
def test_oauth_errors_are_typed(status: int, payload: Any, cls: type, text: str) -> None:
    raw = payload.encode() if isinstance(payload, str) else body(payload)
    error = oauth_error(status, JSON_HEADERS, raw, scope="GIGACHAT_API_PERS")
    assert type(error) is cls and text in str(error) and str(error).startswith(f"gigachat: {status} OAuth: ")


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (401, "Token has expired", trio_llm.AuthenticationError),
        (402, "Payment Required", trio_llm.RateLimitError),
        (403, "Permission denied", trio_llm.PermissionDeniedError),
        (404, "No such model", trio_llm.ModelNotFoundError),
        (404, "Not found", trio_llm.NotFoundError),
        (413, "Payload too large", trio_llm.BadRequestError),
        (422, "Invalid params: functions", trio_llm.BadRequestError),
        (429, "Too many requests", trio_llm.RateLimitError),
        (500, "Internal Server Error", trio_llm.ServerError),
    ],
)
def test_chat_errors_are_typed_with_gigachats_message(status: int, message: str, cls: type) -> None:
    headers = {**JSON_HEADERS, "x-request-id": "rid-1"}
    error = chat_error(status, headers, body({"status": status, "message": message}))
    assert type(error) is cls
    assert str(error) == f"gigachat: {status} {message} (request id rid-1)"


# -- decoding GigaChat's streams ---------------------------------------------------------------


def sse(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)).encode() + b"\n\n" for p in payloads)  # fmt: skip


STREAM = sse(
    {"choices": [{"delta": {"content": "Гига", "role": "assistant"}, "index": 0}], "created": 1683034756, "model": "GigaChat", "object": "chat.completion"},
    {"choices": [{"delta": {"content": "Чат"}, "index": 0}], "created": 1683034756, "model": "GigaChat", "object": "chat.completion"},
    {"choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": "stop"}], "created": 1683034756, "model": "GigaChat", "object": "chat.completion", "usage": {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22, "precached_prompt_tokens": 2}},
    "[DONE]",
)  # fmt: skip


def decode(data: bytes, split: int, *, streaming: bool = True) -> list[trio_llm.Event]:
    giga = trio_llm.GigaChat(KEY)
    decoder = giga._decoder(request("Hi"), streaming=streaming)
    events: list[trio_llm.Event] = []
    for start in range(0, len(data), split):
        events += decoder.feed(data[start : start + split])
    return events + decoder.close()


@pytest.mark.parametrize("split", [1, 2, 5, 17, 10_000])
def test_the_documented_stream_decodes_whatever_the_fragmentation(split: int) -> None:
    assert decode(STREAM, split) == [
        TextDelta("Гига"),
        TextDelta("Чат"),
        Usage(18, 4, 22, cached_tokens=2),
        Finish(FinishReason.STOP, "stop"),
    ]


def test_a_stream_cut_after_the_finish_chunk_but_before_done_is_truncated() -> None:
    # The seeds stopped at the first finish_reason key: that would call this complete.
    with pytest.raises(trio_llm.StreamTruncatedError, match=r"\[DONE\]"):
        decode(STREAM[: STREAM.index(b"data: [DONE]")], 64)


def test_a_non_streamed_reply_gives_the_same_events() -> None:
    reply = {"choices": [{"message": {"role": "assistant", "content": "Привет! Чем могу помочь?"}, "index": 0, "finish_reason": "stop"}], "created": 1706026848, "model": "GigaChat", "object": "chat.completion", "usage": {"prompt_tokens": 18, "completion_tokens": 8, "total_tokens": 26}}  # fmt: skip
    assert decode(body(reply), 7, streaming=False) == [
        TextDelta("Привет! Чем могу помочь?"),
        Usage(18, 8, 26),
        Finish(FinishReason.STOP, "stop"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("stop", FinishReason.STOP), ("length", FinishReason.LENGTH), ("function_call", FinishReason.TOOL_CALLS),
     ("blacklist", FinishReason.CONTENT_FILTER), ("error", FinishReason.ERROR), ("new_reason", FinishReason.OTHER)],
)  # fmt: skip
def test_finish_reasons(raw: str, reason: FinishReason) -> None:
    chunk = {"choices": [{"delta": {"content": "x"}, "index": 0, "finish_reason": raw}]}
    assert decode(sse(chunk, "[DONE]"), 9)[-1] == Finish(reason, raw)


def test_an_error_event_inside_the_stream_is_typed_after_the_text_before_it() -> None:
    data = sse({"choices": [{"delta": {"content": "a"}, "index": 0}]}, {"status": 503, "message": "overloaded"})
    giga = trio_llm.GigaChat(KEY)
    decoder = giga._decoder(request("Hi"), streaming=True)
    assert decoder.feed(data) == [TextDelta("a")]
    with pytest.raises(trio_llm.ServerError, match="503 overloaded"):
        decoder.close()
