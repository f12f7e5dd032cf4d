"""A simulator as its own process, for the benchmarks: a real broker is another process, and a
simulator on a thread of the measuring process would share its GIL and bill its work to both sides."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def sim_process(module: str, *args: str) -> AsyncIterator[tuple[str, int]]:
    """Run ``python -m <module> --port 0 <args>`` and yield the ``(host, port)`` it says it listens on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--port", "0", *args, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"listening on ([\d.]+):(\d+)", line)
        if not match:
            raise RuntimeError(f"simulator {module} did not start: {line!r}")
        yield match.group(1), int(match.group(2))
    finally:
        proc.terminate()
        await proc.wait()
