"""`runtime translate` and `runtime info`: parse options, call the library, print."""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
from pathlib import Path

import click

from runtime.commands import one_line_warnings, require, version_option
from runtime.model_format import MAX_BEAM
from runtime.serve_config import ServeConfig

S = ServeConfig()  # serve's defaults, from their one place

MODEL_ENV = "SEQ2SEQ_MODEL"
SHORTLIST_OPTION = click.option(
    "--shortlist/--no-shortlist", default=True, show_default=True,
    help="With a folder that has a shortlist (export adds the default one): score only its target ids (a "
         "fixed list, or those the batch's source ids may need). --no-shortlist scores the whole vocabulary.")


def _load(model: str, device: str, threads: int | None, spinning: bool = True, shortlist: bool = True):
    from runtime.background import Background
    from runtime.model_format import ModelFolderError, open_folder

    # the folder is read and hashed (hashlib and file reads release the GIL) while onnxruntime and
    # numpy are imported: ~50 ms of a ~350 ms cold start (docs/benchmarks.md, "Cold start")
    opened = Background(open_folder, model, None, shortlist)  # the files this Translator reads
    try:
        from runtime.sessions import DeviceError, share_thread_pool, shared_pool_threads
        from runtime.translator import Translator, check_threads
    finally:
        opened.wait()

    try:
        if spinning and _owns_process and shared_pool_threads() is None:  # one pool for the program's
            share_thread_pool(check_threads(threads)[0])  # sessions (the server's workers don't spin)
        translator = Translator(model, device=device, threads=threads, spinning=spinning, shortlist=shortlist,
                                opened=opened.result())
    except (ModelFolderError, DeviceError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if translator.notice:
        click.echo(translator.notice, err=True)
    return translator


def _lines(stream, name: str):
    """Yields lines without their line ending; invalid UTF-8 is an error naming the line."""
    for n, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise click.ClickException(f"{name}: line {n} is not valid UTF-8") from None


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _open_input(input_path: str | None, texts: tuple):
    """-> (binary stream or None, display name). Checked before the model loads."""
    if input_path is None and not texts:
        if sys.stdin is not None and sys.stdin.isatty():
            raise click.UsageError('nothing to translate: give sentences, e.g. runtime translate "hello", '
                                   "--input FILE, or pipe lines into it")
        input_path = "-"  # piped stdin is read without --input -
    if input_path is None:
        return None, None
    if input_path == "-":
        if sys.stdin is None:
            raise click.ClickException("stdin is closed: nothing to translate")
        return sys.stdin.buffer, "stdin"
    try:
        return open(input_path, "rb"), input_path
    except IsADirectoryError:
        raise click.ClickException(f"--input {input_path}: is a folder, not a file") from None
    except OSError as e:
        raise click.ClickException(f"--input {input_path}: {e.strerror}") from None


def _check_output(output_path: str | None, input_path: str | None, stream) -> None:
    if output_path is None:
        return
    out = Path(output_path)
    if out.is_dir():
        raise click.ClickException(f"--output {output_path}: is a folder, not a file")
    if not out.parent.is_dir():
        raise click.ClickException(f"--output {output_path}: folder {out.parent} does not exist")
    if not out.exists():
        return
    if input_path not in (None, "-") and os.path.samefile(out, input_path):
        raise click.ClickException(f"--output {output_path} is the --input file: write to another file "
                                   "(translating in place would replace the input)")
    if stream is not None and input_path in (None, "-") and _same_file(out, stream):
        raise click.ClickException(f"--output {output_path} is standard input: write to another file "
                                   "(translating in place would replace the input)")


def _same_file(path: Path, stream) -> bool:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        a, b = os.stat(path), os.fstat(stream.fileno())
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    return False


def _arguments(texts: tuple) -> tuple:
    """Sentences given as arguments; bytes that were not UTF-8 (decoded with surrogateescape) are an error."""
    for n, text in enumerate(texts, 1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise click.ClickException(f"argument {n} is not valid UTF-8") from None
    return texts


def _progress(stream, name: str | None, input_path: str | None, as_json: bool):
    """A progress bar on a terminal, for a file given with --input (a cheap pass counts its lines)."""
    if stream is None or name == "stdin" or not sys.stderr.isatty() or as_json:
        return None
    with open(input_path, "rb") as f:
        total = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return click.progressbar(length=total, label="translating", file=sys.stderr)


def _write(out, results, sources, as_json: bool, want_scores: bool, progress) -> None:
    """One line per input line; with scores index<TAB>score<TAB>text lines; with --json one object each."""
    for index, result in enumerate(results):  # result: str, or a list of Hypothesis with scores
        if as_json:
            out.write(json.dumps({"index": index, "source": next(sources), "translation": result[0].text,
                                  "hypotheses": [{"text": h.text, "score": round(h.score, 5)} for h in result]},
                                 ensure_ascii=False) + "\n")
        elif want_scores:
            out.writelines(f"{index}\t{h.score:.4f}\t{h.text}\n" for h in result)
        else:
            out.write(result + "\n")
        if progress:
            progress.update(1)


@contextlib.contextmanager
def _output(output_path: str | None):
    """--output FILE is written under a temporary name and renamed on success (an existing FILE
    stays as it was if anything fails); without it, stdout."""
    if output_path is None:
        yield sys.stdout
        sys.stdout.flush()  # inside the caller's error handling: a full disk or closed pipe shows here
        return
    from runtime.atomic import atomic_write  # only here: its imports cost ~10 ms of a cold start

    with atomic_write(output_path) as f:
        yield f


@contextlib.contextmanager
def _os_errors(output_path: str | None):
    """Output that can't be written -> one line and exit 1 (never a traceback)."""
    try:
        yield
    except BrokenPipeError:
        _silence_stdout()
        raise click.ClickException("stdout was closed before all translations were written") from None
    except OSError as e:
        if output_path is None:
            _silence_stdout()
        where = f"--output {output_path}" if output_path else "stdout"
        raise click.ClickException(f"{where}: {e.strerror or e}") from None


def _silence_stdout() -> None:
    # Python flushes stdout again at exit: point it at /dev/null so that flush can't fail too
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# set by main(): the `runtime` program owns its process, so its sessions may share one thread pool
# (runtime.share_thread_pool, a setting of the whole process); the click group called from other
# Python code (a test's CliRunner, a program of yours) leaves the process's onnxruntime as it is
_owns_process = False


def main() -> None:
    """The `runtime` program: the console script and `python -m runtime`."""
    global _owns_process
    _owns_process = True
    # numpy's OpenBLAS starts a thread per core at import, which took a core from the folder's
    # hashing and the imports (0.289 -> 0.254 s cold start, docs/benchmarks.md); the runtime
    # multiplies nothing with it
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        cli(prog_name="runtime")  # click ends it with SystemExit, whatever happened
    except SystemExit as e:
        _exit_now(e.code)


def _exit_now(code) -> None:
    """Ends the program without Python's teardown, which freed onnxruntime's sessions and the
    model's memory object by object: 40 ms of a 0.29 s `runtime translate "hello"` (docs/benchmarks.md,
    cold start). What teardown would still do for us is done first: the atexit functions (logging's
    flush among them) and the flush of stdout and stderr; the rest the OS reclaims at once."""
    import atexit

    if isinstance(code, str):  # sys.exit("message"), as Python itself would report it
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: already reported, or nobody to report it to
            code = code or 1
    os._exit(code or 0)


@click.group()
@version_option()
def cli():
    """Translate with an exported model folder on onnxruntime (no PyTorch needed)."""
    one_line_warnings()


@cli.command()
@click.argument("texts", nargs=-1)
@click.option("--input", "input_path", type=str, metavar="FILE",
              help="Read sentences from FILE, one per line (- for stdin; piped stdin is read by default).")
@click.option("--output", "output_path", type=str, metavar="FILE",
              help="Write here instead of stdout (atomically: an existing FILE is replaced only on success).")
@click.option("--model", default="artifacts/onnx", show_default=True, envvar=MODEL_ENV, show_envvar=True,
              help="Model folder written by `python -m export onnx`.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--max-len", type=click.IntRange(1), help="Cap on target tokens per sentence (default: from config).")
@click.option("--threads", type=click.IntRange(1), help="onnxruntime intra-op threads (default: all cores; capped at them).")
@click.option("--beam", type=click.IntRange(1, MAX_BEAM),
              help="Beam size; 1 = greedy (default: the folder's config, or --n-best).")
@click.option("--n-best", default=1, show_default=True, type=click.IntRange(1, MAX_BEAM),
              help="Hypotheses per sentence (<= --beam; alone it implies --beam N-BEST).")
@click.option("--length-penalty", type=click.FloatRange(0), callback=_finite,
              help="alpha: scores are log p / length**alpha (default: the folder's config, 0 as exported).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one object per input line, with scores.")
@click.option("--split/--no-split", default=True, show_default=True,
              help="Split each line into sentences (translated together, joined with the original spacing); "
                   "--no-split translates each line whole.")
@SHORTLIST_OPTION
@version_option()
def translate(texts, input_path, output_path, model, device, batch_size, max_len, threads, beam, n_best, length_penalty,
              as_json, split, shortlist):
    """Translate TEXTS (or --input FILE, or lines piped to stdin) to the model's target language.

    \b
    runtime translate "hello" "thank you"
    runtime translate --input sentences.txt --output french.txt --batch-size 64
    cat sentences.txt | runtime translate
    runtime translate "the cat is black" --beam 5 --n-best 3    # index<TAB>score<TAB>hypothesis
    """
    # everything about the user's own input is checked before the model loads
    if beam is not None and n_best > beam:
        raise click.UsageError(f"--n-best {n_best} is larger than --beam {beam}")
    if texts and input_path:
        raise click.UsageError("give sentences as arguments or --input, not both")
    stream, name = _open_input(input_path, texts)
    _check_output(output_path, input_path, stream)
    source = _lines(stream, name) if stream is not None else iter(_arguments(texts))
    progress = _progress(stream, name, input_path, as_json)
    want_scores = as_json or n_best > 1  # plain greedy output takes the short greedy loop
    with _os_errors(output_path), _output(output_path) as out:
        translator = _load(model, device, threads, shortlist=shortlist)
        sources = None
        if as_json:  # each record names its source line: keep a copy of the lines as they stream by
            source, sources = itertools.tee(source)
        results = translator.translate_lines(source, chunk_size=batch_size * 8, max_len=max_len, batch_size=batch_size,
                                             beam_size=beam, n_best=n_best, length_penalty=length_penalty,
                                             return_scores=want_scores, split_sentences=split)
        try:
            _write(out, results, sources, as_json, want_scores, progress)
        except ValueError as e:  # the library's own range checks
            raise click.UsageError(str(e)) from None
        finally:
            if progress:
                progress.render_finish()
            if stream is not None and name != "stdin":
                stream.close()


@cli.command()
@click.option("--model", default="artifacts/onnx", show_default=True, envvar=MODEL_ENV, show_envvar=True,
              help="Model folder written by `python -m export onnx`.")
@click.option("--host", default=S.host, show_default=True, help="Address to listen on (this machine only by default).")
@click.option("--port", default=S.port, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-batch", default=S.max_batch, show_default=True, type=click.IntRange(1),
              help="Sentences (from all requests) in one onnxruntime run.")
@click.option("--max-wait-ms", default=S.max_wait_ms, show_default=True, type=click.FloatRange(0, 1000),
              help="Under load, how long the first sentence of a batch waits for others.")
@click.option("--char-limit", default=S.char_limit, show_default=True, type=click.IntRange(1),
              help="Characters per text.")
@click.option("--queue-limit", default=S.queue_limit, show_default=True, type=click.IntRange(1),
              help="Sentences waiting; beyond, requests get 503 with Retry-After.")
@click.option("--api-keys", "api_keys_path", metavar="FILE", help="Accept only requests with one of these keys (one a line).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--threads", type=click.IntRange(1), help="onnxruntime intra-op threads (default: all cores; capped at them).")
@click.option("--source", help="Source language code, for a model folder that has none.")
@click.option("--target", help="Target language code, likewise.")
@SHORTLIST_OPTION
@version_option()
def serve(model, api_keys_path, device, threads, shortlist, **options):
    """Serve the model over HTTP with LibreTranslate's API (POST /translate, GET /languages,
    POST /detect, GET /health) and a page at /. Needs pip install 'seq2seq-edge[serve]'.

    \b
    runtime serve --model artifacts/onnx
    curl -s localhost:5000/translate -H 'Content-Type: application/json' \\
         -d '{"q": "Where is the station?", "source": "en", "target": "fr"}'
    """
    require("starlette", "uvicorn", "multipart", extra="serve")
    from runtime.serve import read_api_keys, serve as run_server

    try:
        api_keys = read_api_keys(api_keys_path) if api_keys_path else None
    except OSError as e:
        raise click.ClickException(f"--api-keys {api_keys_path}: {e.strerror}") from None
    except UnicodeDecodeError:  # (a ValueError too: first)
        raise click.ClickException(f"--api-keys {api_keys_path}: not a UTF-8 text file") from None
    except ValueError as e:  # read_api_keys: no key in it
        raise click.ClickException(str(e)) from None
    # the event loop reads requests on the cores decoding uses: workers must not spin on them
    translator = _load(model, device, threads, spinning=False, shortlist=shortlist)
    run_server(translator, ServeConfig(api_keys=api_keys, **options), log=lambda line: click.echo(line, err=True))


@cli.command()
@click.argument("model_dir", default="artifacts/onnx", envvar=MODEL_ENV)
@version_option()
def info(model_dir):
    """Describe a model folder: format, sizes, vocabularies, files, providers."""
    from runtime.model_format import ModelFolderError, fixed_shortlist, load_tokenizer, open_folder
    from runtime.sessions import DeviceError, available_providers

    try:
        cfg, data = open_folder(model_dir)
        tokenizer = load_tokenizer(Path(model_dir), cfg, data)
        providers = available_providers()
    except (ModelFolderError, DeviceError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"model folder      {model_dir}")
    click.echo(f"format version    {cfg.format_version}  (opset {cfg.opset}, {cfg.quantization or 'fp32'})")
    click.echo(f"model             {cfg.layers} layers x {cfg.hidden_dim} hidden, embeddings {cfg.emb_dim}, "
               f"reverse source: {cfg.reverse_source}")
    kind = "SentencePiece subwords" if tokenizer.kind == "sentencepiece" else "words"
    case = "lower-cased" if tokenizer.lowercase else "cased"
    click.echo(f"vocabularies      {kind} ({case}): source {cfg.src_vocab_size}, target {cfg.tgt_vocab_size}")
    click.echo(f"decoder           attention: {cfg.attention}")
    if fixed_shortlist(cfg):
        click.echo(f"shortlist         fixed: {cfg.shortlist['frequent']} frequent target ids and the specials, "
                   "for every batch (--no-shortlist: the whole vocabulary)")
    elif cfg.shortlist:
        click.echo(f"shortlist         {cfg.shortlist['frequent']} frequent target ids + {cfg.shortlist['per_source']} "
                   "per source id")
    languages = f"{cfg.text.source_language or '?'} -> {cfg.text.target_language or '?'}"
    casing = "ALL CAPS and Title Case read as sentence case" if cfg.text.restore_case else "read as typed"
    click.echo(f"text              {languages}; {casing}")
    click.echo(f"decoding          max source {cfg.max_source_len} ids; target <= {cfg.decoding.max_len_a:g} x source "
               f"+ {cfg.decoding.max_len_b} (cap {cfg.decoding.max_len})")
    for name in sorted(cfg.files):
        click.echo(f"  {name:<30} {Path(model_dir, name).stat().st_size / 1e6:9.3f} MB  sha256 {cfg.files[name][:12]}")
    click.echo(f"producer          {', '.join(f'{k} {v}' for k, v in cfg.producer.items() if k != 'checkpoint_metrics')}")
    click.echo(f"providers         {', '.join(providers)}")


if __name__ == "__main__":
    cli()
