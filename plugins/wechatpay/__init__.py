"""WeChat Pay APIv3 channel plugin, with a simulator of WeChat Pay's side (simulator.py)."""
from gateway.hookspecs import hookimpl
from plugins.wechatpay.channel import WechatPayChannel


@hookimpl
def register_channels(register):  # noqa: ANN001, ANN201
    register(WechatPayChannel)
