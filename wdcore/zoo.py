"""Train, store and reopen a zoo of small CNNs with snapshots of their training.

A *configuration* is a JSON-friendly dict of hyperparameters, drawn as in the NWS
zoo (Eilertsen et al., ECAI 2020) by :func:`sample_configs` or written by hand.
Its canonical JSON hashes to a short ``model_id``, so the same configuration
always maps to the same file and an interrupted run resumes where it stopped.

On disk a zoo is a directory of ``<model_id>.safetensors`` files, one per
network, holding :data:`N_SNAPSHOTS` state dicts from initialization to the end
of training, with the configuration, the per-snapshot accuracies and the SHA-256
of the tensor data in the safetensors metadata; plus ``index.json``, a table of
all models that is rebuilt from those files whenever it is missing or stale.
Every file is written to a temporary name and moved into place with
``os.replace``, so a killed run never leaves a half-written model or index.
Chapter 2 of the book uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing
import numbers
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save, save_file
from torch import nn
from tqdm import tqdm

from wdcore._random import RandomState, check_random_state, torch_generator
from wdcore.architectures import (
    ACTIVATIONS,
    FIXED_ARCHITECTURE,
    INITIALIZATIONS,
    architecture_label,
    build_cnn,
    check_architecture,
    count_parameters,
    initialize_,
    sample_architecture,
)
from wdcore.data import DATASETS, INPUT_SIZE, augment, load_dataset
from wdcore.descriptors import weight_vector
from wdcore.io import DATA_SHA256_KEY, data_sha256

__all__ = [
    "BATCH_SIZES",
    "N_SNAPSHOTS",
    "OPTIMIZERS",
    "SPACES",
    "CorruptZooFileError",
    "ForeignZooFileError",
    "StaleZooFileError",
    "TrainedNetwork",
    "Zoo",
    "ZooWarning",
    "check_config",
    "default_configs",
    "default_zoo",
    "load_zoo",
    "main_train",
    "model_id",
    "sample_configs",
    "train_network",
    "train_zoo",
]

logger = logging.getLogger(__name__)

SPACES = ("fixed", "varied")
BATCH_SIZES = (32, 64, 128, 256)
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LEARNING_RATE_RANGE = (0.0002, 0.005)
LEARNING_RATE_DECAY = 0.96
SGD_MOMENTUM = 0.95
N_SNAPSHOTS = 20
# Training length per dataset, so that every network sees roughly 10,000 to
# 14,000 training images whatever the size of its dataset.
DEFAULT_N_EPOCHS = {"digits": 10, "faces": 64, "textures": 16}
# Smallest image size the three 2 x 2 max pools of the networks accept.
MIN_INPUT_SIZE = 4
# Per-snapshot train accuracy is measured on this many training images.
N_EVAL_TRAIN = 512
# Bumped whenever a change of the training code changes weights or records.
TRAINING_VERSION = 3
FILE_FORMAT = "wdcore.zoo.model/2"
# Every format of a zoo model file starts so; a file whose metadata lack it was
# not written by wdcore.zoo.
FILE_FORMAT_PREFIX = "wdcore.zoo.model/"
# Zoo model files are named "<model_id>.safetensors".
MODEL_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
# Formats older files may carry; such files are stale, not corrupt.
OLD_FILE_FORMATS = ("wdcore.zoo.model/1",)  # /1 had no data checksum
INDEX_FORMAT = "wdcore.zoo.index/1"
INDEX_NAME = "index.json"
INDEX_COLUMNS = [
    "model_id",
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
    "kernel_size",
    "n_conv_layers",
    "n_fc_layers",
    "n_params",
    "train_accuracy",
    "test_accuracy",
    "finite",
    "train_seconds",
    "cpu_seconds",
]

# The book's default zoo: counts, epochs and sampling seeds of each part.
DEFAULT_ZOO = {
    "full": {"n_fixed": 240, "n_varied": 48, "n_epochs": None},
    "quick": {"n_fixed": 12, "n_varied": 4, "n_epochs": 2},
}
DEFAULT_ZOO_SEEDS = {"fixed": 2020, "varied": 2024}

_REQUIRED_KEYS = (
    "dataset",
    "learning_rate",
    "batch_size",
    "augmentation",
    "optimizer",
    "activation",
    "initialization",
    "seed",
)
_OPTIONAL_KEYS = ("space", "architecture", "n_epochs", "input_size")


class ZooWarning(UserWarning):
    """Something about a zoo on disk is suspicious but could be repaired."""


class CorruptZooFileError(ValueError):
    """A zoo file exists but cannot be read as a wdcore zoo file."""


class StaleZooFileError(CorruptZooFileError):
    """A zoo file was written by an older version of the training code."""


class ForeignZooFileError(CorruptZooFileError):
    """A ``.safetensors`` file in a zoo directory was not written by wdcore.zoo.

    Its metadata have no wdcore format entry: it is, say, a checkpoint of the
    user's own, not a damaged zoo file.
    """


def _choice_error(key: str, value: object, choices: Sequence) -> ValueError:
    """Error for a config value outside a fixed set of choices."""
    return ValueError(
        f"config[{key!r}]={value!r} is not valid; expected one of {tuple(choices)}"
    )


def _check_int(name: str, value: object, *, minimum: int) -> int:
    """Check an integer argument or config entry (``name`` as shown in errors)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} is not valid; expected an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; expected an int >= {minimum}")
    return int(value)


def _check_architecture_entry(config: dict, space: str) -> dict:
    """Default, validate and cross-check the architecture of a config."""
    if "architecture" not in config:
        if space == "varied":
            raise ValueError(
                "config['architecture'] is missing; a config of space 'varied' needs "
                "an architecture dict (see wdcore.architectures.sample_architecture)"
            )
        return check_architecture(FIXED_ARCHITECTURE)
    architecture = check_architecture(config["architecture"])
    if space == "fixed" and architecture != check_architecture(FIXED_ARCHITECTURE):
        raise ValueError(
            f"config['architecture']={config['architecture']!r} differs from the fixed "
            "architecture; use space='varied' for other architectures"
        )
    return architecture


def _check_keys_and_choices(config: dict) -> None:
    """Check the keys of a config and its entries that take fixed choices."""
    if not isinstance(config, dict):
        raise TypeError(f"config={config!r} is not a dict")
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    unknown = sorted(set(config) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if missing or unknown:
        raise ValueError(
            f"config has missing keys {missing!r} and unknown keys {unknown!r}; "
            f"required keys are {_REQUIRED_KEYS!r}, optional ones {_OPTIONAL_KEYS!r}"
        )
    for key, choices in [
        ("dataset", DATASETS),
        ("optimizer", OPTIMIZERS),
        ("activation", ACTIVATIONS),
        ("initialization", INITIALIZATIONS),
        ("space", SPACES),
    ]:
        if config.get(key, "fixed") not in choices:
            raise _choice_error(key, config[key], choices)
    if config["batch_size"] not in BATCH_SIZES or isinstance(
        config["batch_size"], bool
    ):
        raise _choice_error("batch_size", config["batch_size"], BATCH_SIZES)
    if not isinstance(config["augmentation"], bool | np.bool_):
        raise TypeError(
            f"config['augmentation']={config['augmentation']!r} is not valid; "
            "expected a bool"
        )


def check_config(config: dict) -> dict:
    """Validate a (possibly hand-written) configuration and return it canonical.

    Parameters
    ----------
    config : dict
        Required keys: ``dataset`` (one of ``DATASETS``), ``learning_rate``
        (positive float), ``batch_size`` (32, 64, 128 or 256), ``augmentation``
        (bool), ``optimizer`` ("adam", "rmsprop", "sgd"), ``activation``
        ("relu", "elu", "sigmoid", "tanh"), ``initialization`` ("constant",
        "normal", "glorot_uniform", "glorot_normal") and ``seed`` (int >= 0).
        Optional keys: ``space`` (default "fixed"), ``architecture`` (default
        the fixed architecture; required for "varied"), ``n_epochs`` (default
        :data:`DEFAULT_N_EPOCHS` of the dataset) and ``input_size`` (default 16).

    Returns
    -------
    dict
        All twelve keys, with built-in Python types.

    Raises
    ------
    TypeError
        If ``config`` is not a dict or an entry has the wrong type.
    ValueError
        If a key is missing or unknown, or a value is out of range.

    Examples
    --------
    >>> config = check_config({"dataset": "digits", "learning_rate": 0.001,
    ...     "batch_size": 64, "augmentation": False, "optimizer": "adam",
    ...     "activation": "relu", "initialization": "glorot_uniform", "seed": 1})
    >>> config["space"], config["n_epochs"], config["input_size"]
    ('fixed', 10, 16)
    """
    _check_keys_and_choices(config)
    learning_rate = config["learning_rate"]
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)
        or not 0 < learning_rate < math.inf
    ):
        raise ValueError(
            f"config['learning_rate']={learning_rate!r} is not valid; expected a "
            "positive finite float"
        )
    space = config.get("space", "fixed")
    return {
        "space": space,
        "dataset": config["dataset"],
        "learning_rate": float(learning_rate),
        "batch_size": int(config["batch_size"]),
        "augmentation": bool(config["augmentation"]),
        "optimizer": config["optimizer"],
        "activation": config["activation"],
        "initialization": config["initialization"],
        "seed": _check_int("config['seed']", config["seed"], minimum=0),
        "n_epochs": _check_int(
            "config['n_epochs']",
            config.get("n_epochs", DEFAULT_N_EPOCHS[config["dataset"]]),
            minimum=1,
        ),
        "input_size": _check_int(
            "config['input_size']",
            config.get("input_size", INPUT_SIZE),
            minimum=MIN_INPUT_SIZE,
        ),
        "architecture": _check_architecture_entry(config, space),
    }


def _canonical_json(value: object) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def model_id(config: dict) -> str:
    """Return the deterministic identifier of a configuration.

    The identifier is the first 12 hex digits of the SHA-256 of the training
    code's version (:data:`TRAINING_VERSION`) and the canonical JSON of
    :func:`check_config`'s output, so it does not depend on key order or on
    optional keys left at their defaults, and files trained by older code are
    never mistaken for current ones.

    Parameters
    ----------
    config : dict
        A configuration (see :func:`check_config`).

    Returns
    -------
    str
        Twelve lowercase hex digits.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not valid (see :func:`check_config`).

    Examples
    --------
    >>> config = sample_configs(1, random_state=0)[0]
    >>> model_id(config) == model_id(dict(reversed(list(config.items()))))
    True
    >>> len(model_id(config))
    12
    """
    text = f"{TRAINING_VERSION}:{_canonical_json(check_config(config))}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def sample_configs(
    n: int,
    *,
    space: str = "fixed",
    random_state: RandomState = None,
    n_epochs: int | None = None,
    input_size: int = INPUT_SIZE,
) -> list[dict]:
    """Draw hyperparameter configurations as the NWS zoo did.

    The learning rate is uniform in [0.0002, 0.005]; batch size, augmentation,
    optimizer, activation and initialization are uniform over their choices,
    and each network gets its own seed. Unlike NWS, datasets are balanced:
    every dataset appears ``n // 3`` or ``n // 3 + 1`` times, in random order,
    so that even a small zoo covers all of them. In the ``"varied"`` space each
    network also draws an architecture
    (:func:`wdcore.architectures.sample_architecture`).

    Parameters
    ----------
    n : int
        Number of configurations.
    space : {"fixed", "varied"}, default="fixed"
        Architecture space.
    random_state : None, int or numpy.random.Generator, default=None
        Source of the draws.
    n_epochs : int, optional
        Training epochs of every network (>= 1); None (the default) means
        :data:`DEFAULT_N_EPOCHS` of its dataset (10 for digits, 16 for
        textures, 64 for faces).
    input_size : int, default=16
        Image height and width in pixels (>= 4).

    Returns
    -------
    list of dict
        Configurations accepted by :func:`check_config` and :func:`train_zoo`.

    Raises
    ------
    ValueError
        If ``n`` is negative, ``space`` unknown, ``n_epochs`` < 1 or
        ``input_size`` < 4.
    TypeError
        If ``n_epochs`` or ``input_size`` is not an int.

    Examples
    --------
    >>> configs = sample_configs(6, random_state=0)
    >>> sorted(config["dataset"] for config in configs)[::2]
    ['digits', 'faces', 'textures']
    >>> configs == sample_configs(6, random_state=0)
    True
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n={n!r} is not valid; expected an int >= 0")
    if space not in SPACES:
        raise ValueError(f"space={space!r} is not valid; expected one of {SPACES}")
    if n_epochs is not None:
        _check_int("n_epochs", n_epochs, minimum=1)
    _check_int("input_size", input_size, minimum=MIN_INPUT_SIZE)
    rng = check_random_state(random_state)
    datasets = rng.permutation(np.resize(np.array(DATASETS), n))  # (n,)
    configs = []
    for dataset in datasets:
        config = {
            "space": space,
            "dataset": str(dataset),
            "learning_rate": float(rng.uniform(*LEARNING_RATE_RANGE)),
            "batch_size": int(rng.choice(BATCH_SIZES)),
            "augmentation": bool(rng.integers(2)),
            "optimizer": str(rng.choice(OPTIMIZERS)),
            "activation": str(rng.choice(ACTIVATIONS)),
            "initialization": str(rng.choice(INITIALIZATIONS)),
            "seed": int(rng.integers(2**31)),
            "n_epochs": (
                DEFAULT_N_EPOCHS[str(dataset)] if n_epochs is None else n_epochs
            ),
            "input_size": input_size,
        }
        if space == "varied":
            config["architecture"] = sample_architecture(random_state=rng)
        configs.append(check_config(config))
    return configs


@dataclass(frozen=True)
class TrainedNetwork:
    """The outcome of :func:`train_network`.

    Attributes
    ----------
    config : dict
        The canonical configuration.
    snapshots : list of dict
        :data:`N_SNAPSHOTS` state dicts, from initialization to the end.
    records : list of dict
        Per snapshot: ``snapshot``, ``step``, ``epoch`` (fraction of training
        epochs done), ``train_accuracy`` and ``test_accuracy``.
    seconds : float
        Wall-clock training time, evaluation included.
    cpu_seconds : float
        CPU time of the process during training; unlike ``seconds`` it hardly
        depends on what else runs on the machine.
    """

    config: dict
    snapshots: list[dict[str, torch.Tensor]]
    records: list[dict]
    seconds: float
    cpu_seconds: float


def _make_optimizer(config: dict, model: nn.Module) -> torch.optim.Optimizer:
    """Adam, RMSProp or SGD with momentum 0.95 at the config's learning rate."""
    learning_rate = config["learning_rate"]
    if config["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=learning_rate)
    if config["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=learning_rate)
    return torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=SGD_MOMENTUM)


def _batch_bounds(n_samples: int, batch_size: int) -> list[int]:
    """Batch boundaries; a last batch of a single sample joins the one before.

    BatchNorm cannot normalize a batch of one sample in training mode.
    """
    bounds = [*range(0, n_samples, batch_size), n_samples]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return bounds


def _accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> float:
    """Fraction of correctly classified images, in evaluation mode.

    The prediction is the largest of the dataset's ``n_classes`` logits: the
    outputs beyond them exist only so that every network has ten.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(chunk) for chunk in images.split(1024)])
        predictions = logits[:, :n_classes].argmax(1)  # (n_images,)
    model.train(was_training)
    return float((predictions == labels).double().mean())


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state dict."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def _training_steps(config: dict, n_train: int) -> tuple[list[int], np.ndarray]:
    """Batch bounds of an epoch and the steps after which snapshots are taken."""
    bounds = _batch_bounds(n_train, config["batch_size"])
    n_steps = config["n_epochs"] * (len(bounds) - 1)
    snapshot_steps = np.rint(np.linspace(0, n_steps, N_SNAPSHOTS)).astype(int)
    return bounds, snapshot_steps  # snapshot_steps: (N_SNAPSHOTS,)


def _load_tensors(config: dict) -> tuple:
    """Train images and labels, test images and labels, and the class count."""
    dataset = load_dataset(config["dataset"], input_size=config["input_size"])
    arrays = (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
    return (*(torch.from_numpy(np.array(array)) for array in arrays), dataset.n_classes)


def _evaluate(model: nn.Module, tensors: tuple) -> tuple[float, float]:
    """Accuracy on the first N_EVAL_TRAIN training images and on the test set."""
    x_train, y_train, x_test, y_test, n_classes = tensors
    train_images, train_labels = x_train[:N_EVAL_TRAIN], y_train[:N_EVAL_TRAIN]
    train = _accuracy(model, train_images, train_labels, n_classes)
    return train, _accuracy(model, x_test, y_test, n_classes)


def _run_training(config: dict, model: nn.Module, rng: np.random.Generator) -> list:
    """Train in place; return (step, epoch, state dict, accuracies) per snapshot."""
    tensors = _load_tensors(config)
    x_train, y_train = tensors[:2]
    shuffle_generator, augment_generator = torch_generator(rng), torch_generator(rng)
    optimizer = _make_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, LEARNING_RATE_DECAY)
    bounds, snapshot_steps = _training_steps(config, len(x_train))
    n_batches = len(bounds) - 1

    # Several snapshots share a step when training has fewer than 19 steps.
    n_due = np.bincount(snapshot_steps, minlength=snapshot_steps[-1] + 1)
    snapshots = [(0, 0.0, _snapshot(model), _evaluate(model, tensors))] * n_due[0]
    model.train()
    for epoch in range(config["n_epochs"]):
        order = torch.randperm(len(x_train), generator=shuffle_generator)
        for batch in range(n_batches):
            indices = order[bounds[batch] : bounds[batch + 1]]
            images, labels = x_train[indices], y_train[indices]
            if config["augmentation"]:
                images = augment(images, random_state=augment_generator)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            step = epoch * n_batches + batch + 1
            if n_due[step]:
                state = (step, step / n_batches, _snapshot(model))
                snapshots += [(*state, _evaluate(model, tensors))] * n_due[step]
        scheduler.step()
    return snapshots


def train_network(config: dict) -> TrainedNetwork:
    """Train one network of a configuration and keep its snapshots.

    Initialization draws from a ``torch.Generator`` seeded by ``config["seed"]``,
    as do shuffling and augmentation. Dropout draws from PyTorch's global
    generator, so training runs inside ``torch.random.fork_rng`` seeded from the
    same seed: the caller's global random state is left untouched and the same
    configuration gives bitwise-identical weights on the same machine. Training
    uses one CPU thread, because the thread count can change rounding.

    Snapshot ``k`` is taken after ``round(k * n_steps / 19)`` optimizer steps,
    so snapshot 0 is the initialization and snapshot 19 the trained network.
    The learning rate decays by a factor 0.96 after every epoch.

    Parameters
    ----------
    config : dict
        A configuration (see :func:`check_config`).

    Returns
    -------
    TrainedNetwork

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not valid (see :func:`check_config`).

    Examples
    --------
    >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
    >>> network = train_network(config)
    >>> len(network.snapshots), network.records[0]["step"]
    (20, 0)
    """
    config = check_config(config)
    rng = np.random.default_rng(config["seed"])
    start, cpu_start = time.perf_counter(), time.process_time()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            model = build_cnn(
                config["architecture"],
                input_size=config["input_size"],
                activation=config["activation"],
            )
            initialize_(model, config["initialization"], random_state=rng)
            snapshots = _run_training(config, model, rng)
    finally:
        torch.set_num_threads(n_threads)
    records = [
        {
            "snapshot": index,
            "step": int(step),
            "epoch": float(epoch),
            "train_accuracy": accuracies[0],
            "test_accuracy": accuracies[1],
        }
        for index, (step, epoch, _, accuracies) in enumerate(snapshots)
    ]
    state_dicts = [state_dict for _, _, state_dict, _ in snapshots]
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return TrainedNetwork(config, state_dicts, records, seconds, cpu_seconds)


def _network_file_content(network: TrainedNetwork) -> tuple[dict, dict]:
    """The tensors and the metadata of a trained network's zoo file."""
    keys = list(network.snapshots[0])
    tensors = {
        f"{index:02d}.{key}": tensor.clone()
        for index, state_dict in enumerate(network.snapshots)
        for key, tensor in state_dict.items()
    }
    final = network.snapshots[-1]
    model = build_cnn(
        network.config["architecture"], input_size=network.config["input_size"]
    )
    metadata = {
        "format": FILE_FORMAT,
        "training_version": str(TRAINING_VERSION),
        "config": _canonical_json(network.config),
        "state_dict_keys": json.dumps(keys),
        "records": json.dumps(network.records),
        "n_params": str(count_parameters(model)),
        "finite": json.dumps(
            all(
                bool(torch.isfinite(t).all())
                for t in final.values()
                if t.is_floating_point()
            )
        ),
        "train_seconds": repr(network.seconds),
        "cpu_seconds": repr(network.cpu_seconds),
    }
    return tensors, metadata


def _save_network(network: TrainedNetwork, path: Path) -> None:
    """Write a trained network atomically (temporary file, then os.replace).

    The metadata record the SHA-256 of the file's tensor data, which readers
    check; the data bytes do not depend on the metadata, so serializing once in
    memory gives that digest (about 17 ms for a 3.5 MB file of the default
    zoo, under 1 % of its training time).
    """
    tensors, metadata = _network_file_content(network)
    metadata[DATA_SHA256_KEY] = data_sha256(save(tensors, metadata=metadata))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.chmod(temporary, 0o644)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Also on Ctrl-C: a rerun in this process would not remove the file.
        temporary.unlink(missing_ok=True)
        raise


def _check_digest(digest: str | None) -> str:
    """Return a recorded SHA-256, or raise if it is missing or malformed."""
    if not isinstance(digest, str) or (
        len(digest) != 64 or not set(digest) <= set("0123456789abcdef")
    ):
        raise ValueError(f"{DATA_SHA256_KEY}={digest!r} is not a SHA-256 hex digest")
    return digest


def _corrupt_file_error(path: Path, reason: str) -> CorruptZooFileError:
    """The error for a damaged zoo file, saying how to replace it."""
    return CorruptZooFileError(
        f"zoo file {str(path)!r} is corrupted ({reason}); delete it and rerun the "
        "training (train_zoo, or the same `python -m wdcore zoo train` command) to "
        "retrain that model"
    )


def _check_format(path: Path, metadata: dict) -> None:
    """Raise if a file's metadata are not those of a current zoo file."""
    found = metadata.get("format")
    if found in OLD_FILE_FORMATS:
        raise StaleZooFileError(
            f"zoo file {str(path)!r} has the older format {found!r} (now "
            f"{FILE_FORMAT!r}, which records a checksum of the tensor data); "
            "delete it"
        )
    if not isinstance(found, str) or not found.startswith(FILE_FORMAT_PREFIX):
        raise ForeignZooFileError(
            f"{str(path)!r} is not a wdcore zoo file (its metadata have format "
            f"{found!r}; expected {FILE_FORMAT!r}); if it is a checkpoint of your "
            f"own, move it out of the zoo directory {str(path.parent)!r}"
        )
    if found != FILE_FORMAT:
        raise ValueError(f"format is {found!r}, expected {FILE_FORMAT!r}")
    if metadata.get("training_version") != str(TRAINING_VERSION):
        raise StaleZooFileError(
            f"zoo file {str(path)!r} was trained by an older version of "
            f"wdcore.zoo (training_version {metadata.get('training_version')!r}, "
            f"now {TRAINING_VERSION}); delete it"
        )


def _read_metadata(path: Path) -> dict:
    """Read and check the JSON metadata of a model file."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
        _check_format(path, metadata)
        parsed = {
            "config": check_config(json.loads(metadata["config"])),
            "state_dict_keys": json.loads(metadata["state_dict_keys"]),
            "records": json.loads(metadata["records"]),
            "n_params": int(metadata["n_params"]),
            "finite": json.loads(metadata["finite"]),
            "train_seconds": float(metadata["train_seconds"]),
            "cpu_seconds": float(metadata["cpu_seconds"]),
            "data_sha256": _check_digest(metadata.get(DATA_SHA256_KEY)),
        }
    except (StaleZooFileError, ForeignZooFileError):
        raise
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise _corrupt_file_error(path, reason) from error
    if len(parsed["records"]) != N_SNAPSHOTS:
        raise CorruptZooFileError(
            f"zoo file {str(path)!r} holds {len(parsed['records'])} snapshots; "
            f"expected {N_SNAPSHOTS}"
        )
    return parsed


def _index_entry(path: Path) -> dict:
    """One index entry (flat row plus full config) from a model file."""
    metadata = _read_metadata(path)
    config = metadata["config"]
    architecture = config["architecture"]
    row = {
        "model_id": path.stem,
        **{k: v for k, v in config.items() if k != "architecture"},
    }
    row.update(
        architecture=architecture_label(architecture),
        kernel_size=architecture["kernel_size"],
        n_conv_layers=len(architecture["conv_channels"]),
        n_fc_layers=len(architecture["fc_units"]),
        n_params=metadata["n_params"],
        train_accuracy=metadata["records"][-1]["train_accuracy"],
        test_accuracy=metadata["records"][-1]["test_accuracy"],
        finite=metadata["finite"],
        train_seconds=metadata["train_seconds"],
        cpu_seconds=metadata["cpu_seconds"],
    )
    assert list(row) == INDEX_COLUMNS
    if model_id(config) != path.stem:
        raise CorruptZooFileError(
            f"zoo file {str(path)!r} holds the config of model {model_id(config)!r}; "
            "file names must be the model_id of their config"
        )
    return {"row": row, "config": config, "stat": _file_stat(path)}


def _file_stat(path: Path) -> list[int]:
    """Modification time and size: an index entry is stale when they change."""
    stat = path.stat()
    return [stat.st_mtime_ns, stat.st_size]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the zoo directory's index (blocks other writers)."""
    with open(directory / ".index.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_index(directory: Path) -> dict[str, dict]:
    """Entries of ``index.json`` by model_id; empty (with a warning) if unreadable."""
    path = directory / INDEX_NAME
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text())
        if content["format"] != INDEX_FORMAT:
            raise ValueError(f"format is {content['format']!r}")
        entries = {entry["row"]["model_id"]: entry for entry in content["models"]}
        for name, entry in entries.items():
            if list(entry["row"]) != INDEX_COLUMNS:
                raise ValueError(f"the row of {name!r} has other columns")
        return entries
    except (ValueError, KeyError, TypeError) as error:
        warnings.warn(
            f"zoo index {str(path)!r} is unreadable ({error}); rebuilding it from "
            "the model files",
            ZooWarning,
            stacklevel=5,
        )
        return {}


def _write_json_atomically(path: Path, content: object) -> None:
    """Write JSON to a temporary file, flush it to disk and move it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w") as handle:
            json.dump(content, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _refresh_entries(
    directory: Path, entries: dict[str, dict], files: dict[str, Path]
) -> bool:
    """Read the files that are new or changed since indexed; True if any was.

    Files written by an older version of the training code, and files that are
    not zoo files at all, are left out of the index, with a warning.
    """
    changed = [
        name
        for name in set(files) & set(entries)
        if entries[name].get("stat") != _file_stat(files[name])
    ]
    unknown, before = sorted(set(files) - set(entries) | set(changed)), set(entries)
    stale, foreign = [], []
    for name in unknown:
        entries.pop(name, None)
        if not MODEL_ID_PATTERN.fullmatch(name):
            foreign.append(files[name].name)
            continue
        try:
            entries[name] = _index_entry(files[name])
        except StaleZooFileError:
            stale.append(name)
        except ForeignZooFileError:
            foreign.append(files[name].name)
    _warn_skipped_files(directory, stale, foreign)
    return bool(set(unknown) & set(entries)) or set(entries) != before


def _warn_skipped_files(directory: Path, stale: list, foreign: list) -> None:
    """Warn about the model files of older code and the files of no zoo."""
    if stale:
        warnings.warn(
            f"zoo {str(directory)!r}: ignoring {len(stale)} model files written by "
            f"an older version of wdcore.zoo ({stale[:3]!r}...); delete them",
            ZooWarning,
            stacklevel=6,
        )
    if foreign:
        shown = ", ".join(foreign[:5])
        if len(foreign) > 5:
            shown += f", ... ({len(foreign)} files in all)"
        warnings.warn(
            f"zoo {str(directory)!r}: ignoring {shown}: not wdcore zoo files (zoo "
            "files are named <model_id>.safetensors and carry wdcore format "
            "metadata); move such files out of the zoo directory to silence this "
            "warning",
            ZooWarning,
            stacklevel=6,
        )


def _current_entries(directory: Path) -> tuple[dict[str, dict], bool]:
    """Index entries brought in line with the model files; True if they changed."""
    entries = _read_index(directory)
    files = {path.stem: path for path in directory.glob("*.safetensors")}
    lost = sorted(set(entries) - set(files))
    if lost:
        raise FileNotFoundError(
            f"zoo {str(directory)!r}: the model files of {lost!r} are listed in "
            f"{INDEX_NAME} but missing; rerun the training that made them "
            "(train_zoo with their configs, or the same `python -m wdcore zoo "
            f"train` command) to retrain them, or delete {INDEX_NAME} to drop "
            "them from the zoo"
        )
    updated = _refresh_entries(directory, entries, files)
    stale = bool(entries) and (updated or not (directory / INDEX_NAME).exists())
    return entries, stale


def _sync_index(directory: Path) -> dict[str, dict]:
    """Bring ``index.json`` in line with the model files and return its entries.

    Runs under the directory lock, so concurrent processes never interleave
    their updates, and each update rereads every file it does not know yet. In
    a directory this process cannot write, nothing is locked or written: a
    stale index is rebuilt in memory only, with a warning.
    """
    if not os.access(directory, os.W_OK):
        entries, stale = _current_entries(directory)
        if stale:
            warnings.warn(
                f"zoo {str(directory)!r} is read-only and its {INDEX_NAME} is "
                "missing or out of date; the index was rebuilt in memory from the "
                "model files (it is rebuilt each time the zoo is opened)",
                ZooWarning,
                stacklevel=3,
            )
        return entries
    with _locked(directory):
        entries, stale = _current_entries(directory)
        if stale:
            models = [entries[name] for name in sorted(entries)]
            _write_json_atomically(
                directory / INDEX_NAME, {"format": INDEX_FORMAT, "models": models}
            )
    return entries


class Zoo:
    """A trained model zoo on disk: an index table plus per-model snapshots.

    Open one with :func:`load_zoo`, :func:`train_zoo` or :func:`default_zoo`
    rather than calling the constructor.

    Parameters
    ----------
    directory : str or pathlib.Path
        Directory holding ``index.json`` and the ``<model_id>.safetensors`` files.
    entries : dict
        Index entries by model_id, as kept in ``index.json``.
    model_ids : sequence of str, optional
        The models of this view of the zoo, in order; all, sorted, by default.

    Attributes
    ----------
    index : pandas.DataFrame
        One row per model: ``model_id``, every hyperparameter, ``seed``,
        ``train_accuracy`` and ``test_accuracy`` (of the last snapshot),
        ``n_params``, ``space``, ``architecture`` (a short label such as
        ``"conv8-16-32_k5_fc128-64"``), ``kernel_size``, ``n_conv_layers``,
        ``n_fc_layers``, ``finite`` (all final weights finite),
        ``train_seconds`` (wall time of training) and ``cpu_seconds`` (its CPU
        time).
    n_snapshots : int
        Snapshots per model (20).

    Examples
    --------
    >>> import tempfile
    >>> configs = sample_configs(2, random_state=1, n_epochs=1, input_size=4)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_zoo(configs, directory)
    ...     first = zoo.index.model_id[0]
    ...     print(len(zoo), zoo.n_snapshots, zoo.weights(first).dtype)
    2 20 float32
    """

    n_snapshots = N_SNAPSHOTS

    def __init__(
        self,
        directory: str | Path,
        entries: dict[str, dict],
        model_ids: Sequence[str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.model_ids = list(sorted(entries) if model_ids is None else model_ids)
        self._entries = entries
        # model_id -> (file stat, state-dict keys) of files whose data were
        # checked against their SHA-256; the check reads each file once.
        self._checked: dict[str, tuple[list[int], list[str]]] = {}
        rows = [entries[name]["row"] for name in self.model_ids]
        self.index = pd.DataFrame(rows, columns=INDEX_COLUMNS)

    def __len__(self) -> int:
        return len(self.model_ids)

    def __repr__(self) -> str:
        return f"Zoo({str(self.directory)!r}, n_models={len(self)})"

    def _check_model_id(self, model_id: str) -> None:
        """Raise a KeyError naming the model if it is not in this zoo."""
        if model_id not in self._entries:
            raise KeyError(f"model_id={model_id!r} is not in {self!r}")

    def path(self, model_id: str) -> Path:
        """Return the path of a model's safetensors file.

        Parameters
        ----------
        model_id : str
            A model of the zoo.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        KeyError
            If the model is not in the zoo.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     print(zoo.path(first).name == first + ".safetensors")
        True
        """
        self._check_model_id(model_id)
        return self.directory / f"{model_id}.safetensors"

    def config(self, model_id: str) -> dict:
        """Return the full configuration of a model (architecture included).

        Parameters
        ----------
        model_id : str
            A model of the zoo.

        Returns
        -------
        dict
            A copy, as returned by :func:`check_config`.

        Raises
        ------
        KeyError
            If the model is not in the zoo.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     print(zoo.config(first)["architecture"]["conv_channels"])
        [8, 16, 32]
        """
        self._check_model_id(model_id)
        return json.loads(json.dumps(self._entries[model_id]["config"]))

    def _snapshot_index(self, snapshot: int) -> int:
        """Turn a (possibly negative) snapshot number into 0..n_snapshots-1."""
        if isinstance(snapshot, bool) or not isinstance(snapshot, numbers.Integral):
            raise TypeError(f"snapshot={snapshot!r} is not valid; expected an int")
        if not -self.n_snapshots <= snapshot < self.n_snapshots:
            raise ValueError(
                f"snapshot={snapshot!r} is out of range; expected an int in "
                f"[{-self.n_snapshots}, {self.n_snapshots - 1}]"
            )
        return int(snapshot) % self.n_snapshots

    def _read_file(self, model_id: str) -> dict:
        """Metadata of a model file, with clear errors if it is gone or damaged."""
        path = self.path(model_id)
        if not path.exists():
            raise FileNotFoundError(
                f"zoo file {str(path)!r} of model {model_id!r} is missing; rerun "
                "train_zoo with its config to retrain it"
            )
        return _read_metadata(path)

    def state_dict(self, model_id: str, snapshot: int = -1) -> dict[str, torch.Tensor]:
        """Load the state dict of one snapshot (default: the trained network).

        Parameters
        ----------
        model_id : str
            A model of the zoo.
        snapshot : int, default=-1
            0 is the initialization, ``n_snapshots - 1`` (or -1) the end.

        Returns
        -------
        dict of str to torch.Tensor
            In the network's ``state_dict`` order.

        Raises
        ------
        KeyError
            If the model is not in the zoo.
        TypeError, ValueError
            If ``snapshot`` is not an int in ``[-n_snapshots, n_snapshots)``.
        FileNotFoundError, CorruptZooFileError
            If its file is missing or damaged (including tensor data that do
            not match the SHA-256 recorded in the file).

        Notes
        -----
        The first read of a model's file by this zoo object (and the first
        after the file changes) hashes all of its tensor data: about 2 ms for
        a 3.5 MB file of the default zoo (20 snapshots of 42,666 weights),
        where reading one snapshot takes about 1 ms.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     state_dict = zoo.state_dict(first, snapshot=0)
        >>> list(state_dict)[:3]
        ['0.weight', '0.bias', '1.weight']
        """
        index = self._snapshot_index(snapshot)
        keys = self._checked_keys(model_id)
        path = self.path(model_id)
        try:
            with safe_open(path, framework="pt") as handle:
                return {key: handle.get_tensor(f"{index:02d}.{key}") for key in keys}
        except (SafetensorError, OSError) as error:
            raise _corrupt_file_error(path, str(error)) from error

    def _checked_keys(self, model_id: str) -> list[str]:
        """State-dict keys of a model, once its file's tensor data are verified."""
        path = self.path(model_id)
        try:
            stat = _file_stat(path)
        except FileNotFoundError:
            stat = None  # _read_file raises the error that says what to do
        if model_id not in self._checked or self._checked[model_id][0] != stat:
            metadata = self._read_file(model_id)
            if data_sha256(path) != metadata["data_sha256"]:
                reason = "its tensor data do not match the SHA-256 in its metadata"
                raise _corrupt_file_error(path, reason)
            self._checked[model_id] = (stat, metadata["state_dict_keys"])
        return self._checked[model_id][1]

    def model(self, model_id: str, snapshot: int = -1) -> nn.Sequential:
        """Rebuild a network in evaluation mode with the weights of a snapshot.

        Parameters
        ----------
        model_id : str
            A model of the zoo.
        snapshot : int, default=-1
            0 is the initialization, -1 the trained network.

        Returns
        -------
        torch.nn.Sequential

        Raises
        ------
        KeyError
            If the model is not in the zoo.
        TypeError, ValueError
            If ``snapshot`` is not an int in ``[-n_snapshots, n_snapshots)``.
        FileNotFoundError, CorruptZooFileError
            If its file is missing or damaged.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     model = zoo.model(first)
        >>> model(torch.zeros(1, 1, 4, 4)).shape
        torch.Size([1, 10])
        """
        config = self.config(model_id)
        model = build_cnn(
            config["architecture"],
            input_size=config["input_size"],
            activation=config["activation"],
        )
        model.load_state_dict(self.state_dict(model_id, snapshot))
        return model.eval()

    def weights(self, model_id: str, snapshot: int = -1) -> np.ndarray:
        """All float tensors of a snapshot's state dict as one float32 vector.

        This is :func:`wdcore.descriptors.weight_vector` with ``include="all"``:
        weights, biases, BatchNorm parameters and running statistics in state
        dict order, each flattened row-major.

        Parameters
        ----------
        model_id : str
            A model of the zoo.
        snapshot : int, default=-1
            0 is the initialization, -1 the trained network.

        Returns
        -------
        ndarray of shape (n_weights,)

        Raises
        ------
        KeyError
            If the model is not in the zoo.
        TypeError, ValueError
            If ``snapshot`` is not an int in ``[-n_snapshots, n_snapshots)``, or
            a weight is not finite.
        FileNotFoundError, CorruptZooFileError
            If its file is missing or damaged.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     weights = zoo.weights(first)
        >>> weights.shape, weights.dtype
        ((42666,), dtype('float32'))
        """
        state_dict = self.state_dict(model_id, snapshot)
        return weight_vector(state_dict, include="all")  # (n_weights,) float32

    def weight_matrix(
        self, *, snapshot: int = -1, model_ids: Sequence[str] | None = None
    ) -> np.ndarray:
        """Stack the weight vectors of models that share one length.

        Parameters
        ----------
        snapshot : int, default=-1
            The snapshot of every model.
        model_ids : sequence of str, optional
            Models to stack, in order; all of this view by default.

        Returns
        -------
        ndarray of shape (n_models, n_weights)

        Raises
        ------
        ValueError
            If the models' weight vectors differ in length (mixed architectures).

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     print(zoo.weight_matrix(snapshot=0).shape)
        (1, 42666)
        """
        model_ids = self.model_ids if model_ids is None else list(model_ids)
        vectors = [self.weights(name, snapshot) for name in model_ids]
        lengths = sorted({len(vector) for vector in vectors})
        if len(lengths) > 1:
            raise ValueError(
                f"model_ids hold weight vectors of lengths {lengths!r}; select models "
                "of one architecture (e.g. the rows with space == 'fixed')"
            )
        return np.stack(vectors)  # (n_models, n_weights)

    def snapshot_accuracy(self, model_id: str) -> pd.DataFrame:
        """Train and test accuracy of every snapshot of a model.

        Parameters
        ----------
        model_id : str
            A model of the zoo.

        Returns
        -------
        pandas.DataFrame
            Columns ``snapshot``, ``step`` (optimizer steps taken), ``epoch``
            (epochs of training done, fractional), ``train_accuracy`` and
            ``test_accuracy``; one row per snapshot.

        Raises
        ------
        KeyError
            If the model is not in the zoo.
        FileNotFoundError, CorruptZooFileError
            If its file is missing or its metadata are damaged.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     accuracy = zoo.snapshot_accuracy(first)
        >>> len(accuracy), int(accuracy.step[0])
        (20, 0)
        """
        return pd.DataFrame(self._read_file(model_id)["records"])

    def subset(self, model_ids: Sequence[str]) -> Zoo:
        """Return a view of the zoo restricted to some models, in the given order.

        Parameters
        ----------
        model_ids : sequence of str
            Models of this zoo.

        Returns
        -------
        Zoo

        Raises
        ------
        KeyError
            If a model is not in the zoo.

        Examples
        --------
        >>> import tempfile
        >>> config = sample_configs(1, random_state=1, n_epochs=1, input_size=4)[0]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     zoo = train_zoo([config], directory)
        ...     first = zoo.model_ids[0]
        ...     print(len(zoo.subset([])), len(zoo.subset([first])))
        0 1
        """
        for name in model_ids:
            self._check_model_id(name)
        view = Zoo(self.directory, self._entries, model_ids)
        view._checked = self._checked  # files verified once serve every view
        return view


def _init_worker(parent_pid: int) -> None:
    """Set up a worker: one torch thread, Ctrl-C left to the parent, no orphans.

    Workers train with one thread each, as n_jobs sets the parallelism. They
    ignore SIGINT, so a Ctrl-C of the whole process group is reported once, by
    the parent, which then terminates them; and they exit by themselves if the
    parent dies without doing so (killed with SIGKILL, say).
    """
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog = threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), daemon=True
    )
    watchdog.start()


def _exit_when_orphaned(parent_pid: int, *, interval: float = 0.5) -> None:
    """Exit this process (losing the model in progress) once its parent is gone."""
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Hold back SIGINT in this thread while it starts worker processes.

    The workers inherit the blocked signal, so a Ctrl-C in the second or two
    they take to import torch (before :func:`_init_worker` runs) prints no
    traceback from them; in this process it is delivered when unblocked.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Cancel the queued models and terminate the workers, then wait for them."""
    # Python 3.14 has ProcessPoolExecutor.terminate_workers(); before it, the
    # worker processes are only reachable through this private attribute.
    processes = list((executor._processes or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(ProcessLookupError, ValueError):
            process.terminate()
    for process in processes:
        with contextlib.suppress(ValueError):
            process.join()


def _train_and_save(config: dict, directory: str) -> str:
    """Train one network and write its file; return its model_id.

    A model that another run finished in the meantime is not trained again.
    """
    name = model_id(config)
    if _is_trained(Path(directory), name):
        return name
    network = train_network(config)
    _save_network(network, Path(directory) / f"{name}.safetensors")
    logger.info("trained %s in %.1f s", name, network.seconds)
    return name


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files left by killed processes (their pid is not alive)."""
    for path in directory.glob(".*.tmp"):
        pid = path.name.rsplit(".", 2)[-2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue


def _is_trained(directory: Path, name: str) -> bool:
    """Whether a current model file exists; a damaged one raises an error."""
    path = directory / f"{name}.safetensors"
    if not path.exists():
        return False
    try:
        _read_metadata(path)
    except StaleZooFileError:
        return False
    return True


def _check_n_jobs(n_jobs: int) -> int:
    """Number of worker processes; -1 means one per CPU."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs={n_jobs!r} is not valid; expected an int")
    if n_jobs == -1:
        return os.cpu_count() or 1
    if n_jobs < 1:
        raise ValueError(f"n_jobs={n_jobs!r} is not valid; expected -1 or an int >= 1")
    return int(n_jobs)


def _train_in_workers(
    configs: list[dict], directory: Path, *, n_jobs: int, bar: tqdm
) -> None:
    """Train the configurations in spawned worker processes.

    On an error or an interrupt the queue is dropped and the workers are
    terminated before the exception propagates: finished models stay on disk
    and the models in progress are lost.
    """
    executor = ProcessPoolExecutor(
        min(n_jobs, len(configs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    try:
        with _sigint_blocked():
            pending = {
                executor.submit(_train_and_save, config, str(directory))
                for config in configs
            }
        while pending:
            # A signal may land in one of the executor's threads; waking up
            # twice a second lets this thread run its handler promptly.
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                bar.update()
    except BaseException:
        _stop_workers(executor)
        raise
    executor.shutdown()


def _train_missing(
    configs: list[dict], directory: Path, *, n_jobs: int, progress: bool
) -> None:
    """Train the configurations, serially or in spawned worker processes."""
    bar = tqdm(
        total=len(configs), desc="training zoo", unit="model", disable=not progress
    )
    with bar:
        if n_jobs > 1 and len(configs) > 1:
            _train_in_workers(configs, directory, n_jobs=n_jobs, bar=bar)
            return
        for config in configs:
            _train_and_save(config, str(directory))
            bar.update()


def train_zoo(
    configs: Sequence[dict],
    directory: str | Path,
    *,
    n_jobs: int = 1,
    progress: bool = False,
) -> Zoo:
    """Train every configuration that has no model file yet and return the zoo.

    Models already on disk are not retrained, so rerunning after an interrupted
    run (even one killed mid-write) finishes the zoo. Each model file is
    written atomically by the process that trained it; the index is then
    rebuilt from the files under a lock, so parallel workers and concurrent
    runs never corrupt it. On ``KeyboardInterrupt`` (Ctrl-C) the models in
    progress are abandoned, the worker processes terminated and the index
    written for the models on disk before the interrupt is raised again.

    Parameters
    ----------
    configs : sequence of dict
        Configurations (see :func:`check_config`); duplicates are trained once.
    directory : str or pathlib.Path
        Zoo directory, created if needed.
    n_jobs : int, default=1
        Worker processes (spawned, one thread each); -1 uses every CPU.
    progress : bool, default=False
        Show a tqdm progress bar over the models to train.

    Returns
    -------
    Zoo
        A view of the directory's zoo restricted to ``configs``, in their order.

    Raises
    ------
    TypeError, ValueError
        If a configuration or ``n_jobs`` is not valid.
    NotADirectoryError
        If ``directory`` is an existing file.
    CorruptZooFileError
        If a model file already in the directory is damaged, or (as
        :class:`ForeignZooFileError`) a file of another program has the name of
        a model to train.
    KeyboardInterrupt
        Again, after cleaning up, when training is interrupted.

    Examples
    --------
    >>> import tempfile
    >>> configs = sample_configs(2, random_state=1, n_epochs=1, input_size=4)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_zoo(configs, directory)
    ...     again = train_zoo(configs, directory)  # nothing left to train
    >>> list(zoo.index.model_id) == list(again.index.model_id)
    True
    """
    n_jobs = _check_n_jobs(n_jobs)
    configs = [check_config(config) for config in configs]
    names = list(dict.fromkeys(model_id(config) for config in configs))
    by_name = {model_id(config): config for config in configs}
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"directory={str(directory)!r} is a file; expected a zoo directory "
            "(or a path to create one at)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)

    missing = [by_name[name] for name in names if not _is_trained(directory, name)]
    logger.info("%d of %d models to train in %s", len(missing), len(names), directory)
    try:
        _train_missing(missing, directory, n_jobs=n_jobs, progress=progress)
    except KeyboardInterrupt:
        # The workers are gone: index what they finished, drop their leftovers.
        _remove_stale_temporaries(directory)
        _sync_index(directory)
        raise
    return Zoo(directory, _sync_index(directory), names)


def load_zoo(directory: str | Path) -> Zoo:
    """Open a trained zoo.

    Parameters
    ----------
    directory : str or pathlib.Path
        A directory written by :func:`train_zoo`.

    Returns
    -------
    Zoo
        Every model of the directory, sorted by model_id.

    Raises
    ------
    NotADirectoryError
        If ``directory`` is a file.
    FileNotFoundError
        If the directory or its model files do not exist, or the index lists a
        model whose file is gone.
    CorruptZooFileError
        If a model file is damaged.

    Notes
    -----
    Damage is detected in a file's header and length (safetensors checks
    both) and in its metadata when the zoo is opened, and in its tensor data,
    against the SHA-256 recorded in its metadata, when a model is first read
    (:meth:`Zoo.state_dict`). Files of an older format (without a checksum)
    are stale: the zoo ignores them with a :class:`ZooWarning` and
    :func:`train_zoo` retrains them.

    Other ``.safetensors`` files in the directory, such as a checkpoint of
    your own saved with ``safetensors.torch.save_file``, are not zoo files
    (wdcore names its files ``<model_id>.safetensors`` and records its format
    in their metadata). They are skipped with a :class:`ZooWarning` naming
    them, not refused: they are not damaged, every model of the zoo can still
    be read, and telling you to delete them would be wrong. Move them out of
    the directory to silence the warning.

    The index lock uses ``fcntl``, so zoos are written on POSIX systems only.
    A zoo in a directory this process cannot write is opened read-only: no
    lock file is created and ``index.json`` is not rewritten; if it is missing
    or stale, the index is rebuilt in memory with a :class:`ZooWarning`.

    Examples
    --------
    >>> load_zoo("no/such/zoo")
    Traceback (most recent call last):
    ...
    FileNotFoundError: zoo directory 'no/such/zoo' does not exist; ...
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"directory={str(directory)!r} is a file, not a zoo directory; expected "
            "a directory written by train_zoo or `python -m wdcore zoo train`"
        )
    if not directory.is_dir():
        raise FileNotFoundError(
            f"zoo directory {str(directory)!r} does not exist; create it with "
            "train_zoo(configs, directory) or default_zoo()"
        )
    entries = _sync_index(directory)
    if not entries:
        raise FileNotFoundError(
            f"zoo directory {str(directory)!r} holds no model files; train some with "
            "train_zoo(configs, directory)"
        )
    return Zoo(directory, entries)


def default_configs(*, quick: bool = False) -> list[dict]:
    """The configurations of the book's default zoo.

    Fixed-architecture networks (240, or 12 when ``quick``) come first, then
    networks of the varied space (48, or 4), each part drawn by
    :func:`sample_configs` with its own fixed seed. Quick networks train for 2
    epochs instead of :data:`DEFAULT_N_EPOCHS`.

    Parameters
    ----------
    quick : bool, default=False
        The small configuration set used when testing the book.

    Returns
    -------
    list of dict

    Examples
    --------
    >>> len(default_configs(quick=True))
    16
    """
    settings = DEFAULT_ZOO["quick" if quick else "full"]
    return [
        *sample_configs(
            settings["n_fixed"],
            space="fixed",
            random_state=DEFAULT_ZOO_SEEDS["fixed"],
            n_epochs=settings["n_epochs"],
        ),
        *sample_configs(
            settings["n_varied"],
            space="varied",
            random_state=DEFAULT_ZOO_SEEDS["varied"],
            n_epochs=settings["n_epochs"],
        ),
    ]


def default_zoo(
    *,
    quick: bool = False,
    directory: str | Path = "_build/zoo",
    n_jobs: int = 2,
    progress: bool = False,
) -> Zoo:
    """Train (whatever is missing of) and return the book's default zoo.

    The full zoo holds 240 fixed-architecture networks spread evenly over the
    three datasets and 48 networks of the varied space, trained for 10 (digits),
    16 (textures) or 64 (faces) epochs; the quick zoo holds 12 + 4 networks
    trained for 2 epochs. They live in the ``full`` and ``quick``
    subdirectories of ``directory``.

    Parameters
    ----------
    quick : bool, default=False
        Train the small quick zoo instead.
    directory : str or pathlib.Path, default="_build/zoo"
        Parent directory of the ``full`` and ``quick`` zoos.
    n_jobs : int, default=2
        Worker processes used for training the full zoo; the quick zoo always
        trains in this process, which is faster than starting workers.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    Zoo
        Fixed-architecture models first, then the varied ones.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:  # doctest: +SKIP
    ...     zoo = default_zoo(quick=True, directory=directory)
    """
    subdirectory = Path(directory) / ("quick" if quick else "full")
    # Starting worker processes (each imports torch and loads the data) takes
    # longer than training the whole quick zoo in this process.
    return train_zoo(
        default_configs(quick=quick),
        subdirectory,
        n_jobs=1 if quick else n_jobs,
        progress=progress,
    )


def _parse_int(text: str, *, minimum: int, special: int | None = None) -> int:
    """An integer command line option: at least ``minimum``, or ``special``."""
    with contextlib.suppress(ValueError):
        value = int(text)
        if value >= minimum or value == special:
            return value
    expected = f"an int >= {minimum}" + ("" if special is None else f" or {special}")
    raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected {expected}")


def _train_parser() -> argparse.ArgumentParser:
    """The options of ``python -m wdcore zoo train``."""
    parser = argparse.ArgumentParser(
        prog="python -m wdcore zoo train",
        description="Train the networks of a model zoo that are not trained yet. "
        "An interrupted run (Ctrl-C) keeps the finished networks; rerun the same "
        "command to resume.",
    )
    positive, non_negative = (partial(_parse_int, minimum=m) for m in (1, 0))
    parser.add_argument("directory", help="zoo directory (created if needed)")
    parser.add_argument(
        "--n", type=positive, default=16, help="number of networks (default: 16)"
    )
    parser.add_argument(
        "--space",
        choices=SPACES,
        default="fixed",
        help="architecture space: the paper's fixed CNN, or sampled (varied) ones "
        "(default: fixed)",
    )
    parser.add_argument(
        "--seed", type=non_negative, default=0, help="sampling seed (default: 0)"
    )
    parser.add_argument(
        "--n-jobs",
        type=partial(_parse_int, minimum=1, special=-1),
        default=1,
        help="worker processes; -1 for one per CPU (default: 1)",
    )
    parser.add_argument(
        "--epochs", type=positive, default=None, help="epochs (default: per dataset)"
    )
    parser.add_argument(
        "--input-size",
        type=partial(_parse_int, minimum=MIN_INPUT_SIZE),
        default=INPUT_SIZE,
        help=f"image height and width in pixels, >= {MIN_INPUT_SIZE} "
        f"(default: {INPUT_SIZE})",
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    return parser


class _StopSignal(KeyboardInterrupt):
    """KeyboardInterrupt raised by a termination signal, whose number it keeps."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """Signal handler: stop like Ctrl-C, so that the zoo is left clean."""
    raise _StopSignal(signum)


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt meanwhile (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _plural(count: int, noun: str) -> str:
    """``"1 model"``, ``"2 models"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _report_stop(stop: KeyboardInterrupt, directory: str, names: list[str]) -> int:
    """Say how many models are on disk after an interrupt; return the exit status.

    The status is 130 for Ctrl-C and 128 + N for signal N (143 for SIGTERM), as
    a shell reports a process killed by that signal.
    """
    signum = getattr(stop, "signum", signal.SIGINT)
    cause = "interrupted" if signum == signal.SIGINT else f"stopped by {stop}"
    n_on_disk = sum(
        (Path(directory) / f"{name}.safetensors").is_file() for name in names
    )
    sys.stderr.write(
        f"{cause}; {n_on_disk} of {len(names)} models on disk, rerun the same "
        "command to resume\n"
    )
    return 128 + signum


def _report_training(zoo: Zoo, directory: str, n_present: int, seconds: float) -> None:
    """Say what was trained and how many models the directory now holds."""
    n_requested = len(zoo)
    sys.stdout.write(
        f"trained {_plural(n_requested - n_present, 'new network')} "
        f"({n_present} already present) in {seconds:.1f} s; {directory} now holds "
        f"{_plural(len(zoo._entries), 'model')}; mean test accuracy of the "
        f"requested {_plural(n_requested, 'network')}: "
        f"{zoo.index.test_accuracy.mean():.3f}\n"
    )


def main_train(argv: Sequence[str] | None = None) -> int:
    """Command line ``python -m wdcore zoo train DIRECTORY [options]``.

    Samples ``--n`` configurations of ``--space`` with seed ``--seed`` and trains
    those not yet in DIRECTORY, then says how many were trained, how many were
    already there and how many models DIRECTORY holds in all (it may hold
    models of other runs too). Ctrl-C or SIGTERM stops it: the finished models
    and the index stay on disk, and rerunning the same command resumes
    (SIGTERM is handled when called from the main thread).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``zoo train``; ``sys.argv`` by default.

    Returns
    -------
    int
        0 on success; 1 if the zoo directory or a file in it is rejected; 130
        if interrupted by Ctrl-C and 143 (128 + 15) if stopped by SIGTERM (the
        reason is written to standard error).

    Raises
    ------
    SystemExit
        From argparse: with status 2 (after a one-line usage error on standard
        error) for a bad option such as ``--n 0`` or ``--seed -1``, and with
        status 0 after ``--help``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     status = main_train([directory, "--n", "1", "--seed", "1",
    ...                          "--epochs", "1", "--input-size", "4"])
    ... # doctest: +ELLIPSIS
    trained 1 new network (0 already present) in ... s; ... now holds 1 model; ...
    >>> status
    0
    """
    args = _train_parser().parse_args(argv)
    configs = sample_configs(
        args.n,
        space=args.space,
        random_state=args.seed,
        n_epochs=args.epochs,
        input_size=args.input_size,
    )
    names = list(dict.fromkeys(model_id(config) for config in configs))
    start = time.perf_counter()
    try:
        with _sigterm_as_keyboard_interrupt():
            n_present = sum(_is_trained(Path(args.directory), name) for name in names)
            zoo = train_zoo(
                configs, args.directory, n_jobs=args.n_jobs, progress=args.progress
            )
    except KeyboardInterrupt as stop:
        return _report_stop(stop, args.directory, names)
    except (OSError, TypeError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    _report_training(zoo, args.directory, n_present, time.perf_counter() - start)
    return 0
