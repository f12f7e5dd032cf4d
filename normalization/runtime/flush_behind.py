"""Make a file's recent writes durable on a background thread, right after they were made.

Why: the order journal must commit an intent before a deal leaves the process, but waiting for the
disk (an fsync, 0.2-1 ms) on that path is most of what an order costs us over a bare client. With
``journalSync="behind"`` the commit is a plain write (it survives the bot process dying) and this
thread asks the disk to keep it a moment later, while the request travels: a power cut can then lose
only what was committed in the last disk flush, instead of the last ~30 s the kernel keeps unwritten.

One thread per journal file, started on first use. After each flush it rests ``interval`` (10 ms)
before the next, and the requests made meanwhile coalesce into that one: a bot sending orders
back to back then costs the disk (and a small machine's CPUs, which the kernel's flush also uses)
one flush per interval rather than one per order, and a power cut can cost at most the orders sent
in the last interval plus one flush. ``wait`` lets a caller (a test, ``close``) block until
everything requested so far is on disk.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class FlushBehind:
    """fdatasync ``path`` on a daemon thread after each :meth:`request`.

    A missing file (SQLite deletes the WAL when its last connection closes, after checkpointing it
    into the database with a sync of its own) means there is nothing left to flush.
    """

    def __init__(self, path: Path, interval: float = 0.01) -> None:
        self.path = path
        self.interval = interval
        self._cond = threading.Condition()
        self._requested = 0  # generation asked for
        self._flushed = 0  # generation known durable
        self._closed = False
        self._idle = False  # the thread waits for a request (and only then needs waking)
        self._stop = threading.Event()  # cuts a rest short on close
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Ask for everything written to the file so far to reach the disk soon. Never blocks on I/O."""
        with self._cond:
            if self._closed:
                return
            self._requested += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"flush-behind {self.path.name}",
                                                daemon=True)
                self._thread.start()
            elif self._idle:
                self._cond.notify()  # a resting thread is not woken: it looks when its rest ends

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every write requested so far is durable; False if ``timeout`` ran out first."""
        with self._cond:
            target = self._requested
            return self._cond.wait_for(lambda: self._flushed >= target or self._closed, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what was requested, then stop the thread."""
        self.wait(timeout)
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._idle = True
                self._cond.wait_for(lambda: self._requested > self._flushed or self._closed)
                self._idle = False
                if self._closed and self._requested <= self._flushed:
                    return
                target = self._requested
            self._sync()
            with self._cond:
                self._flushed = max(self._flushed, target)
                self._cond.notify_all()  # wait()ers
            # Rest before the next flush; requests meanwhile coalesce into it. Nothing wakes the thread
            # during the rest but close(): each wake-up would cost the sending thread the CPU and the GIL.
            self._stop.wait(self.interval)

    def _sync(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fdatasync(fd)
        except OSError as error:  # pragma: no cover - a disk error: the next request tries again
            log.warning("could not flush %s to disk: %s", self.path, error)
        finally:
            os.close(fd)
