"""The API docs page of ``polyserve serve``, in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from polyserve_testkit.servers import free_ports, skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "install Debian's chromium and chromium-driver (.ci/install-servers)"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyserve._cli", "serve", "petstore.app:app",
         "--app-dir", str(ROOT / "examples" / "petstore"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"the local server did not start:\n{out}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver_path).exists()):
        skip_or_fail(f"chromium or chromedriver is missing; {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_served_app_gives_its_openapi_document(served: str) -> None:
    response = httpx.get(served + "/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert "/openapi.json" not in doc["paths"]
    assert "/pets/{pet_id}" in doc["paths"]


def test_the_docs_page_lists_the_operations_and_try_it_out_reaches_the_app(
    served: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    httpx.post(served + "/pets", json={"name": "Rex", "species": "dog"}).raise_for_status()
    browser.get(served + "/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    summaries = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.replace("\u200b", ""),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert {("GET", "/pets"), ("POST", "/pets"), ("GET", "/pets/{pet_id}")} <= summaries
    assert ("GET", "/openapi.json") not in summaries

    # Open GET /pets, try it out, execute: the request goes to the app and back.
    block = browser.find_element(By.CSS_SELECTOR, "#operations-pets-list_pets")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".execute"))).click()
    status = wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status")
        )
    )
    assert status.text.strip() == "200"
    body = browser.find_element(
        By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description"
    ).text
    assert '"name": "Rex"' in body

    # Everything the page loaded came from the app itself.
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert urls
    assert all(url.startswith(served) for url in urls), urls
