from normalization.tickers import hold_in_range


def test_the_range_holds_the_price_quoted_now() -> None:
    # IB before the open: the session's high is below the pre-market mid.
    ticker = hold_in_range({"high": 161.23, "low": 157.82, "close": 161.24}, (161.24,))
    assert ticker["low"] <= ticker["close"] <= ticker["high"] == 161.24
    # A gap down from the previous close (Capital's open) widens the low side only.
    ticker = hold_in_range({"high": 10.0, "low": 9.0, "open": 8.5, "close": 9.5}, (8.5, 9.5))
    assert (ticker["low"], ticker["high"]) == (8.5, 10.0)
    assert hold_in_range({"high": None, "low": None}, (1.0, None)) == {"high": None, "low": None}
