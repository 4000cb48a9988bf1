"""Funds reconciliation (资金对账): the reserve bank account's statements against the money the books
say moved through it.

  config.py   the reserve accounts: which channel accounts settle into each, how its CSV reads
  parsers.py  MT940 (the mt-940 package), camt.053 (XML), Chinese banks' CSV: one frame of lines
  match.py    the pure core: expected movements against bank lines, in bulk (polars)
  store.py    the statements and lines, the expected movements read from the books, one import's writes
  review.py   the bank's differences resolved by the same maker-checker, booked through suspense
The operator's view (per channel account and day: expected, received, in transit) is in gateway/reports.py.
"""
