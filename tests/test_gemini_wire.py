"""Gemini's wire format without I/O: the request body, model paths, and response payloads to events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm import (
    Event,
    Finish,
    FinishReason,
    Image,
    ImageOutput,
    Message,
    ReasoningDelta,
    TextDelta,
    Tool,
    ToolCall,
    Usage,
    assistant,
    system,
    tool_result,
    user,
)
from trio_llm._decoding import SSEStreamDecoder
from trio_llm._provider import ChatRequest
from trio_llm.providers._gemini import (
    GeminiInterpreter,
    build_body,
    error_from_payload,
    map_finish_reason,
    model_path,
)

#: A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 8
B64_PNG = base64.b64encode(PNG).decode()

WEATHER = Tool(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "where": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"],
            },
            "days": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        },
        "required": ["city"],
    },
)


def body_for(*messages: Message, **options: Any) -> dict[str, Any]:
    return build_body(ChatRequest(messages=messages, model="gemini-2.5-flash", **options))


# -- build_body: contents ------------------------------------------------------------------------


def test_user_and_assistant_become_user_and_model_turns() -> None:
    body = body_for(user("Hi"), assistant("Hello!"), user("How are you?"))

    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "How are you?"}]},
        ]
    }


def test_system_messages_are_joined_into_the_system_instruction() -> None:
    body = body_for(system("Be brief."), user("Hi"), system("Answer in French."))

    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\nAnswer in French."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_no_system_instruction_without_system_messages() -> None:
    assert "systemInstruction" not in body_for(user("Hi"))


def test_only_system_messages_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="non-system message"):
        body_for(system("Be brief."))


def test_consecutive_turns_of_the_same_role_are_merged() -> None:
    body = body_for(user("one"), user("two"), assistant("three"), assistant("four"), user("five"))

    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_user_turns_separated_only_by_a_system_message_are_merged() -> None:
    body = body_for(user("one"), system("s"), user("two"))

    assert body["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]


def test_image_bytes_go_as_inline_data_with_the_sniffed_mime_type() -> None:
    body = body_for(user("What is this?", PNG, JPEG))

    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": B64_PNG}},
        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(JPEG).decode()}},
    ]


def test_a_declared_mime_type_is_sent_as_declared() -> None:
    body = body_for(user("?", Image(data=b"raw heic bytes", mime_type="image/heic")))

    assert body["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/heic", "data": base64.b64encode(b"raw heic bytes").decode()}
    }


def test_data_uri_images_go_as_inline_data() -> None:
    body = body_for(user("?", Image(url="data:image/png;base64," + B64_PNG)))

    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": B64_PNG}}


def test_url_images_go_as_file_data() -> None:
    body = body_for(
        user("?", Image(url="gs://bucket/cat.png", mime_type="image/png"), Image(url="https://example.com/dog.jpg"))
    )

    assert body["contents"][0]["parts"][1:] == [
        {"fileData": {"fileUri": "gs://bucket/cat.png", "mimeType": "image/png"}},
        {"fileData": {"fileUri": "https://example.com/dog.jpg"}},
    ]


def test_image_of_unknown_format_is_refused_naming_where_it_is() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"messages\[1\]\.content\[1\]"):
        body_for(user("first"), user("?", b"not an image"))


def test_empty_text_parts_are_left_out() -> None:
    assert body_for(user("", PNG))["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": B64_PNG}}
    ]


def test_an_empty_message_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"messages\[1\]\.content"):
        body_for(user("Hi"), assistant(""))


# -- build_body: generationConfig ----------------------------------------------------------------


def test_no_generation_config_when_no_option_is_set() -> None:
    assert "generationConfig" not in body_for(user("Hi"))


@pytest.mark.parametrize(
    ("option", "config"),
    [
        ({"temperature": 0.0}, {"temperature": 0.0}),
        ({"temperature": 1.5}, {"temperature": 1.5}),
        ({"max_tokens": 256}, {"maxOutputTokens": 256}),
        ({"top_p": 0.9}, {"topP": 0.9}),
        ({"top_k": 40}, {"topK": 40}),
        ({"stop": ("END",)}, {"stopSequences": ["END"]}),
        ({"stop": ("a", "b")}, {"stopSequences": ["a", "b"]}),
    ],
)
def test_generation_config_has_only_the_options_set(option: dict[str, Any], config: dict[str, Any]) -> None:
    assert body_for(user("Hi"), **option)["generationConfig"] == config


def test_generation_config_with_every_option() -> None:
    body = body_for(user("Hi"), temperature=0.2, max_tokens=10, top_p=0.5, top_k=3, stop=("x",))

    assert body["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 10,
        "topP": 0.5,
        "topK": 3,
        "stopSequences": ["x"],
    }


# -- build_body: tools ---------------------------------------------------------------------------


def test_tools_are_function_declarations_keeping_the_whole_schema() -> None:
    body = body_for(user("Weather?"), tools=(WEATHER,))

    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER.parameters}
            ]
        }
    ]


def test_a_tool_without_properties_omits_parameters() -> None:
    body = body_for(
        user("Time?"), tools=(Tool("now", "The time"), Tool("ping", parameters={"type": "object", "properties": {}}))
    )

    assert body["tools"] == [{"functionDeclarations": [{"name": "now", "description": "The time"}, {"name": "ping"}]}]


def test_no_tools_key_without_tools() -> None:
    assert "tools" not in body_for(user("Hi"))


def test_earlier_tool_calls_are_function_call_parts() -> None:
    calls = [
        ToolCall("call_1", "get_weather", {"city": "Paris"}, thought_signature="c2lnbmF0dXJl"),
        ToolCall("call_2", "get_weather", {"city": "Oslo"}),
    ]

    body = body_for(user("Weather?"), assistant("Let me check.", tool_calls=calls))

    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnbmF0dXJl"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
        ],
    }


def test_tool_results_are_function_response_parts_named_after_the_call() -> None:
    calls = [ToolCall("call_1", "get_weather", {"city": "Paris"}), ToolCall("call_2", "get_time", {})]

    body = body_for(
        user("Weather and time?"),
        assistant("", tool_calls=calls),
        tool_result("call_1", {"temperature": 21, "sky": "clear"}),
        tool_result("call_2", "12:00"),
    )

    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temperature": 21, "sky": "clear"}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
        ],
    }


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}),
        ([1, 2, 3], {"result": [1, 2, 3]}),
        ("42", {"result": 42}),
        ("null", {"result": None}),
        ('"quoted"', {"result": "quoted"}),
        ("plain text, not JSON", {"result": "plain text, not JSON"}),
        ("", {"result": ""}),
    ],
    ids=["object", "list", "number", "null", "json-string", "text", "empty"],
)
def test_tool_result_content_becomes_the_response_object(content: Any, response: dict[str, Any]) -> None:
    body = body_for(user("?"), assistant("", tool_calls=[ToolCall("c", "f", {})]), tool_result("c", content))

    assert body["contents"][2]["parts"] == [{"functionResponse": {"name": "f", "response": response}}]


def test_tool_result_with_an_explicit_name_needs_no_earlier_call() -> None:
    body = body_for(user("?"), tool_result("elsewhere", "ok", name="f"))

    assert body["contents"][0]["parts"][1] == {"functionResponse": {"name": "f", "response": {"result": "ok"}}}


def test_tool_result_for_an_unknown_call_id_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"messages\[2\]\.tool_call_id: 'nope'"):
        body_for(user("?"), assistant("", tool_calls=[ToolCall("c", "f", {})]), tool_result("nope", "x"))


def test_the_body_is_json_serializable() -> None:
    body = body_for(
        system("s"),
        user("Привет", PNG),
        assistant("", tool_calls=[ToolCall("c", "get_weather", {"city": "Москва"})]),
        tool_result("c", {"t": -5}),
        tools=(WEATHER,),
        temperature=0.5,
    )

    assert json.loads(json.dumps(body)) == body


# -- model_path ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "models/gemini-2.5-flash"),
        ("gemma-3n-e4b-it", "models/gemma-3n-e4b-it"),
        ("models/gemini-2.5-pro", "models/gemini-2.5-pro"),
        ("models/x", "models/x"),
        ("tunedModels/x", "tunedModels/x"),
        ("tunedModels/my-model_1.2", "tunedModels/my-model_1.2"),
    ],
)
def test_model_path_accepts_names_and_prefixed_names(model: str, path: str) -> None:
    assert model_path(model) == path


@pytest.mark.parametrize(
    "model",
    [
        "",
        "a/b",
        "x?y",
        "x#y",
        "x y",
        "x%2Fy",
        "../models",
        ".hidden",
        "-dash",
        "models/",
        "models/a/b",
        "tunedModels/",
        "files/x",
        "gemini-2.5-flash\n",
        "gemini-2.5-flash:generateContent",
    ],
)
def test_model_path_refuses_url_unsafe_names(model: str) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="not a valid Gemini model name"):
        model_path(model)


# -- GeminiInterpreter ---------------------------------------------------------------------------


def chunk(*parts: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A streamGenerateContent chunk, as Gemini sends it."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}
    if usage is not None:
        payload["usageMetadata"] = usage
    return payload


def interpret(*payloads: Any) -> list[Event]:
    """Every event for ``payloads`` (each sent as JSON), then the end of the stream."""
    interpreter = GeminiInterpreter()
    events: list[Event] = []
    for payload in payloads:
        events += interpreter.on_data(payload if isinstance(payload, str) else json.dumps(payload))
    events += interpreter.on_end()
    return events


STOP = Finish(FinishReason.STOP, "STOP")


def test_text_parts_are_text_deltas_in_order() -> None:
    events = interpret(chunk({"text": "Hel"}), chunk({"text": "lo, "}, {"text": "world"}), chunk(finish="STOP"))

    assert events == [TextDelta("Hel"), TextDelta("lo, "), TextDelta("world"), STOP]


def test_empty_text_parts_are_dropped() -> None:
    assert interpret(chunk({"text": ""}, finish="STOP")) == [STOP]


def test_thought_parts_are_reasoning_deltas() -> None:
    events = interpret(
        chunk({"text": "Let me think.", "thought": True}),
        chunk({"text": "Answer.", "thought": False}, {"text": "!"}, finish="STOP"),
    )

    assert events == [ReasoningDelta("Let me think."), TextDelta("Answer."), TextDelta("!"), STOP]


def test_function_call_is_one_tool_call_with_its_arguments() -> None:
    events = interpret(
        chunk(
            {
                "functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris", "days": [1, 2]}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            finish="STOP",
        )
    )

    assert events[0] == ToolCall(
        "fc-7", "get_weather", {"city": "Paris", "days": [1, 2]}, thought_signature="c2lnbmF0dXJl"
    )


def test_function_call_without_an_id_gets_a_unique_generated_one() -> None:
    events = interpret(
        chunk(
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            finish="STOP",
        )
    )

    first, second = events[0], events[1]
    assert isinstance(first, ToolCall)
    assert isinstance(second, ToolCall)
    assert first.id
    assert second.id
    assert first.id != second.id
    assert (first.name, first.arguments, first.thought_signature) == ("get_weather", {"city": "Paris"}, None)
    assert second.arguments == {"city": "Oslo"}


def test_function_call_without_args_has_empty_arguments() -> None:
    (call, _finish) = interpret(chunk({"functionCall": {"name": "now"}}, finish="STOP"))

    assert isinstance(call, ToolCall)
    assert call.arguments == {}


def test_inline_data_is_an_image_with_its_bytes() -> None:
    events = interpret(chunk({"inlineData": {"mimeType": "image/png", "data": B64_PNG}}, finish="STOP"))

    assert events == [ImageOutput(data=PNG, mime_type="image/png"), STOP]


def test_inline_data_that_is_not_base64_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="base64"):
        interpret(chunk({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}))


def test_file_data_is_an_image_with_its_url() -> None:
    events = interpret(chunk({"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/out.jpg"}}, finish="STOP"))

    assert events == [ImageOutput(url="gs://b/out.jpg", mime_type="image/jpeg"), STOP]


def test_unknown_parts_and_keys_are_ignored() -> None:
    payload = chunk({"executableCode": {"code": "print(1)"}}, {"text": "ok", "newField": 1}, finish="STOP")
    payload["somethingNew"] = {"x": 1}
    payload["candidates"][0]["safetyRatings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"}]

    assert interpret(payload) == [TextDelta("ok"), STOP]


def test_usage_is_emitted_once_just_before_finish_with_the_last_counts() -> None:
    events = interpret(
        chunk({"text": "a"}, usage={"promptTokenCount": 9, "totalTokenCount": 9}),
        chunk({"text": "b"}, usage={"promptTokenCount": 9, "candidatesTokenCount": 1, "totalTokenCount": 10}),
        chunk(
            {"text": "c"},
            finish="STOP",
            usage={
                "promptTokenCount": 9,
                "candidatesTokenCount": 3,
                "totalTokenCount": 17,
                "thoughtsTokenCount": 5,
                "cachedContentTokenCount": 4,
            },
        ),
    )

    assert events == [
        TextDelta("a"),
        TextDelta("b"),
        TextDelta("c"),
        Usage(prompt_tokens=9, completion_tokens=3, total_tokens=17, reasoning_tokens=5, cached_tokens=4),
        STOP,
    ]


def test_usage_from_an_earlier_chunk_is_emitted_before_finish() -> None:
    events = interpret(chunk({"text": "a"}, usage={"promptTokenCount": 2, "totalTokenCount": 2}), chunk(finish="STOP"))

    assert events == [TextDelta("a"), Usage(prompt_tokens=2, completion_tokens=None, total_tokens=2), STOP]


def test_no_usage_event_without_usage_metadata() -> None:
    assert interpret(chunk({"text": "a"}, finish="STOP")) == [TextDelta("a"), STOP]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("STOP", FinishReason.STOP),
        ("MAX_TOKENS", FinishReason.LENGTH),
        ("SAFETY", FinishReason.CONTENT_FILTER),
        ("RECITATION", FinishReason.CONTENT_FILTER),
        ("BLOCKLIST", FinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
        ("SPII", FinishReason.CONTENT_FILTER),
        ("IMAGE_SAFETY", FinishReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", FinishReason.ERROR),
        ("FINISH_REASON_UNSPECIFIED", FinishReason.OTHER),
        ("OTHER", FinishReason.OTHER),
        ("SOMETHING_NEW_IN_2027", FinishReason.OTHER),
    ],
)
def test_finish_reasons_map_and_keep_the_raw_value(raw: str, reason: FinishReason) -> None:
    assert map_finish_reason(raw, made_tool_calls=False) is reason
    assert interpret(chunk({"text": "x"}, finish=raw))[-1] == Finish(reason, raw)


def test_stop_after_function_calls_is_tool_calls() -> None:
    events = interpret(chunk({"functionCall": {"name": "f", "args": {}}}), chunk(finish="STOP"))

    assert events[-1] == Finish(FinishReason.TOOL_CALLS, "STOP")
    assert map_finish_reason("STOP", made_tool_calls=True) is FinishReason.TOOL_CALLS


def test_other_reasons_after_function_calls_are_kept() -> None:
    events = interpret(chunk({"functionCall": {"name": "f", "args": {}}}, finish="MAX_TOKENS"))

    assert events[-1] == Finish(FinishReason.LENGTH, "MAX_TOKENS")
    assert map_finish_reason("SAFETY", made_tool_calls=True) is FinishReason.CONTENT_FILTER


def test_exactly_one_finish_even_if_the_reason_is_repeated() -> None:
    events = interpret(chunk({"text": "a"}, finish="STOP"), chunk(finish="STOP"))

    assert [type(event) for event in events] == [TextDelta, Finish]


def test_prompt_blocked_with_no_candidates_is_content_blocked() -> None:
    payload = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "not allowed"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }

    with pytest.raises(trio_llm.ContentBlockedError) as caught:
        interpret(payload)

    assert caught.value.reason == "PROHIBITED_CONTENT"
    assert caught.value.provider == "gemini"
    assert "PROHIBITED_CONTENT" in str(caught.value)
    assert "not allowed" in str(caught.value)


def test_prompt_feedback_without_a_block_reason_is_not_an_error() -> None:
    interpreter = GeminiInterpreter()

    assert interpreter.on_data(json.dumps({"promptFeedback": {"safetyRatings": []}})) == []


def _google_error(code: int, message: str, status: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


@pytest.mark.parametrize(
    ("payload", "error_class", "status_code"),
    [
        (
            _google_error(
                429,
                "Resource has been exhausted (e.g. check quota).",
                "RESOURCE_EXHAUSTED",
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"},
            ),
            trio_llm.RateLimitError,
            429,
        ),
        (_google_error(503, "The model is overloaded.", "UNAVAILABLE"), trio_llm.ServerError, 503),
        (_google_error(500, "Internal error.", "INTERNAL"), trio_llm.ServerError, 500),
        (
            _google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
            ),
            trio_llm.AuthenticationError,
            400,
        ),
        (
            _google_error(404, "models/gemini-9 is not found for API version v1beta.", "NOT_FOUND"),
            trio_llm.ModelNotFoundError,
            404,
        ),
        (_google_error(404, "Requested entity was not found.", "NOT_FOUND"), trio_llm.NotFoundError, 404),
        (_google_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"), trio_llm.BadRequestError, 400),
        (_google_error(403, "Permission denied.", "PERMISSION_DENIED"), trio_llm.PermissionDeniedError, 403),
    ],
    ids=["429", "503", "500", "400-api-key", "404-model", "404-other", "400", "403"],
)
def test_error_payloads_are_typed_errors(
    payload: dict[str, Any], error_class: type[trio_llm.APIStatusError], status_code: int
) -> None:
    with pytest.raises(trio_llm.APIStatusError) as caught:
        interpret(payload)

    assert type(caught.value) is error_class
    assert caught.value.status_code == status_code
    assert caught.value.provider == "gemini"
    assert payload["error"]["message"] in str(caught.value)
    assert payload["error"]["status"] in str(caught.value)


def test_rate_limit_carries_retry_after_from_retry_info() -> None:
    payload = _google_error(
        429,
        "Quota exceeded.",
        "RESOURCE_EXHAUSTED",
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"},
    )

    error = error_from_payload(payload, status=None, headers={})

    assert isinstance(error, trio_llm.RateLimitError)
    assert error.retry_after == 22.0


def test_fractional_retry_delay_is_kept() -> None:
    payload = _google_error(
        429, "q", "RESOURCE_EXHAUSTED", {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    )

    assert error_from_payload(payload, status=None, headers={}).retry_after == 1.5


def test_the_http_status_wins_over_the_code_in_the_body() -> None:
    error = error_from_payload(_google_error(500, "odd", "INTERNAL"), status=503, headers={"x-goog-request-id": "rq-1"})

    assert isinstance(error, trio_llm.ServerError)
    assert error.status_code == 503
    assert error.request_id == "rq-1"


def test_error_payload_without_a_usable_code_is_a_server_error() -> None:
    assert type(error_from_payload({"error": "boom"}, status=None, headers={})) is trio_llm.ServerError


def test_on_end_without_a_finish_reason_is_stream_truncated() -> None:
    interpreter = GeminiInterpreter()
    assert interpreter.on_data(json.dumps(chunk({"text": "partial"}))) == [TextDelta("partial")]

    with pytest.raises(trio_llm.StreamTruncatedError):
        interpreter.on_end()


def test_on_end_after_finish_adds_nothing() -> None:
    interpreter = GeminiInterpreter()
    interpreter.on_data(json.dumps(chunk({"text": "x"}, finish="STOP")))

    assert interpreter.on_end() == []


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        {"candidates": 5},
        {"candidates": [None]},
        {"candidates": [{"content": {"parts": None}}]},
        {"candidates": [{"content": {"parts": [None]}}]},
        {"candidates": [{"content": {"parts": "text"}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]},
        {"usageMetadata": {"promptTokenCount": "many"}},
        {"usageMetadata": 3},
        {"promptFeedback": 5},
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "null",
        "candidates-int",
        "candidate-null",
        "parts-null",
        "part-null",
        "parts-string",
        "args-list",
        "token-count-word",
        "usage-int",
        "feedback-int",
    ],
)
def test_wrong_shapes_are_protocol_errors(payload: Any) -> None:
    with pytest.raises(trio_llm.ProtocolError) as caught:
        interpret(payload)

    assert caught.value.provider == "gemini"
    assert not isinstance(caught.value, trio_llm.StreamTruncatedError)


def test_a_protocol_error_names_the_field() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="candidates"):
        interpret({"candidates": 5})


@pytest.mark.parametrize(
    "part",
    [{"text": 5}, {"text": ["a"]}, {"functionCall": {"name": None}}, {"functionCall": {"name": 7, "args": {}}}],
    ids=["text-int", "text-list", "call-name-null", "call-name-int"],
)
def test_a_non_string_where_gemini_sends_a_string_is_a_protocol_error(part: dict[str, Any]) -> None:
    # Coercing with str() would turn {"name": null} into a call of a tool named "None".
    with pytest.raises(trio_llm.ProtocolError):
        interpret(chunk(part, finish="STOP"))


# -- through the SSE framing ---------------------------------------------------------------------


def _sse(*payloads: dict[str, Any], eol: bytes = b"\r\n") -> bytes:
    return b"".join(b"data: " + json.dumps(p, ensure_ascii=False).encode() + eol + eol for p in payloads)


STREAM_PAYLOADS = (
    chunk({"text": "Думаю…", "thought": True}, usage={"promptTokenCount": 4, "totalTokenCount": 4}),
    chunk(
        {"text": "Привет, "},
        {"functionCall": {"name": "get_weather", "args": {"city": "Москва"}}, "thoughtSignature": "c2ln"},
        usage={"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
    ),
    chunk(
        {"inlineData": {"mimeType": "image/png", "data": B64_PNG}},
        finish="STOP",
        usage={"promptTokenCount": 4, "candidatesTokenCount": 8, "totalTokenCount": 14, "thoughtsTokenCount": 2},
    ),
)

STREAM_EVENTS = [
    ReasoningDelta("Думаю…"),
    TextDelta("Привет, "),
    ToolCall("(generated)", "get_weather", {"city": "Москва"}, thought_signature="c2ln"),
    ImageOutput(data=PNG, mime_type="image/png"),
    Usage(prompt_tokens=4, completion_tokens=8, total_tokens=14, reasoning_tokens=2),
    Finish(FinishReason.TOOL_CALLS, "STOP"),
]


def decode_stream(chunks: list[bytes]) -> list[Event]:
    decoder = SSEStreamDecoder(GeminiInterpreter())
    events: list[Event] = []
    for piece in chunks:
        events += decoder.feed(piece)
    events += decoder.close()
    return events


def _without_generated_ids(events: list[Event]) -> list[Any]:
    return [(e.name, e.arguments, e.thought_signature) if isinstance(e, ToolCall) else e for e in events]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_gemini_sse_stream_split_at_every_byte_gives_the_same_events(eol: bytes) -> None:
    raw = _sse(*STREAM_PAYLOADS, eol=eol)
    whole = decode_stream([raw])
    assert _without_generated_ids(whole) == _without_generated_ids(STREAM_EVENTS)

    for point in range(len(raw) + 1):
        assert decode_stream([raw[:point], raw[point:]]) == whole, f"split at {point}"


def test_a_gemini_sse_stream_fed_one_byte_at_a_time_gives_the_same_events() -> None:
    raw = _sse(*STREAM_PAYLOADS)

    assert decode_stream([raw[i : i + 1] for i in range(len(raw))]) == decode_stream([raw])


def test_a_gemini_stream_cut_before_its_finish_is_truncated_after_its_events() -> None:
    decoder = SSEStreamDecoder(GeminiInterpreter())

    events = decoder.feed(_sse(*STREAM_PAYLOADS[:2]))

    assert _without_generated_ids(events) == _without_generated_ids(STREAM_EVENTS[:3])
    with pytest.raises(trio_llm.StreamTruncatedError):
        decoder.close()


def test_an_error_object_mid_stream_is_raised_after_the_text_before_it() -> None:
    decoder = SSEStreamDecoder(GeminiInterpreter())
    error = _google_error(503, "The model is overloaded.", "UNAVAILABLE")

    events = decoder.feed(_sse(chunk({"text": "Once upon"}), error))

    assert events == [TextDelta("Once upon")]
    assert isinstance(decoder.pending_error, trio_llm.ServerError)
    with pytest.raises(trio_llm.ServerError):
        decoder.close()


# -- fuzzing -------------------------------------------------------------------------------------

_GEMINI_KEYS = [
    "candidates", "content", "parts", "role", "text", "thought", "thoughtSignature", "functionCall", "name", "args",
    "id", "inlineData", "fileData", "data", "mimeType", "fileUri", "finishReason", "usageMetadata",
    "promptTokenCount", "candidatesTokenCount", "totalTokenCount", "thoughtsTokenCount", "cachedContentTokenCount",
    "promptFeedback", "blockReason", "blockReasonMessage", "error", "code", "message", "status", "details", "@type",
    "retryDelay", "reason",
]  # fmt: skip

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(["STOP", "SAFETY", "22s", "type.googleapis.com/google.rpc.RetryInfo", B64_PNG, "aGk="]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_GEMINI_KEYS) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(_json_values, min_size=1, max_size=3))
def test_arbitrary_json_payloads_raise_nothing_but_trio_llm_errors(payloads: list[Any]) -> None:
    raw = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    decoder = SSEStreamDecoder(GeminiInterpreter())
    try:
        decoder.feed(raw)
        decoder.close()
    except trio_llm.TrioLLMError:
        pass  # Any error of ours may be right for some object (an "error" key, a blocked prompt).


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300), data=st.data())
def test_arbitrary_bytes_raise_nothing_but_protocol_errors(raw: bytes, data: st.DataObject) -> None:
    points = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    decoder = SSEStreamDecoder(GeminiInterpreter())
    try:
        for start, end in zip([0, *points], [*points, len(raw)], strict=True):
            decoder.feed(raw[start:end])
        decoder.close()
    except trio_llm.ProtocolError:
        pass  # Malformed framing or payloads, or a truncated stream: nothing else.


def _gemini_outcome(payloads: list[Any]) -> list[Any]:
    """Every payload's events, then the end's, or the error that ended it; and the usage."""
    interpreter = GeminiInterpreter()
    out: list[Any] = []
    try:
        for payload in payloads:
            out.append(interpreter.on_data(json.dumps(payload)))
        out.append(interpreter.on_end())
    except trio_llm.TrioLLMError as error:
        out.append((type(error), str(error)))
    try:
        out.append(interpreter.usage_so_far())
    except trio_llm.TrioLLMError as error:
        out.append((type(error), str(error)))
    return out


_PART = st.fixed_dictionaries(
    {}, optional={"text": st.text(max_size=3) | st.none() | st.integers(0, 1), "thought": st.booleans()}
) | st.sampled_from([[], "x", {"functionCall": {"name": "f"}}])
_CANDIDATE = st.fixed_dictionaries(
    {},
    optional={
        "content": st.fixed_dictionaries(
            {}, optional={"parts": st.lists(_PART, max_size=2) | st.none(), "role": st.sampled_from(["model", 5, None])}
        )
        | st.none(),
        "finishReason": st.sampled_from(["STOP", "SAFETY", None]),
        "finishMessage": st.sampled_from(["why", 5, None]),
        "index": st.just(0),
    },
)
_CHUNK = st.fixed_dictionaries(
    {"candidates": st.lists(_CANDIDATE, max_size=2) | st.none()},
    optional={
        "usageMetadata": st.fixed_dictionaries(
            {},
            optional={
                "promptTokenCount": st.integers(0, 5) | st.text(max_size=1),
                "totalTokenCount": st.integers(0, 9),
            },
        )
        | st.none(),
        "promptFeedback": st.just({"blockReason": "SAFETY"}),
        "modelVersion": st.just("gemini-2.5-flash"),
    },
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_CHUNK, min_size=1, max_size=3) | st.lists(_json_values, min_size=1, max_size=3))
@example([{"candidates": [{"content": {"parts": [{"text": 0}]}}]}])
@example([{"candidates": [{"content": {"parts": [{"text": "x", "thought": True}]}}]}])
@example([{"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}])
@example([{"candidates": [{"content": {"parts": [{"text": "x"}]}}], "promptFeedback": {"blockReason": "SAFETY"}}])
@example([{"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": {"totalTokenCount": "3"}}])
@example([{"candidates": [{"content": {"parts": [{"text": "x"}], "role": 5}}]}])
@example([{"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishMessage": 5}]}])
def test_the_plain_text_fast_path_agrees_with_the_converter(payloads: list[Any]) -> None:
    # Plain text chunks skip cattrs; the converter must have made the same events of them,
    # kept the same usage, and failed on the same ones.
    fast = _gemini_outcome(payloads)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("trio_llm.providers._gemini._plain_text_events", lambda obj: None)
        slow = _gemini_outcome(payloads)
    assert fast == slow
