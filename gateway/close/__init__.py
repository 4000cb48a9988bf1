"""The daily close: what runs every day with nobody typing a command.

For each account in `[close]` (channel accounts: when their statement is published; reserve accounts:
when the bank file arrives) and each business day, a `paymux worker` leases the (account, day) row and
runs the steps of gateway/close/steps.py in order: download the statement (tried again on a back-off
while the channel has not published it; an alert and a metric past the deadline), reconcile, settle
what is clean (hold what is not, with the reason), produce the merchants' statements, the daily report.
Every step is idempotent and records its state, times and counts; a day can be run again.
"""
from gateway.close.schedule import CloseSchedule
from gateway.close.steps import STEPS, Step, StepResult, register
from gateway.close import funds as _funds  # noqa: F401,E402  (registers the reserve accounts' step)

__all__ = ["CloseSchedule", "STEPS", "Step", "StepResult", "register"]
