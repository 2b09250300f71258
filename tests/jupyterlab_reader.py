"""A reader in JupyterLab: a JupyterLab server on localhost (a free port, a token, settings of its own) and a
Chromium page, driven by Playwright, that opens a notebook and runs it the way a reader does (Run All).

Used by tests/test_browser.py and benchmarks/kernel_load.py. Playwright drives the system's Chromium
(`executable_path`); it never downloads a browser.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# JupyterLab settings of a reader who keeps every cell in the page (so that every output can be inspected) and does
# not want news. (Its "autoStartDefaultKernel" shuts down the kernel it has just started, JupyterLab 4.6.)
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}
PROMPTS = "[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]"
# A code cell queued or running shows "[*]:"; one that ran "[n]:". A run is seen to end only after it was seen to
# start (an observer notes the first "[*]:"), so that the prompts of an earlier run never pass for this one's.
WATCH = """() => {
    window.softvqStarted = false;
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    new MutationObserver(() => {
        if (%s.some(e => e.textContent.includes('*'))) window.softvqStarted = true;
    }).observe(panel, {subtree: true, childList: true, characterData: true});
}""" % PROMPTS
ALL_RAN = """() => window.softvqStarted && %s.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim()))""" % PROMPTS
IDLE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']"
IMAGES = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')].map(e => e.complete ? e.naturalWidth : 0)"""


def find_chromium() -> str | None:
    """The Chromium to drive: $SOFTVQ_CHROMIUM, else the first of BROWSERS on the PATH; None when there is none."""
    given = os.environ.get("SOFTVQ_CHROMIUM")
    if given:
        return given
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server: its address, token and the folder it serves."""
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Close every session and shut its kernel down (a reader's closed notebooks hold no memory)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")


@contextmanager
def jupyterlab(root: Path, env: dict | None = None, start_timeout_s: float = 120):
    """Start JupyterLab serving `root` (its log in root/jupyterlab.log), yield a `Lab`, stop it and its kernels."""
    root = Path(root).resolve()
    settings = root / ".jupyterlab-settings"
    for name, values in SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(root / "jupyterlab.log", "w")
    process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(settings)})
    lab = Lab(f"http://127.0.0.1:{port}", token, root, process)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                lab.api("status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyterlab.log'}") from None
                time.sleep(0.5)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Reader:
    """One Chromium page in JupyterLab: open a notebook, Run All, save, and read what the page shows."""

    def __init__(self, page, lab: Lab):
        self.page, self.lab = page, lab

    def open(self, path: str, factory: str | None = None, timeout_s: float = 120) -> None:
        """Open `path` (relative to the served folder) in a workspace of its own, and wait for its kernel; with
        `factory` ("Notebook", "Jupytext Notebook", ...), open it from the file browser's "Open With" menu."""
        workspace = re.sub(r"\W", "-", path)
        folder, name = path.rpartition("/")[::2]
        if factory is None:
            self.page.goto(f"{self.lab.url}/lab/workspaces/{workspace}/tree/{path}?token={self.lab.token}")
        else:
            self.page.goto(f"{self.lab.url}/lab/workspaces/{workspace}/tree/{folder}?token={self.lab.token}")
            self.page.locator(f".jp-DirListing-item[title^='Name: {name}']").click(button="right")
            self.page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Open With$")).click()
            self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(factory)}$")).click()
        self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=timeout_s * 1000)
        kernel_dialog = self.page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
        try:                                        # JupyterLab may ask which kernel: the notebook's own
            kernel_dialog.click(timeout=3_000)
        except PlaywrightTimeout:
            pass
        self.page.wait_for_selector(IDLE, timeout=timeout_s * 1000)

    def menu(self, *labels: str) -> None:
        """Click through the menu bar: menu("Run", "Run All Cells")."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(labels[0])}$")).click()
        for label in labels[1:]:
            self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")).click()

    def run_all(self, timeout_s: float = 900) -> float:
        """Clear every output, Run All, wait until every code cell has run and the kernel is idle; the seconds."""
        self.menu("Edit", "Clear Outputs of All Cells")
        self.page.evaluate(WATCH)
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(ALL_RAN, timeout=timeout_s * 1000, polling=500)
        self.page.wait_for_selector(IDLE, timeout=timeout_s * 1000)
        return time.monotonic() - start

    def save(self) -> None:
        """Save the notebook (File > Save Notebook) and wait until the tab shows no unsaved change."""
        self.menu("File", "Save Notebook")
        self.page.wait_for_selector("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current:not(.jp-mod-dirty)",
                                    timeout=30_000)

    def images(self) -> list[int]:
        """The natural width of every image in the notebook's outputs (0: an image that did not load)."""
        return self.page.evaluate(IMAGES)

    def locator(self, selector: str):
        """The elements of the open notebook that match `selector` (a CSS selector inside its panel)."""
        return self.page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) {selector}")

    def screenshot(self, path: Path) -> None:
        """The page as the reader sees it, scrolled to the notebook's last cell."""
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").last.scroll_into_view_if_needed()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
