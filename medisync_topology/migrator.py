"""Carry out a stream migration (the steps migrate.py describes) against a live server.

Each round reads NAME and TEMP back and does the next step, so a migration interrupted anywhere
(Ctrl-C, the tool killed, the server restarted) is finished by running it again.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from . import drift, migrate
from .client import JetStreamAPIError, JetStreamClient
from .errors import NO_MESSAGE_FOUND, STREAM_NOT_FOUND, TopologyError
from .ops import CreateResource, ReplaceResource

POLL = 0.01  # seconds between looks at a copy's progress
STALLED = 30.0  # a copy that makes no progress for this long is given up (nothing is lost)


@dataclass
class MigrationReport:
    """What a migration did: the messages in the new stream and each time publishes were refused."""

    messages: int = 0
    seconds: float = 0.0
    refused: list[float] = field(default_factory=list)  # seconds of each swap

    def text(self) -> str:
        windows = " + ".join(f"{w * 1000:.0f}ms" for w in self.refused) or "never"
        return f"migrated {self.messages:,} messages in {self.seconds:.1f}s; publishes refused {windows}"


class MigrationError(TopologyError):
    pass


async def migrate_stream(client: JetStreamClient, op: ReplaceResource) -> MigrationReport:
    """Migrate op.ref's stream to op.after, from wherever a previous run left it."""
    name = op.ref.stream_name
    run = _Migration(client, name, op)

    def step_of(live: dict | None, temp: dict | None, done: list[str]) -> str:
        return "done" if temp is None and done else migrate.next_step(live, temp)  # TEMP goes last

    return await _steps(run, (name, migrate.temp_name(name)), step_of, f"migration of {name}")


async def rename_stream(client: JetStreamClient, op: CreateResource) -> str:
    """Create op's stream with the messages and consumers of the live stream op.renamed_from (the migration
    route, migrate.py), then delete that one; from wherever a previous run left it."""
    run = _Rename(client, op)
    report = await _steps(run, (op.renamed_from, run.name), lambda old, new, done: migrate.rename_step(old, new),
                          f"rename of {op.renamed_from} to {run.name}")
    return f"renamed from {op.renamed_from}; {report.text()}"


# A test-only hook (tests/test_migrate.py): the run stops itself (SIGSTOP) before the named step (or "consumer NAME",
# inside the consumers step), for the test to kill it there, or restart the server and let it go on (SIGCONT).
PAUSE_VARIABLE = "MEDISYNC_TOPOLOGY_PAUSE_BEFORE"


def _pause_before(step: str) -> None:
    if os.environ.get(PAUSE_VARIABLE) == step:
        print(f"paused before step {step!r}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)


async def _steps(run: "_Migration", names: tuple[str, str], step_of, what: str) -> MigrationReport:
    """Read both streams back, do the next step, until there is none: each step starts from what the server has."""
    started = time.monotonic()
    done: list[str] = []
    while True:
        first, second = await run.info(names[0]), await run.info(names[1])
        step = step_of(first and first["config"], second and second["config"], done)
        if step == "done":
            break
        if done[-1:] == [step]:  # a step that did not move the server on would loop forever
            raise MigrationError(f"{what} is stuck at step {step!r}")
        _pause_before(step)
        done.append(step)
        await getattr(run, step.replace(" ", "_"))(first, second)
    run.report.seconds = time.monotonic() - started
    return run.report


async def rename_consumer(client: JetStreamClient, op: CreateResource) -> str:
    """Create op's consumer where the live consumer op.renamed_from stands (its acknowledged floor; its
    pending redeliveries start over), then delete the old one."""
    stream, old = op.ref.stream, op.renamed_from
    floor = (await client.request(f"CONSUMER.INFO.{stream}.{old}"))["ack_floor"]["stream_seq"]
    body = {"stream_name": stream, "config": drift.recorded(op.config), "action": "create", "pedantic": True}
    await client.request(f"CONSUMER.CREATE.{stream}.{op.ref.name}", body)
    if floor:
        await client.request(f"CONSUMER.RESET.{stream}.{op.ref.name}", {"seq": floor + 1})
    await client.request(f"CONSUMER.DELETE.{stream}.{old}")
    return f"renamed from {old}, starting after stream sequence {floor:,}"


class _Migration:
    def __init__(self, client: JetStreamClient, name: str, op: ReplaceResource):
        self.client, self.name, self.op = client, name, op
        self.temp = migrate.temp_name(name)
        self.report = MigrationReport()
        self.refusing_since: float | None = None
        self.what = "migration"

    async def info(self, stream: str) -> dict | None:
        try:
            return await self.client.request(f"STREAM.INFO.{stream}")
        except JetStreamAPIError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                return None
            raise

    async def _present(self, stream: str) -> dict:
        """The stream's info; MigrationError when it is gone under a running step (a memory stream loses itself in a
        server restart): nothing is lost, and the next apply goes on from what the server has."""
        info = await self.info(stream)
        if info is None:
            raise MigrationError(f"{stream} disappeared during the {self.what} (the server restarted?); run apply again")
        return info

    # -- the steps, in order ---------------------------------------------

    async def copy(self, live: dict, temp: dict | None) -> None:
        if temp is None:
            config = migrate.temp_config(live["config"], self.op.after.get("metadata") or {})
            await self.client.request(f"STREAM.CREATE.{self.temp}", {**config, "pedantic": True})
        await self._wait_nearly(self.temp, self.name)
        await self._set_subjects(self.name, live["config"], [migrate.holding_subject(self.name)])

    async def swap_in(self, live: dict, temp: dict) -> None:
        await self._caught_up(self.temp, live, migrate.holding_temp_config(temp["config"])["subjects"])
        await self._update(migrate.holding_temp_config(temp["config"]))
        self._publishes_taken()

    async def delete(self, live: dict, temp: dict) -> None:
        kept = set(self.op.migration.kept)
        floors = migrate.positions(temp["config"])
        for info in await self.client.paged(f"CONSUMER.LIST.{self.name}", "consumers"):
            if info["name"] in kept:
                floors[info["name"]] = info["ack_floor"]["stream_seq"]
        await self._update(migrate.recording(temp["config"], migrate.POSITIONS_KEY, floors))
        await self.client.request(f"STREAM.DELETE.{self.name}")

    async def create(self, live: None, temp: dict) -> None:
        config = migrate.staging_config(self.op.after)
        await self.client.request(f"STREAM.CREATE.{self.name}", {**config, "pedantic": True})

    async def swap_out(self, live: dict, temp: dict) -> None:
        await self._wait_nearly(self.name, self.temp)
        holding = [migrate.holding_subject(self.temp)]
        if temp["config"]["subjects"] != holding:
            self._publishes_refused()
            await self._update({**temp["config"], "subjects": holding})
        if not await self._wait_all(self.name, self.temp):
            await self._update(migrate.holding_temp_config(temp["config"]))
            raise MigrationError(
                f"{self.name} did not catch up with {self.temp} within {migrate.SWAP_TIMEOUT:g}s; {self.temp} takes "
                "publishes again and nothing was lost; run apply again"
            )
        await self.client.request(f"STREAM.UPDATE.{self.name}", {**drift.recorded(self.op.after), "pedantic": True})
        self._publishes_taken()

    async def consumers(self, live: dict, temp: dict) -> None:
        await self._reset_consumers(self.op.migration.consumers, migrate.positions(temp["config"]), self._new_position,
                                    temp["config"])
        self.report.messages = live["state"]["messages"]
        await self.client.request(f"STREAM.DELETE.{self.temp}")

    # -- helpers ---------------------------------------------------------

    async def _reset_consumers(self, consumers: dict, floors: dict[str, int], position, ledger: dict) -> None:
        """Create each consumer on NAME; one with an old acknowledged floor (``floors``: name -> stream sequence)
        is reset to ``position(floor)``, where the first message after it is now. Each one done is recorded in
        ``ledger`` (the live config of the stream that outlives the step: TEMP, a rename's NEW); a resumed step
        keeps those (the same consumer: created when recorded), whose acknowledgements since must stand."""
        done = migrate.positioned(ledger)
        live = {c["name"]: c["created"] for c in await self.client.paged(f"CONSUMER.LIST.{self.name}", "consumers")}
        done = {name: created for name, created in done.items() if live.get(name) == created}
        for name, config in sorted(consumers.items()):
            if name in done:
                continue
            _pause_before(f"consumer {name}")
            body = {"stream_name": self.name, "config": drift.recorded(config), "action": "create", "pedantic": True}
            if name in live:  # created by an earlier run and not positioned (or not since): created again
                await self.client.request(f"CONSUMER.DELETE.{self.name}.{name}")
            created = (await self.client.request(f"CONSUMER.CREATE.{self.name}.{name}", body))["created"]
            if floors.get(name):
                await self.client.request(f"CONSUMER.RESET.{self.name}.{name}", {"seq": await position(floors[name])})
            done[name] = created
            ledger = migrate.recording(ledger, migrate.POSITIONED_KEY, done)
            await self._update(ledger)

    async def _caught_up(self, stream: str, origin: dict, subjects: list[str]) -> None:
        """Until ``stream`` has every message of ``origin`` (a live stream's info, on its holding subject now);
        when it cannot get them all, ``origin`` takes ``subjects`` back and MigrationError says so."""
        name = origin["config"]["name"]
        if not await self._wait_all(stream, name):
            await self._set_subjects(name, origin["config"], subjects)
            raise MigrationError(
                f"{stream} did not catch up with {name} within {migrate.SWAP_TIMEOUT:g}s; {name} takes "
                "publishes again and nothing was lost; run apply again"
            )
        copied, held = (await self._present(stream))["state"], (await self._present(name))["state"]
        if copied["messages"] < held["messages"]:
            # A Nats-Msg-Id that occurs twice in the origin (further apart than its window) is stored once by a source.
            await self._set_subjects(name, origin["config"], subjects)
            raise MigrationError(
                f"{stream} holds {copied['messages']:,} of {name}'s {held['messages']:,} messages: "
                "some share a Nats-Msg-Id, which a copy deduplicates; nothing was lost and "
                f"{name} takes publishes again; delete {stream} and do it without migrating"
            )

    async def _new_position(self, floor: int) -> int:
        """The sequence in the new stream of the first message after the old acknowledged floor."""
        in_temp = await _first_after(self.client, self.temp, self.name, floor)
        return await _first_after(self.client, self.name, self.temp, in_temp - 1)

    async def _update(self, config: dict) -> None:
        await self.client.request(f"STREAM.UPDATE.{config['name']}", config)

    async def _set_subjects(self, stream: str, config: dict, subjects: list[str]) -> None:
        holding = subjects == [migrate.holding_subject(stream)]
        if holding:
            self._publishes_refused()
        await self._update({**config, "subjects": subjects})
        if not holding:
            self._publishes_taken()

    def _publishes_refused(self) -> None:
        self.refusing_since = time.monotonic()

    def _publishes_taken(self) -> None:
        if self.refusing_since is not None:
            self.report.refused.append(time.monotonic() - self.refusing_since)
            self.refusing_since = None

    async def _wait_nearly(self, stream: str, origin: str) -> None:
        """Until ``stream``'s source from ``origin`` reports no lag, so the swap after it is short."""
        last, since = None, time.monotonic()
        while True:
            info = await self._present(stream)
            lag = next((s.get("lag", 0) for s in info.get("sources") or [] if s["name"] == origin), 0)
            copied = info["state"]["last_seq"]
            if lag == 0 and (copied or not (await self._present(origin))["state"]["messages"]):
                return
            if copied != last:
                last, since = copied, time.monotonic()
            elif time.monotonic() - since > STALLED:
                raise MigrationError(f"copying {origin} into {stream} made no progress for {STALLED:g}s; run apply again")
            await asyncio.sleep(POLL)

    async def _wait_all(self, stream: str, origin: str) -> bool:
        """Until ``stream`` holds the last message ``origin`` stores (which takes no publishes now); False on timeout."""
        wanted = await _last_seq(self.client, origin)
        deadline = time.monotonic() + migrate.SWAP_TIMEOUT
        while wanted:
            last = await _message(self.client, stream, {"last_by_subj": ">"})
            source = migrate.source_of(last and last["headers"])
            if source and source[0] == origin and source[1] >= wanted:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL)
        return True


class _Rename(_Migration):
    """A rename's steps (migrate.py): NEW plays TEMP's part and OLD the migrated stream's, which is then deleted."""

    def __init__(self, client: JetStreamClient, op: CreateResource):
        super().__init__(client, op.ref.stream_name, op)
        self.old, self.what = op.renamed_from, "rename"

    async def copy(self, old: dict, new: dict | None) -> None:
        if new is None:
            config = migrate.rename_staging_config(self.op.config, old["config"])
            await self.client.request(f"STREAM.CREATE.{self.name}", {**config, "pedantic": True})
        await self._wait_nearly(self.name, self.old)
        await self._set_subjects(self.old, old["config"], [migrate.holding_subject(self.old)])

    async def swap_in(self, old: dict, new: dict) -> None:
        await self._caught_up(self.name, old, migrate.old_subjects(new["config"]))
        await self._update(migrate.rename_taking_config(self.op.config, new["config"]))
        self._publishes_taken()

    async def consumers(self, old: dict, new: dict) -> None:
        migration = self.op.migration
        floors = {c["name"]: c["ack_floor"]["stream_seq"]
                  for c in await self.client.paged(f"CONSUMER.LIST.{self.old}", "consumers")}
        kept = {name: floors[migration.renamed.get(name, name)] for name in migration.kept
                if migration.renamed.get(name, name) in floors}
        await self._reset_consumers(migration.consumers, kept,
                                    lambda floor: _first_after(self.client, self.name, self.old, floor), new["config"])
        await self.client.request(f"STREAM.DELETE.{self.old}")

    async def finish(self, old: None, new: dict) -> None:
        await self.client.request(f"STREAM.UPDATE.{self.name}", {**drift.recorded(self.op.config), "pedantic": True})
        self.report.messages = new["state"]["messages"]


async def _last_seq(client: JetStreamClient, stream: str) -> int:
    last = await _message(client, stream, {"last_by_subj": ">"})
    return last["seq"] if last else 0


async def _message(client: JetStreamClient, stream: str, request: dict) -> dict | None:
    """One stored message ({"seq", "subject", "headers", "data"}), or None when there is none."""
    try:
        reply = await client.request(f"STREAM.MSG.GET.{stream}", request)
    except JetStreamAPIError as exc:
        if exc.err_code == NO_MESSAGE_FOUND:
            return None
        raise
    message = reply["message"]
    return {
        "seq": message["seq"], "subject": message["subject"],
        "headers": parse_headers(base64.b64decode(message.get("hdrs") or "")),
        "data": base64.b64decode(message.get("data") or ""),
    }


def parse_headers(raw: bytes) -> dict[str, str]:
    """NATS headers ("NATS/1.0\\r\\nKey: value\\r\\n...") -> {key: last value}."""
    headers = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


async def _first_after(client: JetStreamClient, stream: str, origin: str, floor: int) -> int:
    """The first sequence of ``stream`` whose message came from ``origin`` after sequence ``floor``
    (a message published into ``stream`` itself counts as after); its last sequence + 1 if none.

    Binary search: sourced messages keep their origin's order.
    """
    state = (await client.request(f"STREAM.INFO.{stream}"))["state"]
    lo, hi = state["first_seq"], state["last_seq"] + 1

    async def after(seq: int) -> tuple[bool, int]:
        message = await _message(client, stream, {"seq": seq, "next_by_subj": ">"})
        if message is None:
            return True, state["last_seq"] + 1
        source = migrate.source_of(message["headers"])
        return source is None or source[0] != origin or source[1] > floor, message["seq"]

    while lo < hi:
        mid = (lo + hi) // 2
        if (await after(mid))[0]:
            hi = mid
        else:
            lo = mid + 1
    return (await after(lo))[1]
