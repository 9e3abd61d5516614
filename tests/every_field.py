"""The every-field resources of the convergence tests, built from the field registry's examples.

Each field's ``example`` (fields.py) goes into the example resource its ``example_in`` names ("" the
main one), with what its ``example_needs``; "{stream}" in a value is the resource's stream name,
"{origin}" the main stream's (what a mirror or sources read from). A new field with an example is
in these tests without touching them.
"""

from __future__ import annotations

from medisync_topology import fields


def groups(kind: str) -> list[str]:
    """The example resources of ``kind``: "" (the main one) first, then the others by name."""
    return sorted({f.example_in for f in fields.RESOURCES[kind].values() if f.example is not None})


def examples(kind: str, group: str = "", version: fields.Version | None = None, **names: str) -> dict:
    """The API config of one example resource: every example of the group and what each needs, leaving out
    fields a server of ``version`` does not know (None: the newest)."""
    config: dict = {}
    for name, entry in fields.RESOURCES[kind].items():
        if entry.example is not None and entry.example_in == group and fields.at_least(version, entry.since):
            config.update(entry.example_needs)
            config[name] = entry.example
    return _filled(config, names)


def _filled(value, names: dict[str, str]):
    if isinstance(value, str):
        for placeholder, name in names.items():
            value = value.replace("{" + placeholder + "}", name)
        return value
    if isinstance(value, list):
        return [_filled(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, names) for k, v in value.items()}
    return value
