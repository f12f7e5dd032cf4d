"""Strategy-runner tests: OHLCV service and equity helpers, the JSON command lines, the example, the factory."""
