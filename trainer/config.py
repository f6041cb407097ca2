"""Typed configurations of `trainer fit`, each default in one place (the CLI reads its defaults
from here). Pure dataclasses: importing this module needs no torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class ModelConfig:
    src_vocab_size: int = 0  # set from the vocabularies when training starts
    tgt_vocab_size: int = 0
    # the best measured at 20 minutes on 2 CPU cores (docs/training.md "Which model")
    emb_dim: int = 256
    hidden_dim: int = 256
    layers: int = 2
    dropout: float = 0.2  # on embeddings and between LSTM layers
    reverse_source: bool = True
    max_source_len: int = 100  # ids incl. <sos>/<eos>; longer sources are truncated
    # "luong": global attention ("general" score) with input feeding, as OpenNMT-py's RNN default;
    # "none": the paper's decoder, which sees the source only through the encoder's final state
    attention: str = "luong"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """A saved model config; one saved before attention existed is the paper's model."""
        return cls(**{"attention": "none", **d})


def _decoding_cap() -> int:
    from runtime.model_format import DecodingDefaults

    return DecodingDefaults().max_len


@dataclass
class DataOptions:
    """How to read a source."""

    src_col: str = "English"  # CSV columns
    tgt_col: str = "French"
    # language codes: suffixes of PREFIX.SRC / PREFIX.TGT files, and what the model folder declares
    # (sentence splitting, the server's /languages)
    src_lang: str = "en"
    tgt_lang: str = "fr"
    max_pairs: int | None = None  # only the first N usable pairs


@dataclass
class DataConfig(DataOptions):
    """What `trainer fit` trains on and how it becomes ids."""

    source: str = "builtin"  # --data
    valid: str | None = None  # a separate validation SOURCE; else valid_fraction of source
    valid_fraction: float = 0.05
    vocab: str = "sentencepiece"  # "sentencepiece" subwords or "word" (see README "Which vocabulary")
    vocab_size: int = 8000  # sentencepiece: pieces per side, specials included
    subword_model: str = "bpe"  # sentencepiece: "bpe" or "unigram"
    lowercase: bool | None = None  # None: the word vocabulary lower-cases, sentencepiece keeps case
    min_freq: int = 1  # word vocabulary: vocabularies come from the training split only
    max_vocab: int | None = None  # word vocabulary: largest size per side
    cache_dir: str | None = None  # token caches; default OUT/cache
    # pairs with more target tokens (<eos> included) are skipped: the most the runtime decodes by default
    max_target_len: int = field(default_factory=lambda: _decoding_cap())
    # ALL CAPS / Title Case sources read as sentence case and the output re-cased (runtime/prepare.py),
    # at training and at run time alike (measured against training for them: docs/benchmarks.md)
    restore_case: bool = True

    def lowercase_text(self) -> bool:
        return self.vocab == "word" if self.lowercase is None else self.lowercase

    def options(self) -> DataOptions:
        return DataOptions(self.src_col, self.tgt_col, self.src_lang, self.tgt_lang, self.max_pairs)

    def text_config(self):
        """How the model's text is prepared (saved in the checkpoint, written into the model folder)."""
        from runtime.prepare import TextConfig

        return TextConfig(self.src_lang, self.tgt_lang, self.restore_case)


@dataclass
class AugmentConfig:
    """Share of training pairs each source modifier is applied to, drawn afresh each epoch
    (trainer/augment.py; measured: docs/benchmarks.md "Real input")."""

    lowercase: float = 0.3  # the whole source in lower case
    lower_first: float = 0.1  # its first letter in lower case
    strip_punct: float = 0.3  # its final . ! ? removed (any casing modifier may come with it)
    upper: float = 0.0  # ALL CAPS source and target (for models that don't restore case)
    title: float = 0.0  # Title Case source and target (likewise)

    @classmethod
    def parse(cls, spec: str) -> "AugmentConfig":
        """"lowercase=0.2,strip_punct=0.5" -> the defaults with those rates; ValueError names a bad part."""
        rates = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"--augment: unknown modifier {name!r} (known: {', '.join(cls.__dataclass_fields__)})")
            try:
                rate = float(value)
            except ValueError:
                rate = -1.0
            if not 0 <= rate <= 1:
                raise ValueError(f"--augment: {name} needs a rate from 0 to 1, got {value.strip()!r}")
            rates[name] = rate
        return cls(**rates)

    @classmethod
    def off(cls) -> "AugmentConfig":
        return cls(**{name: 0.0 for name in cls.__dataclass_fields__})


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # the built-in quickstart's model is still learning fast at 15: 18 lifts its slowest seed from 60.5 to
    # 67.8 BLEU for ~30 s more (docs/training.md); a time budget bounds longer corpora
    epochs: int = 18
    # batches by size: at most batch_tokens padded source ids per step, over all processes together
    # (measured: docs/training.md "Which model"); 0: batch_size sentences per step. batch_size also sizes
    # the pools that batches are sorted by length in (50 batches each)
    batch_size: int = 64
    batch_tokens: int = 544  # 0: sentence batches
    lr: float = 3e-3
    label_smoothing: float = 0.0  # of the training loss only; validation loss and perplexity stay plain
    lr_decay: float | None = None  # lr *= lr_decay after each validation loss that is not a new best
    clip: float = 1.0
    teacher_forcing: float = 1.0  # measured: docs/training.md "Teacher forcing"
    patience: int | None = 3  # epochs without a better validation loss before stopping
    time_budget: float | None = None  # seconds of training; stops mid-epoch when spent
    seed: int = 0
    device: str = "auto"
    out: str = "artifacts"
    # once training is done, decode the training sources and keep the target pieces the model writes
    # most often in the checkpoint: the export's default shortlist (trainer/shortlist.py ShortlistConfig)
    shortlist: bool = True

    @classmethod
    def from_flat(cls, **options) -> "TrainConfig":
        """The CLI's flat options (--data, --emb-dim, --epochs, ...) -> the nested config."""
        options = dict(options)
        if "data" in options and not isinstance(options["data"], (dict, DataConfig)):
            options["source"] = options.pop("data")
        augment = options.pop("augment", None)
        if isinstance(augment, str):
            augment = AugmentConfig.parse(augment)
        elif isinstance(augment, dict):
            augment = AugmentConfig(**augment)
        parts = {}
        for name, kind in (("model", ModelConfig), ("data", DataConfig)):
            names = {f.name for f in fields(kind)}
            parts[name] = kind(**{k: options.pop(k) for k in list(options) if k in names})
        names = {f.name for f in fields(cls)}
        return cls(**parts, augment=augment or AugmentConfig(), **{k: v for k, v in options.items() if k in names})

    def flat(self) -> dict:
        """The CLI's flat view (--data, --emb-dim, --augment, ...): the inverse of from_flat."""
        data = asdict(self.data)
        data["data"] = data.pop("source")
        top = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "data", "augment")}
        return {**asdict(self.model), **data, "augment": asdict(self.augment), **top}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A saved config (nested; or flat, as checkpoints before the nesting saved it)."""
        if isinstance(d.get("model"), dict):
            d = {**d, **d["model"], **d["data"]}
            d.pop("model"), d.pop("data")
        d.setdefault("vocab", "word")  # saved before subwords existed
        d.setdefault("attention", "none")  # saved before attention existed
        if d.get("batch_tokens") is None:  # saved when sentence batches were the only kind (or as None)
            d["batch_tokens"] = 0
        d.setdefault("augment", asdict(AugmentConfig.off()))  # saved before augmentation existed
        d.setdefault("restore_case", False)  # likewise: text read as typed
        return cls.from_flat(**d)




@dataclass
class EvalConfig:
    """`trainer evaluate`: the test set, and how to decode it."""

    data: str = "builtin:test"
    batch_size: int = 64
    beam_size: int = 1
    length_penalty: float = 0.0
    samples: int = 5  # sample translations shown
    device: str = "cpu"
