"""Data sets known only through samples: MNIST (download, cache, shipped offline digits).

``load_mnist`` returns float32 images in [0, 1] and int64 labels; ``mnist_split_indices`` gives the
fixed random halves of the test set used by the quality protocol (``scoretutor.mnist.quality``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from scoretutor.checks import count
from scoretutor.errors import DataError
from scoretutor.files import cache_dir
from scoretutor.mnist.download import ChecksumError, DownloadError, md5sum
from scoretutor.mnist.download import download as _download
from scoretutor.mnist.idx import read_idx

MNIST_FILES = {  # the four official files and their published md5s
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"  # the files shipped with the package
SHIPPED_MNIST = {  # inside the package, shipped/digits/ (see the README there)
    "train": ("train-10k-images-idx3-ubyte.gz", "train-10k-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),  # = the official files
}
MNIST_MIRRORS = (  # tried in order; override with mirrors=... or $SCORETUTOR_MNIST_MIRRORS
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DATA_ENV = "SCORETUTOR_DATA"
MIRRORS_ENV = "SCORETUTOR_MNIST_MIRRORS"
_SPLITS = {"train": "train", "test": "t10k"}


def mnist_cache_dir(root=None) -> Path:
    """Where the four MNIST files are looked for and downloaded to: ``root``, else
    ``$SCORETUTOR_DATA``, else the package cache's ``mnist`` folder (:func:`scoretutor.files.cache_dir`)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV, "").strip():
        return Path(os.environ[DATA_ENV].strip()).expanduser()
    return cache_dir("mnist")


def mnist_mirrors(mirrors=None) -> list[str]:
    """Base URLs to download from, in order: ``mirrors``, else ``$SCORETUTOR_MNIST_MIRRORS``
    (comma-separated), else :data:`MNIST_MIRRORS`."""
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "")
        mirrors = env.split(",") if env.strip() else MNIST_MIRRORS
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    return [m.strip() for m in mirrors if m and m.strip()]


def _mnist_arrays(images, labels, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the shapes of parsed MNIST arrays; uint8 images → float32 (N, 1, 28, 28) in [0, 1]."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != "uint8":
        raise DataError(f"{name}: images must be uint8 of shape (N, 28, 28), got "
                         f"{images.dtype} {tuple(images.shape)}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype != "uint8":
        raise DataError(f"{name}: labels must be uint8 of shape ({images.shape[0]},), got "
                         f"{labels.dtype} {tuple(labels.shape)}")
    if labels.size and labels.max() > 9:
        raise DataError(f"{name}: labels must lie in 0..9, found {int(labels.max())}")
    x = torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze(1)
    return x, torch.from_numpy(labels).to(torch.int64)


def load_shipped_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits shipped in the package, as :func:`load_mnist` returns them: ``"train"``, 10,000
    MNIST training digits; ``"test"``, the official 10,000 test digits."""
    if split not in SHIPPED_MNIST:
        raise DataError(f"split must be one of {sorted(SHIPPED_MNIST)}, got {split!r}")
    folder = SHIPPED_DIR / "digits"
    img, lab = (folder / f for f in SHIPPED_MNIST[split])
    return _mnist_arrays(read_idx(img, img.name), read_idx(lab, lab.name), f"shipped MNIST {split}")


def load_mnist(split: str = "train", root=None, download: bool = True, mirrors=None,
               timeout: float = 20.0) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as ``(images, labels)``: float32 (N, 1, 28, 28) in [0, 1] and int64 labels, on the CPU.

    The official files are read from the cache folder (:func:`mnist_cache_dir`); missing ones are
    downloaded there when ``download`` (from :func:`mnist_mirrors`, md5-verified, atomically).
    Cached files are md5-checked on every load (a ``ChecksumError`` names the bad file).

    Fallback: when the training files are neither cached nor downloadable, the 10,000 training
    digits shipped in the package are used, with a one-line warning. The test split needs no
    network: the shipped test files are the official ones (same md5), used when none are cached.
    """
    if split not in _SPLITS:
        raise DataError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    folder = mnist_cache_dir(root)
    names = [f"{_SPLITS[split]}-images-idx3-ubyte.gz", f"{_SPLITS[split]}-labels-idx1-ubyte.gz"]
    missing = [n for n in names if not (folder / n).is_file()]
    if split == "test" and missing:
        return load_shipped_mnist("test")
    reason = None
    if missing and download:
        try:
            for n in missing:
                _download(n, MNIST_FILES[n], mnist_mirrors(mirrors), folder, timeout=timeout)
        except DownloadError as err:
            reason = str(err)
    elif missing:
        reason = f"download=False and no {', '.join(missing)} in {folder}"
    if reason is not None:
        warnings.warn(f"load_mnist: using the 10,000 shipped training digits ({reason}); the full "
                      f"60,000 need network access or the four official MNIST files in ${DATA_ENV}",
                      stacklevel=2)
        return load_shipped_mnist("train")
    for n in names:
        digest = md5sum(folder / n)
        if digest != MNIST_FILES[n]:
            raise ChecksumError(f"{folder / n} has md5 {digest}, expected {MNIST_FILES[n]}: "
                                "delete it to download it again")
    img, lab = (folder / n for n in names)
    return _mnist_arrays(read_idx(img), read_idx(lab), f"MNIST {split} in {folder}")


def mnist_split_indices(n: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random split of ``range(n)`` into two halves, ``(reference, baseline)`` (sorted).

    The quality protocol: the reference half of the test set is the Fréchet reference; random
    subsets of the baseline half are the real-digit baseline. Not a contiguous split: MNIST's test
    writers are grouped, so a block is not a random sample.
    """
    n = count(n, "n", 2)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[: n // 2].sort().values, perm[n // 2:].sort().values
