"""An app whose handlers record the typed object each was given: the one ``Recorder``.

Adapter tests send a native event through the adapter's real entry point and look
at what reached the handler (``recorder.last``, ``recorder.requests``,
``recorder.messages``). Three ready-made shapes cover the suites:

* ``Recorder.catch_all()``: a catch-all route answering ``ok`` and a ``"*"``
  registration for every typed trigger (each adapter's conformance tests);
* ``Recorder.echo(answer)``: a route ``/echo/{rest:path}`` answering with
  ``answer(request)`` and a queue ``orders`` (the cross-provider round trips);
* ``Recorder(app)`` with ``recorder.request`` and ``recorder.event`` registered by the
  test itself, for an adapter that needs named registrations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve import App, HttpRequest, Message, StorageAction, Trigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from polyserve import HttpResponse

__all__ = ["ALL_METHODS", "Recorder"]

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_ECHO_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Recorder:
    """An app and, in order, every request and event its handlers received."""

    def __init__(self, app: App | None = None) -> None:
        self.app = App("recorder") if app is None else app
        self.seen: list[Any] = []

    @property
    def last(self) -> Any:
        """What the app received last (fails the test when it received nothing)."""
        assert self.seen, "the app received nothing"
        return self.seen[-1]

    @property
    def requests(self) -> list[HttpRequest]:
        """The HTTP requests received, in order."""
        return [item for item in self.seen if isinstance(item, HttpRequest)]

    @property
    def messages(self) -> list[Message]:
        """The queue messages received, in order."""
        return [item for item in self.seen if isinstance(item, Message)]

    def request(self, request: HttpRequest) -> str:
        """A route handler: records the request and answers ``ok``."""
        self.seen.append(request)
        return "ok"

    def event(self, event: object) -> None:
        """An event handler: records the event."""
        self.seen.append(event)

    @classmethod
    def catch_all(cls, name: str = "recorder") -> Recorder:
        """A catch-all route, and a ``"*"`` registration for every trigger but ``NATIVE``
        (which would take every event no source recognises)."""
        recorder = cls(App(name))
        recorder.app.add_route("/{rest:path}", recorder.request, ALL_METHODS)
        for trigger in Trigger:
            if trigger is Trigger.NATIVE:
                continue
            options: dict[str, Any] = {}
            if trigger is Trigger.STORAGE:
                options["actions"] = frozenset(action.value for action in StorageAction)
            recorder.app.register(trigger, "*", recorder.event, **options)
        return recorder

    @classmethod
    def echo(
        cls,
        answer: Callable[[HttpRequest], HttpResponse],
        *,
        name: str = "recorder",
        fails: Callable[[Message], bool] | None = None,
    ) -> Recorder:
        """A route ``/echo/{rest:path}`` answering ``answer(request)``, and a queue ``orders``.

        A message for which ``fails`` is true is recorded, then its handler raises
        ``RuntimeError`` so that the adapter reports it failed.
        """
        recorder = cls(App(name))

        def echo(request: HttpRequest) -> HttpResponse:
            recorder.seen.append(request)
            return answer(request)

        def on_order(message: Message) -> None:
            recorder.seen.append(message)
            if fails is not None and fails(message):
                raise RuntimeError("rejected")

        recorder.app.route("/echo/{rest:path}", list(_ECHO_METHODS))(echo)
        recorder.app.queue("orders")(on_order)
        return recorder
