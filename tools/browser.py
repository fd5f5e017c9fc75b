"""Headless Chromium on the dashboard, for the browser test and the soak benchmark.

Debian's ``chromium`` package is the browser (never ``playwright install``), driven
by Playwright's Python client. The flags keep it off the network: without the
background-networking ones, this machine's closed network refuses its many
connections at every start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Passed to Chromium besides Playwright's own ``--headless``.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: A laptop screen, as the page is designed for.
VIEWPORT = {"width": 1366, "height": 800}


def find_chromium() -> str | None:
    """``$CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH, else None."""
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


def open_dashboard(playwright, profile: Path, port: int, executable: str | None = None):
    """Launch Chromium with a fresh ``profile`` and open the dashboard on ``port``.

    Returns ``(context, page)`` once the page says it is live; close the context.
    """
    context = playwright.chromium.launch_persistent_context(
        profile,  # a fresh profile per run: Playwright's way of passing --user-data-dir
        executable_path=executable or find_chromium(),
        headless=True,
        args=list(CHROMIUM_FLAGS),
        viewport=VIEWPORT,
    )
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_function("document.getElementById('conn').textContent === 'live'")
    return context, page
