"""`runtime serve`: a LibreTranslate-compatible HTTP API over one Translator, with dynamic batching.

Starlette on uvicorn (the `serve` extra; only this module imports them). A request's fields are read
as LibreTranslate reads them (from a JSON body, or else from the form and the query string), checked
before any work, and its texts cut into sentences; one batcher decodes the sentences of all requests
that arrive together in shared onnxruntime runs, off the event loop, and each request gets back its
own texts, put together again. Errors are `{"error": ...}` with LibreTranslate's status codes.
"""
from __future__ import annotations

import asyncio
import json
import math
import signal
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl

from runtime.markup import rebuild, text_nodes
from runtime.model_format import MAX_BEAM
from runtime.pipeline import finish_texts, prepare_texts
from runtime.serve_config import ServeConfig
from runtime.translator import Translator

# names /languages gives the codes clients send (ISO 639-1); any other code is named by itself
LANGUAGE_NAMES = {"ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
                  "es": "Spanish", "fi": "Finnish", "fr": "French", "hu": "Hungarian", "it": "Italian",
                  "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
                  "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "tr": "Turkish",
                  "uk": "Ukrainian", "zh": "Chinese"}


class RequestError(Exception):
    """Bad input: becomes {"error": message} with the status."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


@dataclass
class _Sentence:
    ids: list[int]
    options: tuple[int, int]  # (beam_size, n_best)
    done: asyncio.Future = field(repr=False)


class Batcher:
    """The sentences of all requests, decoded together: up to max_batch in one onnxruntime run, the
    first waiting at most max_wait_ms for others when the server is under load. Decoding runs in one
    worker thread, so the event loop goes on reading requests meanwhile. fp32 results do not depend on the batch (padding is
    masked), so each reply is what its text translated alone gives; int8's dynamic quantization
    scales by the batch's range, so its results can move with the company a sentence keeps."""

    def __init__(self, translator: Translator, cfg: ServeConfig):
        self.translator, self.cfg = translator, cfg
        self.queue: asyncio.Queue[_Sentence] = asyncio.Queue()
        self.pending = 0  # sentences accepted, not yet decoded
        self.requests = 0  # translate calls accepted, not yet answered
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="decode")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.pool.shutdown(wait=True)

    async def translate(self, texts: list[str], alternatives: int = 0) -> list[list[str]]:
        """-> for each text its translation and then up to `alternatives` different ones."""
        t = self.translator
        prepared = prepare_texts(t.codec, texts, split=True)
        # hypotheses of distinct pieces can read alike: search 1 + 2N to find N distinct alternatives
        width = min(1 + 2 * alternatives, MAX_BEAM)
        options = (width, width)
        loop = asyncio.get_running_loop()
        sentences = {k: _Sentence(ids, options, loop.create_future()) for k, ids in enumerate(prepared.rows)
                     if ids is not None}
        if self.pending + len(sentences) > self.cfg.queue_limit:
            raise RequestError(503, f"the server is busy ({self.pending} sentences waiting): try again in a moment",
                               {"Retry-After": "1"})
        self.pending += len(sentences)
        for sentence in sentences.values():
            self.queue.put_nowait(sentence)
        self.requests += 1
        try:
            results = dict(zip(sentences, await asyncio.gather(*(s.done for s in sentences.values()))))
        finally:
            self.requests -= 1
        texts_out = finish_texts(t.codec, prepared, [results.get(k) for k in range(len(prepared.rows))])
        # the best first, then the different ones in order (dict keeps insertion order)
        return [list(dict.fromkeys(text for text, _ in hyps))[: 1 + alternatives] for hyps in texts_out]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 1  # the last batch's size: how many sentences are likely to come together
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.cfg.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # Under load (the last batch held several sentences) wait up to max_wait_ms for as many
            # again: closed-loop clients answered together come back a few ms apart. One client
            # alone never waits; between batches, whatever arrived during the last one is taken.
            deadline = loop.time() + self.cfg.max_wait_ms / 1000
            while len(batch) < min(last, self.cfg.max_batch):
                wait = deadline - loop.time()
                if wait <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), wait))
                except asyncio.TimeoutError:
                    break
                while len(batch) < self.cfg.max_batch and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
            last = len(batch)
            groups = defaultdict(list)
            for sentence in batch:
                groups[sentence.options].append(sentence)
            for options, sentences in groups.items():
                try:
                    decoded = await loop.run_in_executor(self.pool, self._decode, sentences, options)
                except Exception as e:  # the model failed: the requests get a 500, the server goes on
                    for s in sentences:
                        s.done.set_exception(e)
                else:
                    for s, hyps in zip(sentences, decoded):
                        s.done.set_result(hyps)
            self.pending -= len(batch)

    def _decode(self, sentences: list[_Sentence], options: tuple[int, int]) -> list:
        from runtime.decode import decode_rows

        t, (beam_size, n_best) = self.translator, options
        decoded = decode_rows(t.encoder, t.decoder, {k: s.ids for k, s in enumerate(sentences)}, t.config.decoding,
                              batch_size=len(sentences), beam_size=beam_size, n_best=n_best,
                              length_penalty=t.config.decoding.length_penalty, with_scores=beam_size > 1)
        return [decoded[k] for k in range(len(sentences))]


# ---- reading a request as LibreTranslate does --------------------------------------------------

async def _body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"Invalid request: the body ({int(declared):,} bytes) exceeds the limit ({limit:,} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"Invalid request: the body exceeds the limit ({limit:,} bytes)")
    return bytes(body)


async def read_fields(request, limit: int) -> dict:
    """A JSON body's object; else the form's fields over the query string's (a GET with a body too)."""
    from starlette.requests import Request

    body = await _body(request, limit)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            fields = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise RequestError(400, "Invalid JSON format") from None
        if not isinstance(fields, dict):
            raise RequestError(400, "Invalid JSON format")
        return fields
    fields = dict(request.query_params)
    if kind == "application/x-www-form-urlencoded" or (not kind and body):
        try:
            fields.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise RequestError(400, "Invalid request: the form is not UTF-8") from None
    elif kind == "multipart/form-data":
        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form()
        except Exception:  # python-multipart's errors: a malformed form
            raise RequestError(400, "Invalid request: a malformed form") from None
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    return fields


class Api:
    """The routes: each reads and checks its fields, then hands the texts to the batcher."""

    def __init__(self, translator: Translator, cfg: ServeConfig):
        text = translator.config.text
        self.translator, self.cfg = translator, cfg
        self.source = (cfg.source or text.source_language or "").lower() or None
        self.target = (cfg.target or text.target_language or "").lower() or None
        self.batcher = Batcher(translator, cfg)

    def _check_key(self, fields: dict) -> None:
        if self.cfg.api_keys is not None and fields.get("api_key") not in self.cfg.api_keys:
            raise RequestError(403, "Invalid API key" if fields.get("api_key") else "Please contact the server operator "
                               "to get an API key (api_key is missing)")

    def _language(self, fields: dict, name: str, expected: str | None) -> str:
        value = fields.get(name)
        if value is None or value == "":
            raise RequestError(400, f"Invalid request: missing {name} parameter")
        if not isinstance(value, str):
            raise RequestError(400, f"Invalid request: {name} must be a language code")
        code = value.strip().lower()
        if name == "source" and code == "auto":
            return expected or "auto"
        if expected is not None and code != expected:
            raise RequestError(400, f"{value} is not supported: this server translates {self.source} to {self.target}")
        return code

    async def translate(self, request) -> dict:
        fields = await read_fields(request, self.cfg.body_limit)
        self._check_key(fields)
        q = fields.get("q")
        if q is None or q == "" or q == []:
            raise RequestError(400, "Invalid request: missing q parameter")
        batch = isinstance(q, list)
        texts = q if batch else [q]
        if not all(isinstance(t, str) for t in texts):
            raise RequestError(400, "Invalid request: q must be a text or a list of texts")
        self._language(fields, "source", self.source)
        self._language(fields, "target", self.target)
        text_format = fields.get("format") or "text"
        if text_format not in ("text", "html"):
            raise RequestError(400, f"{text_format} format is not supported (text or html)")
        alternatives = _alternatives(fields.get("alternatives", 0), self.cfg.alternatives_limit)
        for text in texts:
            if len(text) > self.cfg.char_limit:
                raise RequestError(400, f"Invalid request: request ({len(text)}) exceeds text limit ({self.cfg.char_limit})")
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise RequestError(400, "Invalid request: q is not valid Unicode") from None
        if text_format == "html":
            nodes = [text_nodes(t) for t in texts]
            flat = await self.batcher.translate([n for ns in nodes for n in ns])
            it = iter(flat)
            results = [[rebuild(t, [next(it)[0] for _ in ns])] for t, ns in zip(texts, nodes)]
        else:
            results = await self.batcher.translate(texts, alternatives)
        reply = {"translatedText": [r[0] for r in results] if batch else results[0][0]}
        if alternatives:
            alts = [r[1:] for r in results]
            reply["alternatives"] = alts if batch else alts[0]
        if str(fields.get("source", "")).strip().lower() == "auto":
            reply["detectedLanguage"] = {"confidence": 100.0, "language": self.source or "auto"}
        return reply

    async def detect(self, request) -> list:
        """A one-pair model reads one language: it is the answer, whatever the text."""
        fields = await read_fields(request, self.cfg.body_limit)
        self._check_key(fields)
        if not fields.get("q"):
            raise RequestError(400, "Invalid request: missing q parameter")
        return [{"confidence": 100.0, "language": self.source}] if self.source else []

    def languages(self) -> list:
        out = []
        if self.source:
            out.append({"code": self.source, "name": _name(self.source), "targets": [self.target] if self.target else []})
        if self.target and self.target != self.source:
            out.append({"code": self.target, "name": _name(self.target), "targets": []})
        return out

    def settings(self) -> dict:
        """What LibreTranslate's own web page and some clients read first (/frontend/settings)."""
        return {"charLimit": self.cfg.char_limit, "frontendTimeout": 500, "apiKeys": self.cfg.api_keys is not None,
                "keyRequired": self.cfg.api_keys is not None, "suggestions": False, "filesTranslation": False,
                "supportedFilesFormat": [],
                "language": {"source": {"code": self.source, "name": _name(self.source)},
                             "target": {"code": self.target, "name": _name(self.target)}}}


def _name(code: str | None) -> str | None:
    return LANGUAGE_NAMES.get(code, code) if code else code


def _alternatives(value, limit: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise RequestError(400, "Invalid request: alternatives parameter is not a number") from None
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise RequestError(400, "Invalid request: alternatives parameter is not a number")
    if n < 0 or n > limit:
        raise RequestError(400, f"Invalid request: alternatives parameter must be from 0 to {limit}")
    return n


def create_app(translator: Translator, cfg: ServeConfig):
    """The ASGI app: routes, errors as {"error": ...}, and the batcher's life."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    api = Api(translator, cfg)
    page = resources.files("runtime").joinpath("web/index.html").read_text(encoding="utf-8")

    def reply(handler):
        async def endpoint(request):
            try:
                result = handler(request)
                if asyncio.iscoroutine(result):
                    result = await result
            except RequestError as e:
                return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)
            return JSONResponse(result)
        return endpoint

    async def health(request):
        return JSONResponse({"status": "ok", "model": str(translator.model_dir),
                             "requests": api.batcher.requests, "waiting": api.batcher.pending})

    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def server_error(request, exc: Exception):
        return JSONResponse({"error": f"Cannot translate text: {type(exc).__name__}"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        api.batcher.start()
        yield
        await api.batcher.stop()

    routes = [
        Route("/", lambda request: HTMLResponse(page)),
        Route("/translate", reply(api.translate), methods=["POST"]),
        Route("/detect", reply(api.detect), methods=["POST"]),
        Route("/languages", reply(lambda request: api.languages()), methods=["GET", "POST"]),
        Route("/frontend/settings", reply(lambda request: api.settings()), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, Exception: server_error})


def read_api_keys(path) -> frozenset:
    """One key a line (blank lines and # comments skipped); ValueError if there is none."""
    keys = frozenset(line.strip() for line in open(path, encoding="utf-8")
                     if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise ValueError(f"--api-keys {path}: no key in it")
    return keys


def serve(translator: Translator, cfg: ServeConfig, log=print) -> None:
    """Runs until SIGTERM or Ctrl-C: then stops taking requests, answers the ones accepted, returns."""
    import uvicorn

    app = create_app(translator, cfg)
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                                           lifespan="on", timeout_graceful_shutdown=None))
    text = translator.config.text
    languages = f"{cfg.source or text.source_language or '?'} -> {cfg.target or text.target_language or '?'}" \
        + ("" if (cfg.source or text.source_language) else "; languages unknown: --source and --target name them")
    log(f"serving {translator.model_dir} ({languages}) on http://{cfg.host}:{cfg.port} (batches of up to "
        f"{cfg.max_batch} sentences, {cfg.max_wait_ms:g} ms wait); Ctrl-C or SIGTERM stops it")
    # uvicorn stops gracefully on SIGTERM / SIGINT, then re-raises the signal through the handler that was
    # there before it, so that the process dies of it; a stop that answered every accepted request is a
    # success here (exit 0): that handler does nothing
    previous = {sig: signal.signal(sig, lambda *args: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
