"""The order journal: idempotent intent, fills exactly once, late fees, crash safety, shared files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from normalization.runtime.journal import (
    ABSENT_AFTER_SYNC,
    NEVER_SENT,
    PENDING_SEND,
    SENT_UNKNOWN,
    USE_DEFAULT,
    NullJournal,
    OrderJournal,
    default_journal_path,
    open_journal,
)
from normalization.runtime.journal_sqlite import SCHEMA_VERSION
from normalization.runtime.latency import Stamps

ROOT = Path(__file__).resolve().parents[2]

# The journal schema as version 1 wrote it (for the upgrade test).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    type            TEXT NOT NULL,
    amount          REAL NOT NULL,
    price           REAL,
    trigger_price   REAL,
    params          TEXT NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL,
    reason          TEXT,
    filled          REAL,
    remaining       REAL,
    order_id        TEXT,
    perm_id         TEXT,
    deal_reference  TEXT,
    deal_id         TEXT,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    info            TEXT,
    PRIMARY KEY (exchange, account, client_order_id)
);
CREATE INDEX IF NOT EXISTS orders_state ON orders (exchange, account, state);
CREATE INDEX IF NOT EXISTS orders_order_id ON orders (exchange, account, order_id);
CREATE INDEX IF NOT EXISTS orders_perm_id ON orders (exchange, account, perm_id);
CREATE INDEX IF NOT EXISTS orders_deal_reference ON orders (exchange, account, deal_reference);
CREATE INDEX IF NOT EXISTS orders_deal_id ON orders (exchange, account, deal_id);
CREATE TABLE IF NOT EXISTS status_history (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT,
    timestamp       INTEGER NOT NULL,
    info            TEXT
);
CREATE INDEX IF NOT EXISTS history_order ON status_history (exchange, account, client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    exec_id         TEXT NOT NULL,
    client_order_id TEXT,
    order_id        TEXT,
    symbol          TEXT,
    side            TEXT,
    amount          REAL NOT NULL,
    price           REAL NOT NULL,
    fee_cost        REAL,
    fee_currency    TEXT,
    timestamp       INTEGER,
    info            TEXT,
    PRIMARY KEY (exchange, account, exec_id)
);
CREATE INDEX IF NOT EXISTS fills_order ON fills (exchange, account, client_order_id);
CREATE TABLE IF NOT EXISTS early_fees (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    exec_id         TEXT NOT NULL,
    fee_cost        REAL NOT NULL,
    fee_currency    TEXT,
    PRIMARY KEY (exchange, account, exec_id)
);
"""


#: Where a test's journal lives: a name -> a SQLite file, or a PostgreSQL URL (one schema per name and test).
At = Callable[[str], Any]


@pytest.fixture(params=["sqlite", "postgresql"])
def at(request: pytest.FixtureRequest, tmp_path: Path) -> At:
    """The journal's unit tests run against both stores: the same logic must keep the same promises."""
    if request.param == "sqlite":
        return lambda name: tmp_path / name
    server = request.getfixturevalue("pg_server")
    prefix = f"t_{uuid.uuid4().hex[:10]}"
    return lambda name: server.url(f"{prefix}_{name.split('.')[0]}")


@pytest.fixture
def journal(at: At) -> OrderJournal:
    with OrderJournal(at("j.sqlite"), exchange="ibkr", account="DU123") as j:
        yield j


def intent(j: OrderJournal, cid: str = "bot-1", **kw):
    args = dict(symbol="AAPL/USD", side="buy", type="limit", amount=10, price=187.5)
    args.update(kw)
    return j.record_intent(cid, **args)


def test_intent_is_idempotent_and_returns_the_first_order(journal: OrderJournal) -> None:
    first, created = intent(journal, params={"timeInForce": "GTC"})
    assert created and first.state == PENDING_SEND and first.params == {"timeInForce": "GTC"}
    again, created_again = intent(journal, amount=99, price=1.0)
    assert not created_again
    assert again == first and again.amount == 10 and again.price == 187.5
    assert [o.client_order_id for o in journal.unresolved()] == ["bot-1"]


def test_lifecycle_ids_status_history(journal: OrderJournal) -> None:
    intent(journal)
    assert journal.mark_sent("bot-1") is True
    assert journal.mark_sent("bot-1") is False  # compare-and-set: only from pending_send
    assert journal.get("bot-1").state == SENT_UNKNOWN
    journal.attach_ids("bot-1", order_id=7, perm_id=123456)
    journal.attach_ids("bot-1", order_id=None)  # never erases
    assert journal.update_status("bot-1", "open", {"status": "Submitted"}, filled=0, remaining=10)
    assert journal.find_by(perm_id=123456).client_order_id == "bot-1"
    assert journal.find_by(order_id="7").order_id == "7"
    assert journal.find_by(deal_id="nope") is None
    assert [o.client_order_id for o in journal.open_orders()] == ["bot-1"]
    assert journal.update_status("bot-1", "closed", filled=10, remaining=0)
    # terminal is sticky against late, out-of-order events ...
    assert not journal.update_status("bot-1", "open")
    assert journal.get("bot-1").state == "closed"
    assert journal.get("bot-1").filled == 10
    assert [h.state for h in journal.history("bot-1")] == [PENDING_SEND, SENT_UNKNOWN, "open", "closed"]
    # ... unless forced (reconciliation with the broker's full view)
    assert journal.update_status("bot-1", "canceled", force=True, reason="broker says so")
    assert journal.get("bot-1").reason == "broker says so"
    assert journal.get("bot-1").ccxt_status == "canceled"


def test_unknown_states_and_ids_are_refused(journal: OrderJournal) -> None:
    intent(journal)
    with pytest.raises(ValueError):
        journal.update_status("bot-1", "filled")
    with pytest.raises(TypeError):
        journal.attach_ids("bot-1", conid=5)
    with pytest.raises(KeyError):
        journal.update_status("nobody", "open")


def test_sent_unknown_has_no_ccxt_status(journal: OrderJournal) -> None:
    """The broker has not confirmed it: no status (the adapters settle it before they answer)."""
    order, _ = intent(journal)
    journal.mark_sent(order.client_order_id)
    assert journal.get("bot-1").ccxt_status is None
    journal.update_status("bot-1", "acknowledged")
    assert journal.get("bot-1").ccxt_status == "open"


def test_claim_retry_only_for_never_received_and_only_once(journal: OrderJournal) -> None:
    intent(journal, state=SENT_UNKNOWN)
    assert journal.claim_retry("bot-1") is None  # unresolved: nobody may place it again
    journal.update_status("bot-1", "rejected", reason=ABSENT_AFTER_SYNC)
    assert journal.get("bot-1").never_received
    claimed = journal.claim_retry("bot-1")
    assert claimed is not None and claimed.state == SENT_UNKNOWN and claimed.reason.startswith("retry after: ")
    assert journal.claim_retry("bot-1") is None  # the second claimer loses: one send
    journal.update_status("bot-1", "rejected", reason="InvalidOrder: 201 margin")
    assert not journal.get("bot-1").never_received and journal.claim_retry("bot-1") is None


def test_claim_retry_races_across_threads_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    with OrderJournal(path, exchange="ibkr", account="DU123") as first:
        intent(first, state=SENT_UNKNOWN)
        first.update_status("bot-1", "rejected", reason=NEVER_SENT)
    journals = [OrderJournal(path, exchange="ibkr", account="DU123") for _ in range(8)]
    wins: list[bool] = []
    barrier = threading.Barrier(len(journals))

    def claim(j: OrderJournal) -> None:
        barrier.wait()
        wins.append(j.claim_retry("bot-1") is not None)

    threads = [threading.Thread(target=claim, args=(j,)) for j in journals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in journals:
        j.close()
    assert sorted(wins) == [False] * 7 + [True]


def test_fills_exactly_once_and_fee_arriving_late(journal: OrderJournal) -> None:
    intent(journal)
    assert journal.record_fill("e1", client_order_id="bot-1", amount=4, price=187.4, timestamp=1) is True
    assert journal.record_fill("e1", client_order_id="bot-1", amount=4, price=187.4, timestamp=1) is False
    assert journal.fills("bot-1")[0].fee_cost is None
    assert journal.record_fee("e1", 1.0, "USD") is True
    assert journal.record_fee("e1", 1.0, "USD") is True  # idempotent
    fill = journal.get_fill("e1")
    assert (fill.fee_cost, fill.fee_currency) == (1.0, "USD")
    # a commission that overtakes its execution is parked and folded in
    assert journal.record_fee("e2", 0.5, "USD") is False
    assert journal.record_fill("e2", client_order_id="bot-1", amount=6, price=187.5, timestamp=2)
    assert journal.get_fill("e2").fee_cost == 0.5
    assert [f.exec_id for f in journal.fills("bot-1")] == ["e1", "e2"]
    assert sum(f.amount for f in journal.fills()) == 10


def test_a_fill_recorded_before_its_order_was_known_gets_its_owner_from_the_orders_write(
        journal: OrderJournal) -> None:
    """Reconciliation may read a fill while the placement that made it is still being resolved (its
    dealReference not yet attached) and record it with no owner; the order's own settled write then
    names it. A fill that has an owner keeps it."""
    intent(journal)
    intent(journal, "bot-2")
    assert journal.record_fill("e1", amount=4, price=187.4, timestamp=1) is True
    assert journal.fills("bot-1") == []
    journal.update_status("bot-1", "closed", filled=4, remaining=0,
                          fills=[{"exec_id": "e1", "client_order_id": "bot-1", "amount": 4, "price": 187.4}])
    assert [f.exec_id for f in journal.fills("bot-1")] == ["e1"]
    assert journal.record_fill("e1", client_order_id="bot-2", amount=4, price=187.4) is False
    assert [f.exec_id for f in journal.fills("bot-1")] == ["e1"] and journal.fills("bot-2") == []


def test_accounts_sharing_a_file_do_not_see_each_other(at: At) -> None:
    a = OrderJournal(at("j.sqlite"), exchange="ibkr", account="A")
    b = OrderJournal(at("j.sqlite"), exchange="capitalcom", account="A")
    intent(a, "same-id")
    assert b.get("same-id") is None
    assert intent(b, "same-id")[1] is True
    a.close()
    b.close()


def test_null_journal_keeps_the_interface_in_memory() -> None:
    j = open_journal(None, exchange="ibkr")
    assert isinstance(j, NullJournal) and not j.persistent and j.path is None
    assert intent(j)[1] and not intent(j)[1]
    assert j.record_fill("x", amount=1, price=1) and not j.record_fill("x", amount=1, price=1)


def test_open_journal_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_journal_path("ibkr", "DU 1/2") == tmp_path / "state/ccxt-brokers/journal-ibkr-DU_1_2.sqlite"
    j = open_journal(USE_DEFAULT, exchange="ibkr", account="DU1")
    assert j.path == tmp_path / "state/ccxt-brokers/journal-ibkr-DU1.sqlite" and j.path.exists()
    j.close()
    k = open_journal(str(tmp_path / "custom.sqlite"), exchange="ibkr")
    assert open_journal(k, exchange="ibkr") is k
    k.close()
    with pytest.raises(TypeError):
        open_journal(42, exchange="ibkr")


def test_thread_safe(journal: OrderJournal) -> None:
    def work(n: int) -> None:
        for i in range(25):
            intent(journal, f"t{n}-{i}")
            journal.record_fill(f"e{n}-{i}", client_order_id=f"t{n}-{i}", amount=1, price=1)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(journal.unresolved()) == 100 and len(journal.fills()) == 100


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_intent_survives_sigkill(at: At) -> None:
    """A child records intent, marks it sent and is SIGKILLed mid-flight; a new process sees both."""
    path = at("crash.sqlite")
    child = subprocess.Popen(
        _python(
            f"""
            import sys, time
            from normalization.runtime.journal import OrderJournal
            j = OrderJournal({str(path)!r}, exchange="ibkr", account="DU1")
            j.record_intent("c1", symbol="AAPL/USD", side="buy", type="market", amount=1)
            j.record_intent("c2", symbol="AAPL/USD", side="buy", type="market", amount=2)
            j.mark_sent("c2")
            print("ready", flush=True)
            time.sleep(60)
            """
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    j = OrderJournal(path, exchange="ibkr", account="DU1")
    assert {o.client_order_id: o.state for o in j.unresolved()} == {"c1": PENDING_SEND, "c2": SENT_UNKNOWN}
    j.close()


def test_two_processes_share_one_file(at: At) -> None:
    """Two processes race to record the same clientOrderIds and fills; each id exists exactly once."""
    path = at("shared.sqlite")
    code = f"""
        import sys
        from normalization.runtime.journal import OrderJournal
        j = OrderJournal({str(path)!r}, exchange="ibkr", account="DU1")
        created = fills = 0
        for i in range(40):
            _, new = j.record_intent(f"o{{i}}", symbol="AAPL/USD", side="buy", type="market", amount=1)
            created += new
            fills += j.record_fill(f"x{{i}}", client_order_id=f"o{{i}}", amount=1, price=1)
        print(created, fills)
        """
    procs = [subprocess.Popen(_python(code), cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=30)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(int(o[0]) for o in outs) == 40  # every intent created by exactly one process
    assert sum(int(o[1]) for o in outs) == 40  # every fill recorded by exactly one process
    j = OrderJournal(path, exchange="ibkr", account="DU1")
    assert len(j.unresolved()) == 40 and len(j.fills()) == 40
    j.close()


def test_unchanged_updates_do_not_write(at: At) -> None:
    now = [1000]
    j = OrderJournal(at("j.sqlite"), exchange="ibkr", now_ms=lambda: now[0])
    intent(j)
    j.attach_ids("bot-1", perm_id=5)
    j.update_status("bot-1", "open", {"a": 1}, filled=0)
    now[0] = 2000
    assert j.attach_ids("bot-1", perm_id=5).updated == 1000
    assert j.update_status("bot-1", "open", {"a": 1}, filled=0) is False
    assert j.get("bot-1").updated == 1000
    assert j.update_status("bot-1", "open", filled=2) is False  # progress, not a state change
    assert j.get("bot-1").filled == 2 and j.get("bot-1").updated == 2000
    with pytest.raises(KeyError):
        j.attach_ids("nobody", perm_id=1)
    j.close()


def test_purge_drops_only_old_terminal_orders(at: At) -> None:
    now = [1000]
    j = OrderJournal(at("j.sqlite"), exchange="ibkr", now_ms=lambda: now[0])
    for cid in ("done", "live", "unknown"):
        intent(j, cid)
    j.update_status("done", "closed")
    j.update_status("live", "open")
    j.record_fill("e", client_order_id="done", amount=1, price=1)
    now[0] = 5000
    assert j.purge(before_ms=2000) == 1
    assert j.get("done") is None and j.fills() == [] and j.history("done") == []
    assert {o.client_order_id for o in j.orders()} == {"live", "unknown"}
    j.close()


def test_sync_modes(at: At) -> None:
    assert OrderJournal(at("a.sqlite"), exchange="x").sync == "full"
    assert open_journal(str(at("b.sqlite")), exchange="x", sync="normal").sync == "normal"
    with pytest.raises(ValueError, match="sync"):
        OrderJournal(at("c.sqlite"), exchange="x", sync="eventually")


def test_intent_recorded_as_sent_is_one_history_entry(journal: OrderJournal) -> None:
    order, created = intent(journal, state=SENT_UNKNOWN)
    assert created and order.state == SENT_UNKNOWN and order == journal.get("bot-1")
    assert journal.mark_sent("bot-1") is False  # nothing left to flip: the caller must not send twice
    assert [h.state for h in journal.history("bot-1")] == [SENT_UNKNOWN]


def test_version_1_file_upgrades_in_place(tmp_path: Path) -> None:
    """A journal written by schema version 1 (history written by the library, no triggers) upgrades in place."""
    import sqlite3

    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO orders (exchange, account, client_order_id, symbol, side, type, amount, state, created, updated)"
        " VALUES ('ibkr', 'DU123', 'old-1', 'AAPL/USD', 'buy', 'limit', 1, 'sent_unknown', 1, 1)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with OrderJournal(path, exchange="ibkr", account="DU123") as j:
        assert j.update_status("old-1", "open")
        assert [h.state for h in j.history("old-1")] == ["open"]
        intent(j, "new-1")
        assert [h.state for h in j.history("new-1")] == [PENDING_SEND]
        assert j.get("old-1").latency is None  # written before version 3: no stage known
        intent(j, "new-2", latency=Stamps(1, 2))
        assert j.get("new-2").latency == Stamps(1, 2)
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    check.close()


def test_status_with_ids_is_one_write(journal: OrderJournal) -> None:
    intent(journal, state=SENT_UNKNOWN)
    assert journal.update_status("bot-1", "open", filled=0, remaining=10, ids={"order_id": 7, "perm_id": 99})
    row = journal.get("bot-1")
    assert (row.state, row.order_id, row.perm_id) == ("open", "7", "99")
    assert journal.find_by(perm_id=99).client_order_id == "bot-1"
    # Same status, a new id only: still written; nothing new at all: no write.
    assert journal.update_status("bot-1", "open", ids={"deal_id": "D1"}) is False
    assert journal.get("bot-1").deal_id == "D1"
    updated = journal.get("bot-1").updated
    assert journal.update_status("bot-1", "open", ids={"perm_id": 99, "order_id": None}) is False
    assert journal.get("bot-1").updated == updated and journal.get("bot-1").order_id == "7"
    with pytest.raises(TypeError):
        journal.update_status("bot-1", "open", ids={"dealid": "x"})


def _committed(where: Any, cid: str) -> bool:
    """Whether another connection (another process, or the disk after a crash) sees the order now."""
    if str(where).startswith("postgresql://"):
        import psycopg

        from normalization.runtime.journal_postgres import PostgresStore

        conninfo, schema = PostgresStore._conninfo(str(where))
        with psycopg.connect(conninfo, autocommit=True) as other:
            query = f'SELECT COUNT(*) FROM "{schema}".orders WHERE client_order_id=%s'
            return other.execute(query, (cid,)).fetchone()[0] == 1
    import sqlite3

    with sqlite3.connect(str(where)) as other:
        return other.execute("SELECT COUNT(*) FROM orders WHERE client_order_id=?", (cid,)).fetchone()[0] == 1


INTENT = {"symbol": "AAPL/USD", "side": "buy", "type": "limit", "amount": 1.0, "price": 10.0}


@pytest.mark.parametrize("sync, keeps_id", [("full", True), ("normal", False), ("full", False)])
def test_sending_commits_before_the_send_unless_the_broker_keeps_the_id(at: At, sync: str,
                                                                         keeps_id: bool) -> None:
    path = at("j.sqlite")
    journal = OrderJournal(path, exchange="ibkr", sync=sync)
    with journal.sending("c-1", **INTENT, broker_keeps_id=keeps_id) as (row, created):
        assert created and row.state == SENT_UNKNOWN
        assert _committed(path, "c-1")  # before a byte leaves
    journal.close()


@pytest.mark.parametrize("sync", ["normal", "behind"])
def test_on_postgresql_every_intent_is_committed_before_the_send(pg_server: Any, sync: str) -> None:
    """A write over the network can fail after the send (the server going away): on PostgreSQL the
    intent is committed before the order leaves also where SQLite would commit it while it travels."""
    url = pg_server.fresh_url()
    with OrderJournal(url, exchange="ibkr", sync=sync) as journal:
        with journal.sending("own-1", **INTENT, broker_keeps_id=True) as (row, created):
            assert created and _committed(url, "own-1")
        assert journal.wait_durable(10)


def test_sending_with_the_broker_keeping_the_id_commits_while_the_order_travels(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = OrderJournal(path, exchange="ibkr", sync="normal")
    with journal.sending("own-1", **INTENT, broker_keeps_id=True) as (row, created):
        assert created and not _committed(path, "own-1")  # inserted, not yet committed
    assert _committed(path, "own-1")
    with journal.sending("own-1", **INTENT, broker_keeps_id=True) as (row, created):
        assert not created and row.client_order_id == "own-1"  # a repeat is refused before the send
    with pytest.raises(ConnectionError):  # the send failing still leaves the row to ask the broker about
        with journal.sending("own-2", **INTENT, broker_keeps_id=True):
            raise ConnectionError("the socket broke mid-send")
    assert _committed(path, "own-2")
    journal.close()


@pytest.mark.parametrize("sync, defers", [("full", False), ("behind", True), ("normal", True)])
def test_an_order_journaled_after_its_send_reads_as_if_its_intent_came_first(at: At, sync: str,
                                                                              defers: bool) -> None:
    journal = OrderJournal(at("j.sqlite"), exchange="ibkr", sync=sync, now_ms=lambda: 2_000)
    remote = str(at("j.sqlite")).startswith("postgresql")  # a server may be down: never journal after a send
    assert journal.defers_new_intents is (defers and not remote)
    assert NullJournal(exchange="ibkr").defers_new_intents  # nothing in memory outlives the process
    journal.record_after_send("gen-1", **INTENT, sent=1_000, state="open", filled=0, remaining=1,
                              ids={"order_id": 7, "perm_id": 99})
    row = journal.get("gen-1")
    assert row is not None and (row.state, row.order_id, row.perm_id, row.created) == ("open", "7", "99", 1_000)
    assert [(h.state, h.timestamp) for h in journal.history("gen-1")] == [(SENT_UNKNOWN, 1_000), ("open", 2_000)]
    journal.record_after_send("gen-2", **INTENT, sent=1_500, state=SENT_UNKNOWN)  # no answer yet
    assert [h.state for h in journal.history("gen-2")] == [SENT_UNKNOWN]
    # Adopted by reconciliation before the write ran: the write brings the row up to date instead.
    journal.record_intent("gen-3", **INTENT, state=SENT_UNKNOWN)
    journal.record_after_send("gen-3", **INTENT, sent=1_500, state="closed", filled=1, remaining=0)
    assert journal.get("gen-3").state == "closed"  # type: ignore[union-attr]
    journal.close()


def test_behind_mode_flushes_off_the_send_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sync="behind": the intent is committed before the send, never fsynced there; a background thread
    fsyncs the WAL right after, and wait_durable() returns once it has."""
    import normalization.runtime.journal_disk as journal_disk

    synced: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(journal_disk.os, "fdatasync", recording)
    path = tmp_path / "j.sqlite"
    journal = OrderJournal(path, exchange="capitalcom", sync="behind")
    assert journal._store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync in the commit
    with journal.sending("c-1", **INTENT) as (row, created):
        assert created and _committed(path, "c-1")  # committed before the send, as in the other modes
    assert journal.wait_durable(10)
    assert synced and all(name.startswith("journal-disk") for name in synced)
    journal.record_intent("c-2", **INTENT)
    assert journal.wait_durable(10) and len(synced) >= 2
    journal.close()


def test_journal_sync_modes_are_validated() -> None:
    import ccxt

    from normalization.runtime.journal import sync_option

    for mode in ("full", "behind", "normal"):
        assert sync_option("x", {"journalSync": mode}) == mode
    with pytest.raises(ccxt.BadRequest, match="behind"):
        sync_option("x", {"journalSync": "fast"})


def test_checkpoints_run_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's automatic checkpoint (fsyncs included, on the committing thread) is off; the journal's
    disk thread copies the WAL into the database every CHECKPOINT_EVERY commits instead."""
    import shutil
    import sqlite3

    import normalization.runtime.journal_sqlite as journal_module

    monkeypatch.setattr(journal_module, "CHECKPOINT_EVERY", 5)
    path = tmp_path / "j.sqlite"
    journal = OrderJournal(path, exchange="ibkr", sync="normal")
    assert journal._store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for n in range(5):
        journal.record_intent(f"c-{n}", **INTENT)
    disk = journal._store._disk
    assert disk is not None
    disk.flush()  # queued behind the checkpoint: once it is done, so is the checkpoint
    assert disk.wait(10) and disk.checkpoints == 1
    shutil.copy(path, tmp_path / "database-only.sqlite")  # the database file alone, without its WAL
    with sqlite3.connect(str(tmp_path / "database-only.sqlite")) as copy:
        assert copy.execute("SELECT COUNT(*) FROM orders").fetchone()[0] >= 4  # the checkpoint copied them
    journal.close()


def test_new_files_use_small_pages_and_old_files_keep_theirs(tmp_path: Path) -> None:
    import sqlite3

    journal = OrderJournal(tmp_path / "new.sqlite", exchange="x", sync="normal")
    assert journal._store._conn.execute("PRAGMA page_size").fetchone()[0] == 1024
    assert journal._store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    journal.close()
    with sqlite3.connect(str(tmp_path / "old.sqlite")) as old:  # a file an earlier version created
        old.execute("PRAGMA page_size = 4096")
        old.execute("CREATE TABLE t (x)")
    journal = OrderJournal(tmp_path / "old.sqlite", exchange="x", sync="normal")
    assert journal._store._conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    journal.record_intent("c-1", **INTENT)
    assert journal.get("c-1") is not None
    journal.close()


def test_latency_stamps_are_kept_and_merged(journal: OrderJournal) -> None:
    """Each order's stage stamps: written with the intent, merged by status writes and fills (the
    earliest intent / submit / ack / first fill, the latest last fill), and read back in order."""
    intent(journal, state=SENT_UNKNOWN, latency=Stamps(100, 200))
    assert journal.get("bot-1").latency == Stamps(100, 200)
    assert journal.update_status("bot-1", "open", latency=Stamps(100, 200, 300)) is True
    assert journal.get("bot-1").latency == Stamps(100, 200, 300)
    assert journal.update_status("bot-1", "open", latency=Stamps(100, 200, 300)) is False  # nothing new
    for exec_id, at in (("x-1", 500), ("x-2", 900), ("x-3", 700)):  # x-3: an older fill seen later
        journal.record_fill(exec_id, amount=1, price=1, client_order_id="bot-1",
                            latency=Stamps(first_fill=at, last_fill=at))
    assert journal.get("bot-1").latency == Stamps(100, 200, 300, 500, 900)
    # A stage stamped by another process's clock earlier than the stage before it reads as that stage.
    journal.record_latency("bot-1", Stamps(ack=50))
    assert journal.get("bot-1").latency == Stamps(100, 200, 200, 500, 900)
    # record_after_send writes the stamps with the row.
    journal.record_after_send("bot-2", symbol="AAPL/USD", side="buy", type="market", amount=1, sent=1,
                              state="closed", latency=Stamps(1, 2, 3, 4, 4))
    assert journal.get("bot-2").latency == Stamps(1, 2, 3, 4, 4)
    with journal.sending("bot-3", symbol="AAPL/USD", side="buy", type="market", amount=1,
                         latency=Stamps(7, 8)) as (row, created):
        assert created and row.latency == Stamps(7, 8)
    assert journal.get("bot-3").latency == Stamps(7, 8)
    intent(journal, "bot-4")
    assert journal.get("bot-4").latency is None
