"""Talk to JetStream in its own JSON API over one nats-py connection.

We do not use nats-py's JetStream dataclasses: they drop consumer fields the server has
(max_batch, max_expires, max_bytes, priority_*) and truncate opt_start_time, so a diff or an
update built on them would silently lose settings.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import orjson

from .connection import Connection, JetStreamUnavailable, NoResponders, PermissionDenied, open_connection
from .connectoptions import ConnectOptions
from .errors import JS_NOT_ENABLED_FOR_ACCOUNT, NO_MESSAGE_FOUND, TopologyError
from . import rules
from .dataloss import LossFacts, LossQuestion, format_timestamp, timestamp_ns
from .live import LiveState, LiveStream
from .target import TargetFacts

CONCURRENT_REQUESTS = 64
PUBLISH_RETRIES, PUBLISH_RETRY_WAIT = 2, 0.25  # seconds: nats.go's DefaultPubRetryAttempts and DefaultPubRetryWait
CONSUMER_PROGRESS = ("num_pending", "num_ack_pending", "delivered", "ack_floor")
# STREAM.MSG.GET finds a message by time (start_time) since 2.11; 2.10 ignores the field.
MSG_GET_BY_TIME = (2, 11, 0)

# Every account imports this from the system account: each server answers with its name, cluster, tags
# and whether it runs JetStream (events.go registerSystemImports), no system user needed.
SERVERS_PING = "$SYS.REQ.ACCOUNT.PING.STATZ"


class JetStreamAPIError(TopologyError):
    """The server answered a JetStream API request with an error."""

    def __init__(self, subject: str, code: int, err_code: int, description: str):
        self.subject, self.code, self.err_code, self.description = subject, code, err_code, description
        super().__init__(f"{description} (err_code {err_code})")


def _consumer_parts(info: dict) -> tuple[str, dict, dict]:
    """(name, config, progress) of one CONSUMER.LIST item."""
    return info["name"], info["config"], {k: v for k, v in info.items() if k in CONSUMER_PROGRESS}


class JetStreamClient:
    """One connection, raw JetStream API requests."""

    def __init__(self, options: ConnectOptions):
        self.options = options
        self.connection: Connection | None = None

    async def __aenter__(self) -> "JetStreamClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        self.connection = await open_connection(self.options)

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()

    @property
    def server_version(self) -> str:
        v = self.connection.connected_server_version
        return f"{v.major}.{v.minor}.{v.patch}"

    async def request(self, subject: str, body: dict | None = None) -> dict:
        """One API request; subject is relative to the API prefix, e.g. ``STREAM.INFO.EVENTS``."""
        full = f"{self.options.api_prefix}.{subject}"
        payload = json.dumps(body).encode() if body is not None else b""
        return await self._answer(full, payload)

    async def publish(self, subject: str, payload: bytes, headers: dict | None = None) -> dict:
        """A JetStream publish: the stream's ack ({"stream", "seq"}) or JetStreamAPIError (e.g. a failed
        Nats-Expected-* header check); JetStreamUnavailable when no stream captures the subject.

        No responders is tried again twice, a quarter of a second apart, as nats.go does (ADR-22): in a cluster a
        stream just created, or one electing a leader, has no one listening on its subjects for a moment, and the
        first apply on a new cluster failed so, at its lock. A publish no one received stored nothing: sent again,
        it is stored once."""
        for _ in range(PUBLISH_RETRIES):
            try:
                return await self._answer(subject, payload, headers)
            except NoResponders:
                await asyncio.sleep(PUBLISH_RETRY_WAIT)
        return await self._answer(subject, payload, headers)

    async def _answer(self, full: str, payload: bytes, headers: dict | None = None) -> dict:
        # Connection.request raises PermissionDenied (naming subject and user), JetStreamUnavailable, or a timeout.
        msg = await self.connection.request(full, payload, timeout=self.options.timeout, headers=headers)
        reply = orjson.loads(msg.data or b"{}")
        error = reply.get("error")
        if error and error.get("err_code") == JS_NOT_ENABLED_FOR_ACCOUNT:
            account = self.options.account()
            raise JetStreamUnavailable(
                f"JetStream is not enabled for {account} ({full} answered err_code {JS_NOT_ENABLED_FOR_ACCOUNT})"
            )
        if error:
            raise JetStreamAPIError(full, error.get("code", 0), error.get("err_code", 0), error.get("description", ""))
        return reply

    async def paged(self, subject: str, key: str, keep: Callable[[dict], Any] | None = None) -> list:
        """Every item of a paged LIST request (``STREAM.LIST`` -> key "streams"); with ``keep``, what it keeps
        of each item, taken as each page arrives so the page's other parts are not held until the last."""
        items: list = []
        while True:
            reply = await self.request(subject, {"offset": len(items)})
            page = reply.get(key) or []
            items += page if keep is None else map(keep, page)
            if not page or len(items) >= reply.get("total", 0):
                return items

    async def read_live(self) -> LiveState:
        """Every stream and consumer in the account: paged LISTs, consumer lists fetched concurrently.

        Only what a plan reads is kept of each answer (configs, the stream's state, each consumer's progress),
        page by page: with 10,000 streams the answers' other parts (cluster, timestamps) were a fifth of the peak."""
        streams = await self.paged("STREAM.LIST", "streams", lambda info: LiveStream(info["config"], info.get("state", {})))
        waiting = iter(streams)

        async def read_consumers() -> None:
            # A worker per request in flight, each taking the next stream: not a task per stream, which
            # at 10,000 streams held a quarter of the peak memory while they waited their turn.
            for stream in waiting:
                consumers = await self.paged(f"CONSUMER.LIST.{stream.config['name']}", "consumers", _consumer_parts)
                stream.consumers = {name: config for name, config, _ in consumers}
                stream.consumer_states = {name: progress for name, _, progress in consumers}

        target, *_ = await asyncio.gather(self.read_target_facts(), *(read_consumers() for _ in range(CONCURRENT_REQUESTS)))
        return LiveState(server_version=self.server_version, streams={s.config["name"]: s for s in streams}, target=target)

    async def read_losses(self, questions: list[LossQuestion]) -> dict[str, LossFacts]:
        """For each stream asked about: its state now, per-subject counts and the first sequence a new
        max_age keeps, read only where asked (dataloss.questions)."""
        limit = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def read(question: LossQuestion) -> tuple[str, LossFacts]:
            async with limit:
                return question.stream, await self._read_loss(question)

        return dict(await asyncio.gather(*(read(q) for q in questions)))

    async def _read_loss(self, question: LossQuestion) -> LossFacts:
        subject = f"STREAM.INFO.{question.stream}"
        info = await self.request(subject, {"subjects_filter": ">"} if question.subjects else None)
        state = info.get("state") or {}
        subjects = None
        if question.subjects:
            subjects = dict(state.get("subjects") or {})
            while len(subjects) < info.get("total", 0):  # the server pages subject details
                page = await self.request(subject, {"subjects_filter": ">", "offset": len(subjects)})
                more = (page.get("state") or {}).get("subjects") or {}
                if not more:
                    break
                subjects.update(more)
        state = {k: v for k, v in state.items() if k != "subjects"}
        if not question.max_age:
            return LossFacts(state, subjects)
        cut = timestamp_ns(info["ts"]) - question.max_age  # the server's now, not this machine's
        if rules.parse_version(self.server_version) < MSG_GET_BY_TIME:
            return LossFacts(state, subjects, await self._first_at_or_after(question.stream, state, cut))
        message = await self._message(question.stream, {"start_time": format_timestamp(cut)})
        return LossFacts(state, subjects, message["seq"] if message else 0)  # none as new as that: all are older

    async def _message(self, stream: str, request: dict) -> dict | None:
        """One STREAM.MSG.GET; None when the server has no such message."""
        try:
            return (await self.request(f"STREAM.MSG.GET.{stream}", request))["message"]
        except JetStreamAPIError as exc:
            if exc.err_code != NO_MESSAGE_FOUND:
                raise
            return None

    async def _first_at_or_after(self, stream: str, state: dict, cut: int) -> int:
        """The first sequence stored at or after ``cut`` (ns), 0 when none, for a server that cannot look it up
        by time (2.10): a binary search over sequences, each step the next stored message from a sequence."""
        low, high = state.get("first_seq", 0), state.get("last_seq", 0) + 1
        while low < high:
            middle = (low + high) // 2
            message = await self._message(stream, {"seq": middle, "next_by_subj": ">"})
            if message is None or timestamp_ns(message["time"]) >= cut:
                high = middle
            else:
                low = message["seq"] + 1
        return 0 if low > state.get("last_seq", 0) else low

    async def read_target_facts(self) -> TargetFacts:
        """The account's JetStream limits and usage, whether the server is clustered and, if so, its
        JetStream servers (name, cluster, tags), as far as the server tells this user."""
        account = await self.request("INFO")
        info = self.connection.server_info
        if self.options.js_domain:
            # The domain's JetStream may run on other servers than the one this connection reached.
            return TargetFacts(None, servers_unknown=f"the JetStream domain {self.options.js_domain} may be served by "
                               "other servers than this connection's, which the tool cannot list", account=account)
        cluster = info.get("cluster")
        if not cluster:
            return TargetFacts(False, account=account)
        expected = max(len(info.get("connect_urls") or []), 1)
        try:
            replies = await self.connection.gather(SERVERS_PING, b'{"include_unused": true}', expected=expected,
                                                   wait=min(self.options.timeout, 2.0))
        except PermissionDenied as exc:
            return TargetFacts(True, cluster, servers_unknown=f"{exc} (which lists the cluster's servers)",
                               account=account)
        servers = {}
        for reply in replies:
            server = json.loads(reply.data or b"{}").get("server") or {}
            if server.get("jetstream") and server.get("name"):
                servers[server["name"]] = {"name": server["name"], "cluster": server.get("cluster"),
                                           "tags": sorted(server.get("tags") or [])}
        if not servers:
            return TargetFacts(True, cluster, servers_unknown=f"no server answered {SERVERS_PING}", account=account)
        return TargetFacts(True, cluster, tuple(servers[name] for name in sorted(servers)), account=account)
