"""A real PostgreSQL server from the machine's binaries, with its data under a project folder."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, spawn_logged, wait_for_port

DB_USER = "leadrelay"
DB_NAME = "leadrelay"


def bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError(
        "PostgreSQL binaries not found: install them (apt-get install postgresql) "
        "or set DATABASE_URL to an existing server"
    )


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; use the 'postgres' account when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged account to run PostgreSQL")


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    data_dir: Path, *, port: int | None = None, log_path: Path | None = None, durable: bool = True
) -> PostgresServer:
    """initdb on first use, then start ``postgres`` on a free local port and create the database."""
    pg_bin = bin_dir()
    user = _run_as()
    data_dir.mkdir(parents=True, exist_ok=True)
    sock_dir = data_dir.parent / f"{data_dir.name}-sock"
    sock_dir.mkdir(exist_ok=True)
    if user:
        _make_traversable(data_dir.parent)
        for path in (data_dir, sock_dir):
            shutil.chown(path, user)
        os.chmod(data_dir, 0o700)
    if not (data_dir / "PG_VERSION").exists():
        done = subprocess.run(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                DB_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            user=user,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        stale.unlink()
    port = free_port(port)
    args = [
        str(pg_bin / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-k",
        str(sock_dir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=256MB",
    ]
    if not durable:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    process = spawn_logged(args, log_path, user=user)
    server = PostgresServer(data_dir=data_dir, port=port, process=process)
    wait_for_port(port, 30, alive=process)
    _wait_ready(pg_bin, port)
    _create_database(pg_bin, port, DB_NAME)
    return server


def _make_traversable(folder: Path) -> None:
    """The unprivileged server must be able to reach its data folder through our folders."""
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & 0o001 and path.stat().st_uid == os.geteuid():
            os.chmod(path, mode | 0o011)


def _wait_ready(pg_bin: Path, port: int) -> None:
    for _ in range(100):
        ok = (
            subprocess.run(
                [str(pg_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
            ).returncode
            == 0
        )
        if ok:
            return
        import time

        time.sleep(0.1)
    raise TimeoutError("PostgreSQL did not become ready")


def _create_database(pg_bin: Path, port: int, name: str) -> None:
    psql = [
        str(pg_bin / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        DB_USER,
        "-d",
        "postgres",
        "-tAc",
    ]
    exists = subprocess.run(
        [*psql, f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
