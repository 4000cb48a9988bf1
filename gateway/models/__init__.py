"""Tables of the gateway. Timestamps are naive UTC; amounts are integers in minor units.
`from gateway.models import X` names every table, whichever module of this package holds it."""
from sqlmodel import SQLModel

from gateway.models.channels import ChannelCircuit, ChannelDay, ChannelExchange, ChannelHealth
from gateway.models.console import (AuditEntry, ChannelAccountChange, ChannelAccountOverride, ConsoleSession,
                                    Operator, ReconRequest, SignInGuard)
from gateway.models.marketplace import Payout, Receiver, Split, SplitRelease, SplitReturn
from gateway.models.merchants import IdempotencyKey, Merchant, MerchantEvent, RequestNonce
from gateway.models.operation import OperationColumns, operation_columns
from gateway.models.payments import Attempt, ChannelCallback, Payment, Refund
from gateway.models.recon import ReconItem, ReconProposal, ReconRun, Settlement
from gateway.models.funds import BankLine, BankStatement
from gateway.models.close import CloseDay, CloseStep, MerchantStatement

__all__ = ["SQLModel", "OperationColumns", "operation_columns", "Merchant", "RequestNonce", "IdempotencyKey", "MerchantEvent", "Payment",
           "Attempt", "Refund", "ChannelCallback", "Payout", "Receiver", "Split", "SplitReturn", "SplitRelease",
           "ReconRun", "ReconItem", "ReconProposal", "Settlement", "ChannelHealth", "ChannelCircuit", "ChannelDay",
           "ChannelExchange", "Operator", "AuditEntry", "ConsoleSession", "SignInGuard", "ChannelAccountOverride",
           "ChannelAccountChange", "ReconRequest", "BankStatement", "BankLine", "CloseDay", "CloseStep", "MerchantStatement"]
