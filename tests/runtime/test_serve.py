"""`runtime serve` as clients use it: the PyPI LibreTranslate clients, JSON, many requests at once, a
SIGTERM in the middle of them, every error class, and the page in a real browser. Each server runs
in its own process on 127.0.0.1 and a free port."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime import Translator
from trainer.data import load_corpus
from tests.conftest import CHROMIUM, PY, ROOT, run_env

pytest.importorskip("starlette", reason="the serve extra: pip install '.[serve]'")
TEXTS = [s for s, _ in load_corpus("builtin:test").pairs[:60]] + [
    "Where is the station? She is tired.\nThank you!", "WHERE IS THE STATION?", "", "   "]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, folder: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([PY, "-m", "runtime", "serve", "--model", str(folder), "--port", str(self.port),
                                      "--device", "cpu", *args], env=run_env(), cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read())
        raise RuntimeError("the server did not start")

    def request(self, path: str, body: bytes | None = None, method: str = "POST", headers=None, timeout=60):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), dict(e.headers)

    def get(self, path: str):
        return self.request(path, method="GET")

    def post_json(self, path: str, obj, **kw):
        return self.request(path, json.dumps(obj).encode(), headers={"Content-Type": "application/json"}, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def translator(tiny_att_onnx):
    return Translator(tiny_att_onnx, device="cpu")


@pytest.fixture(scope="module")
def server(tiny_att_onnx):
    s = Server(tiny_att_onnx, "--max-wait-ms", "20")
    yield s
    assert s.stop() == 0


def test_libretranslatepy_translates_lists_languages_and_detects(server, translator):
    from libretranslatepy import LibreTranslateAPI  # form-encoded POSTs; languages() is a GET with a body

    lt = LibreTranslateAPI(server.url)
    for text in TEXTS[:5] + [TEXTS[-4]]:
        assert lt.translate(text, "en", "fr") == translator.translate(text)
    assert lt.languages() == [{"code": "en", "name": "English", "targets": ["fr"]},
                              {"code": "fr", "name": "French", "targets": []}]
    assert lt.detect("Where is the station?") == [{"confidence": 100.0, "language": "en"}]


def test_deep_translator_translates_with_fields_in_the_query_string(server, translator):
    from deep_translator import LibreTranslator  # insists on an api_key: a server without keys ignores it

    client = LibreTranslator(source="en", target="fr", custom_url=server.url + "/", api_key="anything")
    for text in TEXTS[5:10]:
        assert client.translate(text) == translator.translate(text)
    assert client.translate_batch(TEXTS[10:13]) == translator.translate(TEXTS[10:13])


def test_json_lists_auto_source_and_distinct_alternatives(server, translator):
    status, reply, _ = server.post_json("/translate", {"q": TEXTS[:8], "source": "auto", "target": "fr"})
    assert status == 200 and reply["translatedText"] == translator.translate(TEXTS[:8])
    assert reply["detectedLanguage"] == {"confidence": 100.0, "language": "en"}
    status, reply, _ = server.post_json("/translate", {"q": "She is tired.", "source": "en", "target": "fr",
                                                       "alternatives": 3})
    alternatives = reply["alternatives"]
    # as LibreTranslate: the translation and its alternatives are one beam search's best distinct hypotheses
    beam = [h.text for h in translator.translate("She is tired.", beam_size=7, n_best=7, return_scores=True)]
    assert status == 200 and [reply["translatedText"], *alternatives] == list(dict.fromkeys(beam))[:4]
    assert len(alternatives) == 3 and len({reply["translatedText"], *alternatives}) == 4


def test_html_keeps_the_markup_and_translates_the_text(server, translator):
    page = '<p class="x">She is tired.</p>\n<script>var a = "<b>";</script><b>Thank you!</b> &amp;'
    status, reply, _ = server.post_json("/translate", {"q": page, "source": "en", "target": "fr", "format": "html"})
    out = reply["translatedText"]
    assert status == 200 and out.startswith('<p class="x">') and '<script>var a = "<b>";</script><b>' in out
    assert translator.translate("She is tired.") in out and translator.translate("Thank you!") in out


def test_concurrent_requests_each_get_what_their_text_alone_gives(server, translator):
    """200 requests at once, batched together by the server: each reply is the in-process
    Translator's for its text (fp32: padding is masked, so the batch changes nothing)."""
    sendable = [t for t in TEXTS if t]  # an empty q is a 400, as in LibreTranslate (tested below)
    texts = [sendable[k % len(sendable)] for k in range(200)]
    expected = dict(zip(sendable, translator.translate(sendable)))
    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(lambda t: server.post_json("/translate", {"q": t, "source": "en", "target": "fr"}), texts))
    assert [status for status, _, _ in replies] == [200] * 200
    assert [r["translatedText"] for _, r, _ in replies] == [expected[t] for t in texts]


def test_sigterm_finishes_every_accepted_request_and_exits_0(tiny_att_onnx, translator):
    """200 requests sent at once, each on its own connection, each a paragraph of 40 sentences, through
    batches of at most 8: SIGTERM comes once every request has been answered or is held by the
    server (as /health says). It stops taking connections, answers every request it
    holds, correctly, and exits 0."""
    s = Server(tiny_att_onnx, "--max-wait-ms", "50", "--max-batch", "8", "--queue-limit", "10000")
    per_text = 40
    paragraphs = [" ".join(TEXTS[(k + j) % 60] for j in range(per_text)) for k in range(60)]
    texts = [paragraphs[k % 60] for k in range(200)]
    expected = dict(zip(paragraphs, translator.translate(paragraphs)))
    answered = []

    def one(text):
        reply = s.post_json("/translate", {"q": text, "source": "en", "target": "fr"}, timeout=120)
        answered.append(1)
        return reply

    with ThreadPoolExecutor(200) as pool:
        futures = [pool.submit(one, t) for t in texts]
        deadline = time.time() + 60
        # every request inside the server: answered, or held (as /health says)
        while time.time() < deadline and len(answered) + s.get("/health")[1]["requests"] < 200:
            time.sleep(0.01)
        held = 200 - len(answered)
        s.proc.send_signal(signal.SIGTERM)
        results = [f.result(timeout=120) for f in futures]
    assert held >= 20, f"the server must still hold requests when SIGTERM comes, held {held}"
    assert s.proc.wait(timeout=60) == 0
    assert [status for status, _, _ in results] == [200] * 200
    assert [r["translatedText"] for _, r, _ in results] == [expected[t] for t in texts]
    with pytest.raises(OSError):  # and it is gone
        s.get("/health")


@pytest.mark.parametrize("body, headers, status, words", [
    (b"{not json", {"Content-Type": "application/json"}, 400, "Invalid JSON format"),
    (b"[1, 2]", {"Content-Type": "application/json"}, 400, "Invalid JSON format"),
    (b'{"source": "en", "target": "fr"}', {"Content-Type": "application/json"}, 400, "missing q parameter"),
    (b'{"q": "", "source": "en", "target": "fr"}', {"Content-Type": "application/json"}, 400, "missing q parameter"),
    (b'{"q": "hi", "target": "fr"}', {"Content-Type": "application/json"}, 400, "missing source parameter"),
    (b'{"q": "hi", "source": "en"}', {"Content-Type": "application/json"}, 400, "missing target parameter"),
    (b'{"q": 5, "source": "en", "target": "fr"}', {"Content-Type": "application/json"}, 400, "q must be a text"),
    (b'{"q": "hi", "source": "de", "target": "fr"}', {"Content-Type": "application/json"}, 400, "de is not supported"),
    (b'{"q": "hi", "source": "en", "target": "es"}', {"Content-Type": "application/json"}, 400, "es is not supported"),
    (b'{"q": "hi", "source": "en", "target": "fr", "format": "pdf"}', {"Content-Type": "application/json"}, 400,
     "pdf format is not supported"),
    (b"q=hi&source=en&target=fr&alternatives=many", {"Content-Type": "application/x-www-form-urlencoded"}, 400,
     "alternatives parameter is not a number"),
    (b"q=hi&source=en&target=fr&alternatives=99", {"Content-Type": "application/x-www-form-urlencoded"}, 400,
     "alternatives parameter must be from 0 to 8"),
    (json.dumps({"q": "a " * 3000, "source": "en", "target": "fr"}).encode(), {"Content-Type": "application/json"},
     400, "exceeds text limit (5000)"),
])
def test_bad_requests_get_json_errors_with_libretranslates_codes(server, body, headers, status, words):
    got, reply, _ = server.request("/translate", body, headers=headers)
    assert got == status and set(reply) == {"error"} and words in reply["error"], reply


def test_a_body_over_1_mib_gets_413_declared_or_streamed(server):
    """Declared too long: refused before the body is read (the client waits for 100 Continue, as
    curl does for big bodies, so the answer does not race its sending). Streamed in chunks without a
    length: refused once 1 MiB is passed."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/translate")
    for name, value in (("Content-Type", "application/json"), ("Content-Length", str((1 << 20) + 1)),
                        ("Expect", "100-continue")):
        conn.putheader(name, value)
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413 and "exceeds the limit (1,048,576 bytes)" in json.loads(reply.read())["error"]

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = [b"x" * (1 << 16)] * 16 + [b"x"]  # 1 MiB + 1 byte
    conn.request("POST", "/translate", body=iter(chunks), headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    reply = conn.getresponse()
    assert reply.status == 413 and json.loads(reply.read()) == {
        "error": "Invalid request: the body exceeds the limit (1,048,576 bytes)"}


def test_unknown_routes_and_methods_are_json_errors(server):
    assert server.get("/nowhere")[:2] == (404, {"error": "Not Found"})
    assert server.get("/translate")[:2] == (405, {"error": "Method Not Allowed"})


def test_api_keys_when_configured(tiny_att_onnx, tmp_path, translator):
    keys = tmp_path / "keys.txt"
    keys.write_text("# the operator's keys\nk1\n\nk2\n")
    s = Server(tiny_att_onnx, "--api-keys", str(keys))
    try:
        assert s.post_json("/translate", {"q": "hi", "source": "en", "target": "fr"})[0] == 403
        status, reply, _ = s.post_json("/translate", {"q": "hi", "source": "en", "target": "fr", "api_key": "nope"})
        assert status == 403 and reply == {"error": "Invalid API key"}
        status, reply, _ = s.request("/translate", b"q=hello&source=en&target=fr&api_key=k2",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and reply["translatedText"] == translator.translate("hello")
    finally:
        assert s.stop() == 0


def test_a_full_queue_answers_503_with_retry_after(tiny_att_onnx):
    s = Server(tiny_att_onnx, "--queue-limit", "2")
    try:
        status, reply, headers = s.post_json("/translate", {"q": ["One.", "Two.", "Three."], "source": "en", "target": "fr"})
        assert status == 503 and headers.get("retry-after") == "1" and "busy" in reply["error"]
        assert s.post_json("/translate", {"q": ["One.", "Two."], "source": "en", "target": "fr"})[0] == 200
    finally:
        assert s.stop() == 0


def test_a_bad_model_folder_stops_the_start_with_one_line(tmp_path):
    r = subprocess.run([PY, "-m", "runtime", "serve", "--model", str(tmp_path / "missing"), "--port", str(_free_port())],
                       capture_output=True, text=True, env=run_env(), cwd=ROOT, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "no model folder there" in r.stderr


def test_the_page_translates_in_a_real_browser(server, translator):
    """Debian's chromium, driven by Playwright (its own browser download can't run here): type, press
    the button, read the translation. .ci/run installs both."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (CI installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_function("document.getElementById('pair').textContent.includes('→')")
            page.fill("#source", "Where is the station? She is tired.")
            page.click("#translate")
            page.wait_for_function("document.getElementById('translation').textContent.length > 0")
            assert page.inner_text("#translation") == translator.translate("Where is the station? She is tired.")
            assert page.inner_text("#pair") == "English → French"
        finally:
            browser.close()
