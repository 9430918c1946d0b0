"""Running the real ``perdure`` command in a subprocess, the way a user's shell does."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent / "perdure"
COMMAND = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "perdure"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> dict[str, Any]:
        """The JSON error object a failed --json command prints on stderr."""
        return dict(json.loads(self.err)["error"])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def perdure(
    *args: str, cwd: Path, input: str | None = None, timeout: float = 30, **env: str
) -> Result:
    """Run ``perdure ARGS`` in ``cwd`` and wait for it."""
    done = subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=clean_env(**env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Result(done.returncode, done.stdout, done.stderr)


def start(*args: str, cwd: Path, log: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """Start a long-running ``perdure ARGS`` (worker, dev, serve); stderr goes to ``log`` when
    given, so a test can read it while the process runs."""
    stream = None if log is None else log.open("w")
    try:
        return subprocess.Popen(
            [*COMMAND, *args],
            cwd=cwd,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stream is None else stream,
            text=True,
        )
    finally:
        if stream is not None:
            stream.close()  # the process has its own copy


def stop(process: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    """SIGTERM, then wait: the exit code and what it printed on stderr."""
    process.terminate()
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err or ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, *, timeout: float = 20, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, AssertionError, httpx.TransportError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


def new_project(
    where: Path, name: str = "workflows-starter", *, template: str | None = None
) -> Path:
    """``perdure init NAME``, then make its sleep and retry delay short, as a user would."""
    args = ["init", name] + (["--template", template] if template else [])
    result = perdure(*args, cwd=where)
    assert result.code == 0, result.err
    project = where / name
    app = project / "src" / re.sub(r"\W", "_", name) / "app.py"
    text = app.read_text()
    text = text.replace('sleep_for: str | float = "1 minute"', "sleep_for: str | float = 0.3")
    text = text.replace('retry_delay: str | float = "5 seconds"', "retry_delay: str | float = 0.1")
    app.write_text(text)
    return project
