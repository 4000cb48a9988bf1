"""The plugin author's second file (after gateway/hookspecs.py): the Channel base class and the
normalized types a channel plugin returns, all importable from here:

    context.py        Outcome, Capability, the Clock and the ChannelContext a channel is handed
    operations.py     each money operation's request and normalized answer
    notifications.py  callbacks: InboundNotification, ChannelEvent, Acknowledgement
    statements.py     statement files as normalized lines (STATEMENT_COLUMNS)
    base.py           Channel, and CAPABILITY_METHODS: which methods serve which capability

A plugin maps between these types and its channel's wire protocol. It never touches the
database, the ledger or the merchant API; it claims SUCCEEDED or FAILED only when the channel
said so from a verified source, and everything it cannot be sure of is PENDING or UNKNOWN.
This package imports nothing from the rest of paymux.
"""
from __future__ import annotations

from gateway.channel.base import CAPABILITY_METHODS, Channel, FlowNotSupported, SettingsError, capability_mismatches
from gateway.channel.context import Capability, ChannelContext, Clock, Outcome
from gateway.channel.notifications import (Acknowledgement, ChannelEvent, InboundNotification, NotificationRejected,
                                           unstorable)
from gateway.channel.operations import (CreatePayment, Discount, PaymentResult, PayoutRequest, PayoutResult,
                                        RefundRequest, RefundResult, SplitFinish, SplitLimits, SplitRequest,
                                        SplitResult, SplitReturn)
from gateway.channel.statements import (STATEMENT_COLUMNS, ParsedStatement, SplitLine, StatementInvalid,
                                        StatementUnavailable)

__all__ = [
    "Acknowledgement", "CAPABILITY_METHODS", "Capability", "Channel", "ChannelContext", "ChannelEvent", "Clock",
    "CreatePayment", "Discount", "FlowNotSupported", "InboundNotification", "NotificationRejected", "Outcome",
    "ParsedStatement", "PaymentResult", "PayoutRequest", "PayoutResult", "RefundRequest", "RefundResult",
    "STATEMENT_COLUMNS", "SettingsError", "SplitFinish", "SplitLimits", "SplitRequest", "SplitResult", "SplitReturn",
    "SplitLine", "StatementInvalid", "StatementUnavailable", "capability_mismatches", "unstorable",
]
