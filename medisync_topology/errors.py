"""Exceptions the library raises; cli.py turns each into a clean "Error: ..." and exit 1."""


class TopologyError(Exception):
    """Base of every error this tool reports to a person (never shown as a traceback)."""


# nats-server errors.json codes this tool acts on or explains, by their constant's name there.
JS_NOT_ENABLED_FOR_ACCOUNT = 10039  # JSNotEnabledForAccountErr
STREAM_NAME_IN_USE = 10058  # JSStreamNameExistErr: a stream of that name exists with another config
SUBJECTS_OVERLAP = 10065  # JSStreamSubjectOverlapErr
NO_MESSAGE_FOUND = 10037  # JSNoMessageFoundErr
STREAM_NOT_FOUND = 10059  # JSStreamNotFoundErr
CONSUMER_NOT_FOUND = 10014  # JSConsumerNotFoundErr
CONSUMER_NAME_IN_USE = 10013  # JSConsumerNameExistErr
STREAM_INVALID_CONFIG = 10052  # JSStreamInvalidConfigF
CONSUMER_CREATE_FAILED = 10012  # JSConsumerCreateErrF
STORAGE_RESOURCES_EXCEEDED = 10047  # JSStorageResourcesExceededErr
STREAM_UPDATE_FAILED = 10069  # JSStreamUpdateErrF
MAXIMUM_CONSUMERS = 10026  # JSMaximumConsumersLimitErr
WORKQUEUE_UNFILTERED = 10099  # JSConsumerWQMultipleUnfilteredErr
WORKQUEUE_NOT_UNIQUE = 10100  # JSConsumerWQConsumerNotUniqueErr
REPLICAS_NOT_SUPPORTED = 10074  # JSStreamReplicasNotSupportedErr: more than one replica, not clustered
NO_SUITABLE_PEERS = 10005  # JSClusterNoPeersErrF: no servers for these replicas and placement
NO_LIMITS = 10120  # JSNoLimitsErr: no default or tiered account limit applies
MAXIMUM_STREAMS = 10027  # JSMaximumStreamsLimitErr
MAX_BYTES_REQUIRED = 10113  # JSStreamMaxBytesRequired
MAX_STREAM_BYTES_EXCEEDED = 10122  # JSStreamMaxStreamBytesExceeded
MEMORY_RESOURCES_EXCEEDED = 10028  # JSMemoryResourcesExceededErr
MAX_ACK_PENDING_EXCEEDED = 10121  # JSConsumerMaxPendingAckExcessErrF
# JSStreamWrongLastSequenceErrF, and JSStreamWrongLastSequenceConstantErr (replicated streams, 2.12+),
# both meaning an Expected-Last-Subject-Sequence check failed.
WRONG_LAST_SEQUENCE = (10071, 10164)

# What the server's error codes mean, in the words of its server/errors.json (for the codes whose
# description there is only "{err}", the kind of request refused). apply adds them to a server
# error; every code a refusal (refusals.py) gives is here.
ERROR_MEANINGS: dict[int, str] = {
    CONSUMER_CREATE_FAILED: "the server refused to create or update the consumer",
    CONSUMER_NAME_IN_USE: "the consumer name is already in use",
    CONSUMER_NOT_FOUND: "the consumer was not found",
    MAXIMUM_CONSUMERS: "the stream's maximum number of consumers is reached",
    10030: "a mirror's max_msg_size must be at least its origin's",
    10031: "a mirror cannot also have sources",
    10034: "a mirror cannot have subjects of its own",
    10046: "a stream's max_msg_size must be at least that of each stream it sources from",
    STORAGE_RESOURCES_EXCEEDED: "the server does not have enough storage resources",
    STREAM_INVALID_CONFIG: "the stream configuration is invalid",
    10049: "the server could not create the stream",
    STREAM_NAME_IN_USE: "the stream name is already in use with a different configuration",
    STREAM_NOT_FOUND: "the stream was not found",
    SUBJECTS_OVERLAP: "the subjects overlap with an existing stream's",
    10080: "a push consumer cannot set max_waiting",
    10081: "the consumer's deliver subject forms a cycle with the stream's subjects",
    10082: "max_ack_pending needs an ack policy other than none",
    10083: "a consumer's idle_heartbeat must be at least 100ms",
    10084: "a pull consumer on a workqueue stream needs ack_policy explicit",
    10086: "a pull consumer cannot have a rate limit",
    10088: "idle_heartbeat needs a push consumer",
    10089: "flow control needs a push consumer",
    10094: "the deliver policy does not fit the consumer's other settings",
    10098: "a workqueue stream needs consumers with explicit acks",
    WORKQUEUE_UNFILTERED: "a workqueue stream allows only one consumer without a filter",
    WORKQUEUE_NOT_UNIQUE: "on a workqueue stream each consumer's filter must be unique (no overlap with another consumer's)",
    10101: "a consumer on a workqueue stream must deliver all messages (deliver_policy all)",
    10108: "a consumer with flow control also needs heartbeats",
    10115: "a consumer's max_expires must be at least 1ms",
    10116: "max_deliver must be at least the number of backoff values",
    MAX_ACK_PENDING_EXCEEDED: "max_ack_pending exceeds the limit (the stream's consumer_limits, or the server's or account's)",
    10126: "the consumer has more replicas than its stream",
    10134: "a consumer of an interest or workqueue stream must have its stream's replicas",
    10136: "a consumer cannot have both filter_subject and filter_subjects",
    10138: "the consumer's filter subjects overlap each other",
    10140: "the same source is configured twice",
    10146: "a source's subject transform is invalid",
    10154: "a mirror's subject transform is invalid",
    10156: "the stream's subject transform is invalid",
    10143: "a mirror cannot have a first sequence",
    10144: "a source with subject_transforms cannot also have a filter_subject",
    10147: "a source's subject transforms overlap each other",
    10150: "a mirror with subject_transforms cannot also have a filter_subject",
    10152: "a mirror's subject transforms overlap each other",
    10153: "inactive_threshold exceeds the limit (the stream's consumer_limits)",
    10159: "priority_policy needs at least one priority group",
    10173: "a mirror cannot be a counter stream",
    10178: "priority groups cannot be used with push consumers",
    10186: "a mirror cannot schedule messages",
    10187: "a stream with sources cannot schedule messages",
    10196: "priority groups need a priority_policy other than none",
    10197: "priority_timeout needs a priority_policy other than none",
    10198: "a mirror cannot use atomic publishing",
    10209: "a mirror cannot use batch publishing",
    10218: "the flow_control ack policy needs a push consumer",
    10220: "the flow_control ack policy needs max_ack_pending",
    10221: "the flow_control ack policy leaves ack_wait and backoff unset",
    10222: "the flow_control ack policy leaves max_deliver unset",
}
