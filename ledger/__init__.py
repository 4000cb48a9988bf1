"""paymux ledger: double-entry bookkeeping.

  core.py     post, post_many, reverse, balances (Ledger)      chart.py    chart of accounts, templates
  booking.py  business events through templates (Booker)       check.py    invariants over the books
  days.py     the business day (BusinessDay)                   reads.py    what others read, in the ledger's signs
  models.py   the tables                                        errors.py   one error per invariant

It imports nothing from gateway/ and knows nothing of HTTP (tests/architecture/test_imports.py says so).
Matching statements is reconciliation's (gateway/reconciliation/match.py), not the books'.
"""
