"""The YAML loader: data, positions, and a located error for every kind of bad input."""

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology import loader
from medisync_topology.loader import InvalidTopology, load_document, parse_document


def test_positions_point_at_keys():
    doc = parse_document("version: 1\nstreams:\n  EVENTS:\n    max_age: 7d\n", "t.yaml")
    assert doc.data == {"version": 1, "streams": {"EVENTS": {"max_age": "7d"}}}
    assert doc.position(("streams", "EVENTS", "max_age")) == (4, 5)
    # a path that is not in the file falls back to its nearest ancestor
    assert doc.position(("streams", "EVENTS", "consumers", "x")) == (3, 3)


def test_duplicate_keys_are_errors_not_silently_dropped():
    with pytest.raises(InvalidTopology) as exc:
        parse_document("streams:\n  A: {}\n  A: {}\n", "t.yaml")
    assert [str(p) for p in exc.value.problems] == ["t.yaml:3:3: streams.A: duplicate key (first defined on line 2)"]


def test_keys_stay_strings_as_written():
    doc = parse_document("streams:\n  yes: {}\n  1: {}\n")
    assert list(doc.data["streams"]) == ["yes", "1"]


def test_timestamps_stay_rfc3339_strings():
    doc = parse_document("opt_start_time: 2026-01-02T03:04:05Z\n")
    assert doc.data == {"opt_start_time": "2026-01-02T03:04:05Z"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "t.yaml:1:1: the file is empty"),
        ("version: 1\n\tstreams: {}\n", "t.yaml:2:1: YAML syntax error"),
        ("a: [1, 2\n", "t.yaml:2:1: YAML syntax error"),
        ("a: b: c\n", "t.yaml:1:5: YAML syntax error"),
        ("a: &x [*x]\n", "t.yaml:1:1: a[0]: an alias refers to itself"),
        ("a: &x {b: [1, *x]}\n", "t.yaml:1:8: a.b[1]: an alias refers to itself"),
    ],
)
def test_bad_yaml_is_located(text, expected):
    with pytest.raises(InvalidTopology) as exc:
        parse_document(text, "t.yaml")
    assert str(exc.value).startswith(expected)


def test_tabs_get_a_hint():
    with pytest.raises(InvalidTopology) as exc:
        parse_document("version: 1\n\tstreams: {}\n", "t.yaml")
    assert "use spaces" in str(exc.value)


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidTopology) as exc:
        load_document(path)
    assert str(exc.value) == f"{path}:2:118: not a text file (not UTF-8 at byte 128)"  # after bytes 0..127, \n among them


def test_missing_file(tmp_path):
    with pytest.raises(Exception) as exc:
        load_document(tmp_path / "nope.yaml")
    assert str(exc.value) == f"{tmp_path / 'nope.yaml'}: no such file"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("description: !custom hello\n", "t.yaml:1:14: description: unsupported YAML tag '!custom'"),
        ("a: !!python/object:os.system ls\n", "t.yaml:1:4: a: unsupported YAML tag '!!python/object:os.system'"),
        ("a: !custom {b: 1}\n", "t.yaml:1:4: a: unsupported YAML tag '!custom'"),
        ("a: !!set {b: null}\n", "t.yaml:1:4: a: unsupported YAML tag '!!set'"),
        ("a: !!int abc\n", "t.yaml:1:4: a: 'abc' is not a valid !!int"),
    ],
)
def test_tags_other_than_plain_data_are_located_problems(text, expected):
    with pytest.raises(InvalidTopology) as exc:
        parse_document(text, "t.yaml")
    assert str(exc.value) == expected


def test_aliases_to_earlier_values_still_work():
    doc = parse_document("a: &x {b: [1, 2]}\nc: *x\nd: [*x, *x]\n")
    assert doc.data == {"a": {"b": [1, 2]}, "c": {"b": [1, 2]}, "d": [{"b": [1, 2]}, {"b": [1, 2]}]}


def test_a_bad_tag_or_alias_exits_1_without_a_traceback(tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text("version: 1\nowner: x\nstreams:\n  S: &s {subjects: [a], description: !custom hi, x: *s}\n")
    result = CliRunner().invoke(main, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path}:4:38: streams.S.description: unsupported YAML tag '!custom'" in result.output
    assert f"{path}:4:50: streams.S.x: an alias refers to itself" in result.output


# -- hostile input (issue 12): each a located problem, never a traceback, a hang or a runaway --------


def _laughs(levels: int) -> str:
    """A "billion laughs" document: each level repeats the one before nine times (9**levels nodes)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        # 2.8 KB expanding to 10^6 nodes took seconds and 500 MB; 9 levels (3.9 * 10^8 nodes) a MemoryError.
        (_laughs(6), "t.yaml:6:20: the document expands to more than the limit of 250,000 YAML nodes (an alias counts as all it repeats)"),
        (_laughs(9), "t.yaml:6:20: the document expands to more than the limit of 250,000 YAML nodes (an alias counts as all it repeats)"),
        # 500 levels were a RecursionError in the loader, 1,000 one inside PyYAML.
        ("a: " + "[" * 500 + "]" * 500 + "\n", "t.yaml:1:67: nested deeper than the limit of 64 levels (an alias counts as all it repeats)"),
        ("a: " + "{b: " * 1000 + "1" + "}" * 1000 + "\n", "t.yaml:1:256: nested deeper than the limit of 64 levels (an alias counts as all it repeats)"),
        # Shallow nodes, deep through aliases: each alias adds the levels of what it repeats.
        ("a: &a " + "[" * 40 + "]" * 40 + "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
         "t.yaml:2:30: nested deeper than the limit of 64 levels (an alias counts as all it repeats)"),
        # Control characters were `position 80` of "<unicode string>".
        ("version: 1\nowner: o\x00\n", "t.yaml:2:9: character U+0000 is not allowed in YAML (no control characters other than tab, newline, carriage return)"),
        ("version: 1\nstreams:\n  A: {description: \"x\x1by\"}\n", "t.yaml:3:22: character U+001B is not allowed in YAML (no control characters other than tab, newline, carriage return)"),
        # A tag on a text it does not fit was a KeyError (!!bool) or an int() refusal of many digits.
        ("owner: !!bool 1\n", "t.yaml:1:8: owner: '1' is not a valid !!bool"),
        ("a: " + "9" * 5000 + "\n", "t.yaml:1:4: a: '9999999999999999999999999999999999999...' is not a valid !!int"),
    ],
)
def test_hostile_yaml_is_a_located_problem_naming_the_limit(text, expected):
    with pytest.raises(InvalidTopology) as exc:
        parse_document(text, "t.yaml")
    assert str(exc.value) == expected


def test_the_largest_legal_expansion_still_loads():
    doc = parse_document(_laughs(5) + "deep: " + "[" * 63 + "]" * 63 + "\n")  # 9**5 = 59,049 laughs
    assert len(doc.data["l4"]) == 9 and doc.data["l4"][0][0][0][0] == ["lol"] * 9


@pytest.mark.parametrize("text", ["=", "<<", "a=b"])
def test_yaml_1_1_value_and_merge_scalars_are_the_strings_written(text):
    assert parse_document(f"a: {text}\n").data == {"a": text}


def test_a_file_over_the_size_limit_is_refused_before_it_is_read_whole(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (4 * 1024 * 1024))
    with pytest.raises(InvalidTopology) as exc:
        load_document(path)
    assert str(exc.value) == f"{path}: the file is larger than the limit of 4 MiB for a topology file"
    with pytest.raises(InvalidTopology) as exc:
        load_document("/dev/zero")  # endless: read no further than the limit
    assert str(exc.value) == "/dev/zero: the file is larger than the limit of 4 MiB for a topology file"


def test_non_utf8_is_located_by_line_and_column(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes("version: 1\nowner: é\xff\n".encode("latin-1").replace(b"\xe9", "é".encode()))
    with pytest.raises(InvalidTopology) as exc:
        load_document(path)
    assert str(exc.value) == f"{path}:2:9: not a text file (not UTF-8 at byte 20)"


# -- the fast path (issue 11): a plain document is built from libyaml's events without positions ----------


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nstreams:\n  EVENTS: {subjects: [a.>, 'b'], max_age: 7d, num_replicas: 3}\n",
        "a: &x {b: [1, 2]}\nc: *x\nd: [*x, *x]\n",
        "a: &s 5\nb: *s\n",
        "t: 2026-01-02T03:04:05Z\nn: ~\nf: 1.5\nb: yes\nq: 'yes'\ni: !!int '7'\ns: !!str 5\nx: ! 5\ne: =\nm: <<\n",
        "streams:\n  yes: {}\n  1: {}\n  !!int 2: x\n",
        "[1, [2, {a: []}], {}]\n",
        "just text\n",
        _laughs(5) + "deep: " + "[" * 63 + "]" * 63 + "\n",
    ],
)
def test_the_fast_path_builds_what_the_located_builder_does(text):
    data = loader._plain_data(text)
    assert data is not loader._UNUSUAL
    assert data == loader._located(text, "t.yaml").data


def test_each_use_of_an_alias_is_a_value_of_its_own():
    data = parse_document("a: &x {b: [1, 2]}\nc: *x\nd: [*x, *x]\n").data
    assert data["c"] is not data["a"] and data["d"][0] is not data["d"][1] and data["c"]["b"] is not data["a"]["b"]


@pytest.mark.parametrize(
    "text",
    ["", "# nothing\n", "--- 1\n--- 2\n", "a: 1\na: 2\n", "<<: {a: 1}\n", "a: !custom 1\n", "a: !custom {b: 1}\n",
     "a: !!set {b: null}\n", "a: &x [*x]\n", "a: *y\n", "[a]: 1\n", "? *a\n: 1\n", "a: [1, 2\n", "a: !!int abc\n",
     "&k a: 1\n", "a: &x 1\nb: &x 2\n", "a: 9" + "9" * 5000 + "\n", _laughs(6), "a: " + "[" * 65 + "]" * 65 + "\n",
     "a: &a " + "[" * 40 + "]" * 40 + "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]\n", "owner: o\x00\n"],
)
def test_the_fast_path_leaves_every_unusual_document_to_the_located_builder(text):
    assert loader._plain_data(text) is loader._UNUSUAL


def test_a_plain_document_is_located_only_when_a_position_is_asked_for():
    doc = parse_document("version: 1\nstreams:\n  EVENTS:\n    max_age: 7d\n", "t.yaml")
    assert doc._positions is None
    assert doc.problem(("streams", "EVENTS", "max_age"), "x") == loader.Problem("t.yaml", 4, 5, "streams.EVENTS.max_age", "x")
