"""Where paymux may send a merchant's events: only to public internet addresses.

A merchant names the URL (`notify_url`), and paymux POSTs to it from inside the platform's network,
so a URL that reaches loopback, private, link-local, shared (CGNAT), multicast, reserved or cloud
metadata addresses would let a merchant probe or call services only the platform can reach. Such a
URL is refused when it is given (a 400, nothing written) and again at every delivery, where the
name is resolved once, checked, and connected to at the address checked (DNS rebinding: httpx is
never left to resolve it again), redirects never followed, proxies from the environment never used.

`notify_allow_private_networks = true` (development: a receiver on this machine) lets everything but
the cloud metadata addresses through. A name that does not resolve when the URL is given is
accepted (the merchant's DNS may be late, and the delivery check is the one that counts): its events
wait, refused, until it resolves to an address paymux may send to.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Union

import httpx

from gateway.errors import PaymuxError, invalid_request

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
RESOLVE_TIMEOUT_SECONDS = 2.0

# Instance metadata services (AWS, GCP, Azure, OpenStack; AWS's IPv6 one; AWS ECS tasks; Alibaba Cloud;
# Tencent Cloud): never a merchant's endpoint, whatever the settings.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "169.254.0.23"))
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "metadata.tencentyun.com"})
_SHARED = ipaddress.ip_network("100.64.0.0/10")        # carrier-grade NAT: is_private does not cover it
_NAT64 = ipaddress.ip_network("64:ff9b::/96")          # an IPv4 address behind a NAT64 prefix


class Refused(Exception):
    """The URL leads somewhere paymux does not send to; the message says what kind of place, never
    whether anything answers there."""


def refusal(address: Address, allow_private: bool = False) -> str | None:
    """Why paymux does not send to this address, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded, allow_private)
    if address in METADATA:
        return "a cloud metadata address"
    if allow_private:
        return None
    for kind, matches in (("an unspecified address", address.is_unspecified),
                          ("a loopback address", address.is_loopback),
                          ("a link-local address", address.is_link_local),
                          ("a multicast address", address.is_multicast),
                          ("a private address", address.is_private), ("a reserved address", address.is_reserved),
                          ("a shared (CGNAT) address", address in _SHARED),
                          ("a site-local address", getattr(address, "is_site_local", False)),
                          ("an address that is not public", not address.is_global)):
        if matches:
            return kind
    return None


def _name_refusal(host: str, allow_private: bool) -> str | None:
    name = host.lower().rstrip(".")
    if name in METADATA_NAMES:
        return "a cloud metadata address"
    if not allow_private and (name == "localhost" or name.endswith(".localhost")
                              or name in ("localhost.localdomain", "ip6-localhost", "ip6-loopback")):
        return "a loopback address"
    return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses a name resolves to (getaddrinfo, in a thread, not on the event loop)."""
    infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                                   RESOLVE_TIMEOUT_SECONDS)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise Refused(f"not a URL paymux can send to ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise Refused("not an http(s) URL with a host")
    return parsed


async def _addresses(parsed: httpx.URL, allow_private: bool) -> list[Address]:
    """The addresses to send to, each one checked; Refused if any is forbidden. OSError/TimeoutError
    if the name does not resolve."""
    host = parsed.raw_host.decode("ascii")
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        if (reason := _name_refusal(host, allow_private)) is not None:
            raise Refused(f"the URL's host is {reason}")
        # Numeric spellings httpx leaves as names (0x7f000001, 2130706433, 127.1) resolve here as they would there.
        addresses = await resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
        if not addresses:
            raise OSError("no address")
    for address in addresses:
        if (reason := refusal(address, allow_private)) is not None:
            raise Refused(f"the URL's host {'is' if literal else 'resolves to'} {reason}")
    return addresses


async def check_notify_url(url: str | None, allow_private: bool, param: str = "notify_url") -> None:
    """When a merchant gives a URL: a 400 `notify_url_forbidden` if it leads to a forbidden address.
    A name that does not resolve now is let through; every delivery checks again."""
    if url is None:
        return
    try:
        await _addresses(_parse(url), allow_private)
    except Refused as exc:
        raise _forbidden(param, str(exc)) from None
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return


def _forbidden(param: str, why: str) -> PaymuxError:
    return invalid_request("notify_url_forbidden", f"{param} is refused: {why}; paymux sends events only to "
                           "public internet addresses", param)


@dataclass(frozen=True)
class Pinned:
    """A request to send to the address that was checked, naming the host the merchant gave."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def pin(url: str, allow_private: bool) -> Pinned:
    """At delivery: resolve once, check every address, and aim the request at the first. Refused if
    the URL leads somewhere forbidden or does not resolve."""
    parsed = _parse(url)
    try:
        addresses = await _addresses(parsed, allow_private)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        raise Refused("the URL's host does not resolve") from None
    host = parsed.raw_host.decode("ascii")
    if _literal(host) is not None:
        return Pinned(parsed)
    headers = {"Host": parsed.netloc.decode("ascii").rsplit("@", 1)[-1]}
    extensions = {}
    if parsed.scheme == "https":
        # TLS checks the certificate against the name, not the address. The client pools connections by
        # address, so a TLS connection is never kept for a request to another name behind that address.
        extensions["sni_hostname"] = host
        headers["Connection"] = "close"
    return Pinned(parsed.copy_with(host=str(addresses[0])), headers, extensions)
