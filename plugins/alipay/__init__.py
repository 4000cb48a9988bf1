"""Alipay OpenAPI (RSA2) channel plugin, with a simulator of Alipay's side (simulator.py)."""
from gateway.hookspecs import hookimpl
from plugins.alipay.channel import AlipayChannel


@hookimpl
def register_channels(register):  # noqa: ANN001, ANN201
    register(AlipayChannel)
