"""`trainer fit` and `trainer evaluate`: parse options, call the library, print."""
from __future__ import annotations

import importlib.util

import click

from runtime.cli import version_option

DATA_HELP = ("builtin (default), builtin:test, a .tsv/.txt/.csv file, a PREFIX of PREFIX.SRC/PREFIX.TGT files, "
             "or kaggle[:OWNER/SLUG[/versions/N][:FILE]]")


def require(*modules: str, extra: str = "train") -> None:
    """On an edge install (no torch) say which extra to install, in one line, instead of a traceback."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"this command needs {', '.join(missing)}, which this install lacks (an edge install "
                                   f"translates only): pip install 'seq2seq-edge[{extra}]'")


def _user_errors(fn):
    """Turns the library's user-facing errors into one-line click errors (exit 1, no traceback)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        require("torch")
        from trainer.checkpoint import CheckpointError
        from trainer.data import DataError

        try:
            return fn(*args, **kwargs)
        except (DataError, CheckpointError, ValueError, FileExistsError) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}".lstrip(": ")) from None

    return wrapper


@click.group()
@version_option()
def cli():
    """Train and evaluate the LSTM encoder-decoder translator (Sutskever et al., 2014)."""


@cli.command()
@click.option("--data", default="builtin", show_default=True, help=DATA_HELP)
@click.option("--valid", default=None, help="Validation SOURCE (same forms as --data); else --valid-fraction.")
@click.option("--valid-fraction", default=0.05, show_default=True, type=click.FloatRange(0, 0.5))
@click.option("--max-pairs", type=click.IntRange(1), help="Use only the first N pairs.")
@click.option("--src-col", default="English", show_default=True, help="CSV source column.")
@click.option("--tgt-col", default="French", show_default=True, help="CSV target column.")
@click.option("--src-lang", default="en", show_default=True, help="Source suffix for PREFIX data.")
@click.option("--tgt-lang", default="fr", show_default=True, help="Target suffix for PREFIX data.")
@click.option("--lowercase/--keep-case", default=True, show_default=True)
@click.option("--min-freq", default=1, show_default=True, type=click.IntRange(1))
@click.option("--max-vocab", type=click.IntRange(5), help="Largest vocabulary per side, specials included.")
@click.option("--emb-dim", default=64, show_default=True, type=click.IntRange(1))
@click.option("--hidden-dim", default=512, show_default=True, type=click.IntRange(1))
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--dropout", default=0.2, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--reverse-source/--no-reverse-source", default=True, show_default=True)
@click.option("--max-source-len", default=100, show_default=True, type=click.IntRange(3),
              help="Source ids incl. <sos>/<eos>; longer sentences are truncated.")
@click.option("--epochs", default=15, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-3, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--clip", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--teacher-forcing", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Probability of feeding the gold token; 1.0 takes the fast whole-sequence path.")
@click.option("--patience", default=3, show_default=True, type=click.IntRange(1), help="Early-stopping epochs.")
@click.option("--time-budget", type=click.FloatRange(0, min_open=True),
              help="Stop training after this many seconds (mid-epoch; validation and checkpoint still run).")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--out", default="artifacts", show_default=True, type=click.Path(file_okay=False),
              help="Folder for checkpoint.pth, last.pth, metrics.csv, loss_curve.png.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pth.")
@click.option("--force", is_flag=True, help="Train anew even if --out holds an earlier run's checkpoint (replacing it).")
@version_option()
@_user_errors
def fit(resume, force, **options):
    """Train a translator; the best checkpoint by validation loss goes to OUT/checkpoint.pth.

    \b
    trainer fit                                    # built-in English->French corpus
    trainer fit --data ../shared/data/tatoeba-fra/train.tsv --epochs 5
    trainer fit --data multi30k/train --src-lang de --tgt-lang en
    trainer fit --data kaggle                      # through kagglehub
    """
    from trainer.train import TrainConfig, fit as run_fit

    best = run_fit(TrainConfig(**options), resume=resume, log=click.echo, force=force)
    if best:
        click.echo(f"best epoch {best['epoch']}: valid loss {best['valid_loss']:.4f}, ppl {best['valid_ppl']:.2f} "
                   f"-> {options['out']}/checkpoint.pth")


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", default="builtin:test", show_default=True, help=DATA_HELP)
@click.option("--max-pairs", type=click.IntRange(1))
@click.option("--src-col", default="English", show_default=True)
@click.option("--tgt-col", default="French", show_default=True)
@click.option("--src-lang", default="en", show_default=True)
@click.option("--tgt-lang", default="fr", show_default=True)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--beam", default=1, show_default=True, type=click.IntRange(1), help="Beam size (1 = greedy).")
@click.option("--length-penalty", default=0.0, show_default=True, type=click.FloatRange(0))
@click.option("--samples", default=5, show_default=True, type=click.IntRange(0))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@version_option()
@_user_errors
def evaluate(checkpoint, data, max_pairs, src_col, tgt_col, src_lang, tgt_lang, batch_size, beam, length_penalty,
             samples, device):
    """Loss, perplexity, BLEU and chrF of CHECKPOINT on a corpus, plus sample translations.

    \b
    trainer evaluate artifacts/checkpoint.pth --data builtin:test
    """
    from trainer.checkpoint import load_checkpoint
    from trainer.data import DataOptions
    from trainer.evaluate import evaluate as run_evaluate
    from trainer.train import pick_device

    ckpt = load_checkpoint(checkpoint)
    opts = DataOptions(src_col, tgt_col, src_lang, tgt_lang, max_pairs)
    r = run_evaluate(ckpt, data, opts, batch_size, str(pick_device(device)), samples, beam, length_penalty)
    click.echo(f"{data}: {r.n} pairs, beam {beam}")
    click.echo(f"loss {r.loss:.4f}  perplexity {r.ppl:.2f}")
    note = "  (case-insensitive: the model lower-cases)" if r.case_insensitive else ""
    click.echo(f"BLEU = {r.bleu:.2f}  chrF = {r.chrf:.2f}{note}")
    for src, ref, hyp in r.samples:
        click.echo(f"\n  src: {src}\n  ref: {ref}\n  hyp: {hyp}")


if __name__ == "__main__":
    cli()
