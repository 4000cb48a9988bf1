"""The sandbox channel: a real channel in miniature that merchants develop against."""
from gateway.hookspecs import hookimpl
from plugins.mock.channel import MockChannel


@hookimpl
def register_channels(register):  # noqa: ANN001, ANN201
    register(MockChannel)
