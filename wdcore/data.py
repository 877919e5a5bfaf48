"""Small image datasets that ship with scikit-learn and scikit-image.

The model zoo of the NWS paper (Eilertsen et al., ECAI 2020) was trained on MNIST,
CIFAR-10, SVHN, STL-10 and Fashion-MNIST. The book must build without a network
connection, so chapter 2 trains on three datasets that are installed with the
libraries instead: handwritten digits, faces versus non-faces, and texture
patches. Every image is turned into one channel of ``input_size x input_size``
pixels, standardized with the mean and standard deviation of its training split,
and split into train and test sets with a fixed seed.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from skimage import data as skimage_data
from skimage.transform import resize
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from wdcore._random import RandomState, torch_generator

__all__ = [
    "DATASETS",
    "INPUT_SIZE",
    "TEXTURES",
    "Dataset",
    "augment",
    "load_dataset",
]

DATASETS = ("digits", "faces", "textures")
INPUT_SIZE = 16
TEXTURES = ("brick", "grass", "gravel", "moon")
TEST_SIZE = 0.25
SPLIT_SEED = 0
# Textures are cut as non-overlapping square patches of this many pixels of the
# 512 x 512 photos (256 patches per photo) before resizing to ``input_size``.
TEXTURE_PATCH_SIZE = 32


@dataclass(frozen=True)
class Dataset:
    """A standardized image classification dataset split into train and test.

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    x_train : ndarray of shape (n_train, 1, input_size, input_size)
        Standardized float32 training images (read-only).
    y_train : ndarray of shape (n_train,)
        Integer class labels of the training images.
    x_test : ndarray of shape (n_test, 1, input_size, input_size)
        Test images, standardized with the training mean and deviation.
    y_test : ndarray of shape (n_test,)
        Test labels.
    class_names : tuple of str
        Name of each class, indexed by label.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_size(self) -> int:
        """Height (and width) of every image in pixels."""
        return int(self.x_train.shape[-1])


def _load_digits_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Digits as 8 x 8 images in [0, 1], labels 0-9."""
    bunch = load_digits()
    images = bunch.images / 16.0  # (1797, 8, 8)
    return images, bunch.target, tuple(str(digit) for digit in range(10))


def _load_faces_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The 100 faces and 100 non-faces of ``skimage.data.lfw_subset``."""
    images = skimage_data.lfw_subset()  # (200, 25, 25), faces first
    labels = np.repeat([1, 0], 100)  # (200,)
    return images, labels, ("non-face", "face")


def _load_texture_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Non-overlapping square patches of the bundled texture photos."""
    patches, labels = [], []
    size = TEXTURE_PATCH_SIZE
    for label, name in enumerate(TEXTURES):
        photo = getattr(skimage_data, name)() / 255.0  # (512, 512)
        n_rows, n_cols = photo.shape[0] // size, photo.shape[1] // size
        grid = photo[: n_rows * size, : n_cols * size]
        grid = grid.reshape(n_rows, size, n_cols, size).swapaxes(1, 2)
        patches.append(grid.reshape(-1, size, size))  # (n_rows * n_cols, size, size)
        labels.append(np.full(n_rows * n_cols, label))
    return np.concatenate(patches), np.concatenate(labels), TEXTURES


_LOADERS = {
    "digits": _load_digits_images,
    "faces": _load_faces_images,
    "textures": _load_texture_images,
}


@functools.lru_cache(maxsize=16)
def _load_cached(name: str, input_size: int) -> Dataset:
    """Build (once per process) the standardized, split dataset."""
    images, labels, class_names = _LOADERS[name]()
    images = resize(
        images.astype(np.float64),
        (len(images), input_size, input_size),
        order=1,
        anti_aliasing=input_size < images.shape[-1],
    )  # (n_images, input_size, input_size)
    images = images[:, None].astype(np.float32)  # (n_images, 1, size, size)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels.astype(np.int64),
        test_size=TEST_SIZE,
        random_state=SPLIT_SEED,
        stratify=labels,
    )

    # One scalar mean and deviation per dataset, from the training split only,
    # so the test images never inform the normalization.
    mean, std = float(x_train.mean()), float(x_train.std())
    arrays = [(x_train - mean) / std, y_train, (x_test - mean) / std, y_test]
    for array in arrays:
        array.flags.writeable = False
    return Dataset(name, *arrays, class_names=class_names)


def _check_augment_arguments(
    images: object, max_shift: object, brightness: object, contrast: object
) -> None:
    """Raise TypeError or ValueError naming the first invalid argument of augment."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        kind = type(images).__name__
        kind += f" of dtype {images.dtype}" if hasattr(images, "dtype") else ""
        raise TypeError(
            f"images is a {kind}; expected a floating-point torch.Tensor of shape "
            "(n_images, n_channels, height, width)"
        )
    if images.ndim != 4:
        raise ValueError(
            f"images have shape {tuple(images.shape)!r}; expected 4 axes, "
            "(n_images, n_channels, height, width)"
        )
    if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral):
        raise TypeError(f"max_shift={max_shift!r} is not valid; expected an int >= 0")
    if max_shift < 0:
        raise ValueError(f"max_shift={max_shift!r} is not valid; expected an int >= 0")
    limits = {"brightness": (brightness, math.inf), "contrast": (contrast, 1)}
    for name, (value, largest) in limits.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r} is not valid; expected a number")
        if not (0 <= value <= largest and math.isfinite(value)):
            expected = "[0, 1]" if largest == 1 else "[0, inf), finite"
            raise ValueError(
                f"{name}={value!r} is not valid; expected a number in {expected}"
            )


def augment(
    images: torch.Tensor,
    *,
    max_shift: int = 2,
    brightness: float = 0.2,
    contrast: float = 0.2,
    random_state: RandomState | torch.Generator = None,
) -> torch.Tensor:
    """Randomly translate and jitter the brightness and contrast of images.

    Each image is shifted by up to ``max_shift`` pixels along each axis (the
    uncovered border is filled with 0, the mean of standardized data), then its
    contrast around its own mean is scaled by a factor drawn from
    ``[1 - contrast, 1 + contrast]`` and a brightness offset drawn from
    ``[-brightness, brightness]`` (in standard deviations) is added. This stands
    in for the geometric and colour augmentation of the NWS zoo.

    Parameters
    ----------
    images : torch.Tensor of shape (n_images, n_channels, height, width)
        A batch of standardized images.
    max_shift : int, default=2
        Largest translation in pixels.
    brightness : float, default=0.2
        Largest brightness offset.
    contrast : float, default=0.2
        Largest relative change of contrast, in [0, 1] (a larger value could
        invert an image).
    random_state : None, int, numpy.random.Generator or torch.Generator
        Source of the draws; a ``torch.Generator`` is used as is.

    Returns
    -------
    torch.Tensor of shape (n_images, n_channels, height, width)
        The augmented images (a new tensor).

    Raises
    ------
    TypeError
        If ``images`` is not a floating-point tensor, ``max_shift`` not an int,
        ``brightness`` or ``contrast`` not a number, or ``random_state`` of
        another type.
    ValueError
        If ``images`` does not have 4 axes, ``max_shift`` is negative,
        ``brightness`` is negative or not finite, ``contrast`` is outside
        [0, 1], or ``random_state`` is a negative int.

    Examples
    --------
    >>> images = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> augment(images, random_state=0).shape
    torch.Size([1, 1, 4, 4])
    >>> same = augment(images, max_shift=0, brightness=0, contrast=0)
    >>> bool(torch.allclose(same, images))
    True
    """
    _check_augment_arguments(images, max_shift, brightness, contrast)
    if isinstance(random_state, torch.Generator):
        generator = random_state
    else:
        generator = torch_generator(random_state)
    n_images, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, [max_shift] * 4)  # (n, c, h+2s, w+2s)
    shifts = torch.randint(
        0, 2 * max_shift + 1, (2, n_images), generator=generator
    )  # (2, n_images)
    rows = shifts[0, :, None] + torch.arange(height)  # (n_images, height)
    cols = shifts[1, :, None] + torch.arange(width)  # (n_images, width)
    batch = torch.arange(n_images)[:, None, None]  # (n_images, 1, 1)
    shifted = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    shifted = shifted.permute(0, 3, 1, 2)  # (n_images, n_channels, height, width)

    scale = 1 + contrast * (2 * torch.rand(n_images, 1, 1, 1, generator=generator) - 1)
    offset = brightness * (2 * torch.rand(n_images, 1, 1, 1, generator=generator) - 1)
    means = shifted.mean(dim=(1, 2, 3), keepdim=True)  # (n_images, 1, 1, 1)
    return (shifted - means) * scale + means + offset


def load_dataset(name: str, *, input_size: int = INPUT_SIZE) -> Dataset:
    """Load a bundled dataset, resized, standardized and split into train/test.

    Nothing is downloaded. The split is stratified with a fixed seed, so every
    call (and every process) sees the same train and test images. Results are
    cached per process; the returned arrays are read-only.

    Parameters
    ----------
    name : {"digits", "faces", "textures"}
        ``"digits"``: scikit-learn's 1,797 handwritten digits (10 classes).
        ``"faces"``: scikit-image's ``lfw_subset``, 100 faces and 100 non-faces
        (2 classes). ``"textures"``: 32 x 32 patches cut from scikit-image's
        ``brick``, ``grass``, ``gravel`` and ``moon`` photos (4 classes, 256
        patches each).
    input_size : int, default=16
        Height and width, in pixels, that every image is resized to.

    Returns
    -------
    Dataset
        Images of shape ``(n, 1, input_size, input_size)`` standardized with
        the training split's mean and standard deviation, and integer labels.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`DATASETS` or ``input_size`` is not an
        integer of at least 4.

    Examples
    --------
    >>> digits = load_dataset("digits")
    >>> digits.x_train.shape[1:], digits.n_classes
    ((1, 16, 16), 10)
    >>> round(float(digits.x_train.mean()), 6)
    0.0
    """
    if name not in DATASETS:
        raise ValueError(f"name={name!r} is not a dataset; expected one of {DATASETS}")
    if isinstance(input_size, bool) or not isinstance(input_size, int | np.integer):
        raise ValueError(f"input_size={input_size!r} must be an int of at least 4")
    if input_size < 4:
        raise ValueError(f"input_size={input_size!r} must be an int of at least 4")
    return _load_cached(name, int(input_size))
