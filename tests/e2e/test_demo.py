"""`make demo` (``python -m bot demo`` with no BOT_TOKEN): the sandbox and the real bot come up,
and after Ctrl-C the bot's log is still there, at the path the demo printed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in the demo's output:\n" + "\n".join(lines))


def test_the_demo_keeps_the_bot_log_and_says_where(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo"],
        cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        started = read_until(proc, "Ctrl-C to stop", timeout=120)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "data" / "demo-bot.log").resolve()
    assert f"Bot log: {log}" in started
    assert f"The bot's log is kept in {log}" in rest
    text = log.read_text()
    assert "=== demo started" in text
    assert "Start polling" in text  # the running bot's own lines, not only the demo's
