"""`trainer fit` and `trainer evaluate`: parse options, call the library, print."""
from __future__ import annotations

import os
import sys

import click
from click.core import ParameterSource

from runtime.commands import one_line_warnings, require, version_option
from trainer.config import AugmentConfig, DataConfig, EvalConfig, ModelConfig, TrainConfig
from trainer.shortlist import ShortlistConfig

D, M, T, E = DataConfig(), ModelConfig(), TrainConfig(), EvalConfig()  # the defaults, from their one place
SL = ShortlistConfig()
EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
AUGMENT_DEFAULT = ",".join(f"{k}={v:g}" for k, v in vars(T.augment).items())


def _augment(ctx, param, value):
    try:
        return AugmentConfig.parse(value) if value is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix("--augment: ")) from None

DATA_HELP = ("builtin, builtin:test, a .tsv/.txt/.csv file, a PREFIX of PREFIX.SRC/PREFIX.TGT files, "
             "or kaggle[:OWNER/SLUG[/versions/N][:FILE]]")


def _user_errors(fn):
    """Turns the library's user-facing errors into one-line click errors (exit 1, no traceback)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        require("torch")
        from runtime.lock import Busy
        from trainer.checkpoint import CheckpointError
        from trainer.data import DataError
        from trainer.distributed import DistributedError

        # under torchrun, every process meets the same bad input (RANK itself is checked with the others)
        rank = int(os.environ.get("RANK", "0")) if os.environ.get("RANK", "0").isdigit() else 0
        try:
            return fn(*args, **kwargs)
        except DistributedError as e:
            raise click.ClickException(f"process {rank}: {e}") from None
        except (DataError, CheckpointError, ValueError, FileExistsError, OSError, Busy) as e:
            if isinstance(e, OSError) and not isinstance(e, FileExistsError):
                e = f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}".lstrip(": ")
            if rank:
                sys.exit(1)  # rank 0 says it once
            raise click.ClickException(str(e)) from None

    return wrapper


@click.group()
@version_option()
def cli():
    """Train and evaluate the LSTM encoder-decoder translator (Sutskever et al., 2014)."""
    one_line_warnings()


@cli.command()
@click.option("--data", default=D.source, show_default=True, help=DATA_HELP)
@click.option("--valid", default=None, help="Validation SOURCE (same forms as --data); else --valid-fraction.")
@click.option("--valid-fraction", default=D.valid_fraction, show_default=True, type=click.FloatRange(0, 0.5))
@click.option("--max-pairs", type=click.IntRange(1), help="Use only the first N pairs.")
@click.option("--src-col", default=D.src_col, show_default=True, help="CSV source column.")
@click.option("--tgt-col", default=D.tgt_col, show_default=True, help="CSV target column.")
@click.option("--src-lang", default=D.src_lang, show_default=True,
              help="Source language code: the suffix of PREFIX data, and the language the model folder declares.")
@click.option("--tgt-lang", default=D.tgt_lang, show_default=True, help="Target language code (likewise).")
@click.option("--vocab", default=D.vocab, show_default=True, type=click.Choice(["sentencepiece", "word"]),
              help="SentencePiece subwords trained on the training split (cased, open vocabulary), or whole words.")
@click.option("--vocab-size", default=D.vocab_size, show_default=True, type=click.IntRange(16),
              help="sentencepiece: pieces per side, specials included (a small corpus may give fewer).")
@click.option("--subword-model", default=D.subword_model, show_default=True, type=click.Choice(["unigram", "bpe"]),
              help="sentencepiece: the segmentation algorithm.")
@click.option("--lowercase/--keep-case", default=D.lowercase,
              help="Lower-case the text  [default: word vocabulary lower-cases, sentencepiece keeps case]")
@click.option("--restore-case/--keep-input-case", "restore_case", default=D.restore_case, show_default=True,
              help="Read ALL CAPS and Title Case sources as sentence case and give the output their casing back "
                   "(here and in the runtime alike); --keep-input-case reads text as typed.")
@click.option("--augment", callback=_augment, metavar="NAME=RATE,...",
              help=f"Rates of the source modifiers, drawn afresh each epoch (others keep their default) "
                   f"[default: {AUGMENT_DEFAULT}]")
@click.option("--no-augment", is_flag=True, help="Train on the sources as they are written.")
@click.option("--min-freq", default=D.min_freq, show_default=True, type=click.IntRange(1),
              help="word: drop tokens seen fewer times in the training split.")
@click.option("--max-vocab", type=click.IntRange(5), help="word: largest vocabulary per side, specials included.")
@click.option("--emb-dim", default=M.emb_dim, show_default=True, type=click.IntRange(1))
@click.option("--hidden-dim", default=M.hidden_dim, show_default=True, type=click.IntRange(1))
@click.option("--layers", default=M.layers, show_default=True, type=click.IntRange(1))
@click.option("--dropout", default=M.dropout, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--attention", default=M.attention, show_default=True, type=click.Choice(["luong", "none"]),
              help="luong: global attention with input feeding; none: the paper's model.")
@click.option("--reverse-source/--no-reverse-source", default=M.reverse_source, show_default=True)
@click.option("--max-source-len", default=M.max_source_len, show_default=True, type=click.IntRange(3),
              help="Source ids incl. <sos>/<eos>: longer training pairs are skipped, longer input is cut to fit.")
@click.option("--max-target-len", default=D.max_target_len, show_default=True, type=click.IntRange(2),
              help="Target tokens incl. <eos>: longer training pairs are skipped (counted in one warning).")
@click.option("--epochs", default=T.epochs, show_default=True, type=click.IntRange(1))
@click.option("--batch-tokens", default=T.batch_tokens, show_default=True, type=click.IntRange(0),
              help="Batches by size: at most N padded source ids per step, over all processes together "
                   "(torchrun splits each batch); 0: --batch-size sentences per step instead.")
@click.option("--batch-size", default=T.batch_size, show_default=True, type=click.IntRange(1),
              help="Sentences per step when --batch-tokens is 0; given alone, it sets --batch-tokens 0.")
@click.option("--lr", default=T.lr, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Multiply the learning rate by this after each epoch whose validation loss is not a new best "
                   "(torch's ReduceLROnPlateau, patience 0).")
@click.option("--label-smoothing", default=T.label_smoothing, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--clip", default=T.clip, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--teacher-forcing", default=T.teacher_forcing, show_default=True, type=click.FloatRange(0, 1),
              help="Probability of feeding the gold token; 1.0 takes the fast whole-sequence path.")
@click.option("--patience", default=T.patience, show_default=True, type=click.IntRange(1), help="Early-stopping epochs.")
@click.option("--time-budget", type=click.FloatRange(0, min_open=True),
              help="Stop training after this many seconds (mid-epoch; validation and checkpoint still run).")
@click.option("--seed", default=T.seed, show_default=True)
@click.option("--device", default=T.device, show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--out", default=T.out, show_default=True, type=click.Path(file_okay=False),
              help="Folder for checkpoint.pth, last.pth, metrics.csv, loss_curve.png.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Where token caches of the corpora are kept and reused (default: OUT/cache).")
@click.option("--shortlist/--no-shortlist", default=T.shortlist, show_default=True,
              help="Once training is done, decode the training sources and keep in the checkpoint the target pieces "
                   "the model writes most often: the export's default shortlist (~45 s for 70,000 sentences).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pth (with any number of processes).")
@click.option("--force", is_flag=True, help="Train anew even if --out holds an earlier run's checkpoint (replacing it).")
@version_option()
@_user_errors
def fit(resume, force, no_augment, **options):
    """Train a translator; the best checkpoint by validation loss goes to OUT/checkpoint.pth.

    \b
    trainer fit                                    # built-in English->French corpus
    trainer fit --data ../shared/data/tatoeba-fra/train.tsv --epochs 5
    trainer fit --data multi30k/train --src-lang de --tgt-lang en
    trainer fit --data kaggle                      # through kagglehub
    torchrun --standalone --nproc-per-node 2 -m trainer fit ...   # DistributedDataParallel
    """
    from trainer.train import fit as run_fit

    ctx = click.get_current_context()
    size_alone = (ctx.get_parameter_source("batch_size") is not ParameterSource.DEFAULT
                  and ctx.get_parameter_source("batch_tokens") is ParameterSource.DEFAULT)
    if size_alone:  # sentence batches, as --batch-size meant before batches by size were the default
        options["batch_tokens"] = 0
    if no_augment and options["augment"] is not None:
        raise click.UsageError("give --augment or --no-augment, not both")
    if no_augment:
        options["augment"] = AugmentConfig.off()
    given = frozenset(name for name in options if ctx.get_parameter_source(name) in EXPLICIT)
    if no_augment:
        given |= {"augment"}
    best = run_fit(TrainConfig.from_flat(**options), resume=resume, log=click.echo, force=force, given=given)
    if best:
        click.echo(f"best epoch {best['epoch']}: valid loss {best['valid_loss']:.4f}, ppl {best['valid_ppl']:.2f} "
                   f"-> {options['out']}/checkpoint.pth")


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", default=E.data, show_default=True, help=DATA_HELP)
@click.option("--max-pairs", type=click.IntRange(1))
@click.option("--src-col", default=D.src_col, show_default=True)
@click.option("--tgt-col", default=D.tgt_col, show_default=True)
@click.option("--src-lang", default=D.src_lang, show_default=True)
@click.option("--tgt-lang", default=D.tgt_lang, show_default=True)
@click.option("--batch-size", default=E.batch_size, show_default=True, type=click.IntRange(1))
@click.option("--beam", "beam_size", default=E.beam_size, show_default=True, type=click.IntRange(1),
              help="Beam size (1 = greedy).")
@click.option("--length-penalty", default=E.length_penalty, show_default=True, type=click.FloatRange(0))
@click.option("--samples", default=E.samples, show_default=True, type=click.IntRange(0))
@click.option("--device", default=E.device, show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@version_option()
@_user_errors
def evaluate(checkpoint, max_pairs, src_col, tgt_col, src_lang, tgt_lang, device, **options):
    """Loss, perplexity, BLEU and chrF of CHECKPOINT on a corpus, plus sample translations.

    \b
    trainer evaluate artifacts/checkpoint.pth --data builtin:test
    """
    from trainer.checkpoint import load_checkpoint
    from trainer.data import DataOptions
    from trainer.distributed import pick_device
    from trainer.evaluate import evaluate as run_evaluate

    ckpt = load_checkpoint(checkpoint)
    cfg = EvalConfig(device=str(pick_device(device)), **options)
    r = run_evaluate(ckpt, cfg, DataOptions(src_col, tgt_col, src_lang, tgt_lang, max_pairs))
    click.echo(f"{cfg.data}: {r.n} pairs, beam {cfg.beam_size}")
    click.echo(f"loss {r.loss:.4f}  perplexity {r.ppl:.2f}")
    click.echo(f"BLEU = {r.bleu:.2f}  chrF = {r.chrf:.2f}  (case-insensitive)")
    note = "  (the model lower-cases)" if r.case_insensitive else ""
    click.echo(f"cased BLEU = {r.bleu_cased:.2f}  chrF = {r.chrf_cased:.2f}{note}")
    for src, ref, hyp in r.samples:
        click.echo(f"\n  src: {src}\n  ref: {ref}\n  hyp: {hyp}")


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--frequent", default=SL.frequent, show_default=True, type=click.IntRange(0),
              help="The most frequent target ids, always candidates.")
@click.option("--per-source", default=SL.per_source, show_default=True, type=click.IntRange(0),
              help="Target ids kept for each source id.")
@click.option("--from-model/--from-targets", default=SL.from_model, show_default=True,
              help="Count the model's own greedy output on the training sources (decodes them all: a minute for "
                   "70,000 sentences), so the list holds what the model writes; or the training targets.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Token cache (default: the run's).")
@version_option()
@_user_errors
def shortlist(checkpoint, frequent, per_source, from_model, cache_dir):
    """Build CHECKPOINT's lexical shortlist from its training data again and save it into the
    checkpoint (`trainer fit` builds one with the defaults: a fixed list, no per-source lists, of what
    the model writes; `export onnx` adds that kind unasked, any other with --shortlist).

    \b
    trainer shortlist artifacts/checkpoint.pth --frequent 6000
    trainer shortlist artifacts/checkpoint.pth --frequent 2000 --per-source 100 --from-targets
    """
    from trainer.shortlist import ShortlistConfig, add_shortlist

    sizes = add_shortlist(checkpoint, ShortlistConfig(frequent, per_source, from_model), cache_dir)
    counted = "; counted over the model's own output" if from_model else ""
    filled = f"mean {sizes['mean_per_source']:.1f} filled" if per_source else "fixed: the same for every batch"
    click.echo(f"{checkpoint}: shortlist of {sizes['frequent']} frequent + {sizes['per_source']} per source id "
               f"({filled}{counted})")


if __name__ == "__main__":
    cli()
