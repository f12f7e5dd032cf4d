"""The order journal's disk work that must not run on the thread that sends orders.

Two jobs, one daemon thread per journal file, started on first use:

* **Checkpoints.** SQLite copies its write-ahead log back into the database every ~1000 pages, on
  the committing thread, with an fsync before and after: every ~100 orders one of them took 1-7 ms
  longer (measured: +90 us per order on average). The journal switches SQLite's automatic
  checkpoints off and asks for one here instead (``checkpoint``), run on this thread's own connection
  (``PRAGMA wal_checkpoint(PASSIVE)``: it never blocks a writer).
* **Flush behind** (``journalSync="behind"``). The intent is committed before an order is sent, but
  waiting for the disk there (an fsync, 0.1-1 ms) is most of what an order would cost over a bare
  client. Here the WAL is fdatasync'ed right after (``flush``), while the order travels, so a power
  cut can cost at most the orders sent in the last ``interval`` plus one disk flush, instead of the
  last ~30 s the kernel may keep unwritten. After each flush the thread rests ``interval`` (10 ms),
  and requests meanwhile coalesce into the next one: back-to-back orders then cost one flush per
  interval, not one each.

Requests never block on I/O and never wake a resting thread (each wake-up would cost the sending
thread the CPU and the GIL on a small machine). ``wait`` lets a caller (a test, ``close``) block
until every flush requested so far is done.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class JournalDisk:
    """Background fsyncs and checkpoints for the journal database at ``path``.

    A missing WAL file (SQLite deletes it when its last connection closes, after checkpointing it
    with a sync of its own) means there is nothing left to flush.
    """

    def __init__(self, path: Path, busy_timeout: float = 10.0, interval: float = 0.01) -> None:
        self.path = path
        self.wal = Path(f"{path}-wal")
        self.busy_timeout = busy_timeout
        self.interval = interval
        self._cond = threading.Condition()
        self._requested = 0  # flush generation asked for
        self._flushed = 0  # flush generation known durable
        self._checkpoint = False
        self._closed = False
        self._idle = False  # the thread waits for a request (and only then needs waking)
        self._stop = threading.Event()  # cuts a rest short on close
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed, for tests and diagnostics

    def flush(self) -> None:
        """Ask for everything written to the WAL so far to reach the disk soon."""
        with self._cond:
            if not self._closed:
                self._requested += 1
                self._wake()

    def checkpoint(self) -> None:
        """Ask for the WAL to be copied into the database (the thread's next turn)."""
        with self._cond:
            if not self._closed:
                self._checkpoint = True
                self._wake()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every flush requested so far is done; False if ``timeout`` ran out first."""
        with self._cond:
            target = self._requested
            return self._cond.wait_for(lambda: self._flushed >= target or self._closed, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish what was requested, then stop the thread."""
        self.wait(timeout)
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"journal-disk {self.path.name}", daemon=True)
            self._thread.start()
        elif self._idle:
            self._cond.notify()  # a resting thread is not woken: it looks when its rest ends

    def _pending(self) -> bool:
        return self._requested > self._flushed or self._checkpoint

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._cond:
                    self._idle = True
                    self._cond.wait_for(lambda: self._pending() or self._closed)
                    self._idle = False
                    if self._closed and not self._pending():
                        return
                    target, checkpoint = self._requested, self._checkpoint
                    self._checkpoint = False
                if checkpoint:
                    conn = conn or self._connect()
                    self._run_checkpoint(conn)
                if target > self._flushed:
                    self._sync()
                    with self._cond:
                        self._flushed = max(self._flushed, target)
                        self._cond.notify_all()  # wait()ers
                    # Rest before the next flush; requests meanwhile coalesce into it.
                    self._stop.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return conn

    def _run_checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as error:  # pragma: no cover - busy or I/O: the next request tries again
            log.warning("journal checkpoint of %s failed: %s", self.path, error)

    def _sync(self) -> None:
        try:
            fd = os.open(self.wal, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fdatasync(fd)
        except OSError as error:  # pragma: no cover - a disk error: the next request tries again
            log.warning("could not flush %s to disk: %s", self.wal, error)
        finally:
            os.close(fd)
