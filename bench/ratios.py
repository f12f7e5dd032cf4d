"""What the trader benches share: how a phase's ratio is read against the machine's drift."""

from __future__ import annotations

import statistics


def chunk_ratios(samples: list[float], base: list[float], chunks: int = 5) -> list[float]:
    """The ratio of medians over consecutive slices of an interleaved phase: how much of the figure is
    the machine's drift (a shared VM moves by +-0.05 and more between minutes) rather than the adapter."""
    size = max(len(base) // chunks, 1)
    return [statistics.median(samples[i:i + size]) / statistics.median(base[i:i + size])
            for i in range(0, size * chunks, size) if base[i:i + size]]
