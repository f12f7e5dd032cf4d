"""Account requests: positions, account updates (single and multi), account summary."""

from __future__ import annotations

import datetime as dt

from . import messages as M
from .connection import SessionBase
from .wire import Fields


class AccountHandlers(SessionBase):
    """Replies built from the ledger; also pushes changes to subscribed clients."""

    # -- account ---------------------------------------------------------------------------
    def req_positions(self, f: Fields) -> None:
        self.positions_sub = True
        with self.sim.ledger.lock:
            positions = list(self.sim.ledger.positions.values())
        for pos in positions:
            if pos.qty:
                self.send(M.position(self.account, pos.instrument, pos.qty, pos.avg_cost, self.version))
        self.send([62, 1])

    def cancel_positions(self, f: Fields) -> None:
        self.positions_sub = False

    def req_account_updates(self, f: Fields) -> None:
        f.int()
        subscribe = f.bool()
        self.account_sub = subscribe
        if not subscribe:
            return
        for key, value, ccy in self.sim.account_values():
            self.send([6, 2, key, value, ccy, self.account])
        self.send_portfolio()
        now = dt.datetime.fromtimestamp(self.sim.clock.now(), dt.timezone.utc)
        self.send([8, 1, f"{now:%H:%M}"])
        self.send([54, 1, self.account])

    def send_portfolio(self, con_ids: set[int] | None = None) -> None:
        for fields in self.sim.portfolio_rows(self.version, con_ids):
            self.send(fields)

    def req_account_updates_multi(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        account = f.str() or self.account
        model = f.str()
        self.multi_subs[req_id] = model
        for key, value, ccy in self.sim.account_values():
            self.send([73, 1, req_id, account, model, key, value, ccy])
        self.send([74, 1, req_id])

    def cancel_account_updates_multi(self, f: Fields) -> None:
        f.int()
        self.multi_subs.pop(f.int(), None)

    def req_account_summary(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        f.str()  # group
        tags = [t.strip() for t in f.str().split(",") if t.strip()]
        self.summary_subs[req_id] = tags
        self.send_summary(req_id, tags)
        self.send([64, 1, req_id])

    def send_summary(self, req_id: int, tags: list[str]) -> None:
        for tag, value, ccy in self.sim.summary_values(tags):
            self.send([63, 1, req_id, self.account, tag, value, ccy])

    def cancel_account_summary(self, f: Fields) -> None:
        f.int()
        self.summary_subs.pop(f.int(), None)


    def on_account_change(self, con_ids: set[int], prices_only: bool = False) -> None:
        if self.positions_sub and not prices_only:
            with self.sim.ledger.lock:
                positions = [self.sim.ledger.positions[c] for c in con_ids if c in self.sim.ledger.positions]
            for pos in positions:
                self.send(M.position(self.account, pos.instrument, pos.qty, pos.avg_cost, self.version))
        if self.account_sub or self.multi_subs:
            values = self.sim.account_values()
            if self.account_sub:
                for key, value, ccy in values:
                    self.send([6, 2, key, value, ccy, self.account])
                self.send_portfolio(con_ids)
            for req_id, model in self.multi_subs.items():
                for key, value, ccy in values:
                    self.send([73, 1, req_id, self.account, model, key, value, ccy])
        if not prices_only:
            for req_id, tags in self.summary_subs.items():
                self.send_summary(req_id, tags)

