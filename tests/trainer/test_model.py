import torch

from trainer.model import ModelConfig, Seq2Seq


def _model(**kw):
    """The paper's model unless attention is asked for."""
    torch.manual_seed(0)
    return Seq2Seq(ModelConfig(src_vocab_size=50, tgt_vocab_size=60, **{"attention": "none", **kw})).eval()


def test_init_is_uniform_008():
    m = _model(emb_dim=8, hidden_dim=16)
    assert all(p.abs().max() <= 0.08 for p in m.parameters())


def test_padding_does_not_change_the_encoder_state():
    m = _model(emb_dim=8, hidden_dim=16, layers=2)
    short = torch.tensor([[2, 7, 8, 3]])
    batch = torch.tensor([[2, 7, 8, 3, 0, 0, 0], [2, 9, 10, 11, 12, 13, 3], [2, 5, 3, 0, 0, 0, 0]])
    h1, c1 = m.encoder(short, torch.tensor([4])).values()
    hb, cb = m.encoder(batch, torch.tensor([4, 7, 3])).values()
    assert torch.allclose(h1[:, 0], hb[:, 0], atol=1e-5) and torch.allclose(c1[:, 0], cb[:, 0], atol=1e-5)
    # without packing the padding would leak: the check above can fail
    _, (hp, _) = m.encoder.lstm(m.encoder.embedding(batch))
    assert not torch.allclose(h1[:, 0], hp[:, 0], atol=1e-5)


def test_teacher_forcing_one_fast_path_equals_per_step_loop():
    m = _model(emb_dim=8, hidden_dim=16)
    src, lengths = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]), torch.tensor([4, 3])
    tgt = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    fast = m(src, lengths, tgt, teacher_forcing=1.0)
    slow = m(src, lengths, tgt, teacher_forcing=0.999999999)  # per-step path, gold fed (almost) always
    assert fast.shape == (2, 4, 60)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_paper_scale_builds_and_runs():
    m = Seq2Seq(ModelConfig(src_vocab_size=1000, tgt_vocab_size=1000, emb_dim=1000, hidden_dim=1000, layers=4, attention="none"))
    assert m.encoder.lstm.num_layers == 4 and m.encoder.lstm.hidden_size == 1000
    logits = m(torch.tensor([[2, 5, 3]]), torch.tensor([3]), torch.tensor([[2, 7, 3]]))
    assert logits.shape == (1, 2, 1000)


def test_loss_skips_padding_and_matches_full_cross_entropy():
    m = _model(emb_dim=8, hidden_dim=16)
    src, lengths = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]), torch.tensor([4, 3])
    tgt = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    loss, n = m.loss(src, lengths, tgt)
    full = torch.nn.functional.cross_entropy(m(src, lengths, tgt).reshape(-1, 60), tgt[:, 1:].reshape(-1), ignore_index=0)
    assert n == 6 and torch.allclose(loss, full, atol=1e-6)


def test_attention_fast_path_equals_step_by_step_decoding():
    """Input feeding: the training path over the whole gold target equals feeding it one step at
    a time through `step` (the path the exported one-step decoder takes)."""
    m = _model(emb_dim=8, hidden_dim=16, attention="luong")
    for p in m.parameters():  # larger than the paper's init, so every input visibly moves the output
        torch.nn.init.uniform_(p, -0.5, 0.5)
    src, lengths = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]), torch.tensor([4, 3])
    tgt = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    fast = m(src, lengths, tgt, teacher_forcing=1.0)
    state, steps = m.encoder(src, lengths), []
    for t in range(4):
        logits, state = m.decoder.step(tgt[:, t], state)
        steps.append(logits)
    assert fast.shape == (2, 4, 60) and torch.allclose(fast, torch.stack(steps, 1), atol=1e-5)
    # the feed matters: zeroing it between steps changes the output
    state, logits = m.encoder(src, lengths), None
    for t in range(4):
        logits, state = m.decoder.step(tgt[:, t], {**state, "input_feed": torch.zeros(2, 16)})
    assert not torch.allclose(logits, steps[-1], atol=1e-4)


def test_label_smoothing_raises_the_loss_of_a_confident_model():
    m = _model(emb_dim=8, hidden_dim=16)
    src, lengths = torch.tensor([[2, 5, 6, 3]]), torch.tensor([4])
    tgt = torch.tensor([[2, 10, 11, 3]])
    plain, _ = m.loss(src, lengths, tgt)
    smooth, _ = m.loss(src, lengths, tgt, label_smoothing=0.1)
    logits = m(src, lengths, tgt).reshape(-1, 60)
    want = torch.nn.functional.cross_entropy(logits, tgt[:, 1:].reshape(-1), label_smoothing=0.1)
    assert torch.allclose(smooth, want, atol=1e-6) and not torch.allclose(smooth, plain)
