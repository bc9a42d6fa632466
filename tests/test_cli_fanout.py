"""trio-llm race, batch and demo: output, resume, and what a kill or Ctrl-C leaves behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trio_llm._cli import main


def write_prompts(path: Path, count: int, **extra: object) -> list[str]:
    ids = [f"q{n}" for n in range(count)]
    with path.open("w") as file:
        for item_id in ids:
            file.write(json.dumps({"id": item_id, "prompt": f"Question {item_id}", **extra}) + "\n")
    return ids


def read_answers(path: Path) -> list[dict[str, object]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the last line is cut"
    return [json.loads(line) for line in text.splitlines()]


def test_race_prints_the_winner_and_a_line_per_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["race", "--emulator", "-p", "gemini", "-p", "gemini:gemini-2.5-pro", "--max-tokens", "4", "Hi"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 4
    lines = err.splitlines()
    assert [line.split()[0] for line in lines] == ["gemini:gemini-2.5-flash", "gemini:gemini-2.5-pro"]
    assert sum(" won " in line for line in lines) == 1


def test_race_of_unknown_provider_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["race", "--emulator", "-p", "nope", "Hi"]) == 1
    assert capsys.readouterr().err.startswith("trio-llm: error: unknown provider 'nope'")


def test_batch_answers_every_line_once_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, answers = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_prompts(source, 12, max_tokens=3)
    assert main(["batch", "--emulator", str(source), str(answers), "-p", "gemini", "--concurrency", "3"]) == 0
    first = read_answers(answers)
    assert sorted(a["id"] for a in first) == sorted(ids)
    assert all(a["finish"] == "length" and len(str(a["text"]).split()) == 3 for a in first)
    assert "answered 12, skipped 0" in capsys.readouterr().err
    assert main(["batch", "--emulator", str(source), str(answers), "-p", "gemini", "--no-progress"]) == 0
    assert read_answers(answers) == first
    assert "answered 0, skipped 12" in capsys.readouterr().err


def test_batch_writes_errors_as_lines_too(tmp_path: Path) -> None:
    source, answers = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        json.dumps({"id": 1, "prompt": "fine"}) + "\n" + json.dumps({"id": 2, "prompt": "x", "model": "no-such"}) + "\n"
    )
    assert main(["batch", "--emulator", str(source), str(answers), "-p", "gemini", "--no-progress"]) == 0
    by_id = {a["id"]: a for a in read_answers(answers)}
    assert by_id["1"]["text"]
    assert by_id["2"]["error"]["type"] == "ModelNotFoundError"  # type: ignore[index]


def test_batch_race_mode_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, answers = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(source, 3)
    argv = ["batch", "--emulator", str(source), str(answers), "-p", "gemini", "-p", "gemini:gemini-2.5-pro"]
    assert main(argv) == 1
    assert "need --race" in capsys.readouterr().err
    assert main([*argv, "--race", "--no-progress"]) == 0
    assert len(read_answers(answers)) == 3
    source.write_text('{"prompt": "no id"}\n')
    assert main(["batch", "--emulator", str(source), str(answers), "-p", "gemini"]) == 1
    assert 'in.jsonl:1: each line needs an "id"' in capsys.readouterr().err


def _start_slow_batch(source: Path, answers: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "trio_llm", "batch", "--emulator", "--emulator-delay", "0.05",
        str(source), str(answers), "-p", "gemini", "--concurrency", "3", "--no-progress",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.02)  # polling another process's file: there is no event to wait on
    pytest.fail("the batch did not get going")


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_killed_batch_leaves_whole_lines_and_resumes_to_exactly_once(tmp_path: Path, how: str) -> None:
    source, answers = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_prompts(source, 60)
    with _start_slow_batch(source, answers) as process:
        _wait_for_lines(answers, 4, process)
        process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    if how == "ctrl-c":
        assert process.returncode == 130
        assert stderr.decode().strip().endswith("trio-llm: interrupted")
    partial = read_answers(answers)  # every line whole
    assert 4 <= len(partial) < 60
    # A torn line, as a power cut might leave: it is cut off and its id answered again.
    with answers.open("a") as file:
        file.write('{"id": "q59", "text": "half a li')
    assert main(["batch", "--emulator", str(source), str(answers), "-p", "gemini", "--no-progress"]) == 0
    final = read_answers(answers)
    assert sorted(a["id"] for a in final) == sorted(ids)
    assert final[: len(partial)] == partial


def test_demo_fans_out_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "Hello"]) == 0
    out = capsys.readouterr().out
    assert "> Hello" in out
    assert "first event" in out
    for name in ("gemini", "dynaspark", "amigochat", "openai"):
        assert f"{name}:" in out


def test_demo_works_without_rich(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # `import rich` now fails
    assert main(["demo", "Hello"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "[gemini:gemini-2.5-flash]" in lines
    header = next(n for n, line in enumerate(lines) if line.startswith("provider:model"))
    table = [line.split()[0] for line in lines[header + 1 :]]
    assert {label.split(":")[0] for label in table} >= {"gemini", "dynaspark", "amigochat", "openai"}
