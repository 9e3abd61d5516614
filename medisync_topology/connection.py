"""Reaching a NATS server: options, connecting, and errors a person can act on.

Secrets (passwords, tokens, seeds) are used here and never put into any message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import nats

from .errors import TopologyError


@dataclass(frozen=True)
class ConnectOptions:
    server: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: str | None = None
    timeout: float = 5.0
    api_prefix: str = "$JS.API"

    def display_server(self) -> str:
        return redact_url(self.server)


class ConnectError(TopologyError):
    """The server could not be reached or refused us."""


def redact_url(url: str) -> str:
    """A server URL fit to print: any password (or token) in it replaced by ***."""
    shown = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if parts.username or parts.password:
            host = parts.hostname or ""
            if parts.port:
                host += f":{parts.port}"
            user = parts.username if parts.password else "***"  # user-only URLs carry a token
            netloc = f"{user}:***@{host}" if parts.password else f"{user}@{host}"
            one = urlunsplit(parts._replace(netloc=netloc))
        shown.append(one.strip())
    return ",".join(shown)


async def open_connection(options: ConnectOptions):
    """A connected nats-py client, or ConnectError saying why not (without secrets)."""
    errors: list[Exception] = []

    async def remember(exc: Exception) -> None:
        errors.append(exc)

    try:
        return await nats.connect(
            servers=[s.strip() for s in options.server.split(",")],
            user=options.user,
            password=options.password,
            connect_timeout=options.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=remember,
            name="medisync-topology",
        )
    except Exception as exc:  # nats-py raises several unrelated types here
        cause = errors[-1] if errors else exc
        raise ConnectError(f"cannot connect to {options.display_server()}: {describe_connect_error(cause)}") from None


def describe_connect_error(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    lowered = text.lower()
    if "authorization" in lowered or "authentication" in lowered:
        return "authentication failed"
    if isinstance(exc, (ConnectionRefusedError, OSError)) and "refused" in lowered or "refused" in lowered:
        return "connection refused"
    if isinstance(exc, asyncio.TimeoutError) or "timeout" in lowered or "timed out" in lowered:
        return "timed out"
    return text
