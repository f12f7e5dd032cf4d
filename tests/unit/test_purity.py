"""normalization must never pull in a broker library (DESIGN §2: arrows point into it, never out)."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import normalization, normalization.symbols, normalization.timeframes, normalization.statuses, "
    "normalization.fees, normalization.client_ids, normalization.errors, sys; "
    "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ib_async','ib_insync','httpx')))"
)


def test_normalization_imports_no_broker_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
