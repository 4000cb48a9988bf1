"""The plugin contract holds at discovery: a channel type's declared capabilities and the methods it
overrides agree (a disagreement is a start-up error naming both), a risk plugin's RULES_KEY names a
table, and a flow a channel does not offer says so."""
from __future__ import annotations

import asyncio

import pytest

from gateway.channel import (CAPABILITY_METHODS, Capability, Channel, FlowNotSupported, PayoutResult, RefundRequest,
                             RefundResult, capability_mismatches)
from gateway.errors import ConfigError
from gateway.hookspecs import hookimpl
from gateway.plugins import discover_channel_types, make_plugin_manager
from plugins.alipay.channel import AlipayChannel
from plugins.mock.channel import MockChannel
from plugins.unionpay.channel import UnionPayChannel
from plugins.wechatpay.channel import WechatPayChannel


def plugin_offering(channel_type: type) -> type:
    class Plugin:
        @staticmethod
        @hookimpl
        def register_channels(register):  # noqa: ANN001, ANN205
            register(channel_type)
    return Plugin


class RefundsWithoutSaying(Channel):
    name = "refunds_without_saying"
    capabilities = frozenset({Capability.PAY})

    async def create(self, request):  # noqa: ANN001, ANN201
        raise AssertionError

    async def refund(self, request: RefundRequest) -> RefundResult:
        raise AssertionError


class PaysOutWithoutQuerying(Channel):
    name = "pays_out_without_querying"
    capabilities = frozenset({Capability.PAYOUT})

    async def payout(self, request):  # noqa: ANN001, ANN201
        return PayoutResult(outcome=None)


def test_a_method_overridden_without_its_capability_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError) as refused:
        discover_channel_types(make_plugin_manager([plugin_offering(RefundsWithoutSaying)]))
    message = str(refused.value)
    assert "refunds_without_saying" in message and "refund()" in message and "'refund'" in message


def test_a_capability_declared_without_its_method_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError) as refused:
        discover_channel_types(make_plugin_manager([plugin_offering(PaysOutWithoutQuerying)]))
    assert "declares capability 'payout' but does not override query_payout()" in str(refused.value)


def test_every_capability_has_its_methods_and_every_built_in_channel_agrees_with_itself() -> None:
    assert set(CAPABILITY_METHODS) == set(Capability)
    for channel_type in (MockChannel, WechatPayChannel, AlipayChannel, UnionPayChannel):
        assert capability_mismatches(channel_type) == [], channel_type.name
    assert {"mock", "wechatpay", "alipay", "unionpay"} <= set(discover_channel_types(make_plugin_manager()))


def test_a_flow_a_channel_does_not_offer_says_which_capability_it_lacks() -> None:
    channel = RefundsWithoutSaying.__new__(RefundsWithoutSaying)
    with pytest.raises(FlowNotSupported) as unsupported:
        asyncio.run(channel.query_payout("p-1"))
    assert unsupported.value.capability is Capability.PAYOUT
    assert isinstance(unsupported.value, NotImplementedError)


def test_a_rules_key_that_names_no_table_is_a_start_up_error() -> None:
    class broken:  # noqa: N801  (a plugin module stands in as a class)
        RULES_KEY = ["velocity"]

    with pytest.raises(ConfigError, match="RULES_KEY must name a table"):
        make_plugin_manager([broken])
