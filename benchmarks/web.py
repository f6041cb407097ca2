"""The browser build in headless Chromium (Debian's, driven by Playwright) against the Python runtime
on the same sentences in the same run: page weight (bytes transferred, fp32 and int8 folders), time to
the first translation (a cold browser cache, then a warm one), sentences per second one at a time and
in batches of 32.

    python benchmarks/web.py --fp32 artifacts/onnx --int8 artifacts/onnx-int8
"""
from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from common import ROOT, TATOEBA, emit, machine, require_shared, run

CHROMIUM = "/usr/bin/chromium"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def page_rows(browser, url: str, site: Path, texts: list[str], repeat: int) -> dict:
    context = browser.new_context()
    fetched = set()  # the page's weight: the files it fetched (sizes on disk; the server sends them whole)
    context.on("requestfinished", lambda r: fetched.add(urllib.parse.urlparse(r.url).path.lstrip("/")))
    loads = []
    for k in range(repeat):  # the first load fills the HTTP cache; the others read from it
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url + "?q=" + urllib.parse.quote("Where is the station?"))
        page.wait_for_function("window.seq2seq && window.seq2seq.translated > 0", timeout=300_000)
        loads.append(time.perf_counter() - start)
        if k == 0:
            weight = sum((site / name).stat().st_size for name in fetched if (site / name).is_file())
        if k < repeat - 1:
            page.close()
    one = page.evaluate("""async (texts) => { const t = window.seq2seq.translator; const start = performance.now();
        for (const x of texts) await t.translate([x]); return (performance.now() - start) / 1000; }""", texts[:100])
    batched = page.evaluate("""async (texts) => { const t = window.seq2seq.translator; const start = performance.now();
        await t.translate(texts, 32); return (performance.now() - start) / 1000; }""", texts)
    context.close()
    return {"page_mb": round(weight / 1e6, 2), "first_translation_cold_s": round(loads[0], 2),
            "first_translation_cached_s": round(statistics.median(loads[1:]), 2),
            "b1_sent_per_s": round(100 / one, 1), "b32_sent_per_s": round(len(texts) / batched, 1)}


def python_rows(folder: str, texts: list[str]) -> dict:
    from runtime import Translator

    t = Translator(folder, device="cpu")
    t.translate(texts[:8], split_sentences=False)
    start = time.perf_counter()
    for x in texts[:100]:
        t.translate([x], split_sentences=False)
    one = time.perf_counter() - start
    start = time.perf_counter()
    t.translate(texts, batch_size=32, split_sentences=False)
    return {"b1_sent_per_s": round(100 / one, 1), "b32_sent_per_s": round(len(texts) / (time.perf_counter() - start), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8")
    ap.add_argument("--n", type=int, default=500, help="sentences for the batched rows (100 one at a time)")
    ap.add_argument("--repeat", type=int, default=4, help="page loads: one cold, the rest from the cache")
    ap.add_argument("--quick", action="store_true", help="100 sentences, 2 loads")
    args = ap.parse_args()
    require_shared()
    if args.quick:
        args.n, args.repeat = 100, 2
    from playwright.sync_api import sync_playwright

    texts = [l.split("\t")[0] for l in (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()[: args.n]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for kind, folder in (("fp32", args.fp32), ("int8", args.int8)):
            if not folder:
                continue
            site = Path(tmp) / kind
            run([sys.executable, "-m", "export", "web", str(Path(folder).resolve()), "--out", str(site)])
            server = serve(site)
            try:
                results[f"page {kind}"] = page_rows(browser, f"http://127.0.0.1:{server.server_port}/index.html", site,
                                                    texts, args.repeat)
            finally:
                server.shutdown()
            results[f"python {kind}"] = python_rows(folder, texts)
            print(kind, results[f"page {kind}"], results[f"python {kind}"], flush=True)
        browser.close()
    emit({"results": results, "sentences": len(texts), "root": str(ROOT), "machine": machine()})


if __name__ == "__main__":
    main()
