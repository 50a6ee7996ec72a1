"""Header and query-parameter maps: immutable, ordered, multi-valued."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, overload

    from typing_extensions import Self

    _T = TypeVar("_T")

__all__ = ["Headers", "QueryParams"]

_Pairs = Iterable[tuple[str, str]]
_MISSING: Any = object()
_new = object.__new__


def _well_formed(mapping: Mapping[str, Any], multi: bool) -> bool:
    """Whether every name is a string, and every value a string (or, with ``multi``, a
    list of strings and ``None``s).

    ``str.join`` takes only strings, so one call checks a whole map at C speed: the
    check runs for every request, on maps of a dozen headers or more.
    """
    try:
        "".join(mapping)
        if not multi:
            "".join(mapping.values())
            return True
        if mapping and set(map(type, mapping.values())) != {list}:
            return False
        "".join(map("".join, mapping.values()))
    except TypeError:
        # A None in a multi-valued list is a name sent without a value: allowed.
        return (
            multi
            and all(
                item is None or item.__class__ is str
                for values in mapping.values()
                for item in values
            )
            and all(key.__class__ is str for key in mapping)
        )
    return True


class _MultiMap(Mapping[str, str]):
    """An immutable, ordered multi-map; ``m[k]`` is the first value, ``get_all`` every one."""

    __slots__ = ("_direct", "_items", "_source")
    # None until a ``view`` is first used.
    _items: tuple[tuple[str, str], ...] | None
    # A provider's own map, read into _items on first use (see ``view``).
    _source: tuple[Mapping[str, Any], bool]
    # The same map when its names are normalized already: looked up directly.
    _direct: Mapping[str, Any] | None

    def __init__(self, items: _Pairs | Mapping[str, str] | None = None) -> None:
        # Hot path: adapters build several of these per request, so no ABC checks.
        self._direct = None
        if items is None:
            self._items = ()
        elif type(items) is type(self):
            self._items = items._pairs()
        else:
            pairs = items.items() if hasattr(items, "items") else items
            norm = self._norm
            self._items = tuple([(norm(k), v) for k, v in pairs])

    _norm: Callable[[str], str] = staticmethod(str)

    @classmethod
    def view(
        cls, mapping: Mapping[str, Any], *, multi: bool = False, normalized: bool = False
    ) -> Self:
        """A map read from a provider's ``{name: value}`` (or, with ``multi``, ``{name: [values]}``).

        Nothing is read until the map is first used, so a request whose handler never
        looks at its headers pays nothing for them (a dozen headers cost more to read
        than the rest of a small request). ``mapping`` must not change afterwards. A
        value of ``None`` in a ``multi`` list is an empty value.

        ``normalized`` says the provider's names are already as this map stores them
        (lower-case header names, as HTTP APIs send them): then ``get`` and ``[]``
        look a name up in ``mapping`` directly, without reading the rest.

        Raises (on first use, not here):
            MalformedEventError: a name or value is not a string (or, with ``multi``, a
                value is not a list of strings), so a client's malformed event gets a 400.
        """
        new = _new(cls)
        new._items = None
        new._source = (mapping, multi)
        new._direct = mapping if normalized and not multi else None
        return new

    def _pairs(self) -> tuple[tuple[str, str], ...]:
        items = self._items
        return items if items is not None else self._load()

    def _load(self) -> tuple[tuple[str, str], ...]:
        # The _items of a ``view``, read from the provider's map on first use.
        mapping, multi = self._source
        if not _well_formed(mapping, multi):
            from polyserve.errors import MalformedEventError

            kind = "list of strings" if multi else "string"
            raise MalformedEventError(f"{type(self).__name__} values must each be a {kind}")
        norm = self._norm
        if multi:
            pairs = [
                (norm(key), "" if item is None else item)
                for key, values in mapping.items()
                for item in values
            ]
        else:
            pairs = [(norm(key), value) for key, value in mapping.items()]
        loaded = self._items = tuple(pairs)
        return loaded

    def __getitem__(self, key: str) -> str:
        value = self._first(key, _MISSING)
        if value is _MISSING:
            raise KeyError(self._norm(key))
        return value  # type: ignore[no-any-return]  # a value of the map

    def _first(self, key: str, default: Any = None) -> Any:
        key = self._norm(key)
        items = self._items
        if items is None:
            direct = self._direct
            if direct is not None:
                value = direct.get(key)
                if value.__class__ is str:
                    return value
            items = self._load()
        for k, v in items:
            if k == key:
                return v
        return default

    if TYPE_CHECKING:

        @overload
        def get(self, key: str, /) -> str | None: ...
        @overload
        def get(self, key: str, /, default: str | _T) -> str | _T: ...
        def get(self, key: str, /, default: object = None) -> object:
            """The first value of ``key``, or ``default``."""
            return self._first(key, default)

    else:
        # Mapping.get goes through __getitem__ and KeyError; a direct loop is faster.
        get = _first

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self._pairs():
            seen.setdefault(k, None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._pairs()})

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = self._norm(key)
        return any(k == key for k, _ in self._pairs())

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key``, in arrival order (empty if absent)."""
        key = self._norm(key)
        return [v for k, v in self._pairs() if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, in arrival order, repeats included."""
        items = self._items
        return list(items if items is not None else self._load())

    def to_multi_dict(self) -> dict[str, list[str]]:
        """A ``{name: [values]}`` dict, as multi-value providers want it."""
        out: dict[str, list[str]] = {}
        for k, v in self._pairs():
            out.setdefault(k, []).append(v)
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _MultiMap):
            return type(self) is type(other) and self.to_multi_dict() == other.to_multi_dict()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._pairs())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._pairs())!r})"


class Headers(_MultiMap):
    """Case-insensitive, multi-valued HTTP headers. Names are stored lower-case.

    Equality ignores the order of different names but keeps the order of the
    values of one name (``Set-Cookie`` order matters, ``Accept`` vs ``Host`` does not).
    """

    __slots__ = ()

    _norm = staticmethod(str.lower)

    def with_added(self, name: str, value: str) -> Headers:
        """A copy with one more ``name: value`` pair."""
        return Headers((*self._pairs(), (name, value)))

    def with_set(self, name: str, value: str) -> Headers:
        """A copy where ``name`` has exactly the one ``value``."""
        key = name.lower()
        return Headers((*((k, v) for k, v in self._pairs() if k != key), (key, value)))


class QueryParams(_MultiMap):
    """Case-sensitive, multi-valued query parameters, already percent-decoded."""

    __slots__ = ()

    @classmethod
    def from_string(cls, query: str) -> QueryParams:
        """Parse a raw query string (``a=1&a=2&b``); bad escapes never raise."""
        if not query:
            return cls()
        parse = _parse_qsl or _load_parse_qsl()
        return cls(parse(query, keep_blank_values=True, errors="replace"))

    def to_string(self) -> str:
        """The parameters encoded as a query string (without ``?``)."""
        from urllib.parse import quote, urlencode

        return urlencode(self._pairs(), quote_via=quote)


_parse_qsl: Callable[..., list[tuple[str, str]]] | None = None


def _load_parse_qsl() -> Callable[..., list[tuple[str, str]]]:
    # urllib.parse costs a cold start milliseconds: imported with the first query string.
    global _parse_qsl
    from urllib.parse import parse_qsl

    _parse_qsl = parse_qsl
    return parse_qsl
