"""trio_llm: a Trio-native client for LLM chat providers.

Typed event streams that always close, deadlines per phase, retries that never repeat output,
fan-out that owns its children, and a local emulator of every provider.
"""

from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._errors import AllFailedError as AllFailedError
from ._errors import APIStatusError as APIStatusError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import CertificateError as CertificateError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ConnectTimeout as ConnectTimeout
from ._errors import ContentBlockedError as ContentBlockedError
from ._errors import FirstEventTimeout as FirstEventTimeout
from ._errors import IdleTimeout as IdleTimeout
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import MissingAuthError as MissingAuthError
from ._errors import ModelNotFoundError as ModelNotFoundError
from ._errors import NotFoundError as NotFoundError
from ._errors import PermissionDeniedError as PermissionDeniedError
from ._errors import ProtocolError as ProtocolError
from ._errors import RateLimitError as RateLimitError
from ._errors import ServerError as ServerError
from ._errors import StreamTruncatedError as StreamTruncatedError
from ._errors import TimeoutError as TimeoutError  # noqa: A004 - part of the public contract
from ._errors import TotalTimeout as TotalTimeout
from ._errors import TransportError as TransportError
from ._errors import TrioLLMError as TrioLLMError
from ._events import Event as Event
from ._events import Finish as Finish
from ._events import FinishReason as FinishReason
from ._events import ImageOutput as ImageOutput
from ._events import ReasoningDelta as ReasoningDelta
from ._events import Reply as Reply
from ._events import TextDelta as TextDelta
from ._events import ToolCall as ToolCall
from ._events import Usage as Usage
from ._fanout import Outcome as Outcome
from ._fanout import Sourced as Sourced
from ._fanout import fallback as fallback
from ._fanout import gather as gather
from ._fanout import hedge as hedge
from ._fanout import merge as merge
from ._fanout import race as race
from ._fanout import race_stream as race_stream
from ._messages import Image as Image
from ._messages import Message as Message
from ._messages import Text as Text
from ._messages import Tool as Tool
from ._messages import assistant as assistant
from ._messages import system as system
from ._messages import tool_result as tool_result
from ._messages import user as user
from ._stream import EventStream as EventStream
from ._version import __version__ as __version__
from .providers import AmigoChat as AmigoChat
from .providers import Dynaspark as Dynaspark
from .providers import Gemini as Gemini
from .providers import GigaChat as GigaChat
from .providers import OpenAICompatible as OpenAICompatible
from .providers import Provider as Provider

__all__ = [
    "APIStatusError",
    "AllFailedError",
    "AmigoChat",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ConfigurationError",
    "ConnectTimeout",
    "ContentBlockedError",
    "Dynaspark",
    "Event",
    "EventStream",
    "Finish",
    "FinishReason",
    "FirstEventTimeout",
    "Gemini",
    "GigaChat",
    "IdleTimeout",
    "Image",
    "ImageOutput",
    "InvalidRequestError",
    "Message",
    "MissingAuthError",
    "ModelNotFoundError",
    "NotFoundError",
    "OpenAICompatible",
    "Outcome",
    "PermissionDeniedError",
    "ProtocolError",
    "Provider",
    "RateLimitError",
    "ReasoningDelta",
    "Reply",
    "RetryPolicy",
    "ServerError",
    "Sourced",
    "StreamTruncatedError",
    "Text",
    "TextDelta",
    "TimeoutError",
    "Timeouts",
    "Tool",
    "ToolCall",
    "TotalTimeout",
    "TransportError",
    "TrioLLMError",
    "Usage",
    "__version__",
    "assistant",
    "fallback",
    "gather",
    "hedge",
    "merge",
    "race",
    "race_stream",
    "system",
    "tool_result",
    "user",
]


def _fixup_module_metadata() -> None:
    # Tracebacks, reprs and the docs then say trio_llm.X, not trio_llm._errors.X.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("trio_llm."):
            try:
                obj.__module__ = "trio_llm"
            except (AttributeError, TypeError):
                pass  # Not every object lets its module be set (the version string, say).


_fixup_module_metadata()
del _fixup_module_metadata
