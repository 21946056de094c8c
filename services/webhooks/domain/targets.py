"""Which URLs a subscription may send to.

A webhook makes Leadflow send requests where a caller says; without a policy that
is a way into the internal network (server-side request forgery). So a target
must be http(s) with a host name or address, and every address its name resolves
to must be public, unless the deployment allows private targets (the tests do,
their receivers are on 127.0.0.1). The service resolves the name; this judges it.
"""

import ipaddress
from urllib.parse import urlsplit

from services.runtime.errors import Unprocessable


class TargetRefused(Unprocessable):
    pass


def parse_target(url: str, *, allow_http: bool) -> tuple[str, int]:
    """The host and port `url` sends to; TargetRefused if it is not a usable URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as bad:
        raise TargetRefused(f"not a URL: {bad}", field="url") from bad
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused(f"the URL must use {' or '.join(schemes)}", field="url")
    if not parts.hostname:
        raise TargetRefused("the URL has no host", field="url")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials", field="url")
    if parts.fragment:
        raise TargetRefused("the URL must not have a fragment", field="url")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refused_reason(address: str) -> str | None:
    """Why sending to `address` is not allowed by default, or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "private or reserved"
    if not ip.is_global:
        return "not public"
    return None


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> None:
    """Raise TargetRefused unless every address `host` resolved to may be sent to."""
    if not addresses:
        raise TargetRefused(f"{host} does not resolve to any address", field="url")
    if allow_private:
        return
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            raise TargetRefused(
                f"{host} resolves to {address}, a {reason} address; webhooks go to public addresses only",
                field="url",
            )
