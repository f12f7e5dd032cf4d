"""The standalone command: ``python -m ccxt_ibkr.sim`` prints its address and serves clients."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

from ccxt_ibkr.sim.testing import connect


async def test_standalone_server_prints_address_and_serves() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccxt_ibkr.sim", "--port", "0", "--seed", "5", "--base-currency", "AUD",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))

        class Target:
            host = "127.0.0.1"

        Target.port = port  # type: ignore[attr-defined]
        ib = await connect(Target, client_id=4)  # type: ignore[arg-type]
        try:
            values = {(v.tag, v.currency) for v in ib.accountValues()}
            assert ("NetLiquidation", "AUD") in values
        finally:
            ib.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0
