"""The codec protocols: each provider's native encodings, for the property tests.

Each adapter's ``tests/codecs.py`` (``adapters/aws/tests/codecs.py`` and so on)
exposes ``HTTP_CODECS: list[RawHttpCodec]`` and ``MESSAGE_CODECS: list[MessageCodec]``.
A codec encodes a typed event into the provider's native form, runs it through
the adapter's real entry point, and decodes the native response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from polyserve import App, Headers, HttpRequest, Message


@dataclass(frozen=True)
class NativeResponse:
    """What a client of the provider receives, decoded back to plain values."""

    status: int
    headers: Headers
    body: bytes


class HttpCodec(Protocol):
    name: str

    def expected(self, request: HttpRequest) -> HttpRequest:
        """What a handler sees when ``request`` travels in this format.

        Identity, except where the format cannot carry something (for example
        several values of one header); each such limit is documented in the
        provider's docs page.
        """
        ...

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        """Encode ``request`` natively, run the adapter's entry point, decode its answer."""
        ...

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        """The response as this format can carry it (identity unless documented)."""
        ...


class RawHttpCodec(HttpCodec, Protocol):
    """An HTTP encoding that also sends what no well-behaved client sends."""

    @property
    def decodes_path(self) -> bool:
        """Whether the platform decodes the path before the function sees it, so that
        what polyserve reads is no longer what the client sent."""
        ...

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        """Send a request as a client wrote it and return the native answer.

        ``target`` is the request-target (path and query) exactly as sent: escapes
        malformed or not, any text at all. ``method`` and ``headers`` are any text
        too. Each provider carries them as its platform would (JSON carries any
        string; a WSGI server the UTF-8 bytes); what the platform itself refuses,
        such as a header a JavaScript ``Headers`` rejects, is left out.
        """
        ...


class MessageCodec(Protocol):
    name: str

    def expected(self, message: Message) -> Message:
        """What a handler sees when ``message`` travels in this format."""
        ...

    def call(self, app: App, message: Message) -> None:
        """Deliver ``message`` natively from the queue named ``message.source``.

        Raises whatever the adapter raises when the handler fails.
        """
        ...
