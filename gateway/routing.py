"""Channel selection for a new payment. (Failover and limits come with the routing issue.)"""
from __future__ import annotations

from gateway.channel import Capability
from gateway.errors import invalid_request
from gateway.plugins import ChannelAccount, PluginHost


def choose_account(host: PluginHost, requested: str | None, method: str | None, currency: str) -> tuple[ChannelAccount, str]:
    """The account and pay method for a new payment; the merchant's choice when given."""
    if requested is not None:
        account = host.account(requested, for_new_payment=True)
        return account, _check_offer(account, method, currency)
    for account in host.accounts.values():
        if account.enabled and account.supports(Capability.PAY) and _offers(account, method, currency):
            return account, method or account.channel.methods[0]
    raise invalid_request("no_channel_available",
                          f"No enabled channel account offers method {method or 'any'!r} in {currency}", "channel")


def _offers(account: ChannelAccount, method: str | None, currency: str) -> bool:
    channel = account.channel
    return (method is None or method in channel.methods) and (
        channel.currencies is None or currency in channel.currencies)


def _check_offer(account: ChannelAccount, method: str | None, currency: str) -> str:
    channel = account.channel
    if not account.supports(Capability.PAY) or not channel.methods:
        raise invalid_request("capability_not_supported", f"Channel account {account.id!r} does not take payments", "channel")
    if method is not None and method not in channel.methods:
        raise invalid_request("unsupported_method",
                              f"Channel account {account.id!r} offers methods {', '.join(channel.methods)}", "method")
    if channel.currencies is not None and currency not in channel.currencies:
        raise invalid_request("unsupported_currency", f"Channel account {account.id!r} does not take {currency}", "currency")
    return method or channel.methods[0]
