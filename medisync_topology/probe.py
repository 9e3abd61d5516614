"""Before a replace deletes anything: ask the server whether it accepts what replaces it.

JetStream has no dry run, and a replace is delete then create: when the server refuses the new
config, or a consumer recreated after a replaced stream, the old resource and its messages are
already gone. So apply first creates the new config under a probe name, where it touches nothing:
a stream with its subjects moved under a prefix no one publishes to (wildcards, overlaps and subsets
between them and its consumers' filters stay as they were), each consumer the plan recreates on it;
a consumer on its own stream, its deliver subject moved under the prefix so nothing is pushed to anyone. The probe is
deleted again whatever the answer. Refused: the replace fails and the old resource is left as it was.

A probe can be refused for being a probe (the account's room for one more stream, storage reserved
twice, a subject some live stream captures with a wildcard, a workqueue stream's overlap with the very
consumer being replaced); then it says nothing about the new config and the replace goes on as before.
"""

from __future__ import annotations

import secrets

from . import errors
from .client import JetStreamAPIError, JetStreamClient
from .ops import CreateResource, Operation, Ref, ReplaceResource

PROBE_PREFIX = "TOPOLOGY_PROBE_"
PROBE_SUBJECT = "_topology_probe"

# Refusals of the probe itself, not of the config it carries.
PROBE_ARTEFACTS = {
    10027,  # JSMaximumStreamsLimitErr: the account has no room for one stream more
    10026,  # JSMaximumConsumersLimitErr
    errors.STORAGE_RESOURCES_EXCEEDED,  # the old resource still holds its reservation
    10028,  # JSMemoryResourcesExceededErr
    10023,  # JSInsufficientResourcesErr
    errors.SUBJECTS_OVERLAP,  # a live stream captures the probe's prefix with a wildcard
    errors.WORKQUEUE_UNFILTERED,  # the consumer being replaced is still there beside its probe
    errors.WORKQUEUE_NOT_UNIQUE,
}


class Refused(Exception):
    """The server refused the config that would replace ``ref``: nothing was deleted."""

    def __init__(self, ref: Ref, exc: JetStreamAPIError):
        self.ref, self.error = ref, exc
        super().__init__(str(exc))


def _moved(subject: str, nonce: str) -> str:
    return f"{PROBE_SUBJECT}.{nonce}.{subject}"


def _probe_stream(config: dict, name: str, nonce: str) -> dict:
    probe = {**config, "name": name}
    if probe.get("subjects"):
        probe["subjects"] = [_moved(s, nonce) for s in probe["subjects"]]
    for key in ("republish", "subject_transform"):  # they name the stream's own subjects
        if probe.get(key):
            probe[key] = {k: _moved(v, nonce) if k in ("src", "dest") and v else v for k, v in probe[key].items()}
    return probe


def _probe_consumer(config: dict, name: str, nonce: str, moved: bool) -> dict:
    probe = {**config, "durable_name": name, "name": name}
    if moved:
        if probe.get("filter_subject"):
            probe["filter_subject"] = _moved(probe["filter_subject"], nonce)
        if probe.get("filter_subjects"):
            probe["filter_subjects"] = [_moved(s, nonce) for s in probe["filter_subjects"]]
    if probe.get("deliver_subject"):
        # Pushed to no one; moved like the stream's subjects, a deliver subject they capture still is (a cycle).
        probe["deliver_subject"] = _moved(probe["deliver_subject"], nonce)
    return probe


async def probe_replacement(client: JetStreamClient, op: ReplaceResource, plan_operations: list[Operation],
                            create, delete) -> None:
    """Raise Refused when the server would refuse what replaces ``op``'s resource; return when it accepts it
    or cannot tell. ``create(ref, config)`` and ``delete(ref)`` are apply's own requests."""
    nonce = secrets.token_hex(4)
    name = f"{PROBE_PREFIX}{nonce.upper()}"
    if op.ref.kind == "consumer":
        probe_ref = Ref("consumer", name, op.ref.stream)
        steps = [(op.ref, probe_ref, _probe_consumer(op.after, name, nonce, moved=False))]
        cleanup = [probe_ref]
    else:
        stream_ref = Ref("stream", name)
        steps = [(op.ref, stream_ref, _probe_stream(op.after, name, nonce))]
        # Every consumer the plan creates on the replaced stream, on the probe stream.
        for other in plan_operations:
            if isinstance(other, CreateResource) and other.ref.kind == "consumer" and other.ref.stream == op.ref.stream_name:
                probe_ref = Ref("consumer", other.ref.name, name)
                steps.append((other.ref, probe_ref, _probe_consumer(other.config, other.ref.name, nonce, moved=True)))
        cleanup = [stream_ref]  # its consumers go with it
    made: list[Ref] = []
    try:
        for real, probe_ref, config in steps:
            try:
                await create(probe_ref, config)
            except JetStreamAPIError as exc:
                if exc.err_code in PROBE_ARTEFACTS:
                    return
                raise Refused(real, exc) from None
            made.append(probe_ref)
    finally:
        if made:
            for ref in cleanup:
                await delete(ref)
