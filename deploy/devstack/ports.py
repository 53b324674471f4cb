import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Protocol


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's own range by default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free, else a free port below the ephemeral range: a port the
    kernel chose would be free now, but any outgoing connection (a load generator has
    thousands) may take it before the server that was given it binds it."""
    if preferred and is_free(preferred):
        return preferred
    low, _ = _ephemeral_range()
    floor = 10_000 if low > 12_000 else 1_024
    for _ in range(200):
        port = random.randrange(floor, low)
        if is_free(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process(Protocol):
    def poll(self) -> int | None: ...


def wait_for_port(
    port: int, timeout_s: float, host: str = "127.0.0.1", alive: Process | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"process exited before listening on {host}:{port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


def spawn_logged(
    args: list[str], log_path: Path | None, *, user: str | None = None
) -> "subprocess.Popen[bytes]":
    """Start a server in its own session with its output appended to ``log_path``."""
    if log_path is None:
        return subprocess.Popen(
            args,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            args, user=user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
