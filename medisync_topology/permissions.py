"""The least privilege each service needs, derived from `services:` in the topology.

Each right is the subjects the official clients (nats.go, nats-py) actually use for one job, so a
service can do exactly what the topology says and nothing else (no stream or consumer management,
no other service's consumers, no other subjects):

- publish with JetStream acks: PUB on the subject; the ack is a reply on the service's inbox.
- work a durable consumer: CONSUMER.INFO (clients bind with it), CONSUMER.MSG.NEXT for a pull consumer
  (the messages arrive on the inbox), SUB on a push consumer's deliver subject, in its queue group when
  it has one; acks, naks, terms and in-progress on $JS.ACK.<stream>.<consumer>.> (the server's reply
  subject for each delivery, server/consumer.go); $JS.FC.<stream>.<consumer>.* when it flow-controls.
- read a bucket: STREAM.INFO of its stream (nats.go KeyValue/ObjectStore and nats-py key_value/object_store
  bind with it), direct get of its keys ($JS.API.DIRECT.GET.KV_b.$KV.b.<key>, both clients, as the
  buckets have allow_direct), STREAM.MSG.GET where a client does not use direct get (nats-py reads
  object metadata so), and the ordered consumer that watches a KV bucket or streams an object's chunks:
  CONSUMER.CREATE on the bucket's stream (nats.go puts name and filter in the subject:
  CONSUMER.CREATE.<stream>.<name>.<filter>; nats-py's ordered consumer uses CONSUMER.CREATE.<stream>),
  its info, its delete (nats.go deletes the consumer it made when a watch stops) and flow control.
  nats-py finds an object's stream by subject first, so object store readers may list stream names.
- write a bucket: PUB on $KV.<bucket>.> (put, delete and purge are messages there) or $O.<bucket>.>
  (chunks and metadata), and for an object store STREAM.PURGE of its stream: clients purge the chunks
  of an object they replace or delete.
- replies: SUB on _INBOX.<service>.>, the service's own inbox prefix (nats-py
  ``nats.connect(inbox_prefix="_INBOX.<service>")``, nats.go ``nats.CustomInboxPrefix``), so no service
  can read another's replies.
"""

from __future__ import annotations

import json

from . import buckets, rules, subjects
from .model import ConsumerSpec, ServiceSpec, StreamSpec, Topology
from .services import ACCESS_SECTIONS, bucket, variable_name

API = "$JS.API"


def inbox_prefix(service: str) -> str:
    return f"_INBOX.{service}"


def topology_permissions(topology: Topology) -> dict:
    """{"services": {NAME: {"pub": {"allow", "deny"}, "sub": {"allow", "deny"}}}}, the shape of NATS user
    permissions in JWTs (nsc, auth callouts)."""
    return {"services": {name: service_permissions(topology, service) for name, service in topology.services.items()}}


def service_permissions(topology: Topology, service: ServiceSpec) -> dict:
    pub: list[str] = list(service.publish)
    sub: list[str] = [inbox_prefix(service.name) + ".>"]
    for stream_name, consumer_name in service.consume:
        stream = topology.streams[stream_name]
        pub_c, sub_c = _consumer_rights(stream, stream.consumers[consumer_name])
        pub += pub_c
        sub += sub_c
    for kind, field in ACCESS_SECTIONS.items():
        for name, access in getattr(service, field).items():
            pub += _bucket_rights(bucket(topology, kind, name), access == "read-write")
    deny = []
    audit = (topology.audit or {}).get("subject")
    if audit and any(subjects.subjects_overlap(audit, s) for s in service.publish):
        deny.append(audit)  # the audit trail records topology changes; only the provisioner writes it
    return {"pub": {"allow": _unique(pub), "deny": deny}, "sub": {"allow": _unique(sub), "deny": []}}


def _consumer_rights(stream: StreamSpec, consumer: ConsumerSpec) -> tuple[list[str], list[str]]:
    config = rules.complete_consumer(consumer.config, stream.config)
    where = f"{stream.name}.{consumer.name}"
    pub, sub = [f"{API}.CONSUMER.INFO.{where}"], []
    if config.get("deliver_subject"):
        group = config.get("deliver_group")
        sub.append(f"{config['deliver_subject']} {group}" if group else config["deliver_subject"])
        if config.get("flow_control"):
            pub.append(f"$JS.FC.{where}.*")
    else:
        pub.append(f"{API}.CONSUMER.MSG.NEXT.{where}")
    if config.get("ack_policy") != "none":
        pub.append(f"$JS.ACK.{where}.>")
    return pub, sub


def _bucket_rights(spec: StreamSpec, write: bool) -> list[str]:
    stream, name = spec.name, spec.bucket
    key_value = spec.kind == "key_value"
    data = buckets.kv_subject(name) if key_value else f"$O.{name}.>"
    pub = [f"{API}.STREAM.INFO.{stream}"]
    direct = spec.config.get("allow_direct")
    if direct:
        pub.append(f"{API}.DIRECT.GET.{stream}.{data if key_value else f'$O.{name}.M.>'}")
        if key_value:
            pub.append(f"{API}.DIRECT.GET.{stream}")  # a key at a revision: the sequence goes in the request
    if not key_value or not direct:
        pub.append(f"{API}.STREAM.MSG.GET.{stream}")
    pub += [f"{API}.CONSUMER.CREATE.{stream}", f"{API}.CONSUMER.CREATE.{stream}.>",
            f"{API}.CONSUMER.INFO.{stream}.*", f"{API}.CONSUMER.DELETE.{stream}.*", f"$JS.FC.{stream}.>"]
    if not key_value:
        pub.append(f"{API}.STREAM.NAMES")
    if write:
        pub.append(data)
        if not key_value:
            pub.append(f"{API}.STREAM.PURGE.{stream}")
    return pub


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def render_json(permissions: dict) -> str:
    return json.dumps(permissions, indent=2, sort_keys=True) + "\n"


def render_nats_conf(permissions: dict, sources: list[str]) -> str:
    """One variable per service (ALERT_WORKER = {...}) for `include` in nats.conf and
    `permissions: $ALERT_WORKER` on the service's user."""
    lines = [f"# Generated by `topology permissions --format nats-conf` from {', '.join(sources)}; do not edit.",
             "# Each service's least privilege; nats.conf includes this file and gives each user its variable.", ""]
    for name, rights in permissions["services"].items():
        lines.append(f"{variable_name(name)} = {{")
        for key, direction in (("pub", "publish"), ("sub", "subscribe")):
            lines.append(f"  {direction}: {{")
            for verdict in ("allow", "deny"):
                if rights[key][verdict]:
                    lines.append(f"    {verdict}: [")
                    lines += [f"      {json.dumps(subject)}" for subject in rights[key][verdict]]
                    lines.append("    ]")
            lines.append("  }")
        lines += ["}", ""]
    return "\n".join(lines)
