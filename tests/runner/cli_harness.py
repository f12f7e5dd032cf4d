"""Running a broker's command line in-process, as the CLI tests do: ``main(argv)``, its stdout parsed.

Written once for ``test_cli_ibkr.py``, ``test_cli_capital.py`` and ``test_cli_controls.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest


def run_main(main: Callable[[list[str]], int], argv: Sequence[str],
             capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str, str]:
    """``main(argv)``: (exit code, stdout as JSON -- as text if it is not, None if empty --, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        parsed: Any = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        parsed = out
    return code, parsed, out, err


def error(err: str) -> dict[str, Any]:
    """The JSON error document the command printed last on stderr."""
    return json.loads(err.strip().splitlines()[-1])["error"]
