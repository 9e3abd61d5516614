"""natscli contexts: named connection settings, read the way the `nats` CLI reads them.

natscli (nats-io/jsm.go natscontext) keeps one JSON file per context in
``$XDG_CONFIG_HOME/nats/context/NAME.json`` (``~/.config`` without XDG_CONFIG_HOME) and the
selected context's name in ``.../nats/context.txt``. Reading the same files means
``nats context select prod`` points this tool at prod too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import TopologyError

# natscli's JSON field -> the ConnectOptions field it fills. Fields natscli has that we do not
# use (socks_proxy, inbox_prefix, user_jwt, user_seed, nsc, windows_cert_*) are ignored.
CONTEXT_FIELDS = {
    "url": "server",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "cert": "tls_cert",
    "key": "tls_key",
    "ca": "tls_ca",
    "tls_first": "tls_first",
    "jetstream_domain": "js_domain",
    "jetstream_api_prefix": "js_api_prefix",
}
# natscli expands ~ and $VAR in these (jsm.go natscontext expandHomedir), not in secrets.
PATH_FIELDS = {"creds", "nkey", "tls_cert", "tls_key", "tls_ca"}


class ContextError(TopologyError):
    """A natscli context that cannot be found or read."""


def nats_config_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nats"


def selected_context(environ: Mapping[str, str]) -> str | None:
    """The name `nats context select` stored, or None when nothing is selected."""
    try:
        name = (nats_config_dir(environ) / "context.txt").read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ContextError(f"cannot read the selected natscli context: {exc.strerror}: {exc.filename}") from None
    return name or None


def load_context(name: str, environ: Mapping[str, str]) -> dict:
    """The settings of context NAME (or of the .json file NAME names), as ConnectOptions fields.

    Empty values are left out: natscli writes every field, most of them "".
    """
    path = Path(os.path.expanduser(name))
    if name.endswith(".json") and path.is_file():
        pass  # natscli also takes the path of a context file
    elif not name or ".." in name or "/" in name or "\\" in name:
        raise ContextError(f'invalid natscli context name "{name}": it must not be empty or contain "..", "/" or "\\"')
    else:
        path = nats_config_dir(environ) / "context" / f"{name}.json"
        if not path.is_file():
            raise ContextError(f'unknown natscli context "{name}" ({_known_contexts(path.parent)})')
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise ContextError(f"cannot read natscli context {path}: {exc.strerror}") from None
    except ValueError as exc:
        # The parser's message quotes no file content, only a position.
        raise ContextError(f"natscli context {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ContextError(f"natscli context {path} is not a JSON object")
    settings = {}
    for json_name, field in CONTEXT_FIELDS.items():
        value = raw.get(json_name)
        if value in (None, "", False):
            continue
        expected = bool if field == "tls_first" else str
        if not isinstance(value, expected):
            kind = "true or false" if expected is bool else "a string"
            raise ContextError(f'natscli context {path}: "{json_name}" must be {kind}')
        if field in PATH_FIELDS:
            value = os.path.expanduser(os.path.expandvars(value))
        settings[field] = value
    return settings


def _known_contexts(directory: Path) -> str:
    names = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
    return f"known contexts: {', '.join(names)}" if names else f"no contexts in {directory}"
