"""Options shared by several commands, declared once."""

from __future__ import annotations

import functools

import click

from .connection import ConnectOptions


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

adopt = click.option("--adopt", is_flag=True, help="Take over existing resources of the same name that no one owns.")


def connection(command):
    """--server/--user/--password/--timeout, also read from NATS_URL, NATS_USER, NATS_PASSWORD."""

    @click.option("-s", "--server", envvar="NATS_URL", default="nats://127.0.0.1:4222", show_default=True,
                  help="NATS server URL(s), comma separated [env NATS_URL].")
    @click.option("--user", envvar="NATS_USER", help="User name [env NATS_USER].")
    @click.option("--password", envvar="NATS_PASSWORD", help="Password [env NATS_PASSWORD]; never printed.")
    @click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
                  help="Seconds to wait for the server to connect or answer.")
    @functools.wraps(command)
    def wrapper(*args, server, user, password, timeout, **kwargs):
        kwargs["connect"] = ConnectOptions(server=server, user=user, password=password, timeout=timeout)
        return command(*args, **kwargs)

    return wrapper
