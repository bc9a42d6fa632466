"""The public namespace is exactly the contract, and every public name is documented."""

from __future__ import annotations

import inspect

import trio_llm
import trio_llm.providers
import trio_llm.testing

PUBLIC = {
    # messages
    "Message", "Text", "Image", "Tool", "system", "user", "assistant", "tool_result",
    # events
    "Event", "TextDelta", "ReasoningDelta", "ToolCall", "ImageOutput", "Usage", "Finish", "FinishReason", "Reply",
    "EventStream",
    # configuration
    "Timeouts", "RetryPolicy",
    # fan-out
    "race", "gather", "fallback", "hedge", "race_stream", "merge", "Outcome", "Sourced", "AllFailedError",
    # providers
    "Provider", "Gemini", "GigaChat", "Dynaspark", "AmigoChat", "OpenAICompatible",
    # errors
    "TrioLLMError", "ConfigurationError", "MissingAuthError", "InvalidRequestError", "BadRequestError",
    "APIStatusError", "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ModelNotFoundError",
    "RateLimitError", "ServerError", "ContentBlockedError", "ProtocolError", "StreamTruncatedError",
    "TransportError", "CertificateError", "TimeoutError", "ConnectTimeout", "FirstEventTimeout", "IdleTimeout",
    "TotalTimeout",
    "__version__",
}  # fmt: skip


def test_all_is_exactly_the_public_set_and_sorted() -> None:
    assert set(trio_llm.__all__) == PUBLIC
    assert trio_llm.__all__ == sorted(trio_llm.__all__)
    assert len(trio_llm.__all__) == len(set(trio_llm.__all__))


def test_public_objects_say_they_live_in_trio_llm() -> None:
    for name in trio_llm.__all__:
        obj = getattr(trio_llm, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "trio_llm", name


def test_every_public_name_has_a_docstring() -> None:
    for module in (trio_llm, trio_llm.testing, trio_llm.providers):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module.__name__}.{name}"


def test_error_tree_matches_the_contract() -> None:
    e = trio_llm
    assert issubclass(e.MissingAuthError, e.ConfigurationError)
    assert issubclass(e.ModelNotFoundError, e.NotFoundError)
    assert issubclass(e.StreamTruncatedError, e.ProtocolError)
    for cls in (e.AuthenticationError, e.PermissionDeniedError, e.NotFoundError, e.RateLimitError, e.ServerError):
        assert issubclass(cls, e.APIStatusError)
    for cls in (e.ConnectTimeout, e.FirstEventTimeout, e.IdleTimeout, e.TotalTimeout):
        assert issubclass(cls, e.TimeoutError)
    for cls in (e.ConfigurationError, e.InvalidRequestError, e.APIStatusError, e.ContentBlockedError,
                e.ProtocolError, e.TransportError, e.TimeoutError):  # fmt: skip
        assert issubclass(cls, e.TrioLLMError)
    assert e.TimeoutError is not TimeoutError  # ours, not the builtin


def test_subpackages_export_what_they_document() -> None:
    assert set(trio_llm.testing.__all__) == {"Emulator", "Fault", "FormField", "RecordedRequest"}
    assert set(trio_llm.providers.__all__) == {
        "AmigoChat", "Dynaspark", "Gemini", "GigaChat", "OpenAICompatible", "Provider",
    }  # fmt: skip


def test_class_level_flags_and_model_list() -> None:
    gemini = trio_llm.Gemini
    assert gemini.name == "gemini"
    assert gemini.needs_auth and gemini.supports_stream and gemini.supports_tools and gemini.supports_vision
    assert gemini.supports_system_message and gemini.supports_message_history
    assert isinstance(gemini.models, tuple) and gemini.default_model == "gemini-2.5-flash" not in ()
    assert callable(gemini(api_key="k").models)
