"""Read and write checkpoints without unpickling arbitrary objects.

Two formats are read: ``.safetensors`` files and PyTorch ``.pt``/``.pth``
(also ``.bin``, ``.ckpt``) files, the latter with ``torch.load(weights_only=True)``
so that a file asking to rebuild arbitrary Python objects is refused. Training
scripts often wrap the state dict, as in ``{"state_dict": ..., "epoch": 3}``;
:func:`extract_state_dict` finds it. Chapter 3 of the book uses these helpers to
describe any checkpoint from disk.

``.safetensors`` files written by wdcore (:func:`save_state_dict` and the model
zoo) record the SHA-256 of their tensor data in their metadata
(:data:`DATA_SHA256_KEY`), and reading such a file checks it, so damaged
tensor bytes raise an error instead of giving wrong weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save, save_file

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_SHA256_KEY",
    "CheckpointOrderWarning",
    "data_sha256",
    "extract_state_dict",
    "load_checkpoint",
    "load_state_dict",
    "natural_key_order",
    "pruned_tensor_names",
    "save_state_dict",
]

# Metadata entry of a .safetensors file holding the state-dict order as JSON
# (safetensors itself stores tensors sorted by name); wdcore's zoo files use the
# same entry.
ORDER_METADATA_KEY = "state_dict_keys"

# Metadata entry of a .safetensors file holding the SHA-256 (hex) of its tensor
# data, the bytes after the header. wdcore writes it and checks it when present;
# other writers leave it out, and their files are read unchecked.
DATA_SHA256_KEY = "data_sha256"

# Within one module, the order in which PyTorch registers these tensors.
SUFFIX_RANK = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}
# Tensor names whose natural order is certain to be PyTorch's: these, inside
# modules that are all numbered (as in nn.Sequential).
ORDERED_SUFFIXES = (*SUFFIX_RANK, "num_batches_tracked")

# Keys under which training scripts commonly store the state dict, in the order
# they are tried.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")

# No checkpoint of either format is shorter: a safetensors file starts with an
# 8-byte header length, and a torch zip archive needs its 22-byte end record.
MIN_CHECKPOINT_BYTES = 8

# Terminal colour codes, which torch puts into some of its error messages.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CheckpointOrderWarning(UserWarning):
    """A checkpoint does not record the order of its tensors, so it was guessed."""


class _DataChecksumError(ValueError):
    """Tensor data do not match the checksum in the file's metadata."""


def natural_key_order(keys: list[str]) -> list[str]:
    """Sort state-dict keys by module path, numbers numerically, weight first.

    ``"2.weight"`` comes before ``"10.weight"``, and within one module
    ``weight``, ``bias``, ``running_mean``, ``running_var`` come in the order
    PyTorch registers them. Named submodules (``conv1``, ``bn1``) are sorted
    alphabetically, which may not be their depth order.

    Parameters
    ----------
    keys : list of str
        State-dict keys.

    Returns
    -------
    list of str

    Examples
    --------
    >>> natural_key_order(["10.weight", "2.bias", "2.weight"])
    ['2.weight', '2.bias', '10.weight']
    """

    def sort_key(key: str) -> tuple:
        *path, last = key.split(".")
        parts = [
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in path
        ]
        return (*parts, (2, SUFFIX_RANK.get(last, len(SUFFIX_RANK)), last))

    return sorted(keys, key=sort_key)


def _ambiguous_siblings(keys: list[str]) -> list[str]:
    """Names whose natural order may not be PyTorch's; empty if the order is sure.

    PyTorch lists a module's own tensors before its submodules, and both in the
    order they were registered. Natural order matches that for numbered
    submodules (as in ``nn.Sequential``) and for ``weight``, ``bias`` and the
    BatchNorm statistics; two or more other names side by side, or own tensors
    beside submodules, leave it open.
    """
    children: dict[tuple[str, ...], tuple[set, set]] = {}
    for key in keys:
        *path, last = key.split(".")
        for depth in range(len(path)):
            children.setdefault(tuple(path[:depth]), (set(), set()))[0].add(path[depth])
        children.setdefault(tuple(path), (set(), set()))[1].add(last)
    for parent, (modules, tensors) in sorted(children.items()):
        numbered = all(name.isdigit() for name in modules)
        known = tensors <= set(ORDERED_SUFFIXES)
        if (
            (modules and tensors)
            or (len(modules) > 1 and not numbered)
            or (len(tensors) > 1 and not known)
        ):
            return [".".join((*parent, name)) for name in sorted(modules | tensors)]
    return []


def _warn_guessed_order(path: Path, keys: list[str]) -> None:
    """Warn that a checkpoint's tensor order was guessed, if it may be wrong."""
    ambiguous = _ambiguous_siblings(keys)
    if not ambiguous:
        return
    examples = ", ".join(repr(name) for name in ambiguous[:4])
    warnings.warn(
        f"checkpoint {str(path)!r} does not record the order of its tensors "
        f"(safetensors sorts them by name; wdcore keeps the order in the metadata "
        f"entry {ORDER_METADATA_KEY!r}), and the order of {examples} cannot be "
        "told from their names: they were put in natural name order, which may "
        "differ from depth order, and so may the descriptor's rows. To keep the "
        "order, save model.state_dict() with wdcore.io.save_state_dict or "
        "torch.save",
        CheckpointOrderWarning,
        stacklevel=4,
    )


def _zoo_snapshot_keys(names: list[str], keys: list[str]) -> list[str] | None:
    """Keys of the last snapshot if ``keys`` are a zoo file's ``"NN.<name>"``."""
    n_snapshots = len(keys) // max(len(names), 1)
    expected = [f"{index:02d}.{name}" for index in range(n_snapshots) for name in names]
    if not names or sorted(expected) != sorted(keys):
        return None
    return expected[-len(names) :]


def data_sha256(source: str | os.PathLike | bytes) -> str:
    """Return the SHA-256 of the tensor data of a safetensors file or payload.

    The tensor data are the bytes after the 8-byte header length and the JSON
    header, so the digest does not depend on the metadata and can be stored in
    it (:data:`DATA_SHA256_KEY`).

    Parameters
    ----------
    source : str, os.PathLike or bytes
        A ``.safetensors`` file, or its content as from
        ``safetensors.torch.save``.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> payload = save({"w": torch.zeros(2)}, metadata={"note": "any"})
    >>> data_sha256(payload) == data_sha256(save({"w": torch.zeros(2)}))
    True
    """
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        n_header = int.from_bytes(view[:8], "little")
        return hashlib.sha256(view[8 + n_header :]).hexdigest()
    with open(source, "rb") as handle:
        n_header = int.from_bytes(handle.read(8), "little")
        handle.seek(8 + n_header)
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _save_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> None:
    """Write a .safetensors file whose metadata records its data checksum."""
    # The data bytes do not depend on the metadata, so serializing once in
    # memory gives the digest of the file written next (about 5 ms per MB).
    digest = data_sha256(save(tensors, metadata=metadata))
    save_file(tensors, path, metadata={**metadata, DATA_SHA256_KEY: digest})


def _check_data_sha256(path: Path, recorded: str | None) -> None:
    """Raise ValueError if the data of ``path`` do not match ``recorded``."""
    if recorded is None:
        return
    actual = data_sha256(path)
    if actual != recorded:
        raise _DataChecksumError(
            f"checkpoint path={str(path)!r} is corrupt: the SHA-256 of its tensor "
            f"data is {actual[:12]}..., but its metadata records {recorded[:12]}...; "
            "expected them to match (restore or re-create the file)"
        )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors file in its recorded (or else natural) key order."""
    with safe_open(path, framework="pt", device="cpu") as handle:
        _check_data_sha256(path, (handle.metadata() or {}).get(DATA_SHA256_KEY))
        keys = list(handle.keys())
        recorded = (handle.metadata() or {}).get(ORDER_METADATA_KEY)
        names = json.loads(recorded) if recorded else []
        if sorted(names) == sorted(keys):
            return {name: handle.get_tensor(name) for name in names}
        snapshot_keys = _zoo_snapshot_keys(names, keys)
        if snapshot_keys is not None:
            logger.info("%s is a zoo file; describing its last snapshot", path)
            return {
                name: handle.get_tensor(key)
                for name, key in zip(names, snapshot_keys, strict=True)
            }
        _warn_guessed_order(path, keys)
        return {key: handle.get_tensor(key) for key in natural_key_order(keys)}


def load_checkpoint(path: str | os.PathLike) -> object:
    """Load the object stored in a checkpoint file, refusing arbitrary pickles.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file or a PyTorch file ending in ``.pt``, ``.pth``,
        ``.bin`` or ``.ckpt``.

    Returns
    -------
    object
        A ``dict`` of tensors for safetensors, in the order recorded by
        :func:`save_state_dict`, else in :func:`natural_key_order`; for a
        wdcore zoo file, which stores every snapshot, the state dict of the
        last snapshot. For PyTorch files whatever
        ``torch.load(weights_only=True)`` returns (tensors, dicts, lists,
        numbers, strings).

    Warns
    -----
    CheckpointOrderWarning
        If a safetensors file records no order and its names leave the order
        open. Natural order is PyTorch's own when sibling submodules are
        numbered (as in ``nn.Sequential``) and sibling tensors are ``weight``,
        ``bias`` or BatchNorm statistics; named siblings (``features`` and
        ``classifier``, say) may be out of depth order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the suffix is unknown, ``path`` is a directory, the file cannot be
        read (truncated, corrupt or not a checkpoint at all), its tensor data
        do not match the SHA-256 recorded in its metadata, or it needs
        arbitrary objects to be unpickled.

    Examples
    --------
    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> path = save_state_dict({"w": torch.ones(2)}, Path(directory) / "m.pt")
    >>> load_checkpoint(path)["w"].tolist()
    [1.0, 1.0]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + TORCH_SUFFIXES:
        raise ValueError(
            f"checkpoint path={str(path)!r} has suffix {suffix!r}; expected one of "
            f"{SAFETENSORS_SUFFIXES + TORCH_SUFFIXES}"
        )
    if path.is_dir():
        raise ValueError(
            f"checkpoint path={str(path)!r} is a directory; expected a checkpoint file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint path={str(path)!r} does not exist")
    if suffix in TORCH_SUFFIXES:
        _check_zip_crcs(path)
    try:
        if suffix in SAFETENSORS_SUFFIXES:
            return _load_safetensors(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_global(error)
        if refused is None:
            # No class or function was named: the pickle itself is malformed.
            raise ValueError(
                f"checkpoint path={str(path)!r} is not a readable PyTorch/"
                f"safetensors checkpoint (its pickle data are malformed: "
                f"{_malformed_detail(error)}); expected a complete {suffix} file "
                "(is it truncated or corrupt?)"
            ) from error
        raise ValueError(
            f"checkpoint path={str(path)!r} needs arbitrary Python objects to be "
            "unpickled, which wdcore refuses; expected tensors, dicts and plain "
            "values (re-save the state dict with torch.save(model.state_dict())"
            f" or as .safetensors). Loader said: {refused}"
        ) from error
    except (Warning, _DataChecksumError):
        # A warning turned into an error is the caller's choice, and a checksum
        # error already says what is wrong.
        raise
    # A corrupt file can make torch's unpickler fail in many ways (KeyError,
    # IndexError, UnicodeDecodeError, ...), so every failure is translated.
    except Exception as error:
        raise ValueError(
            f"checkpoint path={str(path)!r} is not a readable PyTorch/safetensors "
            f"checkpoint ({_reason(path, error)}); expected a complete {suffix} "
            "file (is it truncated or corrupt?)"
        ) from error


def _first_line(error: BaseException) -> str:
    """First non-empty line of an error message, without ANSI escape codes."""
    lines = ANSI_ESCAPE.sub("", str(error)).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _check_zip_crcs(path: Path) -> None:
    """Raise if a member of a zip-format PyTorch file fails its CRC-32 check.

    ``torch.load`` does not check the CRCs that ``torch.save`` records, so a
    flipped byte in the tensor data would otherwise give wrong weights.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a complete zip (legacy format or truncated): torch.load says
    except zipfile.LargeZipFile:  # pragma: no cover - needs a file over 2 GiB
        return
    if damaged is not None:
        raise ValueError(
            f"checkpoint path={str(path)!r} is corrupt: its member {damaged!r} "
            "fails its CRC-32 check; expected the bytes torch.save wrote (was the "
            "file damaged in storage or transfer?)"
        )


def _refused_global(error: BaseException) -> str | None:
    """The sentence of torch's weights-only refusal that names the object.

    ``None`` if the message names no class or function, which means the file
    is not a valid pickle rather than one that asks for arbitrary objects.
    """
    text = ANSI_ESCAPE.sub("", str(error))
    pattern = r"((?:Unsupported global: |Trying to load unsupported )GLOBAL .*?\.)"
    match = re.search(pattern + r"(?:\s|$)", text)
    return match.group(1) if match else None


def _malformed_detail(error: BaseException) -> str:
    """What torch's unpickler said about a malformed pickle, without its advice."""
    text = ANSI_ESCAPE.sub("", str(error))
    match = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    return match.group(1).strip() if match else type(error).__name__


def _reason(path: Path, error: BaseException) -> str:
    """Short, never empty, reason why a checkpoint file could not be read."""
    try:
        size = path.stat().st_size
    except OSError:
        size = MIN_CHECKPOINT_BYTES
    if size < MIN_CHECKPOINT_BYTES:
        return f"the file is too short: {size} bytes"
    message = _first_line(error)
    if message == type(error).__name__:
        return message
    return f"{type(error).__name__}: {message}"


def pruned_tensor_names(names: Iterable[str]) -> list[str]:
    """Names ``X`` that ``torch.nn.utils.prune`` split into ``X_orig`` and ``X_mask``.

    A pruned layer keeps its unpruned tensor as ``X_orig`` and a 0/1 mask as
    ``X_mask``, and computes with their product.

    Parameters
    ----------
    names : iterable of str
        State-dict keys, or the parameter and buffer names of one module.

    Returns
    -------
    list of str
        Sorted names ``X`` for which both ``X_orig`` and ``X_mask`` are listed.

    Examples
    --------
    >>> pruned_tensor_names(["0.bias", "0.weight_orig", "0.weight_mask", "1.w_orig"])
    ['0.weight']
    """
    names = set(names)
    return sorted(
        name.removesuffix("_orig")
        for name in names
        if name.endswith("_orig") and f"{name.removesuffix('_orig')}_mask" in names
    )


def extract_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """Find the state dict inside a loaded checkpoint.

    A mapping whose values are all tensors (or NumPy arrays) is a state dict.
    Otherwise the first of the keys ``"state_dict"``, ``"model_state_dict"``,
    ``"model"``, ``"net"``, ``"network"`` holding a mapping is searched, and so
    on recursively. An ``nn.Module`` gives its ``state_dict()``.

    Parameters
    ----------
    checkpoint : Mapping or torch.nn.Module
        What :func:`load_checkpoint` returned, or an in-memory equivalent.

    Returns
    -------
    dict of str to torch.Tensor
        Tensor names in their stored order, values on the CPU.

    Raises
    ------
    TypeError
        If ``checkpoint`` is neither a mapping nor a module.
    ValueError
        If no state dict can be found in the mapping.

    Examples
    --------
    >>> checkpoint = {"epoch": 3, "state_dict": {"fc.weight": torch.zeros(2, 2)}}
    >>> list(extract_state_dict(checkpoint))
    ['fc.weight']
    """
    if isinstance(checkpoint, torch.nn.Module):
        return dict(checkpoint.state_dict())
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            f"checkpoint of type {type(checkpoint).__name__!r} is not valid; "
            "expected a mapping of tensor names to tensors or an nn.Module"
        )
    if checkpoint and all(
        isinstance(value, torch.Tensor | np.ndarray) for value in checkpoint.values()
    ):
        return {str(name): torch.as_tensor(value) for name, value in checkpoint.items()}
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), Mapping | torch.nn.Module):
            return extract_state_dict(checkpoint[key])
    raise ValueError(
        f"no state dict found in a checkpoint with keys {list(checkpoint)[:10]!r}; "
        f"expected a mapping of names to tensors or one under a key in "
        f"{STATE_DICT_KEYS}"
    )


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load the state dict stored in a checkpoint file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` or ``.pt``/``.pth``/``.bin``/``.ckpt`` file.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable, refused (a whole pickled module included),
        or holds no state dict, such as a bare tensor (see
        :func:`load_checkpoint` and :func:`extract_state_dict`).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> _ = save_state_dict({"w": torch.zeros(3)}, path)
    >>> load_state_dict(path)["w"].shape
    torch.Size([3])
    """
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, Mapping):
        # A module cannot get here: torch.load(weights_only=True) refuses it.
        raise ValueError(
            f"checkpoint path={str(path)!r} holds a {type(checkpoint).__name__}, "
            "not a state dict; expected a mapping of tensor names to tensors, "
            f"possibly under a key such as {STATE_DICT_KEYS[0]!r}. Save "
            "model.state_dict() (a whole model saved with torch.save(model) is "
            "refused, since loading it needs unpickling)"
        )
    return extract_state_dict(checkpoint)


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike
) -> Path:
    """Write a state dict to ``.safetensors`` or ``.pt``, chosen by suffix.

    Parameters
    ----------
    state_dict : Mapping of str to torch.Tensor
        Tensors to store; contiguous CPU copies are written, so tied
        (shared) tensors are stored twice.
    path : str or os.PathLike
        Destination ending in ``.safetensors`` or one of ``.pt``, ``.pth``,
        ``.bin``, ``.ckpt``. Missing parent directories are created. A
        safetensors file records the key order in its metadata
        (``"state_dict_keys"``), since the format itself sorts tensors by name,
        and the SHA-256 of its tensor data (``"data_sha256"``).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If the suffix is not a known checkpoint suffix.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "m.pt"
    >>> save_state_dict({"b": torch.ones(1)}, path).name
    'm.pt'
    """
    path = Path(path)
    suffix = path.suffix.lower()
    tensors = {
        name: torch.as_tensor(value).detach().cpu().contiguous().clone()
        for name, value in state_dict.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in SAFETENSORS_SUFFIXES:
        metadata = {ORDER_METADATA_KEY: json.dumps(list(tensors))}
        _save_safetensors(tensors, path, metadata)
    elif suffix in TORCH_SUFFIXES:
        torch.save(tensors, path)
    else:
        raise ValueError(
            f"path={str(path)!r} has suffix {suffix!r}; expected one of "
            f"{SAFETENSORS_SUFFIXES + TORCH_SUFFIXES}"
        )
    return path
