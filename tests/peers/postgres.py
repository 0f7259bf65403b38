"""A real PostgreSQL server for tests and benchmarks: initdb in a temp folder as an unprivileged user.

PostgreSQL refuses to run as root, so the cluster belongs to `nobody`; it listens on 127.0.0.1 on a free
port and on a unix socket in its folder, and is stopped and removed when the block ends, failed or not.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.process import listening_process
from tests.peers.wait import free_port

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
USER = "nobody"


def postgres_available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "starting a PostgreSQL server needs root (to run it as the unprivileged user 'nobody')"
    if not (BIN_DIR / "initdb").exists():
        return False, f"PostgreSQL 15 is not installed ({BIN_DIR}): apt-get install postgresql"
    return True, ""


@dataclass(frozen=True)
class PostgresServer:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for one test, dropped afterwards."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            with psycopg.connect(self.url(), autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """`durable=False` turns fsync off (tests); benchmarks keep PostgreSQL's defaults."""
    account = pwd.getpwnam(USER)
    folder = Path(tempfile.mkdtemp(prefix="streamhealth-pg-"))
    try:
        os.chown(folder, account.pw_uid, account.pw_gid)
        data = folder / "data"
        as_user = {
            "user": account.pw_uid,
            "group": account.pw_gid,
            "env": {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        }
        subprocess.run(
            [str(BIN_DIR / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            **as_user,  # type: ignore[arg-type]
        )
        port = free_port()
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={folder}",
            "-c",
            "max_connections=200",
        ]
        if not durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        command = [str(BIN_DIR / "postgres"), "-D", str(data), "-p", str(port), *settings]
        with listening_process(
            ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups", *command],
            "127.0.0.1",
            port,
            what="PostgreSQL",
            timeout_s=30,
        ):
            _wait_ready(port)
            yield PostgresServer(port, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(port: int) -> None:
    import psycopg

    from tests.peers.wait import wait_until

    def accepts() -> bool:
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    wait_until(accepts, 30, "PostgreSQL to accept connections", interval_s=0.2)
