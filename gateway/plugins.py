"""Plugin host: entry-point discovery with pluggy, and config-driven channel accounts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import httpx
import pluggy
from structlog.typing import FilteringBoundLogger

from gateway import hookspecs
from gateway.channel import Capability, Channel, ChannelContext, SettingsError, capability_mismatches
from gateway.clock import Clock
from gateway.config import ChannelAccountConfig, Settings
from gateway.errors import ConfigError, PaymuxError, invalid_request


@dataclass(frozen=True)
class ChannelAccount:
    config: ChannelAccountConfig
    channel: Channel

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def supports(self, capability: Capability) -> bool:
        return capability in self.channel.capabilities


def make_plugin_manager(extra_plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    for plugin in extra_plugins:
        pm.register(plugin)
    for plugin in pm.get_plugins():
        key = hookspecs.rules_key(plugin)
        if key is not None and not (isinstance(key, str) and key):
            raise ConfigError(f"plugin {pm.get_name(plugin)!r}: {hookspecs.RULES_ATTRIBUTE} must name a table of "
                              f"[risk], not {key!r}")
    return pm


def discover_channel_types(pm: pluggy.PluginManager) -> dict[str, type[Channel]]:
    types: dict[str, type[Channel]] = {}

    def register(channel_type: type) -> None:
        if not (isinstance(channel_type, type) and issubclass(channel_type, Channel)):
            raise ConfigError(f"a plugin registered {channel_type!r}, which is not a gateway.channel.Channel")
        name = getattr(channel_type, "name", None)
        if not name:
            raise ConfigError(f"channel type {channel_type.__qualname__} has no name")
        if name in types and types[name] is not channel_type:
            raise ConfigError(f"two plugins register a channel type named {name!r}")
        problems = capability_mismatches(channel_type)
        if problems:
            raise ConfigError(f"channel type {name!r} ({channel_type.__qualname__}) "
                              + "; ".join(problems))
        types[name] = channel_type

    pm.hook.register_channels(register=register)
    return types


class PluginHost:
    """Knows every installed channel type and builds one Channel per configured account."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, clock: Clock, log: FilteringBoundLogger,
                 extra_plugins: Iterable[object] = ()) -> None:
        self.pm = make_plugin_manager(extra_plugins)
        self.channel_types = discover_channel_types(self.pm)
        self.accounts: dict[str, ChannelAccount] = {}
        for config in settings.channel_accounts:
            channel_type = self.channel_types.get(config.plugin)
            if channel_type is None:
                installed = ", ".join(sorted(self.channel_types)) or "none"
                raise ConfigError(
                    f"channel account {config.id!r} names plugin {config.plugin!r}, which is not installed "
                    f"(installed: {installed})"
                )
            try:
                parsed = channel_type.parse_settings(config.settings)
            except SettingsError as exc:
                raise ConfigError(f"channel account {config.id!r} ({config.plugin}): {exc}") from exc
            ctx = ChannelContext(config.id, parsed, http, clock, log.bind(channel_account=config.id),
                                 settings.public_url)
            self.accounts[config.id] = ChannelAccount(config, channel_type(ctx))

    def account(self, account_id: str, *, for_new_payment: bool = False) -> ChannelAccount:
        account = self.accounts.get(account_id)
        if account is None:
            raise invalid_request("unknown_channel", f"No channel account {account_id!r}", "channel")
        if for_new_payment and not account.enabled:
            raise invalid_request("channel_disabled", f"Channel account {account_id!r} is disabled", "channel")
        return account

    def require(self, account: ChannelAccount, capability: Capability) -> None:
        if not account.supports(capability):
            raise PaymuxError(400, "invalid_request_error", "capability_not_supported",
                              f"Channel account {account.id!r} does not support {capability.value}")
