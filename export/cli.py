"""`python -m export onnx CHECKPOINT`: parse options, call export_onnx, print the report."""
from __future__ import annotations

import click

from export.graphs import DEFAULT_OPSET
from runtime.commands import require, version_option


@click.group()
@version_option()
def cli():
    """Export a trainer checkpoint to the ONNX model folder the runtime loads.

    \b
    `export` is a shell builtin in bash and zsh: run this as `python -m export ...`
    (or the `seq2seq-export` alias).
    """


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", default="artifacts/onnx", show_default=True, type=click.Path(file_okay=False))
@click.option("--opset", default=DEFAULT_OPSET, show_default=True, type=click.IntRange(14, 21))
@click.option("--force", is_flag=True, help="Replace an existing output folder (only once the new one is complete).")
@click.option("--quantize", type=click.Choice(["int8"]), help="onnxruntime dynamic int8 quantization of both graphs.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="onnx.checker and onnxruntime-vs-PyTorch parity before the folder is written.")
@click.option("--shortlist/--no-shortlist", default=None,
              help="Add the checkpoint's lexical shortlist, or not: each step scores only the target ids it holds "
                   "(faster; translations can differ, see docs/benchmarks.md). Default: added when it is the one "
                   "`trainer fit` builds, the pieces the model writes most often, and fewer than the vocabulary.")
@version_option()
def onnx(checkpoint, out, opset, force, quantize, verify, shortlist):
    """Write encoder.onnx, decoder.onnx, vocabularies and config.json for CHECKPOINT (with a shortlist
    also shortlist.npz and decoder_shortlist.onnx; with per-source lists output_layer.onnx).

    \b
    python -m export onnx artifacts/checkpoint.pth
    python -m export onnx artifacts/checkpoint.pth --out artifacts/onnx-int8 --quantize int8
    """
    require("torch", "onnx")
    from export.folder import ExportError, export_onnx
    from runtime.lock import Busy
    from trainer.checkpoint import CheckpointError

    try:
        report = export_onnx(checkpoint, out, opset=opset, force=force, quantize=quantize, verify=verify,
                             shortlist=shortlist, log=click.echo)
    except (ExportError, CheckpointError, Busy) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:  # e.g. --out in a read-only place or a full disk; the old folder is kept
        raise click.ClickException(f"{getattr(e, 'filename', None) or out}: {e.strerror or e}") from None
    if verify:
        for line in report.lines():
            click.echo(line)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--out", default="artifacts/site", show_default=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing site (only once the new one is complete).")
@version_option()
def web(folder, out, force):
    """Write a static site that translates in the browser with the model FOLDER (no server, no Python).

    \b
    python -m export web artifacts/onnx --out artifacts/site
    python -m http.server -d artifacts/site 8000    # then open http://127.0.0.1:8000/
    """
    from export.web import WebExportError, export_web
    from runtime.lock import Busy

    try:
        export_web(folder, out, force=force)
    except (WebExportError, Busy) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{getattr(e, 'filename', None) or out}: {e.strerror or e}") from None
    click.echo(f"wrote {out}: serve it with `python -m http.server -d {out}` and open http://127.0.0.1:8000/")


if __name__ == "__main__":
    cli()
