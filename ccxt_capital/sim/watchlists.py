"""Watchlists: named lists of epics a client keeps on the platform (state; the endpoints are in
:mod:`.watchlist_routes`). They hold no money and change no book, so they live apart from dealing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Watchlist:
    """One list: its id, name, epics in the order added, and whether the client may change it."""

    watchlist_id: str
    name: str
    epics: list[str] = field(default_factory=list)
    system: bool = False


@dataclass
class Watchlists:
    """The client's watchlists, a system one first (read-only, like the platform's own lists)."""

    lists: dict[str, Watchlist] = field(default_factory=dict)
    next_id: int = 1_000_001

    def __post_init__(self) -> None:
        if not self.lists:
            self.add("Most traded", ["US100", "GOLD", "EURUSD", "BTCUSD", "AAPL"], system=True)

    def add(self, name: str, epics: list[str], *, system: bool = False) -> Watchlist:
        watchlist = Watchlist(str(self.next_id), name, list(dict.fromkeys(epics)), system)
        self.next_id += 1
        self.lists[watchlist.watchlist_id] = watchlist
        return watchlist
