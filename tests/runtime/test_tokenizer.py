from runtime.tokenizer import Tokenizer
from runtime.model_format import DecodingDefaults
from runtime.vocab import EOS_ID, SOS_ID, UNK_ID, Vocab, max_target_len, source_ids, target_ids


def test_punctuation_split_and_lowercase():
    assert Tokenizer().tokenize("Hello!") == ["hello", "!"]
    assert Tokenizer(lowercase=False).tokenize("Hello, Tom.") == ["Hello", ",", "Tom", "."]


def test_french_elisions_and_hyphens():
    tok = Tokenizer()
    assert tok.tokenize("J'ai besoin de l'aide d’un ami.") == ["j'", "ai", "besoin", "de", "l'", "aide", "d'", "un", "ami", "."]
    assert tok.tokenize("Qu'est-ce qu'il fait aujourd'hui ?") == ["qu'", "est-ce", "qu'", "il", "fait", "aujourd'hui", "?"]
    # english contractions are not elisions
    assert tok.tokenize("I don't know, it's Tom's.") == ["i", "don't", "know", ",", "it's", "tom's", "."]


def test_detokenize_writes_normal_text():
    tok = Tokenizer()
    assert tok.detokenize(["bonjour", "!"]) == "Bonjour!"
    assert tok.detokenize(["j'", "ai", "besoin", "de", "l'", "aide", ",", "merci", "."]) == "J'ai besoin de l'aide, merci."
    assert Tokenizer(lowercase=False).detokenize(["hello", "(", "tom", ")"]) == "hello (tom)"
    assert tok.detokenize([]) == ""


def test_settings_round_trip():
    tok = Tokenizer(lowercase=False, capitalize=False)
    assert Tokenizer.from_dict(tok.to_dict()) == tok


def test_vocab_build_min_freq_max_size_and_unknowns():
    v = Vocab.build([["a", "b", "a"], ["c", "a", "b"]], min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "<sos>", "<eos>", "a", "b"]
    assert v.ids(["a", "zzz"]) == [4, UNK_ID]
    assert len(Vocab.build([["a", "b", "c"]], max_size=5)) == 5
    assert v.tokens([4, 5, EOS_ID, 4]) == ["a", "b"]


def test_source_reversed_with_specials_and_truncated():
    v = Vocab.build([["a", "b", "c"]])
    a, b, c = v.ids(["a", "b", "c"])
    assert source_ids(["a", "b", "c"], v, reverse=True, max_source_len=10) == [SOS_ID, c, b, a, EOS_ID]
    assert source_ids(["a", "b", "c"], v, reverse=False, max_source_len=10) == [SOS_ID, a, b, c, EOS_ID]
    assert source_ids(["a", "b", "c"], v, reverse=False, max_source_len=4) == [SOS_ID, a, b, EOS_ID]
    assert target_ids(["a"], v) == [SOS_ID, a, EOS_ID]
    dec = DecodingDefaults(max_len_a=2.0, max_len_b=10, max_len=256)
    assert max_target_len(5, dec) == 20 and max_target_len(500, dec) == 256 and max_target_len(500, dec, cap=30) == 30


def test_encode_and_decode_go_through_the_vocabulary_ids():
    """encode = the tokens' vocabulary ids; decode = Vocab.tokens then detokenize (up to <eos>,
    specials dropped but <unk>), for word tokenizers and SentencePiece alike."""
    from runtime.vocab import PAD_ID

    tok = Tokenizer()
    v = Vocab.build([tok.tokenize("the cat is black. the dog is white!")])
    assert tok.encode("The cat is green.", "src", v) == v.ids(["the", "cat", "is", "green", "."])
    ids = v.ids(["the", "cat"]) + [UNK_ID, SOS_ID, PAD_ID] + v.ids(["."]) + [EOS_ID] + v.ids(["dog"])
    assert tok.decode(ids, "tgt", v) == tok.detokenize(["the", "cat", "<unk>", "."]) == "The cat <unk>."


def test_sentencepiece_ids_are_its_pieces_vocabulary_ids(tiny_spm_onnx):
    import random

    from runtime import Translator
    from runtime.vocab import PAD_ID

    t = Translator(tiny_spm_onnx, device="cpu")
    tok, src, tgt = t.tokenizer, t.src_vocab, t.tgt_vocab
    for text in ["Where is the station?", "ÉTÉ à Paris, 3.5 km", "zzqx ✓ ünknown", ""]:
        assert tok.encode(text, "src", src) == src.ids(tok.tokenize(text, "src"))
    rng = random.Random(0)
    for _ in range(500):
        ids = [rng.choice([PAD_ID, UNK_ID, SOS_ID, EOS_ID] + [rng.randrange(4, len(tgt))] * 8) for _ in range(rng.randint(0, 12))]
        assert tok.decode(ids, "tgt", tgt) == tok.detokenize(tgt.tokens(ids), "tgt")


def test_a_vocabulary_of_sentencepiece_pieces_is_the_checked_one():
    """Vocab.of_pieces (a SentencePiece model's pieces, checked as the model loaded) is the vocabulary
    Vocab() builds from the same list: ids, tokens, length, equality; its token -> id map only when used."""
    pieces = ["<pad>", "<unk>", "<sos>", "<eos>", "▁the", "▁cat", "s"]
    fast, checked = Vocab.of_pieces(pieces), Vocab(pieces)
    assert "stoi" not in vars(fast)
    assert fast == checked and len(fast) == len(checked) == 7
    assert fast.ids(["▁cat", "s", "zz"]) == checked.ids(["▁cat", "s", "zz"]) == [5, 6, UNK_ID]
    assert fast.tokens([4, 5, EOS_ID, 6]) == checked.tokens([4, 5, EOS_ID, 6]) == ["▁the", "▁cat"]
