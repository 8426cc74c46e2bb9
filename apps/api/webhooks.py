"""Webhook delivery that cannot be turned against the inside of the network (SSRF).

The host is resolved once; every address it has must be public (no private, loopback,
link-local, multicast, unspecified or reserved address, nor one hidden in an IPv6 form
such as ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d or 6to4). The request then goes to the
address that was checked (Host header and TLS SNI/certificate check keep the name), so a
second lookup cannot answer differently. No redirects are followed, the whole delivery
has one deadline, at most API_WEBHOOK_MAX_RESPONSE_BYTES of the answer are read, and the
error recorded on the job is generic: it must not tell a caller what is listening where.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the low 32 bits are IPv4
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (also :: and ::1)

BAD_URL = "Give an http:// or https:// URL."
NO_PUBLIC_ADDRESS = ("The webhook host must resolve to public addresses only; a private "
                     "address or an unknown host is refused.")
NOT_DELIVERED = "The webhook could not be delivered."

# Certificates are checked against the URL's host name (sent as SNI); True: the usual CAs.
TLS_VERIFY: bool | ssl.SSLContext = True

# Lookups run here, not in asyncio's default executor: asyncio.run() waits for that one to
# drain, so a hanging resolver would outlast the deadline.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


class UnsafeWebhook(ValueError):
    """Not an http(s) URL of a public host; the message is safe to show."""


class WebhookFailed(Exception):
    """The delivery failed; the job retries with backoff unless `transient` is false."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA) hostname or address literal, without brackets
    port: int
    authority: str  # the Host header: host[:port], the port only if the URL gives one
    path: str  # path and query
    auth: tuple[str, str] | None = None  # user:password@ of the URL, sent as Basic auth


def parse(url: str) -> Target:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as err:
        raise UnsafeWebhook(BAD_URL) from err
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeWebhook(BAD_URL)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return Target(parts.scheme, host, port, authority, path, auth)


def is_public(address: IPAddress) -> bool:
    """True for an address anyone on the internet could reach, judged by what it routes to."""
    if address.version == 6:
        if address.ipv4_mapped:
            return is_public(address.ipv4_mapped)
        if address in NAT64:  # the gateway would forward to the embedded IPv4 address
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in IPV4_COMPATIBLE or address.teredo or address.is_site_local:
            return False
        if address.sixtofour and not is_public(address.sixtofour):
            return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_private
        or address.is_loopback or address.is_link_local or address.is_unspecified)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (the system resolver; an address literal is itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # A scoped IPv6 address comes back as "fe80::1%eth0"; the scope does not change its kind.
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0])
                              for info in infos))


def _checked(addresses: list[IPAddress]) -> list[IPAddress]:
    if not addresses or not (settings.API_WEBHOOK_ALLOW_PRIVATE
                             or all(is_public(a) for a in addresses)):
        raise UnsafeWebhook(NO_PUBLIC_ADDRESS)
    return addresses


def check_url(url: str) -> str:
    """Refuse, at submission, a URL whose host does not resolve to public addresses only.
    The same check runs again at delivery: DNS may answer differently by then."""
    target = parse(url)
    try:
        found = _lookups.submit(resolve, target.host, target.port).result(
            timeout=settings.API_WEBHOOK_TIMEOUT)
    except (OSError, UnicodeError, ValueError, TimeoutError) as err:
        # An unknown name and an internal one get the same answer: no DNS oracle.
        raise UnsafeWebhook(NO_PUBLIC_ADDRESS) from err
    _checked(found)
    return url


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to `url` under every rule above; the 2xx status, or WebhookFailed."""
    deadline = settings.API_WEBHOOK_TIMEOUT
    try:
        target = parse(url)
        status = asyncio.run(asyncio.wait_for(_post(target, body, headers), deadline))
    except UnsafeWebhook as err:
        raise WebhookFailed(str(err), transient=False) from err
    except TimeoutError as err:
        raise WebhookFailed(f"The webhook did not answer within {deadline:g} s.") from err
    except Exception as err:  # the detail stays in the server's log, not on the job
        log.info("webhook to %s failed: %r", url, err)
        raise WebhookFailed(NOT_DELIVERED) from err
    if not 200 <= status < 300:
        raise WebhookFailed(f"The webhook answered {status}.")
    return status


async def _post(target: Target, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    loop = asyncio.get_running_loop()
    try:
        found = await loop.run_in_executor(_lookups, resolve, target.host, target.port)
    except (OSError, UnicodeError, ValueError) as err:
        raise UnsafeWebhook(NO_PUBLIC_ADDRESS) from err
    addresses = _checked(found)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    # trust_env=False: no proxy from the environment, which would resolve the name again.
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=TLS_VERIFY,
                                 timeout=settings.API_WEBHOOK_TIMEOUT) as client:
        for n, address in enumerate(addresses):
            literal = f"[{address}]" if address.version == 6 else str(address)
            request = client.build_request(
                "POST", f"{target.scheme}://{literal}:{target.port}{target.path}",
                content=body, headers={**headers, "Host": target.authority},
                extensions=extensions)
            try:
                response = await client.send(request, stream=True, auth=target.auth)
            except httpx.ConnectError:
                if n == len(addresses) - 1:
                    raise
                continue  # the next address of the host (IPv6 and IPv4, say)
            try:
                await _read_at_most(response, settings.API_WEBHOOK_MAX_RESPONSE_BYTES)
            finally:
                await response.aclose()  # unread rest: the connection is dropped, not drained
            return response.status_code
    raise UnsafeWebhook(NO_PUBLIC_ADDRESS)  # not reached: _checked refuses an empty list


async def _read_at_most(response, limit: int) -> int:
    """Read and drop the answer up to `limit` bytes: nobody needs more of it."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen >= limit:
            break
    return seen
