"""Tests of checkpoint loading and saving."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from wdcore import io as io_module
from wdcore.io import (
    DATA_SHA256_KEY,
    CheckpointOrderWarning,
    data_sha256,
    extract_state_dict,
    load_checkpoint,
    load_state_dict,
    natural_key_order,
    save_state_dict,
)


def make_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """State dict of a 12-module Sequential, so that keys "10.x" follow "2.x"."""
    torch.manual_seed(seed)
    layers = []
    for _ in range(4):
        layers += [nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU()]
    return nn.Sequential(*layers).state_dict()


def check_same(first: dict, second: dict) -> None:
    """Assert two state dicts have the same keys in order and equal tensors."""
    assert list(first) == list(second)
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth", ".bin", ".ckpt"])
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_keeps_order_and_values(tmp_path, suffix, seed):
    state_dict = make_state_dict(seed)
    path = save_state_dict(state_dict, tmp_path / "sub" / f"model{suffix}")
    check_same(load_state_dict(path), state_dict)
    check_same(load_state_dict(str(path)), state_dict)


def test_tied_tensors_can_be_saved(tmp_path):
    shared = torch.ones(3)
    path = save_state_dict({"a": shared, "b": shared}, tmp_path / "m.safetensors")
    assert list(load_state_dict(path)) == ["a", "b"]


def test_safetensors_of_a_sequential_without_order_is_read_in_order(tmp_path):
    """Regression: every plain safetensors file warned that its order was
    guessed, even where the names of an nn.Sequential fix it."""
    state_dict = make_state_dict()
    path = tmp_path / "plain.safetensors"
    save_file(dict(state_dict), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_state_dict(path)
    check_same(loaded, state_dict)


def make_named_model() -> nn.Module:
    """Submodules named so that alphabetical order is not depth order."""
    model = nn.Module()
    model.features = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model.classifier = nn.Linear(4, 2)
    return model


def test_safetensors_with_named_submodules_warns_that_order_is_guessed(tmp_path):
    state_dict = make_named_model().state_dict()
    path = tmp_path / "named.safetensors"
    save_file(dict(state_dict), path)
    with pytest.warns(
        CheckpointOrderWarning,
        match=r"does not record the order of its tensors .* the order of "
        r"'classifier', 'features' cannot be told from their names: .* save "
        r"model.state_dict\(\) with wdcore.io.save_state_dict or torch.save",
    ):
        loaded = load_state_dict(path)
    assert list(loaded) == natural_key_order(list(state_dict))
    assert list(loaded)[0] == "classifier.weight"  # the guess is wrong here


@pytest.mark.parametrize(
    ("keys", "ambiguous"),
    [
        (["0.weight", "0.bias", "10.0.weight", "10.1.running_var"], []),
        (["weight", "bias"], []),
        (["fc.weight", "fc.bias"], []),  # one named module: nothing to swap
        (["features.0.weight", "head.weight"], ["features", "head"]),
        (["fc.w", "fc.b"], ["fc.b", "fc.w"]),
        (["block.scale", "block.0.weight"], ["block.0", "block.scale"]),
        (["0.weight", "norm.weight"], ["0", "norm"]),
    ],
)
def test_only_names_that_leave_the_order_open_are_ambiguous(keys, ambiguous):
    assert io_module._ambiguous_siblings(keys) == ambiguous


def test_a_file_holding_no_mapping_says_what_it_must_hold(tmp_path):
    """Regression: a bare saved tensor was said to need "a mapping ... or an
    nn.Module", though a whole module saved to a file is refused."""
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(
        ValueError,
        match=r"holds a Tensor, not a state dict; expected a mapping of tensor "
        r"names to tensors, possibly under a key such as 'state_dict'\. Save "
        r"model\.state_dict\(\) \(a whole model saved with torch\.save\(model\) "
        r"is refused, since loading it needs unpickling\)",
    ):
        load_state_dict(path)


def test_natural_key_order():
    keys = ["10.bias", "2.running_var", "fc.weight", "2.weight", "10.weight", "2.bias"]
    assert natural_key_order(keys) == [
        "2.weight",
        "2.bias",
        "2.running_var",
        "10.weight",
        "10.bias",
        "fc.weight",
    ]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
        lambda sd: {"model_state_dict": sd},
        lambda sd: {"checkpoint": 1, "net": {"state_dict": sd}},
    ],
)
def test_wrapped_state_dicts_are_found(tmp_path, wrap):
    state_dict = make_state_dict()
    path = tmp_path / "wrapped.pt"
    torch.save(wrap(state_dict), path)
    check_same(load_state_dict(path), state_dict)


def test_extract_from_module_and_arrays():
    model = nn.Linear(3, 2)
    assert list(extract_state_dict(model)) == ["weight", "bias"]
    converted = extract_state_dict({"w": np.ones(2, dtype=np.float32)})
    assert isinstance(converted["w"], torch.Tensor)


def test_load_checkpoint_returns_raw_object(tmp_path):
    path = tmp_path / "raw.pt"
    torch.save({"epoch": 7, "weights": [torch.zeros(1)]}, path)
    assert load_checkpoint(path)["epoch"] == 7


@pytest.mark.parametrize(
    ("checkpoint", "error", "message"),
    [
        ([torch.zeros(1)], TypeError, "checkpoint of type 'list' is not valid"),
        ({"epoch": 3}, ValueError, r"no state dict found.*\['epoch'\]"),
        ({}, ValueError, "no state dict found"),
        ({"w": torch.zeros(1), "epoch": 3}, ValueError, "no state dict found"),
    ],
)
def test_extract_errors(checkpoint, error, message):
    with pytest.raises(error, match=message):
        extract_state_dict(checkpoint)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name", ["model.onnx", "model"])
def test_unknown_suffix(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="has suffix .*expected one of"):
        load_checkpoint(tmp_path / name)
    with pytest.raises(ValueError, match="has suffix .*expected one of"):
        save_state_dict({"w": torch.zeros(1)}, tmp_path / name)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("keep", [0, 7, 100, -9])
def test_truncated_files(tmp_path, suffix, keep):
    full = save_state_dict(make_state_dict(), tmp_path / f"full{suffix}")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[:keep])
    with pytest.raises(ValueError, match="not a readable .*truncated or corrupt"):
        load_checkpoint(cut)


@pytest.mark.parametrize(
    ("suffix", "content", "reason"),
    [
        (".pt", b"hello world", r"\(KeyError: 101\)"),
        (".pt", b"ab", r"\(the file is too short: 2 bytes\)"),
        (".pth", b"", r"\(the file is too short: 0 bytes\)"),
        (".safetensors", b"hello", r"\(the file is too short: 5 bytes\)"),
        (".safetensors", b"hello world!", r"\(\w+: \w.*\)"),
        (".pt", b"PK\x03\x04" + bytes(64), r"\(\w+: \w.*\)"),
    ],
)
def test_garbage_files_give_a_clear_error(tmp_path, suffix, content, reason):
    """Regression: a text file raised a raw KeyError, a short one gave "()"."""
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(content)
    message = (
        f"path='{path}' is not a readable PyTorch/safetensors checkpoint {reason}; "
        "expected a complete"
    )
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def test_directory_is_not_reported_missing(tmp_path):
    """Regression: a directory named dir.pt was said not to exist."""
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(ValueError, match="is a directory; expected a checkpoint file"):
        load_checkpoint(tmp_path / "dir.pt")


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match="needs arbitrary Python objects") as info:
        load_checkpoint(path)
    # Regression: torch's message came with terminal colour codes and a cut
    # sentence; only the sentence naming the refused class is kept.
    message = str(info.value)
    assert "\x1b" not in message
    assert message.endswith(
        "Loader said: Unsupported global: GLOBAL torch.nn.modules.linear.Linear "
        "was not an allowed global by default."
    )


def test_flipped_tensor_byte_in_a_pt_file_is_caught(tmp_path):
    """Regression: torch.load ignores the zip CRCs, so a damaged byte in the
    tensor data was read as a wrong weight without any error."""
    path = tmp_path / "m.pt"
    torch.save({"w": torch.arange(1000.0)}, path)
    content = bytearray(path.read_bytes())
    at = content.find(np.float32(500.0).tobytes())
    content[at : at + 4] = np.float32(12345.0).tobytes()
    path.write_bytes(bytes(content))
    with pytest.raises(
        ValueError, match=r"m.pt' is corrupt: its member '.*data/0' fails its CRC-32"
    ):
        load_checkpoint(path)


def test_malformed_pickle_is_called_corrupt_not_unsafe(tmp_path):
    """Regression: a file of garbage bytes was said to need arbitrary objects,
    and the error quoted torch's advice to load it with weights_only=False."""
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x8c" + bytes(range(256)) * 8)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "is not a readable PyTorch/safetensors checkpoint" in message
    assert "arbitrary" not in message
    assert "weights_only" not in message


def test_pickled_function_call_is_refused_and_named(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _RunsACommand()}, path)
    with pytest.raises(ValueError, match="needs arbitrary Python objects") as info:
        load_checkpoint(path)
    assert str(info.value).endswith(
        "Loader said: Trying to load unsupported GLOBAL posix.system whose module "
        "posix is blocked."
    )


class _RunsACommand:
    """Unpickling this would call os.system; it is never unpickled here."""

    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("n_snapshots", [1, 3])
def test_zoo_file_gives_its_last_snapshot(tmp_path, n_snapshots):
    snapshots = [make_state_dict(seed) for seed in range(n_snapshots)]
    tensors = {
        f"{index:02d}.{name}": tensor.clone()
        for index, state_dict in enumerate(snapshots)
        for name, tensor in state_dict.items()
    }
    path = tmp_path / "zoo_model.safetensors"
    save_file(
        tensors, path, metadata={"state_dict_keys": json.dumps(list(snapshots[0]))}
    )
    check_same(load_state_dict(path), snapshots[-1])


def test_safetensors_files_record_and_check_their_data_checksum(tmp_path):
    """Damaged tensor bytes gave wrong weights silently; wdcore's files now
    record the SHA-256 of their data, and reading checks it."""
    path = save_state_dict(make_state_dict(), tmp_path / "m.safetensors")
    with safe_open(path, framework="pt") as handle:
        recorded = handle.metadata()[DATA_SHA256_KEY]
    assert recorded == data_sha256(path) == data_sha256(path.read_bytes())

    content = bytearray(path.read_bytes())
    content[-5] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(content))
    with pytest.raises(
        ValueError,
        match=r"checkpoint path='.*m.safetensors' is corrupt: the SHA-256 of its "
        rf"tensor data is [0-9a-f]{{12}}\.\.\., but its metadata records "
        rf"{recorded[:12]}\.\.\.; expected them to match",
    ):
        load_state_dict(path)


def test_safetensors_files_without_checksum_are_read_unchecked(tmp_path):
    state_dict = make_state_dict()
    path = tmp_path / "other.safetensors"
    save_file(dict(state_dict), path, metadata={"state_dict_keys": "[]"})
    content = bytearray(path.read_bytes())
    content[-1] ^= 0x01
    path.write_bytes(bytes(content))
    loaded = load_state_dict(path)
    assert list(loaded) == natural_key_order(list(state_dict))
