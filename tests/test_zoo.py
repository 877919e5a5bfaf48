"""Tests of wdcore.zoo: sampling, training, storage, resume and errors."""

import contextlib
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from wdcore import zoo as zoo_module
from wdcore.__main__ import main
from wdcore.architectures import FIXED_ARCHITECTURE
from wdcore.data import DATASETS
from wdcore.io import data_sha256, load_state_dict
from wdcore.zoo import (
    BATCH_SIZES,
    N_SNAPSHOTS,
    OPTIMIZERS,
    CorruptZooFileError,
    ForeignZooFileError,
    StaleZooFileError,
    ZooWarning,
    check_config,
    default_configs,
    load_zoo,
    main_train,
    model_id,
    sample_configs,
    train_network,
    train_zoo,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG_KEYS = {
    "space",
    "dataset",
    "learning_rate",
    "batch_size",
    "augmentation",
    "optimizer",
    "activation",
    "initialization",
    "seed",
    "n_epochs",
    "input_size",
    "architecture",
}
TINY_ARCHITECTURE = {
    **FIXED_ARCHITECTURE,
    "conv_channels": [4, 8, 8],
    "fc_units": [16, 16],
}
# Arguments of the command line runs: tiny networks that train in a fraction of
# a second each.
CLI_ARGS = ["--n", "6", "--seed", "5", "--epochs", "1", "--input-size", "8"]
# A second process for the concurrency test: it samples its configs, says it is
# ready, waits for a line on standard input, then trains and indexes one model at
# a time (argv: directory, sampling seed).
CONCURRENT_TRAINER = """
import sys
from wdcore.zoo import sample_configs, train_zoo
configs = sample_configs(3, random_state=int(sys.argv[2]), n_epochs=1, input_size=4)
print("ready", flush=True)
sys.stdin.readline()
for config in configs:
    train_zoo([config], sys.argv[1])
"""


def make_config(**changes):
    """A tiny hand-written configuration (8 x 8 inputs, 1 epoch)."""
    config = {
        "dataset": "faces",
        "learning_rate": 0.003,
        "batch_size": 64,
        "augmentation": True,
        "optimizer": "adam",
        "activation": "relu",
        "initialization": "glorot_normal",
        "seed": 7,
        "n_epochs": 1,
        "input_size": 8,
    }
    return {**config, **changes}


def make_tiny_configs(n, *, seed=0, space="fixed"):
    """Sampled configurations shrunk to 8 x 8 inputs and one epoch."""
    return sample_configs(n, space=space, random_state=seed, n_epochs=1, input_size=8)


def check_same_state_dicts(first, second):
    """Assert two state dicts hold bitwise-identical tensors in the same order."""
    assert list(first) == list(second)
    for key in first:
        assert first[key].dtype == second[key].dtype, key
        assert torch.equal(first[key], second[key]), key


def find_child_pids(pid):
    """Processes whose parent is ``pid``, from /proc (Linux)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def check_processes_gone(pids, *, timeout=5.0):
    """Assert that the processes exit (or are zombies) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if check_running(pid)]
    assert not alive


def check_running(pid):
    """Whether a process exists and is not a zombie."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return False


def check_main_train_status(argv):
    """The exit status of main_train; it must not let KeyboardInterrupt escape
    (which pytest would take as a Ctrl-C of the test session)."""
    try:
        return main_train(argv)
    except KeyboardInterrupt:
        pytest.fail("main_train let KeyboardInterrupt escape")


def make_interrupting_train_network(n_calls):
    """A train_network that raises KeyboardInterrupt at call ``n_calls``."""
    calls = []

    def interrupting_train_network(config):
        calls.append(config)
        if len(calls) == n_calls:
            raise KeyboardInterrupt
        return train_network(config)

    return interrupting_train_network


def file_fingerprints(directory):
    """Modification time and SHA-256 of every model file of a directory."""
    return {
        path.name: (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).digest())
        for path in Path(directory).glob("*.safetensors")
    }


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo of three fixed and one varied tiny networks, trained once."""
    directory = tmp_path_factory.mktemp("zoo")
    configs = make_tiny_configs(3, seed=1) + make_tiny_configs(
        1, seed=2, space="varied"
    )
    return configs, train_zoo(configs, directory)


# Sampling and configurations


@pytest.mark.parametrize("space", ["fixed", "varied"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sample_configs_draws_the_paper_hyperparameters(space, seed):
    configs = sample_configs(30, space=space, random_state=seed)

    assert len(configs) == 30
    for config in configs:
        assert set(config) == CONFIG_KEYS
        assert config["space"] == space
        assert 0.0002 <= config["learning_rate"] <= 0.005
        assert config["batch_size"] in BATCH_SIZES
        assert config["optimizer"] in OPTIMIZERS
        assert config["n_epochs"] == zoo_module.DEFAULT_N_EPOCHS[config["dataset"]]
        assert check_config(config) == config
    assert sorted(c["dataset"] for c in configs) == sorted(list(DATASETS) * 10)
    assert len({c["seed"] for c in configs}) == 30
    assert configs == sample_configs(30, space=space, random_state=seed)
    assert configs != sample_configs(30, space=space, random_state=seed + 10)


def test_sample_configs_architectures():
    fixed = sample_configs(5, random_state=0)
    varied = sample_configs(20, space="varied", random_state=0)

    assert all(c["architecture"] == FIXED_ARCHITECTURE for c in fixed)
    assert len({json.dumps(c["architecture"]) for c in varied}) > 5
    assert sample_configs(0, random_state=0) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": -1}, ValueError, "n=-1 is not valid"),
        ({"n": 2.0}, ValueError, r"n=2.0 is not valid"),
        ({"n": 2, "space": "main"}, ValueError, "space='main' is not valid"),
        ({"n": 2, "n_epochs": 0}, ValueError, "n_epochs=0 is not valid; .* >= 1"),
        ({"n": 2, "n_epochs": -2}, ValueError, "n_epochs=-2 is not valid; .* >= 1"),
        ({"n": 2, "n_epochs": 1.5}, TypeError, "n_epochs=1.5 is not valid; .* int"),
        ({"n": 2, "input_size": 2}, ValueError, "input_size=2 is not valid; .* >= 4"),
    ],
)
def test_sample_configs_rejects_bad_arguments(kwargs, error, match):
    """Regression: n_epochs=0 used to fall back silently to the default epochs."""
    with pytest.raises(error, match=match):
        sample_configs(**kwargs)


def test_sample_configs_takes_none_epochs_as_the_default():
    configs = sample_configs(3, random_state=0, n_epochs=None)
    assert [c["n_epochs"] for c in configs] == [
        zoo_module.DEFAULT_N_EPOCHS[c["dataset"]] for c in configs
    ]
    assert {c["n_epochs"] for c in sample_configs(3, random_state=0, n_epochs=1)} == {1}


def test_check_config_fills_defaults_of_a_hand_written_config():
    config = make_config()
    del config["n_epochs"], config["input_size"]
    checked = check_config(config)

    assert set(checked) == CONFIG_KEYS
    assert checked["space"] == "fixed"
    assert checked["architecture"] == FIXED_ARCHITECTURE
    assert checked["n_epochs"] == zoo_module.DEFAULT_N_EPOCHS["faces"]
    assert checked["input_size"] == 16


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"dataset": "cifar10"}, ValueError, r"config\['dataset'\]='cifar10'"),
        ({"optimizer": "adagrad"}, ValueError, r"config\['optimizer'\]='adagrad'"),
        ({"activation": "gelu"}, ValueError, r"config\['activation'\]='gelu'"),
        ({"initialization": "he"}, ValueError, r"config\['initialization'\]='he'"),
        ({"batch_size": 100}, ValueError, r"config\['batch_size'\]=100 .* \(32, 64"),
        ({"batch_size": True}, ValueError, r"config\['batch_size'\]=True"),
        ({"space": "main"}, ValueError, r"config\['space'\]='main'"),
        ({"learning_rate": -0.1}, ValueError, r"config\['learning_rate'\]=-0.1"),
        ({"learning_rate": "0.1"}, ValueError, r"config\['learning_rate'\]='0.1'"),
        ({"learning_rate": True}, ValueError, r"config\['learning_rate'\]=True is"),
        ({"augmentation": "yes"}, TypeError, r"config\['augmentation'\]='yes'"),
        ({"seed": -3}, ValueError, r"config\['seed'\]=-3 .* >= 0"),
        ({"seed": 1.5}, TypeError, r"config\['seed'\]=1.5 .* an int"),
        ({"n_epochs": 0}, ValueError, r"config\['n_epochs'\]=0 .* >= 1"),
        ({"input_size": 2}, ValueError, r"config\['input_size'\]=2 .* >= 4"),
        ({"lr": 0.1}, ValueError, r"unknown keys \['lr'\]"),
        (
            {"architecture": {**FIXED_ARCHITECTURE, "kernel_size": 3}},
            ValueError,
            "differs from the fixed architecture",
        ),
        ({"space": "varied"}, ValueError, r"config\['architecture'\] is missing"),
        (
            {"architecture": {**FIXED_ARCHITECTURE, "dropout": 2}},
            ValueError,
            r"architecture\['dropout'\]=2",
        ),
    ],
)
def test_check_config_rejects_bad_entries(changes, error, match):
    """Regression: learning_rate=True was accepted (bool passes numbers.Real)."""
    with pytest.raises(error, match=match):
        check_config(make_config(**changes))


def test_check_config_rejects_missing_keys_and_non_dicts():
    config = make_config()
    del config["seed"]
    with pytest.raises(ValueError, match=r"missing keys \['seed'\]"):
        check_config(config)
    with pytest.raises(TypeError, match="config=.* is not a dict"):
        check_config([("dataset", "digits")])


def test_model_id_is_canonical():
    config = make_config()
    explicit = check_config(config)

    assert model_id(config) == model_id(explicit)
    assert model_id(dict(reversed(list(config.items())))) == model_id(config)
    assert model_id(make_config(seed=8)) != model_id(config)
    assert len(model_id(config)) == 12


def test_default_configs_cover_all_datasets_and_both_spaces():
    quick = default_configs(quick=True)
    full = default_configs()
    fixed = [c for c in full if c["space"] == "fixed"]

    assert len(fixed) >= 240
    assert {c["dataset"] for c in fixed} == set(DATASETS)
    assert 0 < len(full) - len(fixed) < len(fixed)
    assert {c["dataset"] for c in quick if c["space"] == "fixed"} == set(DATASETS)
    assert {c["space"] for c in quick} == {"fixed", "varied"}
    assert all(c["n_epochs"] <= 2 for c in quick)
    assert len({model_id(c) for c in full}) == len(full)


# Training


@pytest.mark.parametrize(
    "config",
    [
        make_config(),
        make_config(dataset="digits", optimizer="sgd", activation="tanh", seed=3),
        make_config(
            space="varied",
            architecture={**TINY_ARCHITECTURE, "kernel_size": 3},
            dataset="textures",
            optimizer="rmsprop",
            augmentation=False,
            initialization="constant",
            batch_size=256,
        ),
    ],
    ids=["faces", "digits", "varied"],
)
def test_training_is_bitwise_reproducible_and_leaves_global_state(config):
    torch.manual_seed(123)
    rng_state, n_threads = torch.get_rng_state(), torch.get_num_threads()
    first = train_network(config)

    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == n_threads
    second = train_network(config)
    for snapshot, other in zip(first.snapshots, second.snapshots, strict=True):
        check_same_state_dicts(snapshot, other)
    assert first.records == second.records


def test_snapshots_span_initialization_to_end():
    config = make_config(n_epochs=8, batch_size=64)
    network = train_network(config)
    steps = [record["step"] for record in network.records]
    n_batches = 3  # 150 training faces in batches of 64, 64 and 22

    assert len(network.snapshots) == N_SNAPSHOTS
    assert steps[0] == 0 and steps[-1] == 8 * n_batches
    assert steps == sorted(steps)
    assert network.records[-1]["epoch"] == 8.0
    assert network.snapshots[0]["0.bias"].abs().sum() == 0
    assert not torch.equal(
        network.snapshots[0]["0.weight"], network.snapshots[-1]["0.weight"]
    )
    assert network.snapshots[-1]["1.num_batches_tracked"] == 8 * n_batches


def test_seed_changes_the_network():
    first = train_network(make_config(seed=1))
    second = train_network(make_config(seed=2))
    assert not torch.equal(
        first.snapshots[0]["0.weight"], second.snapshots[0]["0.weight"]
    )


def test_batch_bounds_never_leave_a_single_sample():
    assert zoo_module._batch_bounds(150, 64) == [0, 64, 128, 150]
    assert zoo_module._batch_bounds(129, 64) == [0, 64, 129]
    assert zoo_module._batch_bounds(150, 256) == [0, 150]


def test_learning_rate_decays_per_epoch(monkeypatch):
    learning_rates = []
    original = zoo_module._make_optimizer

    def recording_optimizer(config, model):
        optimizer = original(config, model)
        optimizer.register_step_pre_hook(
            lambda optimizer, args, kwargs: learning_rates.append(
                optimizer.param_groups[0]["lr"]
            )
        )
        return optimizer

    monkeypatch.setattr(zoo_module, "_make_optimizer", recording_optimizer)
    train_network(make_config(batch_size=256, n_epochs=3))
    assert learning_rates == pytest.approx([0.003, 0.003 * 0.96, 0.003 * 0.96**2])


# Storage


def test_storage_round_trip(tiny_zoo):
    configs, zoo = tiny_zoo
    reopened = load_zoo(zoo.directory)
    name = model_id(configs[0])
    network = train_network(configs[0])

    assert zoo.model_ids == [model_id(config) for config in configs]
    assert sorted(reopened.model_ids) == sorted(zoo.model_ids)
    assert zoo.n_snapshots == N_SNAPSHOTS == 20
    assert reopened.config(name) == check_config(configs[0])
    for snapshot in (0, 7, -1):
        check_same_state_dicts(
            reopened.state_dict(name, snapshot), network.snapshots[snapshot]
        )
    accuracy = reopened.snapshot_accuracy(name)
    assert accuracy.to_dict("records") == network.records
    assert list(accuracy.columns) == [
        "snapshot",
        "step",
        "epoch",
        "train_accuracy",
        "test_accuracy",
    ]


def test_index_has_one_row_per_model(tiny_zoo):
    configs, zoo = tiny_zoo
    index = zoo.index

    assert len(index) == len(configs)
    expected = CONFIG_KEYS | {"model_id", "train_accuracy", "test_accuracy", "n_params"}
    assert expected <= set(index.columns)
    assert index.space.tolist() == ["fixed", "fixed", "fixed", "varied"]
    assert index.architecture[0] == "conv8-16-32_k5_fc128-64"
    assert index.test_accuracy.between(0, 1).all()
    assert (index.n_params[:3] == 42170).all()
    row = index.iloc[1]
    assert row.seed == configs[1]["seed"]
    assert row.learning_rate == configs[1]["learning_rate"]


def test_weights_and_models(tiny_zoo):
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    state_dict = zoo.state_dict(name)
    weights = zoo.weights(name)
    expected = torch.cat(
        [t.reshape(-1) for t in state_dict.values() if t.is_floating_point()]
    )

    assert weights.dtype == np.float32 and weights.ndim == 1
    np.testing.assert_array_equal(weights, expected.numpy())
    assert zoo.weight_matrix(model_ids=zoo.model_ids[:3]).shape == (3, len(weights))
    model = zoo.model(name, snapshot=0)
    assert not model.training
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert torch.equal(model[0].weight, zoo.state_dict(name, 0)["0.weight"])


def test_directory_holds_no_pickle(tiny_zoo):
    _, zoo = tiny_zoo
    names = {path.name for path in zoo.directory.iterdir()}
    suffixes = {Path(name).suffix for name in names if not name.startswith(".")}

    assert suffixes == {".safetensors", ".json"}
    index = json.loads((zoo.directory / "index.json").read_text())
    assert len(index["models"]) == 4


def test_train_zoo_skips_trained_models(tiny_zoo, tmp_path):
    configs, zoo = tiny_zoo
    before = file_fingerprints(zoo.directory)
    again = train_zoo(configs[:2], zoo.directory)

    assert file_fingerprints(zoo.directory) == before
    assert again.model_ids == zoo.model_ids[:2]
    assert len(load_zoo(zoo.directory)) == 4


def test_interrupted_run_resumes_without_retraining(tmp_path):
    directory = tmp_path / "zoo"
    command = [
        sys.executable,
        "-m",
        "wdcore",
        "zoo",
        "train",
        str(directory),
        *CLI_ARGS,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not list(directory.glob("*.safetensors")) and process.poll() is None:
        assert time.monotonic() < deadline, "no model file appeared"
        time.sleep(0.01)
    process.kill()
    process.wait()

    finished = file_fingerprints(directory)
    assert 1 <= len(finished) < 6, process.stderr.read()
    assert main_train([str(directory), *CLI_ARGS]) == 0

    zoo = load_zoo(directory)
    assert len(zoo) == 6
    current = file_fingerprints(directory)
    assert {name: current[name] for name in finished} == finished
    assert not list(directory.glob(".*.tmp"))

    # The model trained by the killed process is the one this process trains.
    name = Path(next(iter(finished))).stem
    network = train_network(zoo.config(name))
    check_same_state_dicts(zoo.state_dict(name), network.snapshots[-1])


def test_empty_zoo_index_has_every_column(tiny_zoo, tmp_path):
    """Regression: an empty zoo's index had no columns (AttributeError)."""
    _, zoo = tiny_zoo
    for empty in (train_zoo([], tmp_path), zoo.subset([])):
        assert len(empty) == 0
        assert list(empty.index.columns) == zoo_module.INDEX_COLUMNS
        assert np.isnan(empty.index.test_accuracy.mean())


def test_interrupted_train_zoo_indexes_the_finished_models(tmp_path, monkeypatch):
    """Regression: Ctrl-C left no index; the finished models must be indexed."""
    monkeypatch.setattr(zoo_module, "train_network", make_interrupting_train_network(2))
    configs = make_tiny_configs(3, seed=3)
    with pytest.raises(KeyboardInterrupt):
        train_zoo(configs, tmp_path)

    index = json.loads((tmp_path / "index.json").read_text())
    assert [entry["row"]["model_id"] for entry in index["models"]] == [
        model_id(configs[0])
    ]
    assert not list(tmp_path.glob(".*.tmp"))


def test_interrupt_while_saving_leaves_no_temporary_file(tmp_path, monkeypatch):
    original = zoo_module.save_file

    def interrupted_save_file(tensors, path, metadata):
        original(tensors, path, metadata=metadata)
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo_module, "save_file", interrupted_save_file)
    with pytest.raises(KeyboardInterrupt):
        train_zoo(make_tiny_configs(1, seed=4), tmp_path)
    assert not [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"]
    assert not list(tmp_path.glob("*.safetensors"))


def test_index_missing_some_models_is_completed_from_the_files(tiny_zoo, tmp_path):
    configs, zoo = tiny_zoo
    for name in zoo.model_ids:
        os.link(zoo.path(name), tmp_path / f"{name}.safetensors")
    (tmp_path / "index.json").write_text(
        json.dumps({"format": zoo_module.INDEX_FORMAT, "models": []})
    )
    assert sorted(load_zoo(tmp_path).model_ids) == sorted(zoo.model_ids)


def test_two_processes_training_into_one_zoo_keep_every_model(tmp_path):
    """Issue 4: "Two worker processes never corrupt the index". This process and
    a second one train disjoint tiny configs into one directory at the same
    time (after a handshake, so that the runs overlap), updating the index
    after every model."""
    directory = tmp_path / "zoo"
    own, other = (
        sample_configs(3, random_state=seed, n_epochs=1, input_size=4)
        for seed in (11, 12)
    )
    process = subprocess.Popen(
        [sys.executable, "-c", CONCURRENT_TRAINER, str(directory), "12"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started, _, _ = select.select([process.stdout], [], [], 60)
        assert started, "the second process did not start within 60 s"
        assert process.stdout.readline() == "ready\n", process.stderr.read()
        process.stdin.write("go\n")
        process.stdin.flush()
        for config in own:
            train_zoo([config], directory)
        _, error = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, error

    expected = {model_id(config) for config in own + other}
    assert len(expected) == 6  # disjoint
    # The index as the two processes left it, before load_zoo could repair it.
    index = json.loads((directory / "index.json").read_text())
    assert {entry["row"]["model_id"] for entry in index["models"]} == expected
    zoo = load_zoo(directory)
    assert set(zoo.model_ids) == expected
    for name in zoo.model_ids:
        assert zoo.weights(name, 0).shape == zoo.weights(name).shape
    assert not list(directory.glob(".*.tmp"))


# Errors


def test_load_zoo_reports_missing_directories_and_files(tiny_zoo, tmp_path):
    with pytest.raises(FileNotFoundError, match="zoo directory .* does not exist"):
        load_zoo(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="holds no model files"):
        load_zoo(tmp_path)

    _, zoo = tiny_zoo
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in zoo.model_ids:
        os.link(zoo.path(name), copy / f"{name}.safetensors")
    lost = load_zoo(copy).model_ids[0]
    (copy / f"{lost}.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=f"model files of \\['{lost}'\\]"):
        load_zoo(copy)


def test_load_zoo_says_a_file_is_not_a_zoo_directory(tmp_path):
    """Regression: load_zoo('/tmp/m.pt') said the directory "does not exist"."""
    path = tmp_path / "m.pt"
    path.write_bytes(b"not a zoo")
    with pytest.raises(
        NotADirectoryError, match=r"directory='.*m\.pt' is a file, not a zoo directory"
    ):
        load_zoo(path)


def make_foreign_files(directory):
    """Files that are no zoo files: a checkpoint of one's own saved with
    safetensors, one named like a model_id, and a garbage file."""
    tensors = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}
    save_file(tensors, Path(directory) / "mine.safetensors")
    save_file(tensors, Path(directory) / "0123456789ab.safetensors")
    (Path(directory) / "notes.safetensors").write_bytes(b"not safetensors")


def test_files_that_are_not_zoo_files_are_skipped_with_a_warning(tiny_zoo, tmp_path):
    """Regression: a checkpoint of one's own in a zoo directory made load_zoo
    call the file corrupted ("format is None") and advise deleting it."""
    _, zoo = tiny_zoo
    for name in zoo.model_ids:
        os.link(zoo.path(name), tmp_path / f"{name}.safetensors")
    make_foreign_files(tmp_path)
    message = (
        "ignoring 0123456789ab.safetensors, mine.safetensors, notes.safetensors: "
        "not wdcore zoo files .* move such files out of the zoo directory"
    )

    with pytest.warns(ZooWarning, match=message):
        opened = load_zoo(tmp_path)
    assert sorted(opened.model_ids) == sorted(zoo.model_ids)
    index = (tmp_path / "index.json").read_bytes()
    with pytest.warns(ZooWarning, match=message):
        assert len(load_zoo(tmp_path)) == len(zoo)
    assert (tmp_path / "index.json").read_bytes() == index  # not rewritten


def test_a_foreign_file_with_the_name_of_a_model_to_train_is_refused(tmp_path):
    config = make_config()
    path = tmp_path / f"{model_id(config)}.safetensors"
    save_file({"weight": torch.ones(2)}, path)

    with pytest.raises(
        ForeignZooFileError,
        match=r"is not a wdcore zoo file \(its metadata have format None; expected "
        r"'wdcore.zoo.model/2'\); if it is a checkpoint of your own, move it out",
    ):
        train_zoo([config], tmp_path)
    assert path.exists()  # nothing deleted or overwritten


@pytest.mark.parametrize(
    ("metadata", "error", "match"),
    [
        ({"format": None}, ZooWarning, "not wdcore zoo files"),
        ({"format": "other/1"}, ZooWarning, "not wdcore zoo files"),
        ({"format": "wdcore.zoo.model/9"}, CorruptZooFileError, "format is 'wdcore"),
    ],
)
def test_format_metadata_tells_foreign_files_from_damaged_ones(
    tiny_zoo, tmp_path, metadata, error, match
):
    _, zoo = tiny_zoo
    make_rewritten_file(zoo, tmp_path, zoo.model_ids[0], **metadata)
    if error is ZooWarning:
        with pytest.warns(ZooWarning, match=match):
            with pytest.raises(FileNotFoundError, match="holds no model files"):
                load_zoo(tmp_path)
    else:
        with pytest.raises(error, match=match):
            load_zoo(tmp_path)


def test_missing_file_after_loading_is_reported(tiny_zoo, tmp_path):
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    os.link(zoo.path(name), tmp_path / f"{name}.safetensors")
    copy = load_zoo(tmp_path)
    (tmp_path / f"{name}.safetensors").unlink()

    with pytest.raises(
        FileNotFoundError, match=f"zoo file .* of model '{name}' is missing"
    ):
        copy.state_dict(name)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_model_file_is_reported(tiny_zoo, tmp_path, damage):
    configs, zoo = tiny_zoo
    name = zoo.model_ids[0]
    content = zoo.path(name).read_bytes()
    damaged = {
        "garbage": b"\x13\x00\x00\x00\x00\x00\x00\x00not json at all",
        "truncated": content[: len(content) // 2],
        "empty": b"",
    }[damage]
    (tmp_path / f"{name}.safetensors").write_bytes(damaged)

    with pytest.raises(CorruptZooFileError, match=f"zoo file .*{name}.* is corrupted"):
        load_zoo(tmp_path)
    with pytest.raises(CorruptZooFileError, match="delete it and rerun the training"):
        train_zoo(configs[:1], tmp_path)


def make_flipped_copy(zoo, name, directory, *, position):
    """Copy a model file with one bit flipped ``position`` bytes from its end."""
    content = bytearray(zoo.path(name).read_bytes())
    content[-position] ^= 0x10
    path = Path(directory) / f"{name}.safetensors"
    path.write_bytes(bytes(content))
    return path


@pytest.mark.parametrize("position", [1, 40_000])
def test_corrupted_tensor_data_are_reported(tiny_zoo, tmp_path, position):
    """Regression: damaged tensor bytes came back silently as wrong weights; the
    files now record the SHA-256 of their data, checked when a model is read."""
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    with safe_open(zoo.path(name), framework="pt") as handle:
        recorded = handle.metadata()["data_sha256"]
    assert recorded == data_sha256(zoo.path(name))

    path = make_flipped_copy(zoo, name, tmp_path, position=position)
    damaged = load_zoo(tmp_path)  # header and metadata are intact
    message = (
        f"zoo file '{path}' is corrupted \\(its tensor data do not match the "
        "SHA-256 in its metadata\\); delete it and rerun the training"
    )
    for read in (damaged.state_dict, damaged.weights, damaged.model):
        with pytest.raises(CorruptZooFileError, match=message):
            read(name, 0)
    with pytest.raises(ValueError, match="is corrupt: the SHA-256 of its tensor"):
        load_state_dict(path)


def make_rewritten_file(zoo, directory, name: str, **changes) -> None:
    """Copy a model file into ``directory`` with changed metadata entries."""
    with safe_open(zoo.path(name), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    for key, value in changes.items():
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    save_file(tensors, directory / f"{name}.safetensors", metadata=metadata)


def test_files_of_the_format_without_checksum_are_stale(tiny_zoo, tmp_path):
    """Format /1 files had no data checksum: they are ignored and retrained."""
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    make_rewritten_file(
        zoo, tmp_path, name, data_sha256=None, format="wdcore.zoo.model/1"
    )

    with pytest.warns(ZooWarning, match="written by an older version"):
        with pytest.raises(FileNotFoundError, match="holds no model files"):
            load_zoo(tmp_path)
    retrained = train_zoo([zoo.config(name)], tmp_path)
    check_same_state_dicts(retrained.state_dict(name), zoo.state_dict(name))


def test_a_current_file_without_checksum_is_corrupt(tiny_zoo, tmp_path):
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    make_rewritten_file(zoo, tmp_path, name, data_sha256=None)

    with pytest.raises(CorruptZooFileError, match="data_sha256=None is not a SHA"):
        load_zoo(tmp_path)


def test_replaced_model_file_is_checked_again(tiny_zoo, tmp_path):
    _, zoo = tiny_zoo
    name = zoo.model_ids[0]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(zoo.path(name).read_bytes())
    copy = load_zoo(tmp_path)
    copy.state_dict(name)
    make_flipped_copy(zoo, name, tmp_path, position=1)
    os.utime(path, ns=(1, 1))  # a new modification time, as a rewrite gives
    with pytest.raises(CorruptZooFileError, match="do not match the SHA-256"):
        copy.state_dict(name)


def test_file_of_another_config_is_reported(tiny_zoo, tmp_path):
    _, zoo = tiny_zoo
    first, second = zoo.model_ids[:2]
    os.link(zoo.path(first), tmp_path / f"{second}.safetensors")
    with pytest.raises(
        CorruptZooFileError, match=f"holds the config of model '{first}'"
    ):
        load_zoo(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        '{"format": "wdcore.zoo.index/1", "mod',
        '{"format": "wdcore.zoo.index/0", "models": []}',
        '{"format": "wdcore.zoo.index/1", "models": [{"row": {"model_id": "a"}}]}',
    ],
    ids=["truncated", "old-format", "old-columns"],
)
def test_corrupted_index_is_rebuilt_with_a_warning(tiny_zoo, tmp_path, content):
    _, zoo = tiny_zoo
    for name in zoo.model_ids:
        os.link(zoo.path(name), tmp_path / f"{name}.safetensors")
    (tmp_path / "index.json").write_text(content)

    with pytest.warns(ZooWarning, match="zoo index .* is unreadable"):
        rebuilt = load_zoo(tmp_path)
    assert sorted(rebuilt.model_ids) == sorted(zoo.model_ids)
    assert len(json.loads((tmp_path / "index.json").read_text())["models"]) == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda zoo: zoo.state_dict(zoo.model_ids[0], 20), ValueError, "snapshot=20"),
        (lambda zoo: zoo.state_dict(zoo.model_ids[0], -21), ValueError, "snapshot=-21"),
        (lambda zoo: zoo.weights(zoo.model_ids[0], 1.0), TypeError, r"snapshot=1.0"),
        (lambda zoo: zoo.model("nope"), KeyError, "model_id='nope' is not in"),
        (lambda zoo: zoo.subset(["nope"]), KeyError, "model_id='nope'"),
        (lambda zoo: zoo.weight_matrix(), ValueError, "weight vectors of lengths"),
    ],
)
def test_zoo_accessors_reject_bad_arguments(tiny_zoo, call, error, match):
    _, zoo = tiny_zoo
    with pytest.raises(error, match=match):
        call(zoo)


@pytest.mark.parametrize(
    ("n_jobs", "error", "match"),
    [(0, ValueError, "n_jobs=0 is not valid"), (1.5, TypeError, "n_jobs=1.5")],
)
def test_train_zoo_rejects_bad_n_jobs(tmp_path, n_jobs, error, match):
    with pytest.raises(error, match=match):
        train_zoo([make_config()], tmp_path, n_jobs=n_jobs)


def make_index_copy(zoo, directory, *, stale):
    """Hard-link a zoo's files and index into ``directory``; ``stale`` drops the
    first model from the index."""
    for name in zoo.model_ids:
        os.link(zoo.path(name), Path(directory) / f"{name}.safetensors")
    load_zoo(directory)
    if stale:
        index = json.loads((Path(directory) / "index.json").read_text())
        index["models"] = index["models"][1:]
        (Path(directory) / "index.json").write_text(json.dumps(index))
    return (Path(directory) / "index.json").read_bytes()


def check_read_only_open(zoo, directory, index_bytes, *, stale):
    """Open a read-only zoo; check nothing was written and the warning."""
    names = set(os.listdir(directory))
    if stale:
        with pytest.warns(ZooWarning, match="is read-only and its index.json is"):
            opened = load_zoo(directory)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opened = load_zoo(directory)
    assert sorted(opened.model_ids) == sorted(zoo.model_ids)
    check_same_state_dicts(
        opened.state_dict(zoo.model_ids[0]), zoo.state_dict(zoo.model_ids[0])
    )
    assert set(os.listdir(directory)) == names  # no lock file, no temporary
    assert (Path(directory) / "index.json").read_bytes() == index_bytes


@pytest.mark.parametrize("stale", [False, True])
def test_read_only_zoo_directory_opens(tiny_zoo, tmp_path, stale):
    """Regression: load_zoo always opened the lock file for writing (and might
    rewrite index.json), so a read-only zoo could not be opened."""
    _, zoo = tiny_zoo
    index_bytes = make_index_copy(zoo, tmp_path, stale=stale)
    (tmp_path / ".index.lock").unlink()
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("chmod does not make the directory read-only (root?)")
        check_read_only_open(zoo, tmp_path, index_bytes, stale=stale)
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("stale", [False, True])
def test_unwritable_zoo_directory_is_opened_without_writing(
    tiny_zoo, tmp_path, monkeypatch, stale
):
    """The read-only path, also where chmod cannot deny root: os.access says no."""
    _, zoo = tiny_zoo
    index_bytes = make_index_copy(zoo, tmp_path, stale=stale)
    (tmp_path / ".index.lock").unlink()
    real_access = os.access

    def access(path, mode, **kwargs):
        if Path(path) == tmp_path and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(zoo_module.os, "access", access)
    monkeypatch.setattr(zoo_module, "_locked", None)  # must not be called
    check_read_only_open(zoo, tmp_path, index_bytes, stale=stale)


def test_failed_index_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Regression: _write_json_atomically left its temporary file on failure."""

    def failing_dump(content, handle, **kwargs):
        handle.write('{"format": ')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zoo_module.json, "dump", failing_dump)
    with pytest.raises(OSError, match="No space left"):
        zoo_module._write_json_atomically(tmp_path / "index.json", {"models": []})
    assert list(tmp_path.iterdir()) == []


def test_files_of_older_training_code_are_ignored_then_retrained(tiny_zoo, tmp_path):
    configs, zoo = tiny_zoo
    name = zoo.model_ids[0]
    with safe_open(zoo.path(name), framework="pt") as handle:
        metadata = {**handle.metadata(), "training_version": "0"}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, tmp_path / f"{name}.safetensors", metadata=metadata)

    with pytest.warns(ZooWarning, match="ignoring 1 model files written by an older"):
        with pytest.raises(FileNotFoundError, match="holds no model files"):
            load_zoo(tmp_path)
    with pytest.raises(StaleZooFileError, match="trained by an older version"):
        zoo_module._read_metadata(tmp_path / f"{name}.safetensors")

    retrained = train_zoo(configs[:1], tmp_path)
    check_same_state_dicts(retrained.state_dict(name), zoo.state_dict(name))
    assert len(load_zoo(tmp_path)) == 1


def test_index_follows_a_replaced_model_file(tiny_zoo, tmp_path):
    _, zoo = tiny_zoo
    first, second = zoo.model_ids[:2]
    os.link(zoo.path(first), tmp_path / f"{first}.safetensors")
    assert load_zoo(tmp_path).index.model_id.tolist() == [first]

    index = json.loads((tmp_path / "index.json").read_text())
    index["models"][0]["row"]["test_accuracy"] = -1.0
    (tmp_path / "index.json").write_text(json.dumps(index))
    (tmp_path / f"{first}.safetensors").unlink()
    (tmp_path / f"{first}.safetensors").write_bytes(zoo.path(first).read_bytes())
    os.link(zoo.path(second), tmp_path / f"{second}.safetensors")

    reloaded = load_zoo(tmp_path)
    assert sorted(reloaded.model_ids) == sorted([first, second])
    assert reloaded.index.test_accuracy.between(0, 1).all()


# Command line


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (["--n", "-1"], r"argument --n: '-1' is not valid; expected an int >= 1"),
        (["--n", "0"], r"argument --n: '0' is not valid; expected an int >= 1"),
        (["--n", "two"], r"argument --n: 'two' is not valid"),
        (["--n-jobs", "0"], r"argument --n-jobs: '0' .* int >= 1 or -1"),
        (["--input-size", "2"], r"argument --input-size: '2' .* int >= 4"),
        (["--epochs", "-2"], r"argument --epochs: '-2' .* int >= 1"),
        (["--epochs", "0"], r"argument --epochs: '0' .* int >= 1"),
        (["--space", "main"], r"argument --space: invalid choice: 'main'"),
        (["--seed", "-1"], r"argument --seed: '-1' is not valid; expected an int >= 0"),
        (["--seed", "1.5"], r"argument --seed: '1.5' is not valid"),
    ],
)
def test_main_train_rejects_bad_options(tmp_path, capsys, options, match):
    """Regression: bad options printed tracebacks; --epochs 0 meant the default;
    --seed -1 crashed in sample_configs, outside the handled errors."""
    with pytest.raises(SystemExit, match="2"):
        main_train([str(tmp_path / "zoo"), *options])
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert error.splitlines()[-1].startswith("python -m wdcore zoo train: error: ")
    assert re.search(match, error)
    assert not (tmp_path / "zoo").exists()


def test_main_train_reports_a_bad_directory_in_one_line(tmp_path, capsys):
    """Regression: a file given as the zoo directory printed a traceback."""
    path = tmp_path / "file.txt"
    path.write_text("not a zoo")

    assert main_train([str(path), *CLI_ARGS]) == 1
    error = capsys.readouterr().err
    assert error == f"error: directory={str(path)!r} is a file; expected a zoo " + (
        "directory (or a path to create one at)\n"
    )
    with pytest.raises(NotADirectoryError, match="directory=.* is a file"):
        train_zoo([], path)


def test_main_train_reports_a_corrupt_file_in_one_line(tmp_path, capsys):
    """Regression: a damaged zoo file printed a traceback, and said to rerun
    train_zoo, which a command line user does not call."""
    configs = sample_configs(6, random_state=5, n_epochs=1, input_size=8)
    (tmp_path / f"{model_id(configs[2])}.safetensors").write_bytes(b"damaged")

    assert main_train([str(tmp_path), *CLI_ARGS]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: zoo file '{tmp_path}")
    assert "delete it and rerun the training" in lines[0]
    assert "python -m wdcore zoo train" in lines[0]
    assert not list(tmp_path.glob("*.safetensors"))[1:]


def test_main_train_says_how_many_models_were_trained_and_are_there(
    tiny_zoo, tmp_path, capsys
):
    """Regression: training networks into a directory that held others printed
    "6 models in DIR" although DIR then held 12. A file of one's own in the
    directory is named in one warning line, without a Python source line."""
    _, zoo = tiny_zoo
    for name in zoo.model_ids:
        os.link(zoo.path(name), tmp_path / f"{name}.safetensors")
    save_file({"fc.weight": torch.ones(2)}, tmp_path / "mine.safetensors")

    arguments = [str(tmp_path), "--n", "2", *CLI_ARGS[2:]]
    assert main(["zoo", "train", *arguments]) == 0
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"trained 2 new networks \(0 already present\) in [0-9.]+ s; {tmp_path} "
        r"now holds 6 models; mean test accuracy of the requested 2 networks: "
        r"[0-9.]+\n",
        captured.out,
    )
    assert captured.err == (
        f"warning: zoo {str(tmp_path)!r}: ignoring mine.safetensors: not wdcore zoo "
        "files (zoo files are named <model_id>.safetensors and carry wdcore format "
        "metadata); move such files out of the zoo directory to silence this "
        "warning\n"
    )

    with pytest.warns(ZooWarning, match="ignoring mine.safetensors"):
        assert main_train(arguments) == 0
    assert capsys.readouterr().out.startswith(
        "trained 0 new networks (2 already present) in "
    )


def test_main_train_help_describes_every_option(capsys):
    with pytest.raises(SystemExit, match="0"):
        main_train(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for option in ("--n N", "--space", "--seed", "--n-jobs", "--epochs", "--input"):
        assert option in usage
    assert "architecture space" in usage
    assert "image height and width in pixels" in usage


def test_main_train_reports_an_interrupt_in_one_line(tmp_path, capsys, monkeypatch):
    """Regression: a serial Ctrl-C ended with a traceback and no index."""
    monkeypatch.setattr(zoo_module, "train_network", make_interrupting_train_network(3))

    assert check_main_train_status([str(tmp_path), *CLI_ARGS]) == 130
    assert capsys.readouterr().err == (
        "interrupted; 2 of 6 models on disk, rerun the same command to resume\n"
    )
    assert len(load_zoo(tmp_path)) == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_main_train_stops_on_sigterm(tmp_path, capsys, monkeypatch):
    """Regression: SIGTERM killed the parent without an index and orphaned the
    workers; it now stops the run like Ctrl-C. It then exited with 130, the
    Ctrl-C status, instead of 143."""

    def terminated_train_network(config):
        # Without the handler, SIGTERM would end the test session itself.
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is zoo_module._raise_keyboard_interrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the training")

    monkeypatch.setattr(zoo_module, "train_network", terminated_train_network)
    # 128 + 15, as a shell reports SIGTERM; Ctrl-C gives 130.
    assert check_main_train_status([str(tmp_path), *CLI_ARGS]) == 143
    assert capsys.readouterr().err == (
        "stopped by SIGTERM; 0 of 6 models on disk, rerun the same command to resume\n"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ctrl_c_while_workers_start_is_held_back_not_lost():
    """Workers inherit the blocked SIGINT, so a Ctrl-C while they import torch
    prints no traceback from them; this process still gets it afterwards."""
    pending = set()
    with pytest.raises(KeyboardInterrupt):
        with zoo_module._sigint_blocked():
            signal.raise_signal(signal.SIGINT)
            pending = signal.sigpending()
    assert signal.SIGINT in pending
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_a_parallel_run_and_its_workers(tmp_path):
    """Regression: after SIGINT the parent trained every queued model, after
    SIGTERM the workers lived on as orphans, and a Ctrl-C of the process group
    printed one traceback per worker."""
    directory = tmp_path / "zoo"
    arguments = [str(directory), "--n", "40", "--n-jobs", "2", *CLI_ARGS[2:]]
    process = subprocess.Popen(
        [sys.executable, "-m", "wdcore", "zoo", "train", *arguments],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not list(directory.glob("*.safetensors")) and process.poll() is None:
        assert time.monotonic() < deadline, "no model file appeared"
        time.sleep(0.01)
    children = find_child_pids(process.pid)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, error = process.communicate(timeout=10)

    assert process.returncode == 130, error
    n_on_disk = len(list(directory.glob("*.safetensors")))
    assert 1 <= n_on_disk < 40
    assert error == (
        f"interrupted; {n_on_disk} of 40 models on disk, rerun the same command "
        "to resume\n"
    )
    assert len(load_zoo(directory)) == n_on_disk
    # The workers and the resource tracker, which exits after them.
    assert len(children) >= 2
    check_processes_gone(children)
