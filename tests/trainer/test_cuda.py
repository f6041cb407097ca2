"""The trainer on CUDA (skipped without a CUDA device): training with mixed precision writes a
checkpoint whose model computes the same numbers on the GPU as on the CPU."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", params=["none", "luong"])
def cuda_run(request, tmp_path_factory):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    from trainer.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("cuda")
    result = fit(TrainConfig.from_flat(**dict(TINY, epochs=2, attention=request.param), device="cuda", out=str(out)))
    return out, result


def test_cuda_training_learns_and_checkpoint_loads_on_cpu(cuda_run):
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint

    out, _ = cuda_run
    ckpt = load_checkpoint(out / "checkpoint.pth")  # map_location cpu
    model, *_ = model_from_checkpoint(ckpt)
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in model.parameters())
    import csv

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 2 and float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])


def test_cuda_model_matches_cpu(cuda_run):
    from tests.conftest import torch_model
    from trainer.evaluate import torch_translate

    out, _ = cuda_run
    model, codec = torch_model(out / "checkpoint.pth")
    texts = ["the cat is black", "i am happy", "we have a dog", "where is the station"]
    cpu = torch_translate(model, codec, texts, device="cpu")
    cuda = torch_translate(model, codec, texts, device="cuda")
    assert cuda == cpu
    cpu_beam = torch_translate(model, codec, texts, device="cpu", beam_size=3)
    assert torch_translate(model, codec, texts, device="cuda", beam_size=3) == cpu_beam
