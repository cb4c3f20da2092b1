"""Chat UI latency in a real browser: start-up, and Enter -> first streamed token -> full answer.

    python bench/ui_latency.py [--questions 20]

Indexes seeds/ into a temporary folder, starts `rag ui` (bundled model) on a free loopback port and
times how long until the page is served and until it answers its first question. Then Chromium
(Playwright) asks the seed questions of eval/sets/seed_qa.jsonl; the page itself records, with
performance.now(), the Enter key, the first draft text in the chat and the verified answer.
Writes bench/results/ui_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, free_port, record

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OBSERVER = """() => {
  window.__t = {};
  const input = document.querySelector('#question textarea');
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter') window.__t = {enter: performance.now(), count: document.querySelectorAll('#chat .bot').length};
  }, true);
  new MutationObserver(() => {
    const bubbles = document.querySelectorAll('#chat .bot');
    if (window.__t.enter === undefined || bubbles.length <= window.__t.count) return;
    const text = bubbles[bubbles.length - 1].innerText;
    if (text.includes('checking sources') && window.__t.first === undefined) window.__t.first = performance.now();
    if (!text.includes('checking sources') && /\\[\\d+\\]|corpus does not answer|⚠️/.test(text)
        && window.__t.done === undefined) window.__t.done = performance.now();
  }).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}"""


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    questions = [json.loads(line)["question"] for line in open(ROOT / "eval" / "sets" / "seed_qa.jsonl")][: args.questions]
    workdir = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    rag = [sys.executable, "-m", "rag.cli"]
    subprocess.run([*rag, "ingest", str(ROOT / "seeds"), "--index", str(workdir / "index")], check=True, env=env,
                   capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    server = subprocess.Popen([*rag, "ui", "--index", str(workdir / "index"), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
            if server.poll() is not None:
                sys.exit("rag ui exited before serving")
        served_s = time.perf_counter() - started
        firsts, totals = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#question textarea")
            page.evaluate(OBSERVER)
            first_answer_s = None
            for question in questions:
                page.fill("#question textarea", question)
                page.evaluate("() => { window.__t = {}; }")
                page.press("#question textarea", "Enter")
                page.wait_for_function("() => window.__t.done !== undefined", timeout=180_000)
                timing = page.evaluate("() => window.__t")
                if first_answer_s is None:
                    first_answer_s = time.perf_counter() - started
                totals.append(timing["done"] - timing["enter"])
                if "first" in timing:  # refusals before generation stream nothing
                    firsts.append(timing["first"] - timing["enter"])
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    record("ui_latency", {
        "questions": len(questions),
        "startup": {"rag_ui_to_page_served_s": round(served_s, 2),
                    "rag_ui_to_first_answer_in_browser_s": round(first_answer_s, 2)},
        "enter_to_first_streamed_token": percentiles(firsts),
        "enter_to_full_answer": percentiles(totals),
    })


if __name__ == "__main__":
    main()
