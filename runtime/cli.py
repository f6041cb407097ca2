"""`runtime translate` and `runtime info`: parse options, call the library, print."""
from __future__ import annotations

import json
import sys
import time
import warnings

import click

MODEL_ENV = "SEQ2SEQ_MODEL"


def _load(model: str, device: str, threads: int | None):
    from runtime.model_format import ModelFolderError
    from runtime.sessions import DeviceError
    from runtime.translator import Translator

    try:
        translator = Translator(model, device=device, threads=threads)
    except (ModelFolderError, DeviceError) as e:
        raise click.ClickException(str(e)) from None
    if translator.notice:
        click.echo(translator.notice, err=True)
    return translator


def _lines(stream, path: str):
    """Yields stripped lines; invalid UTF-8 is an error naming the line."""
    for n, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise click.ClickException(f"{path}: line {n} is not valid UTF-8") from None


def _chunks(iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@click.group()
def cli():
    """Translate with an exported model folder on onnxruntime (no PyTorch needed)."""
    warnings.showwarning = lambda msg, *a, **k: click.echo(f"warning: {msg}", err=True)


@cli.command()
@click.argument("texts", nargs=-1)
@click.option("--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read sentences from FILE (one per line; - for stdin) instead of arguments.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
@click.option("--model", default="artifacts/onnx", show_default=True, envvar=MODEL_ENV, show_envvar=True,
              type=click.Path(file_okay=False), help="Model folder written by `python -m export onnx`.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--max-len", type=click.IntRange(1), help="Cap on target tokens per sentence (default: from config).")
@click.option("--threads", type=click.IntRange(1), help="onnxruntime intra-op threads (default: all cores).")
@click.option("--beam", type=click.IntRange(1), help="Beam size; 1 = greedy (default: the folder's config, 1).")
@click.option("--n-best", default=1, show_default=True, type=click.IntRange(1), help="Hypotheses per sentence (<= --beam).")
@click.option("--length-penalty", type=click.FloatRange(0), help="alpha: scores are log p / length**alpha (default 0).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: translations (with scores) and timings.")
def translate(texts, input_path, output_path, model, device, batch_size, max_len, threads, beam, n_best, length_penalty,
              as_json):
    """Translate TEXTS (or --input FILE) to the model's target language.

    \b
    runtime translate "hello" "thank you"
    runtime translate --input sentences.txt --output french.txt --batch-size 64
    runtime translate "the cat is black" --beam 5 --n-best 3
    """
    if beam is not None and n_best > beam:
        raise click.UsageError(f"--n-best {n_best} is larger than --beam {beam}")
    if texts and input_path:
        raise click.UsageError("give sentences as arguments or --input, not both")
    if not texts and not input_path:
        raise click.UsageError('nothing to translate: give sentences, e.g. runtime translate "hello", or --input FILE')
    start = time.perf_counter()
    translator = _load(model, device, threads)
    load_s = time.perf_counter() - start
    if input_path:
        stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")
        source = _lines(stream, input_path)
    else:
        source = iter(texts)
    out = open(output_path, "w", encoding="utf-8") if output_path else sys.stdout
    # read and write a few batches at a time so a large file streams
    chunk = batch_size * 8
    progress = None
    if input_path and input_path != "-" and sys.stderr.isatty() and not as_json:
        with open(input_path, "rb") as f:  # a cheap pass for the bar's length
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        progress = click.progressbar(length=total, label="translating", file=sys.stderr)
    records, n = [], 0
    want_scores = as_json or n_best > 1  # plain greedy output takes the short greedy loop
    translate_start = time.perf_counter()
    try:
        for batch in _chunks(source, chunk):
            try:
                results = translator.translate(batch, max_len=max_len, batch_size=batch_size, beam_size=beam,
                                               n_best=n_best, length_penalty=length_penalty, return_scores=want_scores)
            except ValueError as e:
                raise click.UsageError(str(e)) from None
            for text, result in zip(batch, results):  # result: str, or a list of Hypothesis with scores
                if as_json:
                    records.append({"source": text, "translation": result[0].text,
                                    "hypotheses": [{"text": h.text, "score": round(h.score, 5)} for h in result]})
                elif want_scores:
                    for h in result:
                        out.write(f"{h.score:.4f}\t{h.text}\n")
                else:
                    out.write(result + "\n")
            n += len(batch)
            if progress:
                progress.update(len(batch))
    finally:
        if progress:
            progress.render_finish()
    elapsed = time.perf_counter() - translate_start
    if as_json:
        out.write(json.dumps({"translations": records, "device": translator.device, "beam": beam or translator.config.decoding.beam_size,
                              "timings": {"load_s": round(load_s, 4), "translate_s": round(elapsed, 4),
                                          "sentences": n, "ms_per_sentence": round(1000 * elapsed / max(n, 1), 3)}},
                             ensure_ascii=False) + "\n")
    if output_path:
        out.close()


@cli.command()
@click.argument("model_dir", default="artifacts/onnx", envvar=MODEL_ENV, type=click.Path(file_okay=False))
def info(model_dir):
    """Describe a model folder: format, sizes, vocabularies, files, providers."""
    from pathlib import Path

    from runtime.model_format import ModelFolderError, load_config
    from runtime.sessions import DeviceError, available_providers

    try:
        cfg = load_config(model_dir)
        providers = available_providers()
    except (ModelFolderError, DeviceError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"model folder      {model_dir}")
    click.echo(f"format version    {cfg.format_version}  (opset {cfg.opset}, {cfg.quantization or 'fp32'})")
    click.echo(f"model             {cfg.layers} layers x {cfg.hidden_dim} hidden, embeddings {cfg.emb_dim}, "
               f"reverse source: {cfg.reverse_source}")
    click.echo(f"vocabularies      source {cfg.src_vocab_size}, target {cfg.tgt_vocab_size}")
    click.echo(f"decoding          max source {cfg.max_source_len} ids; target <= {cfg.decoding.max_len_a:g} x source "
               f"+ {cfg.decoding.max_len_b} (cap {cfg.decoding.max_len})")
    for name in sorted(cfg.files):
        click.echo(f"  {name:<24} {Path(model_dir, name).stat().st_size / 1e6:9.3f} MB  sha256 {cfg.files[name][:12]}")
    click.echo(f"producer          {', '.join(f'{k} {v}' for k, v in cfg.producer.items() if k != 'checkpoint_metrics')}")
    click.echo(f"providers         {', '.join(providers)}")


if __name__ == "__main__":
    cli()
