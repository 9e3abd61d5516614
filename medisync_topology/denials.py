"""Permission violations the server reports on a connection, matched to the requests they refuse.

The server answers a publish or subscription it refuses with -ERR 'Permissions Violation ...' and
nothing else: the request gets no reply, and nats-py hands the -ERR only to error_cb. Recording
them here lets a request fail at once, naming the subject, instead of timing out.
"""

from __future__ import annotations

import asyncio
import re

# nats-server: "Permissions Violation for Publish to %q" / "... for Subscription to %q[ using queue %q]".
# nats-py lower-cases the whole -ERR line, subject included, so subjects are compared case-blind.
_VIOLATION = re.compile(r"permissions violation for (publish|subscription) to \"([^\"]*)\"", re.IGNORECASE)


class PermissionViolations:
    """The Permissions Violation errors the server sent on this connection, and requests waiting on them."""

    def __init__(self):
        self.seen: list[tuple[str, str]] = []
        self.others: list[Exception] = []  # anything else error_cb got, e.g. while connecting
        self._waiting: dict[asyncio.Future, str] = {}

    async def record(self, exc: Exception) -> None:
        """nats-py's error_cb."""
        text = str(exc)
        if "permissions violation" not in text.lower():
            self.others.append(exc)
            return
        match = _VIOLATION.search(text)
        violation = (match[1].lower(), match[2]) if match else ("other", text.replace("nats: ", "", 1))
        self.seen.append(violation)
        for waiter, subject in list(self._waiting.items()):
            if not waiter.done() and _refuses(violation, subject):
                waiter.set_result(violation)

    def refusal_of(self, subject: str) -> tuple[str, str] | None:
        return next((v for v in self.seen if _refuses(v, subject)), None)

    def wait_for(self, subject: str) -> asyncio.Future:
        waiter = asyncio.get_running_loop().create_future()
        earlier = self.refusal_of(subject)
        if earlier:
            waiter.set_result(earlier)
        self._waiting[waiter] = subject
        return waiter

    def forget(self, waiter: asyncio.Future) -> None:
        self._waiting.pop(waiter, None)
        waiter.cancel()


def _refuses(violation: tuple[str, str], subject: str) -> bool:
    # A refused subscription is the reply inbox every request shares, so it refuses them all.
    kind, what = violation
    return kind != "publish" or what == subject.lower()
