"""Run under torchrun by tests/trainer/test_distributed.py: `trainer fit` with the given flat options,
recording which process writes files and saving each process's final weights."""
import json
import os
import sys

import torch

import trainer.train as T

options, record = json.loads(sys.argv[1]), sys.argv[2]
rank = int(os.environ.get("RANK", "0"))
models, writes = [], []


class Recording(T.Seq2Seq):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        models.append(self)


def recorded(fn):
    def wrapper(*a, **k):
        writes.append(fn.__name__)
        return fn(*a, **k)
    return wrapper


T.Seq2Seq = Recording
T.atomic_save, T._write_csv, T._plot_losses = recorded(T.atomic_save), recorded(T._write_csv), recorded(T._plot_losses)
T.fit(T.TrainConfig.from_flat(**options))
torch.save(models[0].state_dict(), f"{record}/weights-rank{rank}.pt")
with open(f"{record}/writes-rank{rank}.json", "w") as f:
    json.dump(writes, f)
