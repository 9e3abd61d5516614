"""Options shared by several commands, declared once."""

from __future__ import annotations

import functools
import math
import os

import click

from .connectoptions import DEFAULT_SERVER, DEFAULT_TIMEOUT, resolve_options
from .units import UnitError, parse_duration


def topology_file(command):
    """-f/--file, repeatable (files or directories, composed into one topology), and --env."""
    command = click.option(
        "--env", envvar="TOPOLOGY_ENV", metavar="NAME",
        help="Merge this environment's overlay from `environments:` over the topology [env TOPOLOGY_ENV].",
    )(command)
    return click.option(
        "-f", "--file", "paths", multiple=True, default=["topology.yaml"], show_default=True, type=click.Path(),
        help="A topology file, or a directory of *.yaml/*.yml files; repeat to compose several.",
    )(command)


no_color = click.option("--no-color", is_flag=True, help="No colour, even on a terminal (NO_COLOR works too).")

prune = click.option("--prune", is_flag=True, help="Delete resources we own that are no longer in the file.")

target = click.option(
    "--target", "targets", multiple=True, metavar="KIND/NAME",
    help="Plan only this resource and what it needs: stream/NAME, consumer/STREAM/NAME, key_value/NAME, "
         "object_store/NAME; shell wildcards; repeatable.",
)

migrate = click.option(
    "--migrate", is_flag=True,
    help="Replace streams by migrating their messages and consumers' positions instead of destroying them.",
)

adopt = click.option("--adopt", is_flag=True, help="Take over existing resources of the same name that no one owns.")


class Timeout(click.ParamType):
    """Seconds, as a number ("2.5") or a Go-style duration as natscli takes it ("5s", "500ms")."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        not_a_duration = f"{value!r} is not a duration: use seconds (2.5) or a unit (5s, 500ms, 1m)"
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            try:
                seconds = float(value)
            except ValueError:
                try:
                    seconds = parse_duration(value) / 1e9
                except UnitError:
                    self.fail(not_a_duration, param, ctx)
        if not math.isfinite(seconds):  # float() reads "nan", "inf" and "1e400"
            self.fail(not_a_duration, param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be more than zero", param, ctx)
        return seconds


class LockWait(click.ParamType):
    """How long to wait for another apply's lock, in seconds: a duration with a unit (units.parse_duration), or 0.

    Unlike Timeout, a bare number other than 0 is refused (the unit says what is meant) and 0 is
    allowed: it does not wait.
    """

    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            nanoseconds = parse_duration(value)
        except UnitError:  # its message offers integer nanoseconds, which no one means by a lock wait
            self.fail(f"{value!r} is not a duration: use a number with a unit, e.g. 30s or 5m (0 does not wait)",
                      param, ctx)
        if nanoseconds < 0:
            self.fail(f"{value!r}: give a duration, e.g. 30s or 5m (0 does not wait)", param, ctx)
        return nanoseconds / 1e9


# Names and environment variables as the `nats` CLI has them, so the same shell setup works for both.
_CONNECTION_OPTIONS = (
    click.option("-s", "--server", metavar="URL", envvar="NATS_URL", show_envvar=True,
                 help=f"NATS server URL(s), comma separated (default {DEFAULT_SERVER})."),
    click.option("--context", metavar="NAME", envvar="NATS_CONTEXT", show_envvar=True,
                 help="natscli context to connect with (default: the one `nats context select` chose)."),
    click.option("--user", metavar="USER", envvar="NATS_USER", show_envvar=True,
                 help="User name (a user without a password is sent as a token)."),
    click.option("--password", metavar="PASSWORD", envvar="NATS_PASSWORD", show_envvar=True,
                 help="Password; never printed."),
    click.option("--token", metavar="TOKEN", envvar="NATS_TOKEN", show_envvar=True, help="Token; never printed."),
    click.option("--creds", metavar="FILE", envvar="NATS_CREDS", show_envvar=True,
                 help="User credentials file (JWT and seed)."),
    click.option("--nkey", metavar="FILE", envvar="NATS_NKEY", show_envvar=True, help="File holding a user nkey seed."),
    click.option("--tlscert", "tls_cert", metavar="FILE", envvar="NATS_CERT", show_envvar=True,
                 help="TLS client certificate."),
    click.option("--tlskey", "tls_key", metavar="FILE", envvar="NATS_KEY", show_envvar=True, help="TLS client key."),
    click.option("--tlsca", "tls_ca", metavar="FILE", envvar="NATS_CA", show_envvar=True,
                 help="CA certificate(s) to verify the server with."),
    click.option("--tlsfirst", "tls_first", is_flag=True, help="Do the TLS handshake before the server's greeting."),
    click.option("--js-domain", metavar="DOMAIN", help="JetStream domain to manage (its API is $JS.DOMAIN.API)."),
    click.option("--js-api-prefix", metavar="PREFIX", help="Subject prefix of the JetStream API (default $JS.API)."),
    click.option("--timeout", type=Timeout(), envvar="NATS_TIMEOUT", show_envvar=True,
                 help=f"How long to wait for the server to connect or answer (default {DEFAULT_TIMEOUT:g}s)."),
)

_CONNECTION_KEYS = ("server", "context", "user", "password", "token", "creds", "nkey", "tls_cert", "tls_key", "tls_ca",
                    "tls_first", "js_domain", "js_api_prefix", "timeout")


def connection(command):
    """The natscli connection options; the command gets them resolved as ``connect`` (ConnectOptions).

    Precedence: flag, then environment variable, then the natscli context.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {key: kwargs.pop(key) for key in _CONNECTION_KEYS}
        kwargs["connect"] = resolve_options(given, os.environ)
        return command(*args, **kwargs)

    for option in reversed(_CONNECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper

