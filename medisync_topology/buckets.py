"""KV buckets and object stores as the JetStream streams that back them.

A bucket is only a stream with a reserved name (``KV_<bucket>``, ``OBJ_<bucket>``), reserved
subjects and settings the clients rely on. We build that stream exactly as nats.go does
(jetstream/kv.go prepareKeyValueConfig, jetstream/object.go prepareObjectStoreConfig), so any
client that opens the bucket finds what it expects. Where nats-py builds it differently
(nats/js/client.py create_key_value / create_object_store) we follow nats.go; each place says so.

Values are the JetStream API's own JSON: durations in nanoseconds, sizes in bytes.
"""

from __future__ import annotations

from . import fields
from .errors import TopologyError
from .fields import UNLIMITED
from .rules import SERVER_METADATA_PREFIX, duplicate_window_for
from .subjects import bucket_name_problem, subjects_overlap

KV_PREFIX = "KV_"
OBJ_PREFIX = "OBJ_"
PREFIXES = {"key_value": KV_PREFIX, "object_store": OBJ_PREFIX}
# Where topology.yaml declares each kind of bucket.
SECTIONS = {"key_value": "key_value", "object_store": "object_stores"}

# The tool's own bucket, holding the apply lock (lock.py): reserved, never planned, exported or pruned.
LOCK_BUCKET = "medisync_topology_lock"
LOCK_STREAM = KV_PREFIX + LOCK_BUCKET

# nats.go KeyValueMaxHistory: the clients refuse more values per key than this.
KV_MAX_HISTORY = 64

# The bucket settings each kind takes (fields.KEY_VALUE, fields.OBJECT_STORE), in order.
SETTINGS = {kind: fields.offered(kind) for kind in PREFIXES}
# Stream fields that are a bucket setting under another name with the same value, so a plan can
# name a bucket's change as the person wrote it (history, not max_msgs_per_subject).
SETTING_NAMES = {
    kind: {f.stream_field: name for name, f in fields.RESOURCES[kind].items() if f.stream_field} for kind in PREFIXES
}


def without_lock(streams: dict[str, object]) -> dict:
    """The streams (by name) a topology may hold: all but the tool's apply-lock bucket."""
    return {name: stream for name, stream in streams.items() if name != LOCK_STREAM}


def capturing_streams(subjects_by_stream: dict[str, list[str]]) -> list[str]:
    """The streams whose subjects take in the lock's (a stream on ">", on "$KV.>", ...): the server keeps
    a subject in one stream only, so the lock bucket cannot exist beside them."""
    return sorted(
        name for name, subjects in without_lock(subjects_by_stream).items()
        if any(subjects_overlap(s, LOCK_SUBJECT) for s in subjects or [])
    )


def bucket_subjects(kind: str, bucket: str) -> list[str]:
    """The subjects the bucket's stream listens on (a KV mirror listens on none: see bucket_stream_config)."""
    _check_kind(kind)
    if kind == "key_value":
        return [kv_subject(bucket)]
    return [f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"]


def bucket_of(stream_name: str) -> tuple[str, str] | None:
    """Which bucket a stream backs, by its reserved name prefix; None for an ordinary stream."""
    for kind, prefix in PREFIXES.items():
        bucket = stream_name.removeprefix(prefix)
        if bucket != stream_name and bucket_name_problem(bucket, "bucket") is None:
            return kind, bucket
    return None


def bucket_stream_config(kind: str, bucket: str, settings: dict) -> dict:
    """The stream config (with ``name``) that creates the bucket, as nats.go would send it."""
    _check_kind(kind)
    problem = bucket_name_problem(bucket, f"{_KIND_WORDS[kind]} name", PREFIXES[kind])
    if problem:
        raise TopologyError(problem)
    unknown = sorted(set(settings) - set(SETTINGS[kind]))
    if unknown:
        raise TopologyError(
            f"{_KIND_WORDS[kind]} {bucket!r}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(SETTINGS[kind])}"
        )
    if kind == "key_value":
        return _kv_stream_config(bucket, settings)
    return _obj_stream_config(bucket, settings)


def bucket_settings(kind: str, stream_config: dict) -> dict:
    """The bucket settings a live backing stream was made from (only values that differ from the default)."""
    _check_kind(kind)
    config = stream_config
    settings: dict = {}
    if config.get("description"):
        settings["description"] = config["description"]
    if kind == "key_value":
        if config.get("max_msgs_per_subject", 1) != 1:
            settings["history"] = config["max_msgs_per_subject"]
    if config.get("max_age", 0):
        settings["ttl"] = config["max_age"]
    if kind == "key_value" and config.get("max_msg_size", UNLIMITED) not in (0, UNLIMITED):
        settings["max_value_size"] = config["max_msg_size"]
    if config.get("max_bytes", UNLIMITED) not in (0, UNLIMITED):
        settings["max_bytes"] = config["max_bytes"]
    if config.get("storage", "file") != "file":
        settings["storage"] = config["storage"]
    if config.get("num_replicas", 1) not in (0, 1):
        settings["num_replicas"] = config["num_replicas"]
    if config.get("compression", "none") == "s2":
        settings["compression"] = True
    if config.get("placement"):
        settings["placement"] = config["placement"]
    if kind == "key_value":
        if config.get("republish"):
            settings["republish"] = config["republish"]
        bucket = config["name"].removeprefix(KV_PREFIX)
        if config.get("mirror"):
            settings["mirror"] = _kv_source_setting(bucket, config["mirror"], mirror=True)
        if config.get("sources"):
            settings["sources"] = [_kv_source_setting(bucket, s, mirror=False) for s in config["sources"]]
        if config.get("subject_delete_marker_ttl", 0) > 0:
            settings["limit_marker_ttl"] = config["subject_delete_marker_ttl"]
    metadata = {k: v for k, v in (config.get("metadata") or {}).items() if not k.startswith(SERVER_METADATA_PREFIX)}
    if metadata:
        settings["metadata"] = metadata
    return settings


# -- key value -------------------------------------------------------------

def kv_subject(bucket: str, key: str = ">") -> str:
    """Where a KV bucket keeps a key (">": all its keys), as nats.go publishes it."""
    return f"$KV.{bucket}.{key}"


LOCK_KEY = "apply"
LOCK_SUBJECT = kv_subject(LOCK_BUCKET, LOCK_KEY)


def _kv_stream_config(bucket: str, settings: dict) -> dict:
    history = settings.get("history", 1)
    if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= KV_MAX_HISTORY:
        raise TopologyError(
            f"key_value bucket {bucket!r}: history {history!r} must be a whole number from 1 to {KV_MAX_HISTORY}"
        )
    if settings.get("mirror") and settings.get("sources"):
        # nats.go silently drops the sources; the server refuses a mirror with sources.
        raise TopologyError(f"key_value bucket {bucket!r}: a bucket is either a mirror or has sources, not both")
    ttl = settings.get("ttl", 0)
    # nats.go sends the window the server would choose (the default, capped at the TTL), explicitly.
    duplicate_window = duplicate_window_for(ttl)
    config: dict = {"name": KV_PREFIX + bucket}
    if settings.get("description"):
        config["description"] = settings["description"]
    config.update(
        max_msgs_per_subject=history,
        max_bytes=settings.get("max_bytes") or UNLIMITED,
        max_age=ttl,
        max_msg_size=settings.get("max_value_size") or UNLIMITED,
        storage=settings.get("storage", "file"),
        num_replicas=settings.get("num_replicas") or 1,
        allow_rollup_hdrs=True,
        deny_delete=True,
        duplicate_window=duplicate_window,
        max_msgs=UNLIMITED,
        max_consumers=UNLIMITED,
        # nats-py sets allow_direct only when asked (direct=True); nats.go always does, and
        # nats.go's Get uses direct get whenever it is on. We follow nats.go.
        allow_direct=True,
        compression="s2" if settings.get("compression") else "none",
        discard="new",
    )
    for key in ("placement", "republish"):
        if settings.get(key):
            config[key] = settings[key]
    if settings.get("limit_marker_ttl"):
        # nats-py sets allow_msg_ttl on every bucket; nats.go only with limit_marker_ttl
        # (per-key TTLs need it). We follow nats.go.
        config["allow_msg_ttl"] = True
        config["subject_delete_marker_ttl"] = settings["limit_marker_ttl"]
    if settings.get("metadata"):
        config["metadata"] = dict(settings["metadata"])
    if settings.get("mirror"):
        # A mirror has no subjects of its own; mirror_direct lets clients read the origin's
        # keys from it (nats.go). nats-py cannot create mirror or sourced buckets.
        mirror = dict(settings["mirror"])
        mirror["name"] = _kv_stream_name(mirror["name"])
        config["mirror"] = mirror
        config["mirror_direct"] = True
        return config
    if settings.get("sources"):
        config["sources"] = [_kv_source(bucket, dict(source)) for source in settings["sources"]]
    config["subjects"] = [kv_subject(bucket)]
    return config


def _kv_stream_name(name: str) -> str:
    return name if name.startswith(KV_PREFIX) else KV_PREFIX + name


def _kv_source(bucket: str, source: dict) -> dict:
    """nats.go's mapping of a source bucket's keys onto this bucket's subjects.

    A source with its own subject_transforms is taken as written (a full stream name, possibly
    not a KV stream). Otherwise the source is a bucket: its keys are rewritten into this bucket,
    except for a same-named bucket in another domain/account, whose subjects already match.
    """
    if source.get("subject_transforms"):
        return source
    source_bucket = source["name"].removeprefix(KV_PREFIX)
    source["name"] = KV_PREFIX + source_bucket
    if not source.get("external") or source_bucket != bucket:
        source["subject_transforms"] = [_kv_transform(source_bucket, bucket)]
    return source


def _kv_transform(source_bucket: str, bucket: str) -> dict:
    return {"src": kv_subject(source_bucket), "dest": kv_subject(bucket)}


def _kv_source_setting(bucket: str, source: dict, *, mirror: bool) -> dict:
    """The reverse of _kv_source (and of the mirror name prefix): the source as a bucket setting."""
    source = dict(source)
    name = source.get("name", "")
    if not name.startswith(KV_PREFIX):
        return source  # only possible with explicit subject_transforms: taken as written
    source_bucket = name.removeprefix(KV_PREFIX)
    if mirror:
        source["name"] = source_bucket
        return source
    transforms = source.get("subject_transforms")
    if transforms == [_kv_transform(source_bucket, bucket)]:
        del source["subject_transforms"]
    elif transforms or not (source.get("external") and source_bucket == bucket):
        return source
    source["name"] = source_bucket
    return source


# -- object store ------------------------------------------------------------

def _obj_stream_config(bucket: str, settings: dict) -> dict:
    # nats.go leaves max_msgs, max_consumers, max_msgs_per_subject and duplicate_window unset for
    # the server to default (-1 and min(max_age, 2m)); nats-py sends max_consumers 0, which the
    # server turns into -1 too. nats-py sends no compression or metadata; nats.go does.
    config: dict = {"name": OBJ_PREFIX + bucket}
    if settings.get("description"):
        config["description"] = settings["description"]
    config.update(
        subjects=bucket_subjects("object_store", bucket),
        max_age=settings.get("ttl", 0),
        max_bytes=settings.get("max_bytes") or UNLIMITED,
        storage=settings.get("storage", "file"),
        num_replicas=settings.get("num_replicas") or 1,
        discard="new",
        allow_rollup_hdrs=True,
        allow_direct=True,
        compression="s2" if settings.get("compression") else "none",
    )
    if settings.get("placement"):
        config["placement"] = settings["placement"]
    if settings.get("metadata"):
        config["metadata"] = dict(settings["metadata"])
    return config


# -- shared ------------------------------------------------------------------

_KIND_WORDS = {"key_value": "key_value bucket", "object_store": "object store"}


def _check_kind(kind: str) -> None:
    if kind not in PREFIXES:
        raise TopologyError(f"unknown bucket kind {kind!r}: expected one of {', '.join(PREFIXES)}")
