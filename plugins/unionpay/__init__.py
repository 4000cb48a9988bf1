"""UnionPay ACP 5.1.0 channel plugin (gateway payment, query, refund and cancel, 代付, notifications, the ZM
statement), with a simulator of UnionPay's side (simulator.py)."""
from gateway.hookspecs import hookimpl
from plugins.unionpay.channel import UnionPayChannel


@hookimpl
def register_channels(register):  # noqa: ANN001, ANN201
    register(UnionPayChannel)
