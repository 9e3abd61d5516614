"""NATS subject and JetStream name rules, checked offline.

These follow nats-server's own checks so that `topology validate` refuses what the server would
refuse, before any connection: server/sublist.go (IsValidSubject, SubjectsCollide,
subjectIsSubsetMatch), server/jetstream.go (isValidAssetName) and server/jetstream_api.go
(JSMaxNameLen); bucket names follow nats.go jetstream/kv.go (validBucketRe).

Subjects are dot-separated tokens. A token that is exactly ``*`` matches one token; a token that is
exactly ``>`` matches one or more tokens and must be last. ``a*`` or ``a>b`` are plain literal
tokens to the server, so they are valid here too. (The server's SubjectsCollide and
isSubsetMatchTokenized look only at a token's first byte in places, so a literal ``*x`` can act as
a wildcard there; here only whole ``*`` and ``>`` tokens are wildcards.)
"""

from __future__ import annotations

import re

# server/jetstream_api.go JSMaxNameLen; Go's len() counts bytes, so we do too.
MAX_NAME_LENGTH = 255
# server/jetstream.go isValidAssetName, used for stream, consumer and durable names.
_NAME_FORBIDDEN = ".*>/\\"
# nats.go jetstream/kv.go validBucketRe, used for both KV buckets and object stores.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9_-]+")


def subject_problem(subject: str) -> str | None:
    """Why a stream subject or consumer filter is invalid, or None when the server accepts it.

    Beyond the server, any Unicode whitespace is refused (the server checks only space, tab,
    CR, LF and FF); a subject with a vertical tab or no-break space is a typo, never intended.
    """
    if not subject:
        return "subject is empty"
    if _has_whitespace(subject):
        return f"subject {subject!r} contains whitespace"
    if subject.startswith("."):
        return f"subject {subject!r} starts with '.': tokens are separated by single dots"
    if subject.endswith("."):
        return f"subject {subject!r} ends with '.': tokens are separated by single dots"
    tokens = subject.split(".")
    if "" in tokens:
        return f"subject {subject!r} has an empty token ('..'): tokens are separated by single dots"
    if ">" in tokens[:-1]:
        return f"subject {subject!r} has '>' before its last token: '>' matches the rest of a subject, so it must come last"
    return None


# server/subject_transform.go: {{wildcard(n)}} and its older spelling $n name the source's n-th '*'.
_WILDCARD_REFERENCE = re.compile(r"^\{\{\s*wildcard\s*\(\s*(\d+)\s*\)\s*\}\}$|^\$(\d+)$", re.IGNORECASE)


def transform_problem(src: str, dest: str) -> str | None:
    """Why a subject transform (src -> dest) cannot be made, or None (server/subject_transform.go
    NewSubjectTransform, the shape of it: the destination's other mapping functions are not checked)."""
    if not dest:
        return None
    src = src or ">"
    if subject_problem(src) or subject_problem(dest):
        return "its source and destination must be valid subjects"
    source, target = src.split("."), dest.split(".")
    if "*" in target:
        return "the destination may not contain '*': name the source's wildcard with {{wildcard(n)}}"
    if (">" in source) != (">" in target):
        return "a '>' in the source needs one in the destination, and only then"
    wildcards = source.count("*")
    for token in target:
        match = _WILDCARD_REFERENCE.match(token)
        if match and int(match.group(1) or match.group(2)) > wildcards:
            return f"{token} names a wildcard the source {src!r} does not have ({wildcards} '*')"
    return None


def subjects_overlap(a: str, b: str) -> bool:
    """True when some concrete subject matches both valid subjects.

    The server refuses a stream whose subjects overlap each other or another stream's
    (SubjectsCollide), since one message would be stored twice.
    """
    tokens_a, tokens_b = a.split("."), b.split(".")
    for token_a, token_b in zip(tokens_a, tokens_b):
        # Both still have a token here, and '>' takes it plus whatever follows.
        if token_a == ">" or token_b == ">":
            return True
        if token_a != token_b and token_a != "*" and token_b != "*":
            return False
    return len(tokens_a) == len(tokens_b)


class SubjectIndex:
    """Valid subjects by token, so the subjects overlapping one are found without comparing every
    pair (validating thousands of streams compared hundreds of thousands of pairs)."""

    def __init__(self) -> None:
        self.root: dict = {}  # token -> child node; the key None holds the items whose subject ends here

    def add(self, subject: str, item) -> None:
        node = self.root
        for token in subject.split("."):
            node = node.setdefault(token, {})
        node.setdefault(None, []).append(item)

    def overlapping(self, subject: str) -> list:
        """The items of every added subject that overlaps ``subject`` (as subjects_overlap says)."""
        found: list = []
        self._walk(self.root, subject.split("."), 0, found)
        return found

    def _walk(self, node: dict, tokens: list[str], i: int, found: list) -> None:
        if i == len(tokens):
            found += node.get(None, [])
            return
        token = tokens[i]
        keys = [k for k in node if k is not None] if token in ("*", ">") else [token, "*", ">"]
        for key in keys:
            child = node.get(key)
            if child is None:
                continue
            if token == ">":  # takes this token and any after it: everything below overlaps
                self._collect(child, found)
            elif key == ">":  # an added subject ending in '>' takes the rest of this one
                found += child.get(None, [])
            else:
                self._walk(child, tokens, i + 1, found)

    def _collect(self, node: dict, found: list) -> None:
        for key, child in node.items():
            if key is None:
                found += child
            else:
                self._collect(child, found)


def subject_is_subset(inner: str, outer: str) -> bool:
    """True when every subject matched by valid ``inner`` is also matched by valid ``outer``.

    A consumer's filter must be a subset of its stream's subjects (server/consumer.go uses
    subjectIsSubsetMatch for this).
    """
    inner_tokens, outer_tokens = inner.split("."), outer.split(".")
    for i, outer_token in enumerate(outer_tokens):
        if outer_token == ">":
            return i < len(inner_tokens)
        if i >= len(inner_tokens) or inner_tokens[i] == ">":
            return False
        # '*' in inner fits only under '*' in outer; a literal fits under '*' or itself.
        if outer_token != "*" and outer_token != inner_tokens[i]:
            return False
    return len(inner_tokens) == len(outer_tokens)


def name_problem(name: str, what: str) -> str | None:
    """Why a stream or consumer name is invalid, or None. ``what`` starts the message ("stream name").

    Server rules: not empty, none of . * > / \\ (names become subject tokens and directory names),
    at most 255 bytes. Any Unicode whitespace is refused, a superset of the server's five characters.
    """
    if not name:
        return f"{what} is empty"
    if _has_whitespace(name):
        return f"{what} {name!r} contains whitespace"
    forbidden = [char for char in _NAME_FORBIDDEN if char in name]
    if forbidden:
        found = ", ".join(repr(char) for char in forbidden)
        return f"{what} {name!r} contains {found}: names cannot contain '.', '*', '>', '/' or '\\'"
    return _length_problem(name, what, MAX_NAME_LENGTH)


def bucket_name_problem(name: str, what: str, stream_prefix: str = "") -> str | None:
    """Why a KV bucket or object store name is invalid, or None. ``what`` starts the message.

    nats.go allows only ASCII letters, digits, '_' and '-'. The bucket is stored as the stream
    ``stream_prefix + name`` (KV_ for KV, OBJ_ for object stores), which must fit the stream name limit.
    """
    if not name:
        return f"{what} is empty"
    if not _BUCKET_NAME.fullmatch(name):
        found = ", ".join(repr(char) for char in dict.fromkeys(name) if not _BUCKET_NAME.fullmatch(char))
        return f"{what} {name!r} contains {found}: only letters A-Z a-z, digits 0-9, '_' and '-' are allowed"
    return _length_problem(name, what, MAX_NAME_LENGTH - len(stream_prefix))


def _length_problem(name: str, what: str, limit: int) -> str | None:
    length = len(name.encode())
    if length > limit:
        return f"{what} {name[:20]!r}... is {length} bytes long: at most {limit} are allowed"
    return None


# Unicode whitespace, the characters str.isspace() names (the same test, Py_UNICODE_ISSPACE): searched in
# C, where a loop over the characters of every subject and name cost a tenth of validating a large file.
_WHITESPACE = re.compile(r"\s")


def _has_whitespace(text: str) -> bool:
    return _WHITESPACE.search(text) is not None
