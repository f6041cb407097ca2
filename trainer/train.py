"""`trainer fit`: the training loop, metrics, checkpoints and resume, on one process or many."""
from __future__ import annotations

import contextlib
import csv
import io
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from runtime.atomic import atomic_write
from runtime.lock import exclusive, lock_path
from runtime.tokenizer import SentencePieceTokenizer, Tokenizer, from_state
from runtime.vocab import Vocab
from trainer.augment import epoch_masks
from trainer.checkpoint import SAMPLES, CheckpointError, atomic_save, load_checkpoint, new_checkpoint
from trainer.config import TrainConfig
from trainer.data import DataError, PairIds, batch_groups, cached_tokens, split_rows
from trainer.distributed import Dist, peer_failures_reported, setup, teardown
from trainer.evaluate import loss_on
from trainer.model import Seq2Seq
from trainer.shortlist import ShortlistConfig, add_shortlist, shortlist_state
from trainer.token_cache import default_workers

BEST_NAME, LAST_NAME, STEPS_NAME = "checkpoint.pth", "last.pth", "steps.csv"


class _LossModule(nn.Module):
    """model.loss as a forward(), so DistributedDataParallel sees (and synchronises) the call."""

    def __init__(self, model: Seq2Seq, label_smoothing: float = 0.0):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, src, src_len, tgt, teacher_forcing: float):
        return self.model.loss(src, src_len, tgt, teacher_forcing, self.label_smoothing)


def _cache_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.data.cache_dir or Path(cfg.out) / "cache")


def _built_once(dist: Dist, make, what: str, cache_dir: Path):
    """make(build: bool) -> the thing, read from cache_dir or (build=True) made and saved there.
    One process per machine builds; the others wait, then read the same files."""
    if dist.local_rank == 0:
        made = make(True)
    dist.barrier()
    if dist.local_rank != 0:
        made = make(False)
        if made is None:
            raise DataError(f"{cache_dir}: no {what} after the first process built it "
                            "(is --cache-dir shared with a machine that has other files?)")
    return made


def make_tokenizer(cfg: TrainConfig, dist: Dist):
    """--vocab word: the word tokenizer; sentencepiece: models trained on the training split
    (or reused from the cache folder)."""
    d = cfg.data
    if d.vocab == "word":
        return Tokenizer(lowercase=d.lowercase_text())
    from trainer.subwords import sentencepiece_tokenizer

    cache_dir = _cache_dir(cfg)
    return _built_once(dist, lambda build: sentencepiece_tokenizer(d, cfg.seed, cache_dir, build),
                       "SentencePiece models", cache_dir)


def fitting_rows(cache, rows: np.ndarray, max_source_len: int, max_target_len: int) -> np.ndarray:
    """The rows whose pair the model takes whole: at most max_source_len ids of source (<sos> and
    <eos> included) and max_target_len tokens of target (<eos> included). Longer pairs are skipped,
    not cut: a cut target would teach the model to stop mid-sentence, a cut source to make text up;
    and one pair of a million tokens would make a step take minutes and gigabytes."""
    rows = np.asarray(rows, dtype=np.int64)
    src = cache.src_offsets[rows + 1] - cache.src_offsets[rows]
    tgt = cache.tgt_offsets[rows + 1] - cache.tgt_offsets[rows]
    return rows[(src <= max_source_len - 2) & (tgt <= max_target_len - 1)]


def skipped_warning(unusable: int, too_long: int, cfg: TrainConfig) -> str | None:
    parts = ([f"{unusable} with an empty side or the wrong number of columns"] if unusable else []) + \
        ([f"{too_long} longer than --max-source-len {cfg.model.max_source_len} source ids or --max-target-len "
          f"{cfg.data.max_target_len} target tokens"] if too_long else [])
    return f"warning: skipped {unusable + too_long} rows: " + ", ".join(parts) if parts else None


def prepare_data(cfg: TrainConfig, tokenizer, dist: Dist, vocabs: tuple[Vocab, Vocab] | None = None):
    """-> (train PairIds, valid PairIds, src_vocab, tgt_vocab, (unusable rows, too long pairs), reused cache?).

    The corpus streams into a token cache in --cache-dir (built once, by the first process of each
    machine, and memory-mapped by all); pairs longer than the model takes are left out; word
    vocabularies come from the training split only (or are given, on resume); SentencePiece
    vocabularies are their models' pieces."""
    d = cfg.data
    cache_dir = _cache_dir(cfg)
    workers = default_workers()

    text = d.text_config()

    def tokens(spec):
        return _built_once(dist, lambda build: cached_tokens(spec, d.options(), tokenizer, text, cache_dir,
                                                             workers if build else 1, build=build),
                           f"token cache for {spec}", cache_dir)

    train_cache = tokens(d.source)
    skipped = train_cache.skipped
    if d.valid:
        valid_cache = tokens(d.valid)
        train_rows, valid_rows = np.arange(len(train_cache)), np.arange(len(valid_cache))
        skipped += valid_cache.skipped
    else:
        valid_cache = train_cache
        train_rows, valid_rows = split_rows(len(train_cache), d.valid_fraction, cfg.seed)
    m = cfg.model
    n = len(train_rows) + len(valid_rows)
    train_rows = fitting_rows(train_cache, train_rows, m.max_source_len, d.max_target_len)
    valid_rows = fitting_rows(valid_cache, valid_rows, m.max_source_len, d.max_target_len)
    too_long = n - len(train_rows) - len(valid_rows)
    if not len(train_rows):
        raise DataError(f"{d.source}: every pair is longer than --max-source-len {m.max_source_len} source ids or "
                        f"--max-target-len {d.max_target_len} target tokens")
    if vocabs is None and isinstance(tokenizer, SentencePieceTokenizer):
        vocabs = (Vocab(tokenizer.pieces("src")), Vocab(tokenizer.pieces("tgt")))
    if vocabs is None:
        vocabs = (Vocab.from_counts(train_cache.counts("src", train_rows), d.min_freq, d.max_vocab),
                  Vocab.from_counts(train_cache.counts("tgt", train_rows), d.min_freq, d.max_vocab))
    src_vocab, tgt_vocab = vocabs
    train = PairIds(train_cache, train_rows, src_vocab, tgt_vocab, m.reverse_source, m.max_source_len, tokenizer, text)
    valid = PairIds(valid_cache, valid_rows, src_vocab, tgt_vocab, m.reverse_source, m.max_source_len)
    return train, valid, src_vocab, tgt_vocab, (skipped, too_long), train_cache.reused


def sample_sources(data: PairIds, tokenizer, n: int = SAMPLES) -> list[str]:
    """A few source sentences as text (from their cached tokens), spread over the set."""
    from trainer.token_cache import gather

    picks = data.rows[:: max(1, len(data) // n)][:n]
    cache = data.cache
    out = []
    for row in picks:
        ids, _ = gather(cache.src_ids, cache.src_offsets, np.array([row]))
        out.append(tokenizer.detokenize([cache.src_tokens[i] for i in ids], "src"))
    return out


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not (enabled and sys.stderr.isatty()), unit="batch")


def train_epoch(module, opt, scaler, data: PairIds, cfg: TrainConfig, device, generator, dist: Dist, desc="",
                deadline: float | None = None, masks=None) -> tuple[float, int, float, list[tuple[float, int]], bool]:
    """One pass over data (or until the deadline) -> (mean loss per target token, target tokens,
    seconds, [(loss, tokens)] per step, stopped by the deadline?). Every number is over all processes.
    masks: each row's augmentation modifiers this epoch (trainer/augment.py), or None.

    Each process takes its share of every global batch. Its loss is scaled so that DDP's gradient
    average equals the gradient of the mean over all the step's target tokens: the step is the
    same as one process fed the whole global batch.
    """
    module.train()
    start = time.perf_counter()
    groups = batch_groups(data.src_lengths, cfg.batch_size, generator, min_rows=dist.world, batch_tokens=cfg.batch_tokens)
    local = []  # (loss * tokens on this process, global tokens) per step
    late = False
    with _progress(len(groups), desc, dist.main) as bar:
        for group in groups:
            src, src_len, tgt = data.batch(group[dist.rank :: dist.world], masks)
            src, tgt = src.to(device), tgt.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
                loss, n = module(src, src_len, tgt, cfg.teacher_forcing)
            # one collective per step: the global token count, and whether any process is out of time
            past = deadline is not None and time.perf_counter() > deadline
            n_all, n_late = dist.all_sum([n, float(past)], device)
            scaled = loss * (n * dist.world / n_all)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(scaled).backward()
                scaler.unscale_(opt)
            else:
                scaled.backward()
            nn.utils.clip_grad_norm_(module.parameters(), cfg.clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            value = loss.item()  # one device sync per step
            local.append((value * n, n_all))
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            if n_late:  # decided together: every process stops after the same step
                late = True
                break
    sums = dist.all_sum([x for x, _ in local], device) if local else []
    steps = [(s / n_all, int(n_all)) for s, (_, n_all) in zip(sums, local)]
    tokens = sum(n for _, n in steps)
    mean = sum(l * n for l, n in steps) / max(tokens, 1)
    return mean, tokens, time.perf_counter() - start, steps, late


METRIC_FIELDS = ("epoch", "train_loss", "valid_loss", "valid_ppl", "seconds", "tgt_tokens_per_s")


def _write_csv(path: Path, fieldnames, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def _read_steps(out: Path, upto_epoch: int) -> list[dict]:
    try:
        with open(out / STEPS_NAME, newline="") as f:
            return [r for r in csv.DictReader(f) if int(r["epoch"]) <= upto_epoch]
    except (OSError, ValueError, KeyError):
        return []


def _plot_losses(out: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax.plot(epochs, [h["valid_loss"] for h in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy per target token")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(out / "loss_curve.png", "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def check_out(out: Path, resume: bool, force: bool) -> None:
    """An --out that holds an earlier run's checkpoint is not replaced silently: it takes --resume
    (continue it) or --force (start over), as Hugging Face's overwrite_output_dir."""
    if resume and force:
        raise ValueError("--resume continues the run in --out and --force replaces it: give one of them")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    earlier = [out / n for n in (BEST_NAME, LAST_NAME) if (out / n).exists()]
    if earlier and not (resume or force):
        raise FileExistsError(f"{earlier[0]} exists from an earlier run: pass --resume to continue it, --force to "
                              "train anew and replace it, or --out another folder")


# what a resumed run may change; every other setting is the saved run's
RESUMABLE = frozenset({"epochs", "patience", "time_budget", "device", "out", "cache_dir"})


def resume_conflicts(saved: TrainConfig, wanted: TrainConfig, given) -> list[str]:
    """The options among `given` (names as the CLI's) whose values differ from the saved run's."""
    s, w = saved.flat(), wanted.flat()
    show = lambda v: ",".join(f"{k}={x:g}" for k, x in v.items()) if isinstance(v, dict) else str(v)
    return [f"--{name.replace('_', '-')} {show(w[name])} (the run has {show(s[name])})"
            for name in sorted(given) if name not in RESUMABLE and name in s and s[name] != w[name]]


def fit(cfg: TrainConfig, resume: bool = False, log=lambda msg: None, force: bool = False,
        given: frozenset = frozenset()) -> dict:
    """Trains, keeps the best checkpoint by validation loss and a resumable last.pth in cfg.out.

    Run under torchrun, each process trains on its share of every batch (DistributedDataParallel)
    and only rank 0 logs and writes files. Returns the best epoch's metrics. Nothing in cfg.out is
    touched before the data is read, and an earlier run's checkpoint there is replaced only with
    force (or continued with resume). With resume, the names in `given` (options the caller set
    explicitly, e.g. on the command line) must agree with the saved run's, or ValueError names them.
    """
    dist, device = setup(cfg.device)
    try:
        with _output_lock(Path(cfg.out), dist):
            with peer_failures_reported(dist):
                best = _fit(cfg, resume, log if dist.main else (lambda msg: None), force, dist, device, given)
            if dist.main and best and cfg.shortlist:
                _model_shortlist(Path(cfg.out) / BEST_NAME, log)
        return best if dist.main else {}
    finally:
        teardown(dist)


def _model_shortlist(checkpoint: Path, log) -> None:
    """The default shortlist (trainer/shortlist.py ShortlistConfig), counted over what the trained
    model writes: its greedy output on the training sources, decoded once training is done. The
    checkpoints meanwhile hold the same sizes counted over the training targets."""
    cfg = ShortlistConfig()
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not cfg.from_model or cfg.covers(len(ckpt["tgt_vocab"])):
        return
    start = time.perf_counter()
    add_shortlist(checkpoint, cfg)
    log(f"shortlist: the {cfg.frequent} target pieces the model writes most often on its training sources "
        f"({time.perf_counter() - start:.0f}s) -> {checkpoint}")


def _output_lock(out: Path, dist: Dist):
    """One run at a time in an --out folder (rank 0 holds it for all processes of its run)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    return exclusive(lock_path(out, inside=True), f"--out {out}") if dist.main else contextlib.nullcontext()


@dataclass
class Run:
    """A training run's moving parts and what it has done so far (what last.pth keeps)."""

    model: Seq2Seq
    module: nn.Module  # the loss, wrapped in DistributedDataParallel under torchrun
    opt: torch.optim.Optimizer
    plateau: object | None  # ReduceLROnPlateau with --lr-decay
    scaler: object | None  # GradScaler on CUDA (mixed precision)
    shuffle: torch.Generator  # the batch order: the same on every process, so global batches agree
    history: list = field(default_factory=list)  # one metrics row per epoch
    step_rows: list = field(default_factory=list)  # one row per step
    start_epoch: int = 1
    best_loss: float = float("inf")
    bad_epochs: int = 0  # epochs since the best validation loss


def _fit(cfg: TrainConfig, resume: bool, log, force: bool, dist: Dist, device: torch.device, given=frozenset()) -> dict:
    out = Path(cfg.out)
    check_out(out, resume, force)
    if cfg.batch_size < 2 * dist.world:
        raise ValueError(f"--batch-size {cfg.batch_size} is the batch of all {dist.world} processes together: "
                         f"give at least {2 * dist.world}")
    state = None
    if resume:
        state, cfg = _resumed(out, cfg, given)
    torch.manual_seed(cfg.seed)
    tokenizer = from_state(state["tokenizer"]) if state else make_tokenizer(cfg, dist)
    vocabs = (Vocab(state["src_vocab"]), Vocab(state["tgt_vocab"])) if state else None
    train_data, valid_data, src_vocab, tgt_vocab, skipped, reused = prepare_data(cfg, tokenizer, dist, vocabs)
    if len(train_data) < 2 * dist.world:
        raise ValueError(f"{len(train_data)} training pairs are too few for {dist.world} processes")
    warning = skipped_warning(*skipped, cfg)
    if warning:
        log(warning)
    model_cfg = replace(cfg.model, src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab))
    run = _start(cfg, model_cfg, dist, device)
    if state:
        _restore(run, state, cfg, dist, out)
        log(f"resuming {out / LAST_NAME} after epoch {state['epoch']}")
    m, procs = model_cfg, f" x {dist.world} processes" if dist.active else ""
    log(f"data {cfg.data.source}: {len(train_data)} train / {len(valid_data)} valid pairs"
        f"{' (token cache reused)' if reused else ''}; vocab {len(src_vocab)} src, {len(tgt_vocab)} tgt; "
        f"model {m.layers}x{m.hidden_dim} emb {m.emb_dim} on {device}{procs}")
    saved = dict(  # what every checkpoint of this run holds
        model_config=model_cfg.to_dict(), src_vocab=src_vocab.itos, tgt_vocab=tgt_vocab.itos,
        tokenizer=tokenizer.state(), data={"source": cfg.data.source, "valid": cfg.data.valid},
        text=cfg.data.text_config().to_dict(), train_config=asdict(cfg), torch_version=str(torch.__version__),
        samples=sample_sources(valid_data if len(valid_data) else train_data, tokenizer),
        shortlist=state["shortlist"] if state and "shortlist" in state else
        shortlist_state(train_data, len(src_vocab), len(tgt_vocab), replace(ShortlistConfig(), from_model=False))
        if dist.main else None,
    )
    deadline = time.perf_counter() + cfg.time_budget if cfg.time_budget else None
    for epoch in range(run.start_epoch, cfg.epochs + 1):
        if cfg.patience is not None and run.bad_epochs >= cfg.patience:
            break
        if deadline is not None and dist.all_sum([float(time.perf_counter() > deadline)], device)[0]:
            log(f"time budget of {cfg.time_budget:g}s spent")
            break
        row, improved, late = _epoch(run, epoch, cfg, train_data, valid_data, dist, device, deadline, log)
        if dist.main:
            _save_epoch(run, out, saved, row, improved)
        if late:
            log(f"time budget of {cfg.time_budget:g}s spent")
            break
    if cfg.patience is not None and run.bad_epochs >= cfg.patience:
        log(f"early stop: no better validation loss for {cfg.patience} epochs")
    return min(run.history, key=lambda h: h["valid_loss"]) if run.history else {}


def _resumed(out: Path, cfg: TrainConfig, given) -> tuple[dict, TrainConfig]:
    """last.pth of the run in out, and its config: the run continues as it was started; only its
    length, device and output may change (other options given must agree with it)."""
    last = out / LAST_NAME
    if not last.exists():
        raise CheckpointError(f"{last}: nothing to resume (no last.pth in --out {out})")
    state = load_checkpoint(last)
    saved = TrainConfig.from_dict(state["train_config"])
    conflicts = resume_conflicts(saved, cfg, given)
    if conflicts:
        raise ValueError(f"--resume continues the run in {last} as it was started, and these options differ from it: "
                         f"{'; '.join(conflicts)}; drop them, or train anew with --force")
    return state, replace(saved, epochs=cfg.epochs, device=cfg.device, out=cfg.out, patience=cfg.patience,
                          time_budget=cfg.time_budget)


def _start(cfg: TrainConfig, model_cfg, dist: Dist, device: torch.device) -> Run:
    """A new model (the paper's init, from the seed) with its optimiser, schedule and generators."""
    model = Seq2Seq(model_cfg).to(device)
    module = _LossModule(model, cfg.label_smoothing)
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    # fused: one kernel for all parameters (measured: docs/benchmarks.md "Training speed")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    # decay on plateau (OpenNMT-py's and the paper's halving, driven by validation): stepped with each
    # validation loss; the lr itself lives in the optimizer's state, the counters in last.pth
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_decay, patience=0, threshold=0)
               if cfg.lr_decay else None)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    shuffle = torch.Generator().manual_seed(cfg.seed)
    if dist.rank:  # dropout masks: rank 0 continues the single-process stream, the others their own
        torch.manual_seed(cfg.seed + 1_000_003 * dist.rank)
    return Run(model, module, opt, plateau, scaler, shuffle)


def _restore(run: Run, state: dict, cfg: TrainConfig, dist: Dist, out: Path) -> None:
    """The run as last.pth left it: weights, optimiser, schedule, batch order, history."""
    run.model.load_state_dict(state["model_state"])
    run.opt.load_state_dict(state["optimizer_state"])
    if run.plateau and state.get("lr_schedule"):
        run.plateau.load_state_dict(state["lr_schedule"])
    # the saved batch order goes on for every process; rank 0 also gets its dropout stream back
    # (a run resumed by another number of processes: the same batches, fresh masks elsewhere)
    run.shuffle.set_state(state["rng"]["shuffle"])
    if dist.rank == 0:
        torch.set_rng_state(state["rng"]["torch"])
    else:
        torch.manual_seed(cfg.seed + 1_000_003 * dist.rank + 7919 * state["epoch"])
    run.history = list(state["history"])
    run.start_epoch, run.best_loss, run.bad_epochs = state["epoch"] + 1, state["best_valid_loss"], state["bad_epochs"]
    run.step_rows = _read_steps(out, state["epoch"])


def _epoch(run: Run, epoch: int, cfg: TrainConfig, train_data: PairIds, valid_data: PairIds, dist: Dist,
           device: torch.device, deadline: float | None, log) -> tuple[dict, bool, bool]:
    """One epoch (augmented afresh), its validation, and the plateau schedule -> (metrics row, a new
    best?, stopped by the time budget?)."""
    masks = epoch_masks(len(train_data), cfg.augment, cfg.seed, epoch)
    train_loss, tokens, seconds, steps, late = train_epoch(run.module, run.opt, run.scaler, train_data, cfg, device,
                                                           run.shuffle, dist, desc=f"epoch {epoch}/{cfg.epochs}",
                                                           deadline=deadline, masks=masks)
    valid_loss = loss_on(run.model, valid_data, cfg.batch_size, device, dist)
    row = dict(epoch=epoch, train_loss=round(train_loss, 5), valid_loss=round(valid_loss, 5),
               valid_ppl=round(math.exp(min(valid_loss, 50)), 3), seconds=round(seconds, 2),
               tgt_tokens_per_s=round(tokens / seconds, 1))
    run.history.append(row)
    run.step_rows += [dict(epoch=epoch, step=i, loss=round(l, 7), tokens=n) for i, (l, n) in enumerate(steps, 1)]
    improved = valid_loss < run.best_loss
    run.best_loss, run.bad_epochs = (valid_loss, 0) if improved else (run.best_loss, run.bad_epochs + 1)
    log(f"epoch {epoch:3d}  train loss {train_loss:.4f}  valid loss {valid_loss:.4f}  ppl {row['valid_ppl']:8.2f}  "
        f"{seconds:6.1f}s  {row['tgt_tokens_per_s']:8.0f} tgt tok/s" + ("  *best" if improved else ""))
    if run.plateau:
        run.plateau.step(valid_loss)
        if not improved:
            log(f"learning rate -> {run.opt.param_groups[0]['lr']:.3g}")
    return row, improved, late


def _save_epoch(run: Run, out: Path, saved: dict, row: dict, improved: bool) -> None:
    """checkpoint.pth if the epoch is a new best, always last.pth (resumable), the metrics and the plot."""
    model_state = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
    if improved:
        atomic_save(new_checkpoint(**saved, model_state=model_state, metrics=row), out / BEST_NAME)
    rng = {"torch": torch.get_rng_state(), "shuffle": run.shuffle.get_state()}
    atomic_save(new_checkpoint(**saved, model_state=model_state, metrics=row, optimizer_state=run.opt.state_dict(),
                               epoch=row["epoch"], rng=rng, best_valid_loss=run.best_loss, bad_epochs=run.bad_epochs,
                               history=run.history, lr_schedule=run.plateau.state_dict() if run.plateau else None),
                out / LAST_NAME)
    _write_csv(out / "metrics.csv", METRIC_FIELDS, run.history)
    _write_csv(out / STEPS_NAME, ("epoch", "step", "loss", "tokens"), run.step_rows)
    _plot_losses(out, run.history)
