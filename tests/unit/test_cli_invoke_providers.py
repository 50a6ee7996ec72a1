"""``polyserve events`` and ``polyserve invoke --provider`` for Azure, Google Cloud and
Cloudflare: each adapter's native events, run through its real entry point."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from polyserve._cli import main

if TYPE_CHECKING:
    from pathlib import Path

APP = """
from polyserve import App, Message

app = App("shop")


@app.get("/items/{item_id:int}")
def item(item_id: int) -> dict[str, int]:
    if item_id == 0:
        raise RuntimeError("no zero")
    return {"id": item_id}


@app.queue("orders")
def orders(msg: Message) -> None:
    if msg.json().get("fail"):
        raise ValueError("cannot")


@app.schedule("nightly", cron="0 3 * * *")
def nightly() -> None:
    raise RuntimeError("report failed")
"""

# Per provider: the HTTP kind and its path keyword, the queue kind and its overrides.
CASES = {
    "azure": ("http", "queue", {"queue": "orders"}),
    "gcp": ("http", "pubsub", {"topic": "orders"}),
    "cloudflare": ("fetch", "queue", {"queue": "orders"}),
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "shopapp.py").write_text(APP)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _sets(overrides: dict[str, str]) -> list[str]:
    return [arg for k, v in overrides.items() for arg in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("provider", sorted(CASES))
def test_events_prints_every_kind(provider: str, capsys: pytest.CaptureFixture[str]) -> None:
    from polyserve._cli_events import builders

    pytest.importorskip(f"polyserve_{provider}")
    for kind in builders(provider):
        status, out, err = _run(capsys, "events", provider, kind)
        assert (status, err) == (0, "")
        assert isinstance(json.loads(out), dict)
    status, _, err = _run(capsys, "events", provider, CASES[provider][1], "--set", "colour=red")
    assert status == 2
    assert f"unknown override(s) colour for {provider}" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("provider", sorted(CASES))
def test_invoke_http_queue_and_schedule(
    provider: str, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip(f"polyserve_{provider}")
    http, queue, target = CASES[provider]
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", provider)
    status, out, _ = _run(capsys, *common, http, "--set", "path=/items/3")
    assert status == 0
    answer = json.loads(out)
    assert (answer["status"], json.loads(answer["body"])) == (200, {"id": 3})
    status, out, _ = _run(capsys, *common, http, "--set", "path=/items/0")
    assert status == 1  # a 5xx answer is a failed invocation
    assert json.loads(out)["status"] == 500
    status, out, _ = _run(capsys, *common, queue, *_sets(target), "--body", '{"id": 1}')
    assert status == 0
    status, out, err = _run(capsys, *common, queue, *_sets(target), "--body", '{"fail": true}')
    assert status == 1
    if provider == "cloudflare":  # the Worker retries the message rather than raising
        assert json.loads(out)["messages"][0]["settled"] == "retried"
    else:
        assert err == "polyserve: error: invocation failed: ValueError: cannot\n"


@pytest.mark.parametrize("provider", sorted(CASES))
def test_invoke_rejects_another_providers_event_in_one_line(
    provider: str, app_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip(f"polyserve_{provider}")
    event = tmp_path / "sqs.json"
    event.write_text(json.dumps({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}))
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", provider)
    status, out, err = _run(capsys, *common, "--event", str(event))
    assert status == 1
    assert out == ""
    assert err.startswith(f"polyserve: error: the event is not one the {provider} entry point")
    assert err.count("\n") == 1


def test_invoke_azure_names_the_missing_function(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("polyserve_azure")
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", "azure")
    status, _, err = _run(capsys, *common, "queue", "--set", "queue=payments")
    assert status == 1
    assert "no function receives queueTrigger payments; the app has http, queue_orders" in err
    status, _, err = _run(capsys, *common, "timer", "--set", "name=nightly")
    assert (status, err) == (
        1,
        "polyserve: error: invocation failed: RuntimeError: report failed\n",
    )


@pytest.mark.parametrize("provider", sorted(CASES))
def test_a_printed_event_runs_from_its_file(
    provider: str, app_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip(f"polyserve_{provider}")
    from polyserve._cli_events import body_keyword

    _, queue, target = CASES[provider]
    body = f'{body_keyword(provider, queue)}={{"id": 1}}'
    status, out, _ = _run(capsys, "events", provider, queue, *_sets(target), "--set", body)
    assert status == 0
    event = tmp_path / "event.json"
    event.write_text(out)
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", provider)
    status, out, err = _run(capsys, *common, "--event", str(event))
    assert (status, err) == (0, "")
    answer = json.loads(out)
    if provider == "cloudflare":
        assert answer["messages"][0]["settled"] == "acked"
    else:
        assert answer is None
