"""Live JetStream as plain data: what the client reads and the plan compares. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import rules
from .target import TargetFacts


@dataclass
class LiveStream:
    """A stream as the server reports it: its config, its state and its consumers' configs."""

    config: dict
    state: dict
    consumers: dict[str, dict] = field(default_factory=dict)
    # Each consumer's progress as CONSUMER.LIST reports it: num_pending, num_ack_pending, delivered, ack_floor.
    consumer_states: dict[str, dict] = field(default_factory=dict)


@dataclass
class LiveState:
    server_version: str
    streams: dict[str, LiveStream]
    target: TargetFacts | None = None  # None: not read, nothing about the target is checked

    @property
    def version(self) -> rules.Version | None:
        """The server's version as rules compare it; None (the newest) when it is not known."""
        return rules.parse_version(self.server_version) if self.server_version else None
