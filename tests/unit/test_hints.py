"""``polyserve._hints``: typing's introspection, the same before and after typing is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_without_typing_the_answers_are_typings_own() -> None:
    script = textwrap.dedent(
        """
        import sys
        from polyserve import _hints

        cases = [int, list[int], dict[str, int], int | None, list[int] | None, None]
        before = [(_hints.origin(tp), _hints.args(tp)) for tp in cases]
        plain = _hints.plain_hints({"a": int, "b": list[int] | None, "c": None})
        forward = [
            _hints.plain_hints({"a": "int"}),
            _hints.plain_hints({"a": list["int"]}),
            _hints.plain_hints({"a": list["int"] | None}),
        ]
        assert "typing" not in sys.modules
        import typing

        after = [(typing.get_origin(tp), typing.get_args(tp)) for tp in cases]
        assert before == after, (before, after)
        assert plain == {"a": int, "b": list[int] | None, "c": type(None)}, plain
        assert forward == [None, None, None], forward
        # Once typing is imported, its own functions answer, and hints need it.
        assert _hints.plain_hints({"a": int}) is None
        assert _hints.form("Annotated") is typing.Annotated
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "ok"
