"""Long-running processes: sockets, signals, and reload for ``perdure dev``.

Reload is a parent process that owns the listening socket and restarts a child process when a
file of the project changes (polling mtimes: no dependency, works on every filesystem). The
child inherits the socket, so connections wait in the backlog during a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import PerdureError
from .output import Printer

log = logging.getLogger("perdure.cli")

FD_VARIABLE = "PERDURE_DEV_FD"
WATCHED_SUFFIXES = {".py", ".toml", ".html", ".css", ".js", ".json", ".jinja", ".txt"}
SKIPPED_FOLDERS = {"__pycache__", "node_modules", "venv", "build", "dist", "htmlcov"}
MAX_WATCHED_FILES = 20_000


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PerdureError(
                f"port {port} on {host} is in use; stop what runs there or pick another --port"
            ) from None
        raise PerdureError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


def inherited_socket() -> socket.socket | None:
    fd = os.environ.get(FD_VARIABLE)
    if not fd:
        return None
    return socket.socket(fileno=int(fd))


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


# -- reload


def snapshot(root: Path, ignore: set[Path]) -> dict[str, float]:
    """mtimes of the project's source files, skipping hidden folders, caches and databases."""
    found: dict[str, float] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIPPED_FOLDERS and not d.endswith(".egg-info")
        ]
        for name in files:
            path = Path(folder) / name
            if path.suffix not in WATCHED_SUFFIXES or path in ignore:
                continue
            with contextlib.suppress(OSError):
                found[str(path)] = path.stat().st_mtime
            if len(found) >= MAX_WATCHED_FILES:
                return found
    return found


def changed_files(before: dict[str, float], after: dict[str, float]) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def supervise(
    child_argv: list[str],
    *,
    root: Path,
    sock: socket.socket,
    printer: Printer,
    interval: float = 0.5,
    ignore: set[Path] | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run the child, restart it when a watched file changes, stop it on SIGINT or SIGTERM."""
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    child_env = {**os.environ, **(env or {}), FD_VARIABLE: str(sock.fileno())}
    skip = ignore or set()

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(child_argv, env=child_env, pass_fds=(sock.fileno(),))

    try:
        files = snapshot(root, skip)
        printer.note(f"watching {len(files)} files in {root} for changes")
        child = start()
        reported = False
        while not stopping:
            time.sleep(interval)
            now = snapshot(root, skip)
            changed = changed_files(files, now)
            if changed:
                files = now
                shown = ", ".join(os.path.relpath(c, root) for c in changed[:3])
                more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                printer.note(f"changed: {shown}{more}; restarting")
                _stop_child(child)
                child = start()
                reported = False
            elif child.poll() is not None and not reported:
                printer.note(
                    f"the project stopped (exit code {child.returncode}); fix it and save a file "
                    "to restart"
                )
                reported = True
        _stop_child(child)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_child(child: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def child_command(args: list[str]) -> list[str]:
    """How to run ``perdure ARGS`` with this interpreter."""
    return [sys.executable, "-m", "perdure", *args]
