"""``polyserve consume``: mistakes on the command line are one line and exit status 2."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from polyserve._cli import main

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["redis://h:1", "m:app"], "expected redis://HOST:PORT/STREAM"),
        (["redis://h:1/x/orders", "m:app"], "must be a number"),
        (["redis://h:1/orders", "no_such_module_here:app"], "no module named"),
        (["redis://h:1/orders", "polyserve:App"], "is a class, not a polyserve App"),
        (["redis://h:1/orders", "polyserve.events:__name__"], "is a str"),
    ],
)
def test_mistakes_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consume", *argv, "--group", "g"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("polyserve: error: ")
    assert message in err
    assert len(err.strip().splitlines()) <= 2


def test_group_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["consume", "redis://h:1/orders", "m:app"])
    assert info.value.code == 2
    assert "--group" in capsys.readouterr().err


def test_count_must_be_positive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "consume_count_app.py").write_text("import polyserve\napp = polyserve.App('a')\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    argv = ["consume", "redis://h:1/orders", "consume_count_app:app", "--group", "g"]
    assert main([*argv, "--app-dir", str(tmp_path), "--count", "0"]) == 2
    assert "--count and --min-idle must be positive" in capsys.readouterr().err
