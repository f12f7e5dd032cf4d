"""The journal on PostgreSQL: URL handling, secrets, schema versions, a server going away and coming back.

The promises shared with SQLite are tested on both stores in test_journal.py; these are the ones only a
server has. A real server (tests/pgserver.py), no mocks.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import ccxt
import psycopg
import pytest

from normalization.runtime.factory import ConfigError
from normalization.runtime.journal import USE_DEFAULT, OrderJournal, open_journal
from normalization.runtime.journal_postgres import SCHEMA_VERSION, PostgresStore, redact_url
from tests.pgserver import PASSWORD

INTENT = {"symbol": "AAPL/USD", "side": "buy", "type": "limit", "amount": 1.0, "price": 10.0}


@pytest.mark.parametrize("value", ["mysql://u:p@h/db", "sqlite:///tmp/x.db", "postgresql+asyncpg://u:p@h/db"])
def test_an_unsupported_url_scheme_is_a_configuration_error_not_a_folder(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scheme = value.split("://")[0]
    with pytest.raises(ConfigError, match=re.escape(f"'{scheme}'")):
        open_journal(value, exchange="ibkr")
    assert list(tmp_path.iterdir()) == []  # no folder named after the scheme


def test_url_forms_and_the_environment_variable(pg_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_server.fresh_url()
    with open_journal(url.replace("postgresql://", "postgresql+psycopg://"), exchange="ibkr", account="A") as j:
        assert j.record_intent("c-1", **INTENT)[1] and j.path is None and j.persistent
    monkeypatch.setenv("CCXT_BROKERS_JOURNAL", url)
    with open_journal(USE_DEFAULT, exchange="ibkr", account="A") as j:
        assert j.get("c-1") is not None  # the same database, found through the environment
        assert not j.record_intent("c-1", **INTENT)[1]


def test_the_password_never_shows(pg_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = pg_server.fresh_url()
    assert PASSWORD not in redact_url(url) and "***" in redact_url(url)
    assert "***" in redact_url("postgresql://u@h/db?password=abc") and "abc" not in redact_url(
        "postgresql://u@h/db?password=abc")
    caplog.set_level(logging.DEBUG)
    with OrderJournal(url, exchange="ibkr") as j:
        assert PASSWORD not in repr(j) and PASSWORD not in repr(j._store) and PASSWORD not in str(vars(j))
    wrong = url.replace(PASSWORD, "not-" + PASSWORD)
    with pytest.raises(ccxt.ExchangeNotAvailable) as refused:
        OrderJournal(wrong, exchange="ibkr")
    assert "not-" + PASSWORD not in str(refused.value) and "***" in str(refused.value)
    unreachable = url.replace(f":{pg_server.port}/", ":1/")
    with pytest.raises(ccxt.ExchangeNotAvailable) as down:
        OrderJournal(unreachable, exchange="ibkr")
    assert PASSWORD not in str(down.value) and down.value.__cause__ is None
    assert PASSWORD not in caplog.text


def test_the_schema_is_versioned_and_a_newer_one_is_refused(pg_server: Any) -> None:
    url = pg_server.fresh_url()
    conninfo, schema = PostgresStore._conninfo(url)
    OrderJournal(url, exchange="ibkr").close()
    OrderJournal(url, exchange="ibkr").close()  # opening again migrates nothing
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute(f'SELECT version FROM "{schema}".journal_schema').fetchall() == [(SCHEMA_VERSION,)]
        conn.execute(f'UPDATE "{schema}".journal_schema SET version = version + 1')
    with pytest.raises(RuntimeError, match="Upgrade ccxt-brokers"):
        OrderJournal(url, exchange="ibkr")


def test_fills_are_unique_by_execution_id_across_connections(pg_server: Any) -> None:
    url = pg_server.fresh_url()
    with OrderJournal(url, exchange="ibkr", account="A") as a, OrderJournal(url, exchange="ibkr", account="A") as b:
        assert a.record_fill("x-1", amount=1, price=2) and not b.record_fill("x-1", amount=1, price=2)
        assert a.record_intent("c", **INTENT)[1] and not b.record_intent("c", **INTENT)[1]


def test_a_server_restart_fails_fast_then_recovers(pg_server: Any) -> None:
    """The server going away: the journal call raises ExchangeNotAvailable (nothing to send on) within
    the pool's timeout, never hangs; once the server is back, the same journal object works again."""
    url = pg_server.fresh_url()
    with OrderJournal(url, exchange="ibkr", sync="normal") as j:
        j.record_intent("before", **INTENT)
        pg_server.stop()
        try:
            with pytest.raises(ccxt.ExchangeNotAvailable, match="unavailable"):
                with j.sending("during", **INTENT, broker_keeps_id=True):
                    raise AssertionError("the block (the send) must not run without a committed intent")
        finally:
            pg_server.start()
        assert j.get("during") is None
        assert j.record_intent("after", **INTENT)[1]  # a stale pooled connection is dropped, not failed on
        assert {o.client_order_id for o in j.unresolved()} == {"before", "after"}


def test_sync_modes_map_to_commit_settings(pg_server: Any) -> None:
    url = pg_server.fresh_url()
    for sync, setting in (("full", "on"), ("behind", "off"), ("normal", "off")):
        with OrderJournal(url, exchange="ibkr", sync=sync) as j, j._store.reading() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == setting
    assert os.environ.get("CCXT_BROKERS_JOURNAL") is None


def test_a_version_1_schema_gains_the_latency_columns(pg_server: Any) -> None:
    """Version 2 adds each order's latency stamps; a database written by version 1 upgrades in place and
    its rows read with no stage known."""
    from normalization.runtime.latency import Stamps

    url = pg_server.fresh_url()
    conninfo, schema = PostgresStore._conninfo(url)
    with OrderJournal(url, exchange="ibkr") as j:
        j.record_intent("old", **INTENT)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # back to what version 1 wrote
        for column in ("lat_intent", "lat_submit", "lat_ack", "lat_first_fill", "lat_last_fill"):
            conn.execute(f'ALTER TABLE "{schema}".orders DROP COLUMN {column}')
        conn.execute(f'UPDATE "{schema}".journal_schema SET version = 1')
    with OrderJournal(url, exchange="ibkr") as j:
        assert j.get("old").latency is None
        j.record_intent("new", **INTENT, latency=Stamps(1, 2))
        assert j.get("new").latency == Stamps(1, 2)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute(f'SELECT version FROM "{schema}".journal_schema').fetchall() == [(2,)]
