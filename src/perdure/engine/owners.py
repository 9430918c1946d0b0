"""Who holds a lease, and whether that process is gone for certain.

An owner id is ``host:pid-namespace:pid:random``. A worker that starts on the same machine, in
the same PID namespace, can tell that an owner's process no longer exists and take over its
instances at once instead of waiting for the lease to run out (the usual case after kill -9
and a restart). Anything it cannot be sure of is left to the lease.
"""

from __future__ import annotations

import os
import socket
import uuid


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def new_owner() -> str:
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def certainly_dead(owner: str) -> bool:
    """True only when ``owner`` ran on this machine and namespace and its process is gone."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4:
        return False
    host, namespace, pid, _ = parts
    if host != socket.gethostname() or namespace in ("-", "") or namespace != _pid_namespace():
        return False
    try:
        number = int(pid)
    except ValueError:
        return False
    if number == os.getpid() or number <= 0:
        return False
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False
