"""A throwaway PostgreSQL server on loopback, for the journal's PostgreSQL tests and benchmarks.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it when missing). The
server runs as an unprivileged OS user (PostgreSQL refuses root: as root we run it as ``postgres``),
in a data directory under a temp dir, on a free loopback port, with password authentication so the
tests can check that the password never shows. Missing binaries fail loudly: these tests must run,
never skip, in CI.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

PASSWORD = "s3cret-Pw"  # noqa: S105 - a throwaway server's


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found (initdb): install Debian's postgresql package "
        "(apt-get install -y postgresql); .ci/run does it on a clean machine"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """``start()`` / ``stop()`` a server of our own; ``url(schema)`` to reach it."""

    def __init__(self, *, fsync: bool = True) -> None:
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ccxt-brokers-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.fsync = fsync
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-instructions",
                  "--no-sync")
        pwfile.unlink()

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self._as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                                check=False, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
                   f" -c fsync={'on' if self.fsync else 'off'}")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, schema: str | None = None) -> str:
        base = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"
        return base if schema is None else f"{base}?schema={schema}"

    def fresh_url(self) -> str:
        """A URL to a schema nobody used yet: each test its own journal, on one server."""
        return self.url(f"t_{uuid.uuid4().hex[:12]}")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
