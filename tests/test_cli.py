"""The trio-llm command: output, exit codes, one-line errors."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import trio_llm
from trio_llm._cli import PROVIDERS, main


def test_chat_streams_the_answer_to_stdout_and_the_rest_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--emulator", "-p", "gemini", "--system", "Be brief", "--max-tokens", "7", "Hello"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 7
    assert "[finish] length (MAX_TOKENS)" in err
    assert "[usage] prompt=3 completion=7" in err


def test_chat_with_an_image(capsys: pytest.CaptureFixture[str], tmp_path: Path, png: bytes) -> None:
    image = tmp_path / "pixel.png"
    image.write_bytes(png)
    assert main(["--emulator", "chat", "-p", "gemini", "--image", str(image), "What is it?"]) == 0
    assert capsys.readouterr().out.startswith(f"I see a image/png image of {len(png)} bytes.")


def test_models_lists_one_model_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--emulator", "-p", "gemini"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gemini-2.5-flash" in lines
    assert "text-embedding-004" not in lines


def test_a_missing_key_is_one_clear_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert main(["chat", "-p", "gemini", "Hi"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "trio-llm: error: gemini: no API key: pass api_key= or set GEMINI_API_KEY (or GOOGLE_API_KEY)\n"


def test_a_bad_image_is_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an image")
    assert main(["chat", "--emulator", "-p", "gemini", "--image", str(bogus), "Hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("trio-llm: error: media[0]: not a supported image")
    assert "Traceback" not in err


def test_python_dash_m_and_emulate_print_the_urls() -> None:
    command = [sys.executable, "-m", "trio_llm", "emulate", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline()]
            while not lines[-1].lstrip().startswith("credentials") and lines[-1]:
                lines.append(process.stdout.readline())
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert lines[0].startswith("trio-llm emulator running")
    urls = dict(line.split() for line in lines[1:-2])
    assert {"amigochat", "dynaspark", "gemini", "gigachat", "gigachat-auth", "openai"} <= set(urls)
    assert list(urls) == sorted(urls)
    assert urls["gemini"].startswith("http://127.0.0.1:")
    assert urls["gigachat"].startswith("https://127.0.0.1:") and urls["gigachat-auth"].endswith("/api/v2/oauth")
    assert lines[-2].split()[:2] == ["api", "key"]
    assert lines[-1].split()[0] == "credentials"


def test_emulate_writes_its_ca_for_clients_in_other_processes(tmp_path: Path) -> None:
    ca_file = tmp_path / "emulator-ca.pem"
    command = [sys.executable, "-m", "trio_llm", "emulate", "--port", "0", "--ca-file", str(ca_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline()]
            while not lines[-1].lstrip().startswith("ca file") and lines[-1]:
                lines.append(process.stdout.readline())
            urls = dict(line.split() for line in lines[1:-3])
            # Verified against the written CA alone: the OAuth route answers (401: no credentials).
            context = ssl.create_default_context(cafile=str(ca_file))
            response = httpx.post(urls["gigachat-auth"], data={"scope": "GIGACHAT_API_PERS"}, verify=context)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert lines[-1].split() == ["ca", "file", str(ca_file)]
    assert response.status_code == 401


@pytest.mark.parametrize("provider", ["dynaspark", "amigochat", "openai"])
def test_chat_with_the_other_providers(capsys: pytest.CaptureFixture[str], provider: str) -> None:
    assert main(["chat", "--emulator", "-p", provider, "--system", "Be brief", "Tell me a story"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 40 and out.endswith(".\n")
    assert "[finish] stop" in err


def test_chat_with_an_image_model_prints_the_image_urls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--emulator", "-p", "amigochat", "-m", "flux/dev", "a red bicycle"]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert line.startswith("http://127.0.0.1:") and line.endswith(".png")
    assert "[finish] stop (None)" in err


def test_models_of_the_openai_compatible_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--emulator", "-p", "openai"]) == 0
    assert "gpt-4o-mini" in capsys.readouterr().out.splitlines()


def test_dash_p_openai_reads_the_url_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    provider = PROVIDERS["openai"]()
    assert isinstance(provider, trio_llm.OpenAICompatible)
    assert (provider.base_url, provider.api_key) == ("http://localhost:11434/v1", "sk-local")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    provider = PROVIDERS["openai"]()
    assert isinstance(provider, trio_llm.OpenAICompatible)
    assert (provider.base_url, provider.api_key) == ("https://api.openai.com/v1", None)


def test_dynaspark_refuses_two_images_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, png: bytes
) -> None:
    image = tmp_path / "pixel.png"
    image.write_bytes(png)
    assert main(["chat", "--emulator", "-p", "dynaspark", "--image", str(image), "--image", str(image), "Hi"]) == 1
    assert capsys.readouterr().err == (
        "trio-llm: error: dynaspark: Dynaspark takes one image per request; the messages carry 2\n"
    )
