"""The providers, one module each. Every name here is also exported from ``trio_llm``."""

from .._provider import Provider as Provider
from ._gemini import Gemini as Gemini

__all__ = ["Gemini", "Provider"]
