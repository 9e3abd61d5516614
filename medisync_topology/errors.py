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
CONSUMER_NAME_MISMATCH = 10101  # JSConsumerCreateDurableAndNameMismatch
STORAGE_RESOURCES_EXCEEDED = 10047  # JSStorageResourcesExceededErr
# JSStreamWrongLastSequenceErrF, and JSStreamWrongLastSequenceConstantErr (replicated streams, 2.12+),
# both meaning an Expected-Last-Subject-Sequence check failed.
WRONG_LAST_SEQUENCE = (10071, 10164)
