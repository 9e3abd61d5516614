"""The apply lock: two applies against one account never interleave.

Held on the server itself, in a KV bucket the tool creates on first use. Taking the lock is a
KV create: a publish with ``Nats-Expected-Last-Subject-Sequence`` set to the key's last sequence
as we saw it (0 for a key never written or aged out), which the server accepts for one publisher
only. The bucket's TTL (the stream's max_age) ages out the entry of a run that crashed; a running
apply refreshes it well before that. Releasing writes a KV delete marker, guarded the same way,
so a run whose lock had expired cannot release someone else's (a KV stream has deny_delete, so
the entry cannot simply be deleted; the next taker expects the marker's sequence, as nats.go's
KeyValue.Create does).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from . import buckets
from .buckets import LOCK_BUCKET, LOCK_STREAM, LOCK_SUBJECT
from .client import JetStreamAPIError, JetStreamClient
from .connectoptions import DEFAULT_API_PREFIX, ConnectOptions
from .errors import NO_MESSAGE_FOUND, STREAM_NAME_IN_USE, SUBJECTS_OVERLAP, WRONG_LAST_SEQUENCE, TopologyError
from .identity import actor, now_rfc3339

DEFAULT_TTL = 60 * 10**9  # nanoseconds: how long a crashed run can block the next one
POLL_SECONDS = 0.25
KV_OPERATION = "KV-Operation"  # nats.go kvop header: DEL or PURGE marks a deleted key


class LockHeld(TopologyError):
    """Another apply holds the lock."""

    def __init__(self, message: str, holder: dict):
        self.holder = holder
        super().__init__(message)


def describe_holder(holder: dict) -> str:
    """'OS user alice on host ci-7 (pid 42, NATS identity: user "deployer", topology 0.1.0) since 2026-...Z'."""
    return (
        f"OS user {holder.get('os_user', '?')} on host {holder.get('host', '?')} (pid {holder.get('pid', '?')}, "
        f"NATS identity: {holder.get('nats_user', '?')}, topology {holder.get('tool_version', '?')}) "
        f"since {holder.get('since', '?')}"
    )


class ApplyLock:
    """``async with ApplyLock(client, connect, wait=300):`` holds the lock for the block, released
    on the way out also after an error, a Ctrl-C or a cancellation."""

    def __init__(self, client: JetStreamClient, connect: ConnectOptions, *, wait: float = 0.0,
                 ttl: int = DEFAULT_TTL, on_wait=lambda holder: None, capturing: list[str] = ()):
        self.client, self.connect, self.wait, self.ttl, self.on_wait = client, connect, wait, ttl, on_wait
        # Why there is no lock to take, when streams (to be) applied capture its subject; else None.
        self.unavailable = self._unavailable(capturing) if capturing else None
        self.holder = {**actor(connect), "since": now_rfc3339()}
        self.sequence = 0  # of our entry, once we hold the lock
        self.refresh_seconds: float | None = None
        self.refresher: asyncio.Task | None = None
        self.warning: str | None = None  # why a refresh or the release failed, if one did

    @property
    def subject(self) -> str:
        # As nats.go puts a key: under a non-default API prefix (a JetStream domain) the publish
        # subject carries that prefix, which the domain's leafnode import maps back to $KV.
        prefix = self.connect.api_prefix
        return LOCK_SUBJECT if prefix == DEFAULT_API_PREFIX else f"{prefix}.{LOCK_SUBJECT}"

    async def __aenter__(self) -> "ApplyLock":
        await self.acquire()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.release()

    async def acquire(self) -> None:
        """Take the lock, waiting up to ``wait`` seconds for a holder to let go; LockHeld names the holder."""
        if self.unavailable or not await self._ensure_bucket():
            return
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            current = await self._current()
            expected = 0 if current is None else current[0]
            if current is None or current[1] is None:
                try:
                    self.sequence = await self._write(self.holder, expected)
                    break
                except JetStreamAPIError as exc:
                    if exc.err_code not in WRONG_LAST_SEQUENCE:
                        raise
                    continue  # someone else wrote first: look again
            holder = current[1]
            if time.monotonic() >= deadline:
                raise LockHeld(self._held_message(holder), holder)
            if not told:
                self.on_wait(holder)
                told = True
            await asyncio.sleep(POLL_SECONDS)
        if self.refresh_seconds:
            self.refresher = asyncio.create_task(self._refresh_forever())

    async def release(self) -> None:
        """Let go: a KV delete marker on our own entry only. Safe to call when not held; never raises
        (a lock that cannot be released expires by itself, and ``warning`` says so)."""
        if self.refresher is not None:
            self.refresher.cancel()
            try:
                await self.refresher
            except asyncio.CancelledError:
                pass
            self.refresher = None
        sequence, self.sequence = self.sequence, 0
        try:
            while sequence:
                try:
                    await self.client.publish(
                        self.subject, b"", {KV_OPERATION: "DEL", "Nats-Expected-Last-Subject-Sequence": str(sequence)}
                    )
                    return
                except JetStreamAPIError as exc:
                    if exc.err_code not in WRONG_LAST_SEQUENCE:
                        raise
                # A refresh cancelled in flight may have landed after all; else the lock expired
                # and is another run's now, which is not ours to release.
                current = await self._current()
                mine = current is not None and current[1] is not None and self._is_mine(current[1])
                sequence = current[0] if mine and current[0] != sequence else 0
        except TopologyError as exc:
            self.warning = f"the apply lock could not be released ({exc}); it expires by itself"

    def _is_mine(self, holder: dict) -> bool:
        return all(holder.get(key) == self.holder[key] for key in ("host", "pid", "since"))

    async def _ensure_bucket(self) -> bool:
        """Create the bucket on first use; an existing one (maybe with another TTL) is used as it is.
        False (and ``unavailable`` says why) when a live stream captures the lock's subject."""
        settings = {"ttl": self.ttl, "description": "medisync-topology apply lock: who is applying to this account"}
        config = buckets.bucket_stream_config("key_value", LOCK_BUCKET, settings)
        try:
            info = await self.client.request(f"STREAM.CREATE.{LOCK_STREAM}", config)
        except JetStreamAPIError as exc:
            if exc.err_code == SUBJECTS_OVERLAP:
                reply = await self.client.request("STREAM.NAMES", {"subject": LOCK_SUBJECT})
                self.unavailable = self._unavailable(reply.get("streams") or ["another stream"])
                return False
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            info = await self.client.request(f"STREAM.INFO.{LOCK_STREAM}")
        max_age = info["config"].get("max_age") or 0
        # Refresh four times per TTL, so one slow or lost refresh does not let the lock expire.
        self.refresh_seconds = max_age / 4e9 if max_age else None
        return True

    @staticmethod
    def _unavailable(streams: list[str]) -> str:
        return (
            f"applying without the apply lock: stream {', '.join(streams)} captures {LOCK_SUBJECT}, where the lock "
            "is kept, and a subject belongs to one stream only; make sure no other apply runs at the same time"
        )

    async def _current(self) -> tuple[int, dict | None] | None:
        """(sequence, holder) of the key's last entry, holder None for a delete marker; None when empty."""
        try:
            reply = await self.client.request(f"STREAM.MSG.GET.{LOCK_STREAM}", {"last_by_subj": LOCK_SUBJECT})
        except JetStreamAPIError as exc:
            if exc.err_code == NO_MESSAGE_FOUND:
                return None
            raise
        message = reply["message"]
        headers = base64.b64decode(message.get("hdrs") or b"").decode(errors="replace")
        if any(line.split(":", 1)[0].strip() == KV_OPERATION for line in headers.splitlines()):
            return message["seq"], None
        try:
            holder = json.loads(base64.b64decode(message.get("data") or b""))
        except ValueError:
            holder = {}
        return message["seq"], holder if isinstance(holder, dict) else {}

    async def _write(self, holder: dict, expected: int) -> int:
        data = json.dumps(holder, sort_keys=True).encode()
        ack = await self.client.publish(self.subject, data, {"Nats-Expected-Last-Subject-Sequence": str(expected)})
        return ack["seq"]

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                self.sequence = await self._write({**self.holder, "refreshed": now_rfc3339()}, self.sequence)
            except TopologyError as exc:
                self.warning = f"the apply lock could not be refreshed ({exc}); another apply may start"
                return

    def _held_message(self, holder: dict) -> str:
        message = f"another apply holds the lock on {self.connect.account()}: {describe_holder(holder)}"
        if not self.wait:
            message += "; wait for it with --lock-timeout DURATION (e.g. 5m)"
        else:
            message += f"; gave up after waiting {self.wait:g}s"
        if self.refresh_seconds:
            message += f". A crashed run's lock expires {self.refresh_seconds * 4:g}s after its last refresh"
        return message
