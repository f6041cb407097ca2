"""PNG charts for docs/benchmarks.md from the scripts' JSON results (artifacts/bench/*.json)."""
from __future__ import annotations

import json
import sys

from common import OUT, ROOT

DOCS = ROOT / "docs"
# quality.json's configuration tags, as the legend says them
TAGS = {" small": ", 64-sentence batches", " defaults": ", 64-sentence batches (rerun)",
        " tokens544": ", 544-token batches (default)", " ls0.1": ", 64 sentences, label smoothing 0.1"}


def legend(config: str) -> str:
    for tag, words in TAGS.items():
        if config.endswith(tag):
            return config[: -len(tag)] + words
    return config


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decode = OUT / "decode.json"
    if decode.exists():
        rows = json.loads(decode.read_text())["rows"]
        names = list(rows)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        bars = ax.bar(range(len(names)), [rows[n]["speedup"] for n in names], color=["#999"] + ["#3b7dd8"] * (len(names) - 1))
        ax.bar_label(bars, fmt="%.1fx", fontsize=8)
        ax.set_xticks(range(len(names)), [n.replace("runtime_", "").replace("reference_eager_b1", "PyTorch eager b1") for n in names],
                      rotation=20, fontsize=8)
        ax.set_ylabel("sentences/s vs PyTorch eager batch 1")
        ax.set_title("Greedy decoding speedup (tatoeba-fra test, CPU)")
        fig.tight_layout()
        fig.savefig(DOCS / "speedup.png", dpi=110)
    quality = OUT / "quality.json"
    if quality.exists():
        curves = json.loads(quality.read_text())["curves"]
        curves = {k: v for k, v in curves.items() if len(v) >= 2}  # single-slice ablations have no curve
        tasks = list(dict.fromkeys(k.split(" | ")[0] for k in curves))
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            for name, pts in curves.items():
                if name.startswith(task + " | "):
                    ax.plot([p["train_s"] / 60 for p in pts], [p["bleu"] for p in pts], marker="o",
                            label=legend(name.split(" | ")[1]))
            ax.set_title(task, fontsize=10)
            ax.set_xlabel("training minutes (2 CPU cores)")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("BLEU (greedy, test)")
        fig.tight_layout()
        fig.savefig(DOCS / "bleu_vs_time.png", dpi=110)
    print(json.dumps({"charts": [p.name for p in DOCS.glob("*.png")]}))


if __name__ == "__main__":
    sys.exit(main())
