"""AmigoChat (the seeds' ``AmigoChat``): chat and image generation behind one provider.

Reads top to bottom: constants (the persona table, the aliases, the device headers); request
building; response decoding (sans-IO; chat streams use the shared chat-completions core);
the provider class. The model decides the endpoint: chat models stream from
``/chat/completions``, image models answer ``/images/generations`` with image URLs.

The service needs no key but identifies a "device": every attempt sends a fresh random
``x-device-uuid`` (a retry looks like a new device, as in the seeds), and every request a
fresh ``chatId``. It is unofficial and may be gone; :class:`trio_llm.testing.Emulator`
speaks it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import httpx
import trio

from .._chat_completions import ChatCompletionsInterpreter, error_from_payload, json_object, openai_messages
from .._decoding import BodyDecoder, Decoder, SSEStreamDecoder
from .._errors import ConfigurationError, InvalidRequestError, ProtocolError
from .._events import Event, Finish, FinishReason, ImageOutput
from .._http import HTTPCall
from .._media import sniff_image_type
from .._provider import ChatRequest, Provider

__all__ = ["AmigoChat"]

# -- constants ---------------------------------------------------------------------------------

BASE_URL = "https://api.amigochat.io/v1"
SITE = "https://amigochat.io"
DEVICE_VERSION = "1.0.45"
DEFAULT_MODEL = "gpt-4o-mini"

#: Chat model -> personaId: the seeds' final table. The o1 ids end in "-" there on purpose
#: (the service answered "balance is not enough"), which keeps them out of reach of the usual
#: names; they are kept as they were.
CHAT_PERSONAS: Mapping[str, str] = MappingProxyType(
    {
        "gpt-4o-2024-11-20": "gpt",
        "gpt-4o": "summarizer",
        "gpt-4o-mini": "amigo",
        "o1-preview-": "openai-o-one",
        "o1-preview-2024-09-12-": "orion",
        "o1-mini-": "openai-o-one-mini",
        "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo": "llama-three-point-one",
        "meta-llama/Llama-3.2-90B-Vision-Instruct-Turbo": "llama-3-2",
        "codellama/CodeLlama-34b-Instruct-hf": "codellama-CodeLlama-34b-Instruct-hf",
        "gemini-1.5-pro": "gemini-1-5-pro",
        "gemini-1.5-flash": "gemini-1.5-flash",
        "claude-3-5-sonnet-20240620": "claude",
        "claude-3-5-sonnet-20241022": "clude-claude-3-5-sonnet-20241022",
        "claude-3-5-haiku-latest": "3-5-haiku",
        "Qwen/Qwen2.5-72B-Instruct-Turbo": "qwen-2-5",
        "google/gemma-2b-it": "google-gemma-2b-it",
        "google/gemma-7b": "google-gemma-7b",
        "Gryphe/MythoMax-L2-13b": "Gryphe-MythoMax-L2-13b",
        "mistralai/Mistral-7B-Instruct-v0.3": "mistralai-Mistral-7B-Instruct-v0.1",
        "mistralai/mistral-tiny": "mistralai-mistral-tiny",
        "mistralai/mistral-nemo": "mistralai-mistral-nemo",
        "deepseek-ai/deepseek-llm-67b-chat": "deepseek-ai-deepseek-llm-67b-chat",
        "databricks/dbrx-instruct": "databricks-dbrx-instruct",
        "NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO": "NousResearch-Nous-Hermes-2-Mixtral-8x7B-DPO",
        "x-ai/grok-beta": "x-ai-grok-beta",
        "anthracite-org/magnum-v4-72b": "anthracite-org-magnum-v4-72b",
        "cohere/command-r-plus": "cohere-command-r-plus",
        "ai21/jamba-1-5-mini": "ai21-jamba-1-5-mini",
        "zero-one-ai/Yi-34B": "zero-one-ai-Yi-34B",
    }
)
#: Image model -> personaId: the seeds' final table.
IMAGE_PERSONAS: Mapping[str, str] = MappingProxyType(
    {
        "flux-pro/v1.1": "flux-1-1-pro",
        "flux-realism": "flux-realism",
        "flux-pro": "flux-pro",
        "flux-pro/v1.1-ultra": "flux-pro-v1.1-ultra",
        "flux-pro/v1.1-ultra-raw": "flux-pro-v1.1-ultra-raw",
        "flux/dev": "flux-dev",
        "dall-e-3": "dalle-three",
        "recraft-v3": "recraft",
    }
)
#: The seeds' final aliases. They are resolved first, so ``gpt-4o`` goes to
#: ``gpt-4o-2024-11-20`` (persona ``gpt``), never to the ``gpt-4o`` entry, as in the seeds.
MODEL_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "gpt-4o": "gpt-4o-2024-11-20",
        "gpt-4o-mini": "gpt-4o-mini",
        "llama-3.1-405b": "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
        "llama-3.2-90b": "meta-llama/Llama-3.2-90B-Vision-Instruct-Turbo",
        "codellama-34b": "codellama/CodeLlama-34b-Instruct-hf",
        "gemini-flash": "gemini-1.5-flash",
        "claude-3.5-sonnet": "claude-3-5-sonnet-20241022",
        "claude-3.5-haiku": "claude-3-5-haiku-latest",
        "qwen-2.5-72b": "Qwen/Qwen2.5-72B-Instruct-Turbo",
        "gemma-2b": "google/gemma-2b-it",
        "mythomax-13b": "Gryphe/MythoMax-L2-13b",
        "mixtral-7b": "mistralai/Mistral-7B-Instruct-v0.3",
        "mistral-nemo": "mistralai/mistral-nemo",
        "deepseek-chat": "deepseek-ai/deepseek-llm-67b-chat",
        "dbrx-instruct": "databricks/dbrx-instruct",
        "mixtral-8x7b-dpo": "NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO",
        "grok-beta": "x-ai/grok-beta",
        "magnum-72b": "anthracite-org/magnum-v4-72b",
        "command-r-plus": "cohere/command-r-plus",
        "jamba-mini": "ai21/jamba-1-5-mini",
        "flux-dev": "flux/dev",
    }
)

#: The web app's headers. ``authorization`` is literally ``Bearer`` with no token, as the app
#: sends it. (The seeds sent ``origin: https://amigochat.io/chat/`` and a referer with a double
#: slash; a browser sends these.)
_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "accept": "*/*",
        "accept-language": "en-US,en;q=0.9",
        "authorization": "Bearer",
        "cache-control": "no-cache",
        "pragma": "no-cache",
        "origin": SITE,
        "referer": f"{SITE}/chat/",
        "priority": "u=1, i",
        "sec-ch-ua": '"Chromium";v="129", "Not=A?Brand";v="8"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Linux"',
        "user-agent": (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36"
        ),
        "x-device-language": "en-US",
        "x-device-platform": "web",
        "x-device-version": DEVICE_VERSION,
    }
)

# The seeds' body defaults, sent when the caller sets nothing else.
_DEFAULT_MAX_TOKENS = 4000
_DEFAULT_TEMPERATURE = 0.5
_DEFAULT_TOP_P = 0.95

# -- request building --------------------------------------------------------------------------


def chat_body(request: ChatRequest, chat_id: str) -> dict[str, Any]:
    """The chat request JSON, always streamed (the seeds' parser read SSE whatever it asked)."""
    body: dict[str, Any] = {
        "chatId": chat_id,
        "frequency_penalty": 0,
        "max_tokens": request.max_tokens if request.max_tokens is not None else _DEFAULT_MAX_TOKENS,
        "messages": openai_messages(request.messages),
        "model": request.model,
        "personaId": CHAT_PERSONAS[request.model],
        "presence_penalty": 0,
        "stream": True,
        "temperature": request.temperature if request.temperature is not None else _DEFAULT_TEMPERATURE,
        "top_p": request.top_p if request.top_p is not None else _DEFAULT_TOP_P,
    }
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def image_body(request: ChatRequest) -> dict[str, Any]:
    """The image request JSON: the prompt is the last message's text."""
    return {
        "prompt": request.messages[-1].text,
        "model": request.model,
        "personaId": IMAGE_PERSONAS[request.model],
    }


# -- response decoding (sans-IO) ---------------------------------------------------------------


class ImagesInterpreter:
    """Turns ``{"data": [{"url": ...}, ...]}`` into :class:`ImageOutput` events and a
    ``Finish(STOP)``. Items carrying ``b64_json`` (the OpenAI images shape) give the bytes."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def on_data(self, data: str) -> list[Event]:
        obj = json_object(data, "amigochat")
        items = obj.get("data")
        if items is None:
            if "error" in obj:
                raise error_from_payload(obj, status=None, provider="amigochat")
            keys = ", ".join(repr(key) for key in sorted(obj)[:10]) or "none"
            raise ProtocolError(f"the image reply has no 'data'; it had the keys {keys}", provider="amigochat")
        if not isinstance(items, list):
            raise ProtocolError(f"the image reply's 'data' is a {type(items).__name__}", provider="amigochat")
        events: list[Event] = []
        for index, item in enumerate(items):
            events.append(_image(item, index))
        events.append(Finish(FinishReason.STOP, None))
        self._done = True
        return events

    def on_end(self) -> list[Event]:
        if not self._done:
            raise ProtocolError("the image reply was empty", provider="amigochat")
        return []


def _image(item: Any, index: int) -> ImageOutput:
    if isinstance(item, dict) and isinstance(item.get("url"), str):
        return ImageOutput(url=item["url"])
    if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
        try:
            data = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"data[{index}].b64_json is not valid base64", provider="amigochat") from exc
        return ImageOutput(data=data, mime_type=sniff_image_type(data))
    raise ProtocolError(f"data[{index}] has neither a 'url' nor 'b64_json'", provider="amigochat")


# -- the provider ------------------------------------------------------------------------------


def _attempts_from_retry(self: AmigoChat) -> int:
    return self.retry.max_attempts


@attrs.define(slots=False)
class AmigoChat(Provider):
    """AmigoChat: many chat models and image generators behind one free, unofficial API.

    The model decides what a call does: a chat model streams text; an image model
    (``flux/dev``, ``dall-e-3``, ``recraft-v3``, ...) produces :class:`~trio_llm.ImageOutput`
    events with the images' URLs, which :meth:`~trio_llm.Provider.complete` collects into
    :attr:`Reply.images <trio_llm.Reply.images>`. The model list is closed: an unknown model
    is refused before any I/O.

    Args:
        max_retries: Attempts in all (the seeds' name), each from a new device id, with
            backoff. It sets ``retry.max_attempts``; when omitted it is ``retry.max_attempts``
            (3 by default). As with every provider, nothing is retried once an event has
            reached the caller.

    Example::

        async with trio_llm.AmigoChat() as amigo:
            reply = await amigo.complete("a red bicycle", model="flux/dev")
            print([image.url for image in reply.images])
    """

    name = "amigochat"
    label = "AmigoChat"
    default_base_url = BASE_URL
    supports_images_output = True
    model_default = DEFAULT_MODEL
    known_models = (*CHAT_PERSONAS, *IMAGE_PERSONAS)
    model_aliases = MODEL_ALIASES
    closed_model_list = True

    max_retries: int = attrs.field(default=attrs.Factory(_attempts_from_retry, takes_self=True), kw_only=True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 1:
            raise ConfigurationError(f"max_retries must be an int >= 1, got {self.max_retries!r}", provider=self.name)
        if self.max_retries != self.retry.max_attempts:
            self.retry = attrs.evolve(self.retry, max_attempts=self.max_retries)

    def persona_id(self, model: str | None = None) -> str:
        """The ``personaId`` sent for ``model`` (aliases resolved; the default if ``None``).

        Raises:
            ModelNotFoundError: The model is not in the persona table.
        """
        resolved = self.resolve_model(model)
        return CHAT_PERSONAS.get(resolved) or IMAGE_PERSONAS[resolved]

    def _check_request(self, request: ChatRequest) -> None:
        super()._check_request(request)
        if request.model in IMAGE_PERSONAS and not request.messages[-1].text.strip():
            raise InvalidRequestError("an image model needs a prompt: the last message has no text", provider=self.name)

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        if request.model in IMAGE_PERSONAS:
            return HTTPCall("POST", f"{self.base_url}/images/generations", headers=_HEADERS, json=image_body(request))
        body = chat_body(request, str(uuid.uuid4()))
        return HTTPCall("POST", f"{self.base_url}/chat/completions", headers=_HEADERS, json=body)

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        if request.model in IMAGE_PERSONAS:
            return BodyDecoder(ImagesInterpreter())
        if not streaming:  # a whole chat.completion, should the service ever send one
            return BodyDecoder(ChatCompletionsInterpreter(self.name, streaming=False))
        return SSEStreamDecoder(ChatCompletionsInterpreter(self.name, streaming=True))

    def _complete_streams(self) -> bool:
        return True  # chat answers are always SSE

    async def _auth_headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        # Called once per attempt: each attempt is a new "device", as the seeds' retries were.
        await trio.lowlevel.checkpoint()
        return {"x-device-uuid": str(uuid.uuid4())}
