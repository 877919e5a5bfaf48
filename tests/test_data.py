"""Tests of wdcore.data: bundled datasets and augmentation."""

import socket

import numpy as np
import pytest
import torch

from wdcore import data
from wdcore.data import DATASETS, augment, load_dataset

EXPECTED_CLASSES = {"digits": 10, "faces": 2, "textures": len(data.TEXTURES)}


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("input_size", [8, 16])
def test_dataset_shapes_labels_and_split(name, input_size):
    dataset = load_dataset(name, input_size=input_size)
    n_train, n_test = len(dataset.x_train), len(dataset.x_test)

    assert dataset.x_train.shape == (n_train, 1, input_size, input_size)
    assert dataset.x_test.shape == (n_test, 1, input_size, input_size)
    assert dataset.x_train.dtype == np.float32
    assert dataset.y_train.dtype == np.int64
    assert dataset.n_classes == EXPECTED_CLASSES[name]
    assert dataset.input_size == input_size
    assert set(np.unique(dataset.y_train)) == set(range(dataset.n_classes))
    assert n_test / (n_train + n_test) == pytest.approx(data.TEST_SIZE, abs=0.01)

    # Stratified: every class has (nearly) the same share in train and test.
    train_share = np.bincount(dataset.y_train) / n_train
    test_share = np.bincount(dataset.y_test) / n_test
    np.testing.assert_allclose(train_share, test_share, atol=0.02)


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_is_standardized_with_training_statistics(name):
    dataset = load_dataset(name)

    assert float(dataset.x_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(dataset.x_train.std()) == pytest.approx(1.0, abs=1e-4)
    assert abs(float(dataset.x_test.mean())) < 0.1
    assert np.isfinite(dataset.x_test).all()


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_is_read_only_and_deterministic(name):
    first = load_dataset(name)
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0, 0, 0] = 1.0

    data._load_cached.cache_clear()
    second = load_dataset(name)
    assert second is not first
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_loading_needs_no_network(monkeypatch):
    def refuse_connection(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse_connection)
    monkeypatch.setattr(socket.socket, "connect", refuse_connection)
    data._load_cached.cache_clear()
    for name in DATASETS:
        assert len(load_dataset(name, input_size=12).x_train) > 0


def test_faces_and_textures_classes_are_distinct():
    faces = load_dataset("faces")
    assert faces.class_names == ("non-face", "face")
    assert np.bincount(faces.y_train).tolist() == [75, 75]

    textures = load_dataset("textures")
    class_means = [
        textures.x_train[textures.y_train == label].mean()
        for label in range(textures.n_classes)
    ]
    assert len(set(np.round(class_means, 3))) == textures.n_classes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, "name='mnist' is not a dataset"),
        ({"name": "digits", "input_size": 3}, "input_size=3 must be an int"),
        ({"name": "digits", "input_size": 16.0}, "input_size=16.0 must be an int"),
        ({"name": "digits", "input_size": True}, "input_size=True must be an int"),
    ],
)
def test_load_dataset_rejects_bad_arguments(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        load_dataset(name, **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augment_translates_within_max_shift(seed):
    images = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
    shifted = augment(images, max_shift=1, brightness=0, contrast=0, random_state=seed)
    padded = torch.nn.functional.pad(images, [1, 1, 1, 1])
    for image, result in zip(padded, shifted, strict=True):
        candidates = [
            image[:, row : row + 6, col : col + 6]
            for row in range(3)
            for col in range(3)
        ]
        assert any(
            torch.allclose(result, candidate, atol=1e-6) for candidate in candidates
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_augment_jitter_keeps_shape_and_is_reproducible(seed):
    images = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    first = augment(images, random_state=seed)
    second = augment(images, random_state=seed)

    assert first.shape == images.shape
    assert torch.equal(first, second)
    assert not torch.equal(first, augment(images, random_state=seed + 1))

    # Contrast alone scales each image around its own mean.
    scaled = augment(images, max_shift=0, brightness=0, random_state=seed)
    torch.testing.assert_close(scaled.mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)))
    ratio = scaled.std(dim=(1, 2, 3)) / images.std(dim=(1, 2, 3))
    assert ((ratio >= 0.8 - 1e-5) & (ratio <= 1.2 + 1e-5)).all()


def test_augment_accepts_a_torch_generator():
    images = torch.zeros(4, 1, 5, 5)
    first = augment(images, random_state=torch.Generator().manual_seed(3))
    second = augment(images, random_state=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "match"),
    [
        (
            torch.zeros(2, 1, 4, 4),
            {"max_shift": -1},
            ValueError,
            r"max_shift=-1 is not",
        ),
        (torch.zeros(2, 1, 4, 4), {"max_shift": 1.5}, TypeError, r"max_shift=1.5 is"),
        (torch.zeros(2, 1, 4, 4), {"max_shift": True}, TypeError, r"max_shift=True"),
        (torch.zeros(2, 4, 4), {}, ValueError, r"images have shape \(2, 4, 4\); expec"),
        (torch.zeros(2, 1, 1, 4, 4), {}, ValueError, r"shape \(2, 1, 1, 4, 4\)"),
        (np.zeros((2, 1, 4, 4)), {}, TypeError, r"images is a ndarray of dtype float"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.long), {}, TypeError, r"dtype torch.int"),
        (torch.zeros(2, 1, 4, 4), {"brightness": -0.1}, ValueError, r"brightness=-0.1"),
        (
            torch.zeros(2, 1, 4, 4),
            {"brightness": np.inf},
            ValueError,
            r"brightness=inf",
        ),
        (torch.zeros(2, 1, 4, 4), {"contrast": 1.5}, ValueError, r"in \[0, 1\]"),
        (torch.zeros(2, 1, 4, 4), {"contrast": float("nan")}, ValueError, "nan"),
        (torch.zeros(2, 1, 4, 4), {"contrast": "0.2"}, TypeError, r"contrast='0.2'"),
    ],
)
def test_augment_rejects_bad_arguments(images, kwargs, error, match):
    """Regression: max_shift=-1 and 3-D inputs failed with raw torch and unpacking
    errors that named neither the argument nor the value."""
    with pytest.raises(error, match=match):
        augment(images, random_state=0, **kwargs)
