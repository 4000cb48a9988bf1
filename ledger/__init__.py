"""paymux ledger: double-entry bookkeeping and reconciliation (built in a later issue).

It must never import gateway.api: the ledger knows nothing of HTTP.
"""
