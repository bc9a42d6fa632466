"""The providers, one module each. Every name here is also exported from ``trio_llm``."""

from .._provider import Provider as Provider
from ._amigochat import AmigoChat as AmigoChat
from ._dynaspark import Dynaspark as Dynaspark
from ._gemini import Gemini as Gemini
from ._gigachat import GigaChat as GigaChat
from ._openai import OpenAICompatible as OpenAICompatible

__all__ = ["AmigoChat", "Dynaspark", "Gemini", "GigaChat", "OpenAICompatible", "Provider"]
