"""Who is running the tool, and when: for the apply lock's holder, the audit event and saved plans."""

from __future__ import annotations

import getpass
import os
import socket
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .connectoptions import ConnectOptions


def now_rfc3339() -> str:
    """UTC with milliseconds and a Z, as RFC 3339 and Go's time.Time JSON read it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def actor(connect: ConnectOptions) -> dict:
    """Who is running this: the NATS identity (never a secret), OS user, host and process."""
    try:
        os_user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry, e.g. an anonymous container uid
        os_user = f"uid {os.getuid()}"
    return {
        "nats_user": connect.identity(),
        "os_user": os_user,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "tool_version": __version__,
    }
