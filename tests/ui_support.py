"""Helpers for the web UI's tests: tiny job configs, the app in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import TINY_RUN

from dreamer.run_config import RunConfig, load_run_config

REPO = Path(__file__).resolve().parents[1]  # the checkout: where the app subprocess runs

# Every UI job in the tests: the suite's tiny settings (reference prior, 16 px, small exports).
UI_TINY = list(TINY_RUN)


def tiny_config(prompt: str = "a red cube", steps: int = 6, **overrides) -> RunConfig:
    return load_run_config("default", {"prompt": prompt, "steps": steps, **overrides}, UI_TINY)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; that value, or an AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: "str | urllib.request.Request") -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


class App:
    """`dreamer ui` in a subprocess on a free port; `settings` (key=value) apply to every job."""

    def __init__(self, runs: Path, log: Path, settings: list[str], *options: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "dreamer", "ui", "--runs", str(runs),
                                      "--port", str(self.port), *options, *settings], cwd=REPO, env=env,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"the app did not answer within 120 s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM, as a service manager would: running jobs save a checkpoint, then the app exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def browser_unavailable(reason: str):
    """Skip here; fail in CI (CI=true), where a skip would hide a broken set-up."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        browser_unavailable("Chromium not found: apt-get install chromium (Debian's package; no browser downloads)")
    return path


def playwright_sync():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("Playwright is not installed: pip install -e '.[dev]'")
    return sync_playwright
