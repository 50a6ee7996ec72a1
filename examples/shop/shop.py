"""The shop's own services, which the examples on the concept pages call.

A real shop reaches these over the network: a payment gateway, a warehouse, an
inventory service, a mailer, an archive and a search index. Here each is a small
in-memory stand-in that keeps what it was given, so that the pages' handlers run
as written and a test can see what they did.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Charge",
    "archive",
    "gateway",
    "inventory",
    "mailer",
    "pages_to_reindex",
    "reindex_page",
    "warehouse",
]


@dataclass(frozen=True)
class Charge:
    """A payment the gateway took."""

    id: str
    card: str
    amount: int


@dataclass
class Gateway:
    """A payment provider's client: every call to ``charge`` takes money once."""

    charges: list[Charge] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(self, card: str, amount: int) -> Charge:
        with self._lock:
            charge = Charge(f"ch_{next(self._ids)}", card, amount)
            self.charges.append(charge)
            return charge


@dataclass
class Warehouse:
    """Reserves the items of an order."""

    reserved: list[list[str]] = field(default_factory=list)

    def reserve(self, items: list[str]) -> None:
        self.reserved.append(list(items))


@dataclass
class Inventory:
    """Reserves stock for an order given as its JSON value."""

    orders: list[Any] = field(default_factory=list)

    def reserve(self, order: Any) -> None:
        self.orders.append(order)


@dataclass
class Mailer:
    """Sends emails, unless its provider is rate limiting it."""

    sent: list[Any] = field(default_factory=list)
    rate_limited: bool = False

    def is_rate_limited(self) -> bool:
        return self.rate_limited

    def send(self, email: Any) -> None:
        self.sent.append(email)


@dataclass
class Archive:
    """Durable storage for messages set aside (a bucket, say)."""

    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data


gateway = Gateway()
warehouse = Warehouse()
inventory = Inventory()
mailer = Mailer()
archive = Archive()
_stale_pages = ["/", "/pets", "/about"]
reindexed: list[str] = []


def pages_to_reindex() -> list[str]:
    """The pages of the search index that are out of date."""
    return list(_stale_pages)


def reindex_page(page: str) -> None:
    """Bring one page of the search index up to date."""
    reindexed.append(page)
