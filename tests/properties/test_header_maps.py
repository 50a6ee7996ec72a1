"""The quick and the plain ways of reading headers and checking them agree.

Header and query maps have three ways in: built from pairs, a lazy ``view`` of a
provider's map (checked at C speed on first use), and for lower-case names a
``view`` whose single lookups go to the provider's map directly. Response headers
are checked by a C-speed test first and character by character only after. Each
quick way must give what the plain one gives, and fail as it does.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyserve import Headers, MalformedEventError, QueryParams
from polyserve.errors import InvalidHeaderError
from polyserve.events.http import check_header

_names = st.text(string.ascii_letters + string.digits + "-_. é", min_size=1, max_size=12)
_values = st.text(max_size=12)
_maps = st.dictionaries(_names, _values, max_size=8)
_multi_maps = st.dictionaries(
    _names, st.lists(st.none() | _values, min_size=1, max_size=3), max_size=6
)
_wrong = st.none() | st.integers() | st.booleans() | st.lists(_values, max_size=2)


def _reads(headers: Headers | QueryParams, probes: list[str]) -> Any:
    return (
        headers.multi_items(),
        headers.to_multi_dict(),
        len(headers),
        [(p, headers.get(p), headers.get_all(p), p in headers) for p in probes],
    )


def _outcome(read: Any) -> Any:
    try:
        return read()
    except MalformedEventError:
        return "malformed"


@given(mapping=_maps, extra=_names)
def test_a_header_view_reads_as_headers_built_from_pairs(
    mapping: dict[str, str], extra: str
) -> None:
    probes = [*mapping, *(k.upper() for k in mapping), extra]
    plain = Headers(mapping.items())
    assert _reads(Headers.view(mapping), probes) == _reads(plain, probes)
    assert Headers.view(mapping) == plain


@given(mapping=_maps, extra=_names)
def test_direct_lookups_of_normalized_names_read_as_headers_built_from_pairs(
    mapping: dict[str, str], extra: str
) -> None:
    lower = {k.lower(): v for k, v in mapping.items()}
    probes = [*lower, *(k.upper() for k in lower), extra]
    plain = Headers(lower.items())
    for probe in probes:
        # A fresh view for each probe: its first read is the direct lookup.
        assert Headers.view(lower, normalized=True).get(probe) == plain.get(probe)
    assert _reads(Headers.view(lower, normalized=True), probes) == _reads(plain, probes)


@given(mapping=_multi_maps, extra=_names)
def test_a_multi_valued_view_reads_as_the_pairs_it_holds(
    mapping: dict[str, list[str | None]], extra: str
) -> None:
    pairs = [(k, "" if v is None else v) for k, values in mapping.items() for v in values]
    probes = [*mapping, extra]
    assert _reads(Headers.view(mapping, multi=True), probes) == _reads(Headers(pairs), probes)
    assert _reads(QueryParams.view(mapping, multi=True), probes) == _reads(
        QueryParams(pairs), probes
    )


@given(mapping=_maps, extra=_names)
def test_a_query_view_reads_as_parameters_built_from_pairs(
    mapping: dict[str, str], extra: str
) -> None:
    probes = [*mapping, *(k.upper() for k in mapping), extra]
    assert _reads(QueryParams.view(mapping), probes) == _reads(QueryParams(mapping.items()), probes)


@given(mapping=_maps, bad_name=_names, bad=_wrong, normalized=st.booleans(), data=st.data())
def test_a_view_of_a_malformed_map_fails_as_a_malformed_event_on_every_read(
    mapping: dict[str, str], bad_name: str, bad: object, normalized: bool, data: st.DataObject
) -> None:
    source: dict[str, Any] = {k.lower(): v for k, v in mapping.items()}
    source[bad_name.lower()] = bad
    probe = data.draw(st.sampled_from([*source, "absent"]))
    view = Headers.view(source, normalized=normalized)
    value = _outcome(lambda: view.get(probe))
    # A direct lookup may answer a well-formed value without reading the rest; any
    # other read of the map is refused, as the plain reading refuses it.
    if not (normalized and isinstance(source.get(probe), str) and probe != bad_name.lower()):
        assert value == "malformed"
    else:
        assert value == source[probe]
    assert _outcome(view.multi_items) == "malformed"
    assert _outcome(lambda: len(Headers.view(source))) == "malformed"


_TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_CONTROLS = frozenset([chr(c) for c in range(32) if c != 9] + ["\x7f"])


def _plain_check(name: str, value: str) -> bool:
    """RFC 9110 as written: a name is a non-empty token, a value has no control character."""
    return bool(name) and set(name) <= _TOKEN and not set(value) & _CONTROLS


@given(
    name=st.text(max_size=10) | st.text(string.ascii_letters + "-", min_size=1, max_size=10),
    value=st.text(max_size=10) | st.text(string.printable, max_size=10),
)
def test_the_quick_header_check_agrees_with_the_plain_rule(name: str, value: str) -> None:
    try:
        check_header(name, value)
    except InvalidHeaderError:
        accepted = False
    else:
        accepted = True
    assert accepted == _plain_check(name, value)


@pytest.mark.parametrize("value", ["a\r\nb", "\x00", "\x7f", "é\n"])
def test_control_characters_are_refused_whatever_else_the_value_holds(value: str) -> None:
    with pytest.raises(InvalidHeaderError):
        check_header("x-a", value)
