"""The model folder as an attacker or a broken copy would present it: every case is refused at
load with one line naming the file (and the field), before anything is translated."""
import hashlib
import json
import math
import os
import shutil

import pytest
from click.testing import CliRunner

from runtime import Translator
from runtime.cli import cli
from runtime.model_format import ModelFolderError, load_config


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def _config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder, cfg: dict) -> None:
    (folder / "config.json").write_text(json.dumps(cfg))


def _rehash(folder, *names) -> None:
    """Updates config.json's sha256 of the named files, as an attacker who edits the list would."""
    cfg = _config(folder)
    for name in names:
        cfg["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    _write_config(folder, cfg)


def _edit_json(folder, name, edit) -> None:
    path = folder / name
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    if name != "config.json":
        _rehash(folder, name)


def _refused(folder, *words) -> str:
    """The CLI refuses with exit 1 and one line containing every word; the API raises ModelFolderError."""
    r = CliRunner().invoke(cli, ["translate", "--model", str(folder), "hello"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "Usage:" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    for w in words:
        assert w in r.output, r.output
    with pytest.raises(ModelFolderError):
        Translator(folder)
    return r.output


def test_untouched_copy_loads(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    assert Translator(folder).translate("hello") == Translator(tiny_onnx).translate("hello")


def test_external_data_is_refused_even_when_hashed(tiny_onnx, tmp_path, monkeypatch):
    """The attack: encoder.onnx moved to an external-data file inside the folder, which is then
    zeroed. Both files are listed and hashed, so only refusing external data catches it (run from
    inside the folder, where onnxruntime would otherwise find the file)."""
    import onnx

    folder = _copy(tiny_onnx, tmp_path)
    model = onnx.load(str(folder / "encoder.onnx"))
    onnx.save(model, str(folder / "encoder.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    data = folder / "weights.bin"
    data.write_bytes(b"\0" * data.stat().st_size)
    _rehash(folder, "encoder.onnx", "weights.bin")
    monkeypatch.chdir(folder)
    _refused(folder, "encoder.onnx", "external data")


@pytest.mark.parametrize("name", ["../tokenizer.json", "/etc/hostname", "sub/x.json", "..", "", "a\\b"])
def test_files_entries_must_be_plain_names_inside_the_folder(tiny_onnx, tmp_path, name):
    folder = _copy(tiny_onnx, tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"lowercase": true, "capitalize": true}')
    cfg = _config(folder)
    cfg["files"][name] = "0" * 64
    _write_config(folder, cfg)
    _refused(folder, "config.json", "not a plain file name")


def test_symlink_out_of_the_folder_is_refused(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    outside = tmp_path / "elsewhere.json"
    shutil.copy(folder / "tokenizer.json", outside)  # same bytes, same sha256
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(outside)
    _refused(folder, "tokenizer.json", "outside the model folder")


def test_symlink_inside_the_folder_is_fine(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    os.rename(folder / "tokenizer.json", folder / "tok-real.json")
    (folder / "tokenizer.json").symlink_to("tok-real.json")
    assert Translator(folder).translate("hello") == Translator(tiny_onnx).translate("hello")


def test_config_linked_to_an_endless_stream_is_refused_at_once(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to("/dev/zero")
    _refused(folder, "config.json", "outside the model folder")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_device_node_inside_the_folder_is_refused(tiny_onnx, tmp_path):
    import stat

    folder = _copy(tiny_onnx, tmp_path)
    (folder / "config.json").unlink()
    os.mknod(folder / "config.json", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # a /dev/zero of its own
    _refused(folder, "config.json", "not a regular file")


def test_fifo_does_not_block(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")  # opening a FIFO for reading would wait for a writer forever
    _refused(folder, "config.json", "not a regular file")


def test_oversized_file_is_refused_before_reading(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    with open(folder / "tokenizer.json", "r+b") as f:  # sparse: 2 MB on paper, nothing on disk
        f.truncate(2 << 20)
    _refused(folder, "tokenizer.json", "bytes, more than the")


def test_a_file_that_grows_while_read_is_refused(tiny_onnx, tmp_path, monkeypatch):
    """A file is read to the size fstat gave it and one byte more: a writer appending after the
    fstat (here: fstat one byte short) shows in that byte, and the load is refused."""
    import runtime.folder_io as folder_io

    folder = _copy(tiny_onnx, tmp_path)
    real_fstat = os.fstat

    class Shorter:
        def __init__(self, st):
            self.st, self.st_size = st, st.st_size - 1

        def __getattr__(self, name):
            return getattr(self.st, name)

    monkeypatch.setattr(folder_io.os, "fstat", lambda fd: Shorter(real_fstat(fd)))
    with pytest.raises(ModelFolderError, match="config.json: grew while being read"):
        load_config(folder)


def test_swapped_graphs_are_named(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    for a, b in (("encoder.onnx", "decoder.onnx"), ("encoder.safetensors", "decoder.safetensors")):
        os.rename(folder / a, folder / "tmp")
        os.rename(folder / b, folder / a)
        os.rename(folder / "tmp", folder / b)
    _rehash(folder, "encoder.onnx", "decoder.onnx", "encoder.safetensors", "decoder.safetensors")
    _refused(folder, "encoder.onnx", "not the graph config.json describes")


def test_a_graph_with_another_graphs_weights_is_named(tiny_onnx, tmp_path):
    """Only the weights files swapped: onnxruntime refuses tensors of other shapes than the graph's."""
    folder = _copy(tiny_onnx, tmp_path)
    os.rename(folder / "encoder.safetensors", folder / "tmp")
    os.rename(folder / "decoder.safetensors", folder / "encoder.safetensors")
    os.rename(folder / "tmp", folder / "decoder.safetensors")
    _rehash(folder, "encoder.safetensors", "decoder.safetensors")
    _refused(folder, "encoder.onnx", "cannot load it")


@pytest.mark.parametrize("field,delta,file", [("hidden_dim", 1, "encoder.onnx"), ("layers", 1, "encoder.onnx"),
                                              ("tgt_vocab_size", 3, "decoder.onnx")])
def test_sizes_in_config_are_checked_against_the_graphs(tiny_onnx, tmp_path, field, delta, file):
    folder = _copy(tiny_onnx, tmp_path)
    if field == "tgt_vocab_size":  # the vocabulary grows with the config, so only the graph disagrees
        _edit_json(folder, "target_vocabulary.json", lambda v: v + ["extra1", "extra2", "extra3"])
    _edit_json(folder, "config.json", lambda c: {**c, field: c[field] + delta})
    _refused(folder, file, "not the graph config.json describes")


def test_source_vocabulary_larger_than_the_embedding_is_caught_at_load(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    _edit_json(folder, "source_vocabulary.json", lambda v: v + [f"extra{i}" for i in range(50)])
    _edit_json(folder, "config.json", lambda c: {**c, "src_vocab_size": c["src_vocab_size"] + 50})
    _refused(folder, "encoder.onnx", "embedding is smaller than the src_vocab_size")


@pytest.mark.parametrize("edit,field", [
    (lambda c: {**c, "layers": "2"}, "'layers'"),
    (lambda c: {**c, "hidden_dim": 32.0}, "'hidden_dim'"),
    (lambda c: {**c, "layers": True}, "'layers'"),
    (lambda c: {**c, "reverse_source": 1}, "'reverse_source'"),
    (lambda c: {**c, "max_source_len": 2}, "'max_source_len'"),
    (lambda c: {**c, "quantization": "int4"}, "'quantization'"),
    (lambda c: {**c, "special_ids": {"pad": 1, "unk": 0, "sos": 2, "eos": 3}}, "'special_ids'"),
    (lambda c: {**c, "decoding": {**c["decoding"], "beam_size": 2.5}}, "'decoding.beam_size'"),
    (lambda c: {**c, "decoding": {**c["decoding"], "length_penalty": math.nan}}, "'decoding.length_penalty'"),
    (lambda c: {**c, "decoding": {**c["decoding"], "max_len_a": "2"}}, "'decoding.max_len_a'"),
    (lambda c: {**c, "decoding": {**c["decoding"], "surprise": 1}}, "'decoding.surprise'"),
    (lambda c: {**c, "decoding": []}, "'decoding'"),
    (lambda c: {**c, "files": {**c["files"], "encoder.onnx": 7}}, "'files'"),
    (lambda c: {**c, "producer": "me"}, "'producer'"),
    (lambda c: {k: v for k, v in c.items() if k != "hidden_dim"}, "'hidden_dim'"),
    (lambda c: {**c, "new_field": 1}, "'new_field'"),
])
def test_config_fields_are_type_checked(tiny_onnx, tmp_path, edit, field):
    folder = _copy(tiny_onnx, tmp_path)
    _edit_json(folder, "config.json", edit)
    _refused(folder, "config.json", field)


@pytest.mark.parametrize("name,edit,words", [
    ("source_vocabulary.json", lambda v: v[:10] + [7] + v[11:], ["source_vocabulary.json", "token 10"]),
    ("target_vocabulary.json", lambda v: v[:-1] + [v[5]], ["target_vocabulary.json", "duplicate"]),
    ("target_vocabulary.json", lambda v: {"tokens": v}, ["target_vocabulary.json", "JSON list"]),
    ("source_vocabulary.json", lambda v: v[1:] + ["x"], ["source_vocabulary.json", "must start with"]),
    ("tokenizer.json", lambda t: {**t, "lowercase": "yes"}, ["tokenizer.json", "'lowercase'"]),
    ("tokenizer.json", lambda t: {**t, "stem": True}, ["tokenizer.json", "'stem'"]),
    ("tokenizer.json", lambda t: [t], ["tokenizer.json", "object"]),
])
def test_vocabularies_and_tokenizer_are_type_checked(tiny_onnx, tmp_path, name, edit, words):
    folder = _copy(tiny_onnx, tmp_path)
    _edit_json(folder, name, edit)
    _refused(folder, *words)


def test_tampered_file_without_rehash_fails_its_sha256(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    data = bytearray((folder / "decoder.onnx").read_bytes())
    data[-100] ^= 1
    (folder / "decoder.onnx").write_bytes(bytes(data))
    _refused(folder, "decoder.onnx", "sha256")


def test_missing_listed_file(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    (folder / "target_vocabulary.json").unlink()
    _refused(folder, "target_vocabulary.json", "missing")


@pytest.mark.parametrize("remove_old", [True, False])
def test_a_load_reads_one_version_of_a_folder_being_exchanged(tiny_onnx, tiny_spm_onnx, tmp_path, monkeypatch, remove_old):
    """`export --force` exchanges the folder in one step while a load reads it: the load reads the
    folder it opened, whole (the old one, if still there), or else the new one, whole; never a mix
    (before, reading by path half the loads failed on a sha256 mismatch)."""
    import runtime.atomic as atomic
    import runtime.folder_io as io

    target, new = tmp_path / "model", tmp_path / "new"
    shutil.copytree(tiny_onnx, target)
    shutil.copytree(tiny_spm_onnx, new)
    if not remove_old:
        monkeypatch.setattr(atomic, "_remove", lambda path: None)  # the old folder lingers at `new`
    read, swapped = io.Folder.read, []

    def read_then_exchange(self, name, limit):
        data = read(self, name, limit)
        if not swapped:  # right after config.json, the folder is exchanged under the load
            swapped.append(name)
            atomic.replace_folder(new, target)
        return data

    monkeypatch.setattr(io.Folder, "read", read_then_exchange)
    loaded = Translator(target)
    monkeypatch.undo()
    assert swapped == ["config.json"]
    expected = tiny_onnx if not remove_old else tiny_spm_onnx
    assert loaded.config.files == load_config(expected).files
    assert loaded.translate("hello") == Translator(expected).translate("hello")


def test_a_weights_file_must_be_listed(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    cfg = _config(folder)
    del cfg["files"]["decoder.safetensors"]
    _write_config(folder, cfg)
    _refused(folder, "lists no checksum for decoder.safetensors")


def test_a_weights_file_with_a_bad_header_is_named(tiny_onnx, tmp_path):
    folder = _copy(tiny_onnx, tmp_path)
    data = bytearray((folder / "decoder.safetensors").read_bytes())
    data[8] = ord("[")  # the header's opening brace
    (folder / "decoder.safetensors").write_bytes(bytes(data))
    _rehash(folder, "decoder.safetensors")
    _refused(folder, "decoder.safetensors", "header is not JSON")


def test_weights_the_graph_needs_but_its_file_lacks_are_refused(tiny_onnx, tmp_path, monkeypatch):
    """Every hash right, but decoder.safetensors lacks a tensor decoder.onnx refers to: onnxruntime
    would read it from the file on disk, at the graph's offset, into bytes now holding other
    tensors (run from inside the folder, where onnxruntime would otherwise find the file)."""
    from safetensors.numpy import save

    from runtime.weights import read_weights

    folder = _copy(tiny_onnx, tmp_path)
    weights = dict(read_weights((folder / "decoder.safetensors").read_bytes()))
    del weights[sorted(weights)[0]]
    (folder / "decoder.safetensors").write_bytes(save(weights))
    _rehash(folder, "decoder.safetensors")
    monkeypatch.chdir(folder)
    _refused(folder, "decoder.onnx", "external data that decoder.safetensors does not hold")
