"""``polyserve events`` and ``polyserve invoke``: native events out, native results back,
one line for every mistake and a non-zero status when the invocation failed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from polyserve._cli import main

pytest.importorskip("polyserve_aws")

COMMAND = Path(sys.executable).parent / "polyserve"

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


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "shopapp.py").write_text(APP)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_events_prints_a_native_event(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        capsys, "events", "aws", "sqs", "--set", 'body={"id": 1}', "--set", "attempt=2"
    )
    assert status == 0
    (record,) = json.loads(out)["Records"]
    assert json.loads(record["body"]) == {"id": 1}
    assert record["attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["aws", "sqs", "--set", "colour=red"], "unknown override(s) colour for aws sqs; known:"),
        (["aws", "sqs", "--set", "body"], "--set takes key=value, got 'body'"),
        (["aws", "sqs3"], "unknown aws event kind 'sqs3'; known: alb,"),
        (
            ["mars", "sqs"],
            "no event builders for provider 'mars'; known: aws, azure, cloudflare, gcp",
        ),
    ],
)
def test_events_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = _run(capsys, "events", *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_invoke_http_and_queue(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", "aws")
    status, out, _ = _run(capsys, *common, "http_api", "--set", "path=/items/3")
    assert status == 0
    assert json.loads(json.loads(out)["body"]) == {"id": 3}
    status, out, _ = _run(capsys, *common, "http_api", "--set", "path=/items/0")
    assert status == 1  # a 5xx answer is a failed invocation
    assert json.loads(out)["statusCode"] == 500
    status, out, _ = _run(capsys, *common, "sqs", "--body", '{"id": 1}')
    assert (status, json.loads(out)) == (0, {"batchItemFailures": []})
    status, out, _ = _run(capsys, *common, "sqs", "--body", '{"fail": true}')
    assert status == 1
    assert json.loads(out) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    status, out, err = _run(capsys, *common, "schedule", "--set", "name=nightly")
    assert status == 1
    assert out == ""
    assert err == "polyserve: error: invocation failed: RuntimeError: report failed\n"


def test_invoke_event_file_mistakes(
    app_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("invoke", "shopapp:app", "--app-dir", str(app_dir), "--provider", "aws")
    status, _, err = _run(capsys, *common, "--event", str(tmp_path / "missing.json"))
    assert status == 2
    assert err.startswith("polyserve: error: cannot read event file")
    assert err.count("\n") == 1
    (tmp_path / "bad.json").write_text("{not json")
    status, _, err = _run(capsys, *common, "--event", str(tmp_path / "bad.json"))
    assert status == 2
    assert "is not JSON" in err
    # A Pub/Sub push body given to the AWS entry point.
    (tmp_path / "gcp.json").write_text(
        json.dumps({"message": {"data": "e30="}, "subscription": "s"})
    )
    status, _, err = _run(capsys, *common, "--event", str(tmp_path / "gcp.json"))
    assert status == 1
    assert err.startswith("polyserve: error: the event is not one the aws entry point handles")
    assert err.count("\n") == 1
    status, _, err = _run(capsys, *common)
    assert (status, err.count("\n")) == (2, 1)


def test_invoke_through_the_command(app_dir: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    built = subprocess.run(
        [COMMAND, "events", "aws", "sqs", "--set", "queue=orders", "--set", 'body={"x": 1}'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    event.write_text(built.stdout)
    done = subprocess.run(
        [COMMAND, "invoke", "shopapp:app", "--provider", "aws", "--event", str(event)],
        capture_output=True, text=True, cwd=app_dir, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"batchItemFailures": []}
    assert "Traceback" not in done.stderr
