"""Where and as whom to connect, resolved the way the `nats` CLI does (flags, environment, natscli context).

Plain data and checks, no connection: the offline commands (validate, --help) build their options without
importing nats-py, which was half of their start. Secrets are kept out of ``repr()`` and out of every
message (``identity()``, ``display_server()``, ``scrub()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .credentials import creds_user_name, nkey_public_key
from .errors import TopologyError
from .natscontext import load_context, selected_context
from .subjects import name_problem

DEFAULT_SERVER = "nats://127.0.0.1:4222"  # natscli's default (nats.DefaultURL)
DEFAULT_API_PREFIX = "$JS.API"
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, repr=False)
class ConnectOptions:
    """Everything needed to connect. repr() leaves secrets out, so no traceback or log shows them."""

    server: str = DEFAULT_SERVER
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None  # path of a .creds file: user JWT + nkey seed
    nkey: str | None = None  # path of a file holding a user nkey seed
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    tls_first: bool = False
    js_domain: str | None = None
    js_api_prefix: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    context: str | None = None  # the natscli context these came from

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("password", "token")}
        shown["server"] = self.display_server()
        return f"ConnectOptions({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def api_prefix(self) -> str:
        """Where JetStream's API listens: a domain D is reached at $JS.D.API (as natscli and nats.go do)."""
        if self.js_domain:
            return f"$JS.{self.js_domain}.API"
        return self.js_api_prefix or DEFAULT_API_PREFIX

    def servers(self) -> list[str]:
        return [normalise_url(one) for one in self.server.split(",") if one.strip()]

    def display_server(self) -> str:
        return ",".join(redact_url(one) for one in self.servers())

    def identity(self) -> str:
        """Who we try to be, for messages: user name, creds user, nkey public key or "a token"; never a secret."""
        if self.user:
            return f'user "{self.user}"'
        if self.creds:
            name = creds_user_name(self.creds)
            return f'user "{name}" (creds {self.creds})' if name else f"the user in creds {self.creds}"
        if self.nkey:
            public = nkey_public_key(self.nkey)
            return f"nkey {public}" if public else f"the nkey in {self.nkey}"
        if self.token:
            return "a token"
        for url in self.servers():
            parts = urlsplit(url)
            if parts.password is not None:
                return f'user "{parts.username}"'
            if parts.username:
                return "a token (in the server URL)"
        return "no credentials"

    def account(self) -> str:
        who = self.identity()
        return "the account used without credentials" if who == "no credentials" else f"the account of {who}"

    def secrets(self) -> list[str]:
        """Every secret value these options hold, so text from elsewhere can be scrubbed of them."""
        found = [self.password, self.token]
        for url in self.servers():
            parts = urlsplit(url)
            found += [parts.password] if parts.password else [parts.username]
        return [s for s in found if s]

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


class ConnectError(TopologyError):
    """The server could not be reached or refused us."""


def resolve_options(given: Mapping[str, Any], environ: Mapping[str, str]) -> ConnectOptions:
    """ConnectOptions from flags and environment (``given``; click already lets a flag beat its
    environment variable) over the natscli context (--context, NATS_CONTEXT, else the selected one).
    """
    context_name = given.get("context") or selected_context(environ)
    ctx = load_context(context_name, environ) if context_name else {}
    own = {k: v for k, v in given.items() if v not in (None, "", False)}

    def pick(name: str) -> Any:
        return own.get(name, ctx.get(name))

    auth = _authentication(own, ctx)
    # The API location is one setting: a domain given on the command line replaces a context's
    # prefix and vice versa. Both at once is refused, as jsm.go does ("mutually exclusive").
    js = {k: own[k] for k in ("js_domain", "js_api_prefix") if k in own} or {
        k: ctx[k] for k in ("js_domain", "js_api_prefix") if k in ctx
    }
    options = ConnectOptions(
        server=pick("server") or DEFAULT_SERVER,
        **auth,
        tls_cert=pick("tls_cert"),
        tls_key=pick("tls_key"),
        tls_ca=pick("tls_ca"),
        tls_first=bool(pick("tls_first")),
        js_domain=js.get("js_domain"),
        js_api_prefix=js.get("js_api_prefix"),
        timeout=given.get("timeout") or DEFAULT_TIMEOUT,
        context=context_name,
    )
    _check(options)
    return options


def _authentication(own: dict, ctx: dict) -> dict:
    """One authentication method, like natscli: user/password, else creds, else nkey, else token.

    The command line's method wins over the context's; a password from the environment still
    completes a user named by the context. A user without any password is a token (natscli's --user).
    """
    methods = [m for m in ("user", "creds", "nkey", "token") if own.get(m)]
    if len(methods) > 1:
        # natscli would quietly use one of them; a pipeline that meant the other would then act as someone else.
        given = " and ".join(f"--{m} (or NATS_{m.upper()})" for m in methods)
        raise ConnectError(f"{given} both given: choose one way to authenticate")
    for layer in (own, ctx):
        if layer.get("user"):
            password = own.get("password") or ctx.get("password")
            if password:
                return {"user": layer["user"], "password": password}
            return {"token": layer["user"]}
        for method in ("creds", "nkey", "token"):
            if layer.get(method):
                return {method: layer[method]}
    return {}


def _check(options: ConnectOptions) -> None:
    if options.js_domain and options.js_api_prefix:
        raise ConnectError(
            "--js-domain and --js-api-prefix cannot be used together: a domain D means the prefix $JS.D.API"
        )
    if options.js_domain:
        problem = name_problem(options.js_domain, "JetStream domain")
        if problem:
            raise ConnectError(problem)
    if bool(options.tls_cert) != bool(options.tls_key):
        raise ConnectError("a TLS client certificate needs both --tlscert and --tlskey")
    files = {"creds file": options.creds, "nkey file": options.nkey, "TLS certificate": options.tls_cert,
             "TLS key": options.tls_key, "TLS CA": options.tls_ca}
    for label, path in files.items():
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConnectError(f"cannot read {label} {path}: {exc.strerror}") from None
    if not options.servers():
        raise ConnectError("no server URL given")


# What nats-py speaks: the NATS protocol, over TLS, or over websockets.
URL_SCHEMES = ("nats", "tls", "ws", "wss")


def normalise_url(url: str) -> str:
    """nats://host:port form, as nats-py reads a bare "host" or "host:port" (natscli's contexts hold those)."""
    url = url.strip()
    if "://" not in url:
        url = f"nats://{url}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", a port that is no number: redact_url parses no URL
        raise ConnectError(f"invalid server URL {redact_url(url)}: {exc}") from None
    if parts.scheme not in URL_SCHEMES:
        raise ConnectError(
            f"invalid server URL {redact_url(url)}: the scheme must be one of {', '.join(s + '://' for s in URL_SCHEMES)}"
        )
    if port is None and parts.scheme in ("nats", "tls") and parts.hostname:
        url = urlunsplit(parts._replace(netloc=f"{parts.netloc.rstrip(':')}:4222"))
    return url


def redact_url(url: str) -> str:
    """A server URL fit to print: a password or token in it replaced by ***.

    Plain string splitting, as urlsplit does it, so that even a URL urlsplit refuses can be shown.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not userinfo:
        return url
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else "***"  # a lone user part is a token
    return f"{scheme}://{shown}@{host}{rest[end:]}"
