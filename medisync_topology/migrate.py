"""Migrating a stream instead of destroying it: the pure half (what the steps are, when the server
would refuse one, where an interrupted migration stands). migrator.py carries the steps out.

The route, each step read back from the server before the next (so an interrupted run is resumed
from what the server has, not from memory):

  copy        create TEMP (no subjects, sourcing NAME); wait until it has nearly caught up
  swap in     NAME's subjects -> a holding subject (publishes refused); wait until TEMP has every
              message; TEMP takes NAME's subjects and drops its source (publishes land in TEMP)
  delete      record NAME's consumers' acknowledged floors in TEMP's metadata; delete NAME
  create      NAME with the new config, no subjects, sourcing TEMP
  swap out    once nearly caught up: TEMP's subjects -> its holding subject (refused again); wait
              until NAME has every message; NAME gets its subjects and loses the source
  consumers   each consumer created on NAME, then reset (CONSUMER.RESET) to the first message it had
              not acknowledged: sourced messages carry Nats-Stream-Source "<origin> <seq> ...", which
              maps an old sequence to a new one; each one done is recorded in TEMP (a resumed step keeps
              it as it stands); then TEMP is deleted

A rename (``renamed_from: OLD`` on stream NEW) is the first half of that route, with NEW as TEMP:

  copy        create NEW with its own config, no subjects, sourcing OLD; wait until nearly caught up;
              OLD's subjects -> a holding subject (publishes refused)
  swap in     wait until NEW has every message; NEW takes its subjects and drops its source
  consumers   each consumer created on NEW and reset to where OLD's stands (recorded in NEW, as in TEMP
              above); then OLD is deleted
  finish      NEW's metadata loses the marks that said it was being renamed into

Read in nats-server's server/stream.go: a sourced message gets the header Nats-Stream-Source with
its origin stream and sequence, replacing one it already had (processInboundSourceMsg,
genSourceHeader), loses its Nats-Expected-* and Nats-Batch-* headers, is stored with a new
timestamp, and is deduplicated by Nats-Msg-Id like a publish; a stream with sources keeps a
duplicate_window of 0 (checkStreamCfg) and one without subjects, mirror or sources is refused.
"""

from __future__ import annotations

import json

from . import fields, rules
from .ops import Migration

TEMP_SUFFIX = "_migrating"
# Metadata of the temporary stream: which stream it migrates, and the consumers' acknowledged floors.
MIGRATING_KEY = "medisync-topology.migrating"
POSITIONS_KEY = "medisync-topology.positions"
SUBJECTS_KEY = "medisync-topology.subjects"  # the live stream's subjects, which TEMP takes over
# The consumers the consumers step has created and positioned so far (name -> the server's "created" time), in TEMP's
# metadata (a rename's: NEW's): a resumed step keeps those, which may have acknowledged messages since.
POSITIONED_KEY = "medisync-topology.positioned"
RENAMING_KEY = "medisync-topology.renaming"  # on NEW until a rename is finished: OLD's name
# A swap that takes longer is undone (the subjects go back) and the apply fails with nothing lost,
# so a plan can say how long publishes may be refused.
SWAP_TIMEOUT = 5.0
# CONSUMER.RESET (jetstream_api.go JSApiConsumerResetT) came with nats-server 2.14: a migration keeps
# consumer positions only from that line on, and is refused on older ones.
RESET_VERSION = (2, 14, 0)
# Deliver policies CONSUMER.RESET accepts a sequence for (consumer.go resetStartingSeqLocked).
RESETTABLE = ("all", "by_start_sequence", "by_start_time")

STEPS = ("copy", "swap in", "delete", "create", "swap out", "consumers", "done")
RENAME_STEPS = ("copy", "swap in", "consumers", "finish", "done")  # rename_step's answers, in order


def temp_name(name: str) -> str:
    return name + TEMP_SUFFIX


def holding_subject(name: str) -> str:
    """Where a stream's subjects go while another holds them: no one publishes here."""
    return f"$TOPOLOGY.MIGRATING.{name}"


def migrating(config: dict) -> str | None:
    """The stream a temporary stream migrates, from its metadata; None for any other stream."""
    return (config.get("metadata") or {}).get(MIGRATING_KEY)


def temp_config(before: dict, metadata: dict) -> dict:
    """TEMP: sources NAME, holds no subject until the swap, keeps every message (file storage, limits).

    Its duplicate window is NAME's, so a publish retried into TEMP during the swap is still caught;
    rollups and per-message TTLs as NAME has them, so the sourced messages are stored as NAME stored them.
    """
    name = before["name"]
    config = {
        "name": temp_name(name),
        "subjects": [],
        "sources": [{"name": name}],
        "retention": "limits",
        "storage": "file",
        "num_replicas": before.get("num_replicas", 1),
        "duplicate_window": before.get("duplicate_window", 0),
        "allow_rollup_hdrs": bool(before.get("allow_rollup_hdrs")),
        "metadata": {**metadata, MIGRATING_KEY: name, SUBJECTS_KEY: json.dumps(before.get("subjects") or [])},
    }
    if before.get("allow_msg_ttl"):
        config["allow_msg_ttl"] = True
    return config


def holding_temp_config(temp: dict) -> dict:
    """TEMP taking NAME's subjects: without its source, or it would read back from the new NAME."""
    subjects = json.loads(temp["metadata"][SUBJECTS_KEY])
    return {**{k: v for k, v in temp.items() if k != "sources"}, "subjects": subjects}


def positions(temp: dict) -> dict[str, int]:
    """The old consumers' acknowledged floors (stream sequences), recorded in TEMP before NAME was deleted."""
    return recorded(temp, POSITIONS_KEY)


def positioned(config: dict) -> dict[str, str]:
    """The consumers the consumers step has positioned (name -> their "created" time), from the stream recording it."""
    return recorded(config, POSITIONED_KEY)


def recorded(config: dict, key: str) -> dict:
    return json.loads((config.get("metadata") or {}).get(key) or "{}")


def recording(config: dict, key: str, value: dict) -> dict:
    """``config`` with ``value`` recorded under ``key`` in its metadata (POSITIONS_KEY, POSITIONED_KEY)."""
    return {**config, "metadata": {**config["metadata"], key: json.dumps(value, sort_keys=True)}}


def staging_config(after: dict) -> dict:
    """The new NAME while it copies TEMP back: its own config, no subjects yet, sourcing TEMP."""
    return {**after, "subjects": [], "sources": [{"name": temp_name(after["name"])}]}


def refusals(before: dict, after: dict, version: rules.Version | None, kept_consumers: dict,
             readers: list[str] = (), state: dict | None = None) -> list[str]:
    """Why this stream cannot be migrated, or renamed into ``after`` (the server would refuse a step, or a promise
    would break); [] if it can.

    ``kept_consumers``: the live consumers that would resume where they stand; ``readers``: the live streams
    that mirror or source it; ``state``: the live stream's (messages, bytes).
    """
    problems = []
    for limit, held in (("max_msgs", "messages"), ("max_bytes", "bytes")):
        if 0 < (after.get(limit) or -1) < (state or {}).get(held, 0):
            # The copy stores every message as a publish would: over the limit, the oldest are dropped (or refused).
            problems.append(f"the new stream's {limit} ({after[limit]:,}) is below the {state[held]:,} {held} it "
                            "would copy: some would be lost")
    if readers:
        # Measured on 2.15: a source whose origin is deleted and created again copies it all again from its first
        # message (duplicates); a mirror waits for a sequence above the last it had (what is numbered below is
        # lost); either copies nothing more from an origin deleted for good.
        problems.append(f"stream {', '.join(readers)} mirrors or sources it, and would repeat or miss messages (a "
                        "source copies the new stream again from the start, a mirror skips the sequences it had)")
    for side, config in (("live", before), ("new", after)):
        if config.get("mirror"):
            problems.append(f"the {side} stream is a mirror: a mirror cannot source its messages back")
        if config.get("sources"):
            problems.append(f"the {side} stream has sources: they would be read again from the start")
        if config.get("republish") or config.get("subject_transform"):
            problems.append(f"the {side} stream republishes or transforms subjects, which a copy would repeat")
    if before.get("sealed"):
        problems.append("the live stream is sealed: its subjects cannot be handed over")
    if after.get("sealed"):
        problems.append("the new stream is sealed: it could not store the messages")
    if before.get("retention") != "limits":
        problems.append(
            f"the live stream has {before.get('retention')} retention: sourcing removes its messages before the "
            "copy has stored them"
        )
    if after.get("retention") == "interest":
        problems.append("the new stream has interest retention: messages copied before its consumers exist are dropped")
    if not fields.at_least(version, RESET_VERSION):
        kept = f" (keeping {', '.join(sorted(kept_consumers))}'s position)" if kept_consumers else ""
        problems.append(
            f"a migration needs nats-server {rules.format_version(RESET_VERSION)} or newer, which keeps consumer "
            f"positions with CONSUMER.RESET{kept}; this server is {rules.format_version(version)}"
        )
    return problems


def rename_refusals(old: str, config: dict, version: rules.Version | None) -> list[str]:
    """Why a consumer cannot start where the live consumer ``old`` stands (CONSUMER.RESET's limits); [] if it can."""
    problems = []
    if not fields.at_least(version, RESET_VERSION):
        problems.append(f"that needs nats-server {rules.format_version(RESET_VERSION)} or newer (CONSUMER.RESET)")
    if config.get("deliver_policy", "all") not in RESETTABLE:
        problems.append(f"deliver_policy {config['deliver_policy']} cannot be reset to a position")
    return problems


def plan_migration(before: dict, after: dict, state: dict, live_consumers: dict, consumers: dict,
                   resume: str | None = None, temp: str | None = None, renamed: dict | None = None) -> Migration:
    """The migration of one stream: what it copies and which consumers keep their place.

    ``live_consumers``: name -> live config; ``consumers``: the new stream's consumers, name -> desired config;
    ``temp``: where the messages wait (a rename's: the old stream); ``renamed``: new consumer -> the live one
    whose position it takes (its ``renamed_from``).
    """
    kept = kept_consumers(live_consumers, consumers, renamed or {})
    return Migration(
        temp=temp or temp_name(after["name"]), messages=state.get("messages", 0), bytes=state.get("bytes", 0),
        first_seq=state.get("first_seq", 0), last_seq=state.get("last_seq", 0), consumers=consumers,
        kept=tuple(sorted(kept)), resume=resume, renamed={n: old for n, old in kept.items() if old != n},
    )


def kept_consumers(live_consumers: dict, consumers: dict, renamed: dict | None = None) -> dict[str, str]:
    """The desired consumers whose position a reset can restore: name -> the live consumer it is taken from
    (its own name, or the one it says it is ``renamed`` from when it does not exist itself)."""
    kept = {}
    for name, config in consumers.items():
        old = name if name in live_consumers else (renamed or {}).get(name)
        if old in live_consumers and config.get("deliver_policy", "all") in RESETTABLE:
            kept[name] = old
    return kept


def source_of(headers: dict | None) -> tuple[str, int] | None:
    """(origin stream, origin sequence) from a sourced message's Nats-Stream-Source header, else None.

    The value is "<stream>[:<hash>] <seq> <filter> <transform> <subject>" (stream.go genSourceHeader).
    """
    value = (headers or {}).get("Nats-Stream-Source")
    if not value:
        return None
    parts = value.split(" ")
    try:
        return parts[0].split(":")[0], int(parts[1])
    except (IndexError, ValueError):
        return None


def next_step(name_config: dict | None, temp: dict | None) -> str:
    """Where a migration of NAME stands, from the live configs of NAME and TEMP (None: absent).

    TEMP sourcing NAME: still copying, or frozen NAME for the swap; TEMP holding NAME's subjects:
    NAME is the old stream (to delete) or absent (to create) or the new one sourcing TEMP; TEMP on
    its holding subject: the new NAME is copying its last messages, or is complete.
    """
    if temp is None:
        return "copy" if name_config is not None else "done"
    name = migrating(temp)
    sourcing_temp = bool(name_config) and any(s.get("name") == temp["name"] for s in name_config.get("sources") or [])
    if temp.get("sources"):
        if name_config is not None and name_config.get("subjects") == [holding_subject(name)]:
            return "swap in"
        return "copy"
    if temp.get("subjects") == [holding_subject(temp["name"])]:
        if name_config is None:
            return "create"
        return "swap out" if sourcing_temp else "consumers"
    if name_config is None:
        return "create"
    return "swap out" if sourcing_temp else "delete"


# -- renames -----------------------------------------------------------


def renaming(config: dict) -> str | None:
    """The stream a stream is being renamed from, from its metadata; None once the rename is finished."""
    return (config.get("metadata") or {}).get(RENAMING_KEY)


def in_transit(config: dict) -> bool:
    """A stream a migration or rename under way holds: its temporary stream, a stream being renamed into, or one
    whose subjects wait on the holding subject; messages on their way, which apply moves on."""
    return bool(migrating(config) or renaming(config)) or config.get("subjects") == [holding_subject(config["name"])]


def rename_staging_config(config: dict, old: dict) -> dict:
    """NEW while it copies OLD: its own config, no subjects, sourcing OLD; its metadata names OLD and OLD's
    subjects (given back to OLD if the swap times out)."""
    metadata = {**(config.get("metadata") or {}), RENAMING_KEY: old["name"],
                SUBJECTS_KEY: json.dumps(old.get("subjects") or [])}
    return {**config, "subjects": [], "sources": [{"name": old["name"]}], "metadata": metadata}


def rename_taking_config(config: dict, staged: dict) -> dict:
    """NEW taking publishes: its own config (its subjects, no source), still marked as being renamed into."""
    return {**config, "metadata": staged["metadata"]}


def old_subjects(staged: dict) -> list[str]:
    return json.loads(staged["metadata"][SUBJECTS_KEY])


def rename_step(old: dict | None, new: dict | None) -> str:
    """Where a rename of OLD to NEW stands, from the live configs of OLD and NEW (None: absent)."""
    if new is None:
        return "copy"
    name = renaming(new)
    if name is None:
        return "done"
    if new.get("sources"):
        return "swap in" if old is not None and old.get("subjects") == [holding_subject(name)] else "copy"
    return "consumers" if old is not None else "finish"
