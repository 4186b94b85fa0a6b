"""Token latency of the UI: from the model's first streamed token to that token on the page.

The real app (`chainlit run --headless`, through the browser test harness) runs the solo team against the
scripted OpenAI-compatible server, which streams each reply one word every `--pace` seconds. The server
stamps the moment it writes the chunk holding a reply's first word (a marker unique to the question); a
MutationObserver in chromium stamps the moment that word appears in the page. Same machine, same wall
clock, so the difference is the whole path: the OpenAI client's SSE parsing, AutoGen's stream, the run's
event queue, the renderer, socket.io and React. Target: median under 300 ms.

    python bench/ui_latency.py [--runs 8] [--pace 0.05] [--words 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.scripted_llm import ScriptedLLM  # noqa: E402
from tests.ui.harness import (  # noqa: E402
    ChainlitApp,
    Scenarios,
    app_env,
    ask,
    chromium_missing,
    final_answers,
    launch,
    new_context,
    open_chat,
    scratch_dir,
)

TARGET_MS = 300.0

# Armed before the question is sent; records when the marker first shows up in the page.
OBSERVER = """
(marker) => {
  window.__shownAt = null;
  const obs = new MutationObserver(() => {
    if (document.body.innerText.includes(marker)) {
      window.__shownAt = performance.timeOrigin + performance.now();
      obs.disconnect();
    }
  });
  obs.observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""


class StampedLLM(ScriptedLLM):
    """The scripted server, noting when the chunk with a reply's first word leaves it."""

    def __init__(self, *args: Any, markers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.markers = markers
        self.sent_at: dict[str, float] = {}

    def _stream(self, h: Any, *args: Any) -> None:
        real = h.wfile
        bench = self

        class Stamping:
            def write(self, data: bytes) -> int:
                n = real.write(data)
                for marker in bench.markers:
                    if marker not in bench.sent_at and marker.encode() in data:
                        real.flush()
                        bench.sent_at[marker] = time.time() * 1000
                return n

            def flush(self) -> None:
                real.flush()

        h.wfile = Stamping()
        try:
            super()._stream(h, *args)
        finally:
            h.wfile = real


def measure(runs: int, pace: float, words: int) -> list[float]:
    from playwright.sync_api import expect, sync_playwright

    markers = [f"Zqmarker{i:02d}x" for i in range(runs)]
    scenarios = Scenarios()
    for i, marker in enumerate(markers):
        filler = " ".join(f"word{j}" for j in range(words))
        scenarios.add(f"latency probe {i:02d}", {"solo": [f"{marker} {filler}\nFINAL ANSWER: {i}"]})
    llm = StampedLLM({"default": scenarios.respond}, token_delay=pace, markers=markers).start()
    latencies: list[float] = []
    with scratch_dir("roundtable-bench-ui-") as root:
        app = ChainlitApp(app_env(root, llm, ROUNDTABLE_TEAM="solo", LOG_LEVEL="WARNING"), root)
        try:
            app.start()
            with sync_playwright() as pw:
                browser = launch(pw)
                page = new_context(browser, viewport={"width": 1280, "height": 1000}).new_page()
                open_chat(page, app.url)
                for i, marker in enumerate(markers):
                    page.evaluate(OBSERVER, marker)
                    ask(page, f"Invented latency probe {i:02d}: echo the marker.")
                    expect(final_answers(page).nth(i)).to_contain_text(f"Final answer: {i}", timeout=60_000)
                    latencies.append(float(page.evaluate("() => window.__shownAt")) - llm.sent_at[marker])
                browser.close()
        finally:
            app.stop()
            llm.stop()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between streamed words")
    parser.add_argument("--words", type=int, default=40, help="words per reply after the marker")
    args = parser.parse_args(argv)
    if reason := chromium_missing():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    lat = measure(args.runs, args.pace, args.words)
    median = statistics.median(lat)
    print(f"first token -> page, {len(lat)} runs, one word every {args.pace * 1000:.0f} ms:")
    print("  each (ms): " + ", ".join(f"{x:.0f}" for x in lat))
    print(f"  median {median:.0f} ms, min {min(lat):.0f} ms, max {max(lat):.0f} ms")
    print(f"  target < {TARGET_MS:.0f} ms: {'met' if median < TARGET_MS else 'MISSED'}")
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
