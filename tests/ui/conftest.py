"""Fixtures for the browser tests: one chromium per test module, a fresh browser context (= a fresh Chainlit
session) per test. Without chromium the tests skip locally and fail in CI (ROUNDTABLE_REQUIRE_SYSTEM=1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from tests.ui.harness import chromium_missing, launch, new_context


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if reason := chromium_missing():
        skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = launch(pw)
    except Exception as exc:
        pw.stop()
        skip_or_fail(f"chromium does not start: {exc}")
        raise
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()
