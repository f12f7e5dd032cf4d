"""Broker-agnostic building blocks: pure mappings (symbols, timeframes, statuses, fees, ids, errors).

Nothing here imports a broker library or does I/O; the I/O-capable shared machinery lives in
``normalization.runtime``.
"""
