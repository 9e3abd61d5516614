"""What we present to the server: nats-py's auth arguments and a TLS context, read from files.

Nothing read here (passwords, tokens, seeds, creds files) is ever put into a message; only
public things are: a user name, a creds file's user name (JWT claims are public), an nkey's
public key, a path.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING

from .errors import TopologyError

if TYPE_CHECKING:
    import logging
    import ssl

    from .connectoptions import ConnectOptions


class CredentialsError(TopologyError):
    """A credentials or TLS file that cannot be used."""


def auth_arguments(options: ConnectOptions) -> dict:
    """nats-py connect() arguments for the one authentication method the options name."""
    if options.user:
        return {"user": options.user, "password": options.password}
    if options.creds:
        return {"user_credentials": options.creds}
    if options.nkey:
        return {"nkeys_seed_str": read_nkey_seed(options.nkey)}
    if options.token:
        return {"token": options.token}
    return {}


def read_nkey_seed(path: str) -> str:
    """The user seed in an nkey file: the first line starting with SU (nats.go reads such files so too)."""
    seed = _nkey_seed_in(path)
    if seed is None:
        raise CredentialsError(f"nkey file {path} holds no user nkey seed (a line starting with SU)")
    return seed


def _nkey_seed_in(path: str) -> str | None:
    try:
        with open(path) as f:
            return next((line.strip() for line in f if line.strip().startswith("SU")), None)
    except (OSError, UnicodeDecodeError):
        return None


def nkey_public_key(path: str) -> str | None:
    seed = _nkey_seed_in(path)
    if seed is None:
        return None
    try:
        import nkeys  # only for --nkey and --creds, as nats-py imports it

        return nkeys.from_seed(bytearray(seed.encode())).public_key.decode()
    except Exception:  # not a valid seed: the server will say so, and we only lose a nicer name
        return None


def creds_user_name(path: str) -> str | None:
    """The name (else the public key) in a creds file's user JWT; the JWT's claims are not secret."""
    try:
        with open(path) as f:
            text = f.read()
        jwt = re.search(r"-----BEGIN NATS USER JWT-----\s*(\S+)\s*------END NATS USER JWT------", text)
        payload = jwt[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("name") or claims.get("sub")
    except Exception:  # unreadable or not a JWT: name the file instead
        return None


def tls_context(options: ConnectOptions) -> ssl.SSLContext | None:
    """An SSLContext (system CAs unless --tlsca) when any TLS option or a tls:// URL is given; else None."""
    wants_tls = any(url.startswith("tls://") for url in options.servers())
    if not (options.tls_ca or options.tls_cert or options.tls_first or wants_tls):
        return None
    import logging  # here, not above: the offline commands read ConnectOptions without ever connecting
    import ssl

    logging.getLogger("asyncio").addFilter(_drop_tls_eof_warning)
    try:
        context = ssl.create_default_context(cafile=options.tls_ca)
        if options.tls_cert:
            context.load_cert_chain(options.tls_cert, options.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise CredentialsError(f"cannot load the TLS files: {exc.strerror or exc}") from None
    return context


def _drop_tls_eof_warning(record: logging.LogRecord) -> bool:
    # asyncio warns "returning true from eof_received() has no effect when using ssl" whenever
    # a TLS server closes a StreamReader connection (every nats-py TLS close): noise, not news.
    return "eof_received()" not in record.getMessage()
