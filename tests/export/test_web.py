"""`python -m export web`: the static site translates in a real browser (Debian's chromium driven by
Playwright; .ci/run installs it and builds web/ with npm) exactly as the Python runtime does."""
import functools
import http.server
import json
import shutil
import subprocess
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from runtime import Translator
from tests.conftest import CHROMIUM, PY, ROOT, TATOEBA, run_env

pytestmark = pytest.mark.slow
DIST = ROOT / "web" / "dist"


def _sentences(n: int) -> list[str]:
    """n tatoeba-fra test sentences, or the built-in corpus's test sentences where ../shared is absent."""
    if (TATOEBA / "test.tsv").is_file():
        return [line.split("\t")[0] for line in (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()[:n]]
    from trainer.builtin_corpus import pairs

    return [en for en, _ in pairs("test")[:n]]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (CI installs it)")
    if not (DIST / "app.js").is_file():
        pytest.skip("web/dist is not built: npm ci --prefix web && npm run build --prefix web (CI does)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Site:
    """A site written by `python -m export web` and served from 127.0.0.1."""

    def __init__(self, path: Path):
        """A written site, served."""
        self.path = path
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(path)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/index.html"

    @classmethod
    def export(cls, folder: Path, out: Path) -> "Site":
        r = subprocess.run([PY, "-m", "export", "web", str(folder), "--out", str(out)], capture_output=True, text=True,
                           env=run_env(), cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        return cls(out)

    def translate(self, browser, lines: list[str]) -> tuple[list[str], str]:
        """The page opened with ?q=the lines -> (its #translation lines, its #error text)."""
        page = browser.new_page()
        try:
            page.goto(self.url + "?q=" + urllib.parse.quote("\n".join(lines)))
            page.wait_for_function("window.seq2seq && (window.seq2seq.translated > 0 || window.seq2seq.error)",
                                   timeout=120_000)
            return page.text_content("#translation").split("\n"), page.text_content("#error")
        finally:
            page.close()

    def close(self):
        self.server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_of(tmp_path_factory):
    sites = []

    def make(folder):
        sites.append(Site.export(folder, tmp_path_factory.mktemp("site") / "site"))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


@pytest.fixture(scope="module")
def v3_folder(tiny_att_run, tiny_att_onnx, tmp_path_factory):
    from tests.runtime.old_formats import write_format_3

    return write_format_3(tiny_att_run / "checkpoint.pth", tiny_att_onnx, tmp_path_factory.mktemp("v3web") / "model")


@pytest.fixture(scope="module")
def v5_shortlist_folder(tiny_att_onnx_sl, tmp_path_factory):
    from tests.runtime.old_formats import write_format_5

    return write_format_5(tiny_att_onnx_sl, tmp_path_factory.mktemp("v5web") / "model")


@pytest.fixture(scope="module")
def v4_shortlist_folder(tiny_att_onnx_sl, tmp_path_factory):
    from tests.runtime.old_formats import write_format_4

    return write_format_4(tiny_att_onnx_sl, tmp_path_factory.mktemp("v4web") / "model")


@pytest.fixture(scope="module")
def fixed_shortlist_folder(tiny_att_run, tiny_att_onnx, tmp_path_factory):
    """A fixed shortlist of 40% of the target vocabulary (format 8: its step in a Loop, which the page
    runs one step at a time): the Python runtime's output is the list's, not the whole vocabulary's."""
    from tests.runtime.test_shortlist import _fixed_folder

    v = Translator(tiny_att_onnx).config.tgt_vocab_size
    return _fixed_folder(tiny_att_run, tmp_path_factory.mktemp("fixedweb") / "fixed", np.arange(4, v * 4 // 10))


@pytest.fixture(scope="module")
def v7_fixed_folder(fixed_shortlist_folder, tmp_path_factory):
    from tests.runtime.old_formats import write_format_7

    return write_format_7(fixed_shortlist_folder, tmp_path_factory.mktemp("v7web") / "fixed")


@pytest.fixture(scope="module")
def v1_folder(tiny_ckpt, tiny_onnx, tmp_path_factory):
    from tests.runtime.test_subwords import _write_format_1

    return _write_format_1(tiny_ckpt, tiny_onnx, tmp_path_factory.mktemp("v1web") / "model")


@pytest.mark.parametrize("folder", ["tiny_att_onnx", "tiny_onnx", "tiny_att_onnx_sl", "fixed_shortlist_folder",
                                    "v7_fixed_folder", "v5_shortlist_folder", "v4_shortlist_folder", "v3_folder", "v1_folder"])
def test_the_site_translates_as_the_python_runtime(folder, request, browser, site_of):
    """100 test sentences, several lines at once through ?q=: the page's output is the Python runtime's
    (fp32, greedy, each line whole), for the attention model (SentencePiece), the paper's model (word
    vocabulary), a folder with a shortlist (the page decodes with decoder.onnx over the whole
    vocabulary), a fixed shortlist (format 8: the page decodes with its decoder_shortlist.onnx, one step a
    run, as Python does for batches; format 7's, the step alone), the same as format 5 wrote it (weights inside the graphs), a format 4 shortlist folder (whose decoder.onnx takes the output layer's rows), a
    format 3 folder and a format 1 one (a decoder that also returns `logits`, a tokenizer.json
    without "type").
    The tiny model's shortlist holds its whole vocabulary, so the Python runtime's output is the
    whole vocabulary's too."""
    path = request.getfixturevalue(folder)
    lines = _sentences(100) + ["", "WHERE IS THE STATION?", "ǅEMAL IS AT THE STATION"]  # "ǅ": no capital (str.isupper)
    got, error = site_of(path).translate(browser, lines)
    assert error == ""
    want = Translator(path).translate(lines, split_sentences=False)
    assert got == want and sum(map(bool, want)) >= 100


def test_the_int8_site_agrees_with_the_python_int8_runtime(browser, site_of, tiny_att_onnx_int8):
    lines = _sentences(100)
    got, error = site_of(tiny_att_onnx_int8).translate(browser, lines)
    want = Translator(tiny_att_onnx_int8).translate(lines, split_sentences=False)
    assert error == "" and np.mean([a == b for a, b in zip(got, want)]) >= 0.95


def test_the_page_tokenizes_as_python(browser, site_of, tiny_att_onnx):
    """300 sentences with accents, digits, punctuation, emoji and other scripts: the same source ids
    from SentencePiece's WebAssembly build as from the Python package."""
    extra = ["Où est l'élève ? Ça coûte 12,50 € !", "Straße, Größe, naïve café — «déjà vu»", "I ❤️ NY 🚕🗽",
             "Привет, как дела?", "東京は大きい。", "مرحبا بالعالم", "ελληνικά", "tab\tand  double  space", "x²+y³=z⁴",
             "'quoted' \"twice\" (parens) [brackets]", "ﬁne ligature", "e\u0301 combining", ""]
    texts = (_sentences(287) + extra)[:300]
    assert len(texts) == 300
    t = Translator(tiny_att_onnx)
    page = browser.new_page()
    try:
        page.goto(site_of(tiny_att_onnx).url)
        page.wait_for_function("window.seq2seq && window.seq2seq.translator", timeout=120_000)
        got = page.evaluate("(texts) => texts.map((x) => window.seq2seq.translator.tokenizer.ids(x, 'src'))", texts)
    finally:
        page.close()
    assert got == [t.src_vocab.ids(t.tokenizer.tokenize(x, "src")) for x in texts]


def test_a_tampered_file_is_refused_with_a_message(browser, tmp_path, tiny_att_onnx, site_of):
    site = site_of(tiny_att_onnx)
    bad = tmp_path / "bad"
    shutil.copytree(site.path, bad)
    weights = bytearray((bad / "model" / "decoder.onnx").read_bytes())
    weights[-10] ^= 1
    (bad / "model" / "decoder.onnx").write_bytes(bytes(weights))
    bad_site = Site(bad)
    try:
        got, error = bad_site.translate(browser, ["hello"])
        assert got == [""] and "decoder.onnx: sha256 does not match config.json" in error and "refused" in error
        config = json.loads((bad / "model" / "config.json").read_text())
        (bad / "model" / "config.json").write_text(json.dumps({**config, "format_version": 9}))
        got, error = bad_site.translate(browser, ["hello"])
        assert "model format version 9; this page reads versions 1, 2, 3, 4, 5" in error
    finally:
        bad_site.close()


def test_export_web_errors_are_one_line(tmp_path, tiny_att_onnx):
    def export(*args):
        r = subprocess.run([PY, "-m", "export", "web", *args], capture_output=True, text=True, env=run_env(), cwd=ROOT,
                           timeout=120)
        return r.returncode, r.stderr

    code, err = export(str(tmp_path / "missing"), "--out", str(tmp_path / "s"))
    assert code == 1 and err.count("\n") == 1 and "missing" in err and not (tmp_path / "s").exists()
    (tmp_path / "s").mkdir()
    if (DIST / "app.js").is_file():
        code, err = export(str(tiny_att_onnx), "--out", str(tmp_path / "s"))
        assert code == 1 and "exists; pass --force" in err
    from export.web import WebExportError, export_web

    with pytest.raises(WebExportError, match="the page is not built .*npm ci --prefix web"):
        export_web(tiny_att_onnx, tmp_path / "t", web=tmp_path)
