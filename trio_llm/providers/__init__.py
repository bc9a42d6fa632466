"""The providers, one module each. Every name here is also exported from ``trio_llm``."""

from .._provider import Provider as Provider
from ._gemini import Gemini as Gemini
from ._gigachat import GigaChat as GigaChat

__all__ = ["Gemini", "GigaChat", "Provider"]
