"""Fixtures of the reliability tests: DEBUG logs of every library that could leak a secret."""

from __future__ import annotations

import logging

import pytest

LOGGERS = ("trio_llm", "httpx", "httpcore")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of trio_llm, httpx and httpcore, down to DEBUG."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog
