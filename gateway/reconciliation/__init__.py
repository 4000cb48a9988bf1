"""Reconciliation and settlement: one home.

  match.py       the pure core: a statement's lines against our records, as polars set operations
  partitions.py  both sides cut into hash partitions of the join key and spilled, matched one at a time
  store.py       the statement files, run and item rows, our side in bulk, a run's one write transaction
  run.py         Reconciler: a statement for an account and day, end to end, and the rules that ask the channel
  review.py      maker-checker: people propose and approve what no rule resolved
  settlement.py  Settler: the money of reconciled days moves (channel, merchants, advances)
  errors.py      ReconError
What operators read of all this (runs, items, the daily report) is in gateway/reports.py.
"""
