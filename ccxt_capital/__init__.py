"""Capital.com for unmodified ccxt bots: the CapitalTrader adapter and its simulator (``ccxt_capital.sim``)."""
