"""Reaching a NATS server the way the `nats` CLI does, and errors a person can act on.

Secrets (passwords, tokens, nkey seeds, creds file contents, passwords in URLs) are used here
and never put into a message: messages are built from ``identity()`` and ``display_server()``,
and any text that comes from nats-py goes through ``scrub()`` first.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import nats
from nats.errors import Error as NatsError, NoRespondersError, TimeoutError as NatsTimeout

from .connectoptions import DEFAULT_API_PREFIX, ConnectError, ConnectOptions, redact_url
from .credentials import auth_arguments, tls_context
from .denials import PermissionViolations
from .errors import TopologyError


class PermissionDenied(TopologyError):
    """The server refused a publish or subscribe we need (nats "Permissions Violation")."""


class JetStreamUnavailable(TopologyError):
    """Nothing answers JetStream API requests for this account (or domain / API prefix)."""


class NoResponders(JetStreamUnavailable):
    """No one subscribes to the subject: no JetStream there, or, for a publish, no stream's leader listening yet."""


# After the replies a $SYS PING expects, how long to wait for more (servers of other clusters answer later).
GATHER_QUIET = 0.1

NO_RESPONDERS = "503"  # the Status header of the server's answer to a request no one subscribes to


class _Refused(Exception):
    """The server refused a request's subject (a Permissions Violation) before it was answered."""


def _settle(future: asyncio.Future | None, result: Any = None, exception: BaseException | None = None) -> None:
    """Set a request's outcome unless it has one: the first of its reply, its refusal or its timeout wins."""
    if future is None or future.done():
        return
    if exception is None:
        future.set_result(result)
    else:
        future.set_exception(exception)


class Connection:
    """A nats-py connection that turns refused and unanswered requests into errors a person can act on."""

    def __init__(self, nc, options: ConnectOptions, violations: PermissionViolations):
        self.nc, self.options, self.violations = nc, options, violations
        self._reply_inbox: asyncio.Future[str] | None = None  # _INBOX.<random>., once subscribed
        self._waiting: dict[str, asyncio.Future] = {}  # reply token -> the request's future
        self._last_token = 0

    @property
    def connected_server_version(self):
        return self.nc.connected_server_version

    @property
    def is_closed(self) -> bool:
        return self.nc.is_closed

    @property
    def server_info(self) -> dict:
        """The server's INFO (server_name, cluster, ...): nats-py keeps it only in a private attribute."""
        return getattr(self.nc, "_server_info", {}) or {}

    async def close(self) -> None:
        await self.nc.close()

    async def request(self, subject: str, payload: bytes, timeout: float, headers: dict | None = None):
        """A request and its reply, failing as soon as the server reports it refused the subject (see denials.py).

        Replies arrive on one subscription of the connection's, as with nc.request, but each request costs a
        future, a timer and a counter: without nc.request's random token, inbox and asyncio.wait_for, and a
        task and asyncio.wait to watch for the refusal beside it, reading 1,000 streams' consumers takes a
        sixth less CPU (300 -> 250 ms)."""
        inbox = await self._replies()
        denied = self.violations.wait_for(subject)
        if denied.done():  # refused already on this connection: not sent again
            self.violations.forget(denied)
            raise self._denied(denied.result(), subject)
        loop = asyncio.get_running_loop()
        self._last_token += 1
        token = str(self._last_token)
        reply = self._waiting[token] = loop.create_future()
        denied.add_done_callback(lambda _: denied.cancelled() or _settle(reply, exception=_Refused()))
        timer = loop.call_later(timeout, _settle, reply, None, NatsTimeout())
        try:
            await self.nc.publish(subject, payload, reply=inbox + token, headers=headers)
            msg = await reply
            if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
                raise NoRespondersError
            return msg
        except _Refused:
            raise self._denied(denied.result(), subject) from None
        except NoRespondersError:
            raise NoResponders(self._unavailable(subject)) from None
        except NatsError as exc:  # a timeout, the connection closed under us, a payload too large, ...
            late = self.violations.refusal_of(subject)
            if late:
                raise self._denied(late, subject) from None
            if self.nc.is_closed:
                # nats-py fails no pending request when the connection drops: they time out.
                raise ConnectError(f"lost the connection to {self.options.display_server()} during {subject}") from None
            if isinstance(exc, NatsTimeout):
                raise TopologyError(f"JetStream did not answer {subject} within {self.options.timeout:g}s") from None
            raise TopologyError(f"{subject}: {self.options.scrub(str(exc).removeprefix('nats: '))}") from None
        finally:
            timer.cancel()
            self._waiting.pop(token, None)
            self.violations.forget(denied)  # a result already set survives this

    async def _replies(self) -> str:
        """The prefix of this connection's reply subjects, subscribed to on the first request."""
        if self._reply_inbox is None:
            self._reply_inbox = asyncio.ensure_future(self._subscribe_replies())
        return await self._reply_inbox

    async def _subscribe_replies(self) -> str:
        inbox = self.nc.new_inbox() + "."

        async def replied(msg) -> None:
            _settle(self._waiting.pop(msg.subject[len(inbox):], None), msg)

        await self.nc.subscribe(inbox + "*", cb=replied)
        return inbox

    async def gather(self, subject: str, payload: bytes, *, expected: int, wait: float) -> list:
        """Every reply to a request many servers answer (a $SYS PING): once ``expected`` have come, until
        none follows for a moment; at most ``wait`` seconds. PermissionDenied when the subject is refused."""
        inbox = self.nc.new_inbox()
        subscription = await self.nc.subscribe(inbox, max_msgs=0)
        denied = self.violations.wait_for(subject)
        replies: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            await self.nc.publish(subject, payload, reply=inbox)
            while loop.time() < deadline:
                left = deadline - loop.time()
                following = asyncio.ensure_future(
                    subscription.next_msg(timeout=min(GATHER_QUIET, left) if len(replies) >= expected else left)
                )
                await asyncio.wait({following, denied}, return_when=asyncio.FIRST_COMPLETED)
                if denied.done():
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                    break
                try:
                    replies.append(following.result())
                except NatsTimeout:
                    if len(replies) >= expected:
                        break
        finally:
            self.violations.forget(denied)
            await subscription.unsubscribe()
        if denied.done() and not denied.cancelled():
            raise self._denied(denied.result(), subject)
        return replies

    async def publish(self, subject: str, payload: bytes) -> None:
        """A core publish (no reply), flushed so it has left before we go on."""
        await self.nc.publish(subject, payload)
        await self.nc.flush(timeout=self.options.timeout)

    def _denied(self, violation: tuple[str, str], subject: str) -> PermissionDenied:
        kind, what = violation
        who = self.options.identity()
        if kind == "publish":
            return PermissionDenied(f"permission denied: {who} may not publish to {subject}")
        if kind == "subscription":
            # The only subscription we make is nats-py's reply inbox, _INBOX.<random>.*
            return PermissionDenied(
                f"permission denied: {who} may not subscribe to _INBOX.>, where the replies to {subject} arrive"
            )
        return PermissionDenied(f"permission denied for {who} on {subject}: {what}")

    def _unavailable(self, subject: str) -> str:
        where = f"JetStream is not enabled for {self.options.account()}"
        if self.options.js_domain:
            where += f', or it has no JetStream domain "{self.options.js_domain}"'
        elif self.options.api_prefix != DEFAULT_API_PREFIX:
            where += f", or JetStream is not imported at {self.options.api_prefix}"
        return f"no JetStream answered {subject}: {where}"


class TLSNotOffered(NatsError):
    """A tls:// server whose INFO offers no TLS at all."""


class _Client(nats.NATS):
    """nats-py's client, holding a tls:// URL to TLS as nats.go does (ErrSecureConnWanted).

    nats-py upgrades only when the server's INFO says tls_required: against a plaintext server, or one
    where TLS is optional (allow_non_tls), it would send CONNECT, password and all, in clear.
    """

    async def _process_info(self, info: dict, initial_connection: bool = False) -> None:
        # nats-py calls this with the first INFO before it decides on TLS and sends CONNECT.
        if initial_connection and self._current_server.uri.scheme == "tls" and not info.get("tls_required"):
            if not info.get("tls_available"):
                raise TLSNotOffered("the server does not offer TLS")
            info["tls_required"] = True  # info is nats-py's _server_info, read next to decide the upgrade
        await super()._process_info(info, initial_connection)


async def open_connection(options: ConnectOptions) -> Connection:
    """A connected Connection, or ConnectError saying why not (without secrets)."""
    auth = auth_arguments(options)
    tls = tls_context(options)
    failures = []
    for server in options.servers():
        violations = PermissionViolations()
        nc = _Client()
        connecting = nc.connect(
            servers=[server],
            connect_timeout=options.timeout,
            allow_reconnect=False,
            # nats-py retries even the first connect until a server's attempts pass this (0 means
            # forever), waiting reconnect_time_wait in between; the timeout below bounds it all.
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=violations.record,
            name="medisync-topology",
            tls=tls,
            tls_handshake_first=options.tls_first,
            **auth,
        )
        try:
            await asyncio.wait_for(connecting, options.timeout)
            return Connection(nc, options, violations)
        except Exception as exc:  # nats-py raises OSError, ssl, asyncio and its own errors here
            cause = violations.others[-1] if violations.others else exc
            failures.append((redact_url(server), _describe_connect_error(cause, options, nc._server_info)))
            # No nc.close() here: nats-py leaves a failed client unclosed itself, and closing one
            # whose TLS handshake failed never returns (asyncio awaits an SSL shutdown that never comes).
    if len(failures) == 1:
        raise ConnectError(f"cannot connect to {failures[0][0]}: {failures[0][1]}")
    listed = "; ".join(f"{url}: {why}" for url, why in failures)
    raise ConnectError(f"cannot connect to any of {options.display_server()}: {listed}")


def _describe_connect_error(exc: BaseException, options: ConnectOptions, server_info: dict) -> str:
    """Why connecting failed, in words that say what to change; server_info is the server's INFO, if it came."""
    text = str(exc)
    if "Authorization Violation" in text:
        who = options.identity()
        if who == "no credentials":
            return "the server requires authentication: give --user and --password, --token, --creds or --nkey"
        return f"authentication failed for {who}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = (f" (is {options.tls_ca} the CA that signed the server's certificate?)" if options.tls_ca
                else " (give the CA that signed the server's certificate with --tlsca)")
        return f"TLS certificate verification failed: {exc.verify_message}{hint}"
    if server_info.get("tls_verify") and isinstance(exc, (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        # With TLS 1.3 the server's refusal arrives after our side finished the handshake, so it
        # surfaces as an SSL alert, a reset or a broken pipe, by timing; INFO said it verifies clients.
        if not options.tls_cert:
            return "the server requires a TLS client certificate: give --tlscert and --tlskey"
        return f"the server did not accept the TLS client certificate {options.tls_cert}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or text}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, (asyncio.TimeoutError, NatsTimeout)):
        return f"no answer within {options.timeout:g}s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return options.scrub(text.replace("nats: ", "", 1).strip("'") or type(exc).__name__)
