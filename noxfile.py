"""The single entry point for checks: ``nox -s tests lint typecheck docs bench``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "docs", "tests"]

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (emulator over loopback, MockClock for time)."""
    session.install("-e", ".[tests,interop,demo]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", "trio_llm", "tests", "bench", "noxfile.py", "docs/conf.py")
    session.run("ruff", "format", "--check", "trio_llm", "tests", "bench", "noxfile.py", "docs/conf.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[tests,demo]", "mypy>=1.13")  # rich: imported lazily, typed all the same
    session.run("mypy", "--strict", "trio_llm")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Sphinx with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html")


#: The alternatives measured side by side with trio_llm: installed here only, never a dependency.
BENCH_PEERS = ("google-genai>=1.0", "gigachat>=0.2", "openai>=1.0")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against baselines in the same run; writes docs/benchmarks.md.

    ``nox -s bench`` is the full run (under 10 minutes on 2 cores); ``nox -s bench -- --quick``
    takes under 2. Other options: ``python bench/run.py --help``.
    """
    session.install("-e", ".", *BENCH_PEERS)
    session.run("python", "bench/run.py", *session.posargs)
