"""Test helpers for authentication: server configs, throwaway nkeys, JWTs and creds files.

nsc is not available to tests, so the JWTs are signed here with the nkeys package, in the form
nats-server's jwt/v2 library decodes: base64url header {"typ":"JWT","alg":"ed25519-nkey"}, claims,
and the issuer's ed25519 signature over "header.claims".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import bcrypt
import nkeys

# Unset for every CLI run, so the machine's own NATS settings and natscli contexts cannot leak into a test.
CLEAN_ENV = {name: None for name in ("NATS_URL", "NATS_CONTEXT", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS",
                                     "NATS_NKEY", "NATS_CERT", "NATS_KEY", "NATS_CA", "NATS_TIMEOUT")}
UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
             "leaf": -1}
JETSTREAM_UNLIMITED = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def accounts_config(store_dir: Path, password: str, user_nkey: nkeys.KeyPair) -> str:
    """A server with user/password (bcrypt), nkey, a read-only user, one whose replies are denied, and
    an account without JetStream. Every password user shares ``password``.
    """
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    read_only = ["$JS.API.INFO", "$JS.API.STREAM.LIST", "$JS.API.STREAM.NAMES", "$JS.API.CONSUMER.LIST.>"]
    return f"""
jetstream {{ store_dir: "{store_dir}" }}
accounts {{
  APP {{
    jetstream: enabled
    users: [
      {{user: admin, password: "{hashed}"}}
      {{nkey: {user_nkey.public_key.decode()}}}
      {{user: reader, password: "{hashed}", permissions: {{publish: {json.dumps(read_only)}, subscribe: "_INBOX.>"}}}}
      {{user: deaf, password: "{hashed}", permissions: {{subscribe: {{deny: "_INBOX.>"}}}}}}
    ]
  }}
  PLAIN {{ users: [ {{user: nojs, password: "{hashed}"}} ] }}
}}
"""


def token_config(token: str) -> str:
    """A server that lets in whoever sends this token."""
    return f'authorization {{ token: "{token}" }}\n'


def new_keypair(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(issuer: nkeys.KeyPair, subject: nkeys.KeyPair, name: str, nats: dict) -> str:
    claims = {"iat": int(time.time()), "iss": issuer.public_key.decode(), "name": name,
              "sub": subject.public_key.decode(), "nats": {**nats, "version": 2}}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()).decode().rstrip("=")
    signed = f"{_b64(json.dumps({'typ': 'JWT', 'alg': 'ed25519-nkey'}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signed}.{_b64(issuer.sign(signed.encode()))}"


def operator_config(directory: Path, store_dir: Path | None, jetstream: dict = JETSTREAM_UNLIMITED,
                    ) -> tuple[str, nkeys.KeyPair]:
    """A server config trusting a fresh operator with one JetStream-enabled account; returns it and the account key.

    ``jetstream`` is the account's JetStream limits as its JWT carries them: flat (``mem_storage``,
    ``disk_storage``, ``streams``, ``consumer``, ...) or per replica tier (``{"tiered_limits": {"R1": {...}}}``,
    which only an account JWT can give: a config file's account block has flat limits only, opts.go).
    Without ``store_dir`` the config has no jetstream block (start_cluster writes each node's own).
    """
    operator = new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    system = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    (directory / "operator.jwt").write_text(sign_jwt(operator, operator, "OP", {"type": "operator"}))
    account_jwt = sign_jwt(operator, account, "APP", {"type": "account", "limits": {**UNLIMITED, **jetstream}})
    system_jwt = sign_jwt(operator, system, "SYS", {"type": "account", "limits": UNLIMITED})
    config = f"""
operator: "{directory / 'operator.jwt'}"
system_account: {system.public_key.decode()}
resolver: MEMORY
resolver_preload: {{
  {account.public_key.decode()}: "{account_jwt}"
  {system.public_key.decode()}: "{system_jwt}"
}}
"""
    if store_dir is not None:
        config += f'jetstream {{ store_dir: "{store_dir}" }}\n'
    return config, account


def creds_file(path: Path, account: nkeys.KeyPair, name: str) -> Path:
    """A .creds file, as nsc writes it, for a new user of the account."""
    user = new_keypair(nkeys.PREFIX_BYTE_USER)
    jwt = sign_jwt(account, user, name, {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    return path
