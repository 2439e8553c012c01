"""MNIST loading: the IDX reader, the shipped offline digits, the cache and the download path.

The download tests run a real HTTP server on 127.0.0.1 (random port) serving tiny hand-made IDX
files from a temporary folder; nothing touches the real network.
"""

import gzip
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from scoretutor import data
from scoretutor.idx import idx_bytes, read_idx

ASSETS = Path(data.__file__).parent / "assets" / "mnist"


# -- IDX reader ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "int8", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(dtype, compress):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    b = read_idx(idx_bytes(a, compress=compress))
    assert b.shape == (2, 3, 5) and np.array_equal(a, b) and b.dtype.isnative


def test_idx_reader_matches_a_hand_written_file():
    # magic 00 00 08 02, sizes 2 and 3 (big-endian uint32), then 6 bytes.
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255])
    assert np.array_equal(read_idx(raw), np.array([[1, 2, 3], [4, 5, 255]], np.uint8))
    assert np.array_equal(read_idx(gzip.compress(raw)), read_idx(raw))


def test_idx_big_endian_values():
    raw = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    assert read_idx(raw).tolist() == [258, -1]


GOOD = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x02" + GOOD[4:], "not an IDX file"),            # wrong magic
    (b"PK\x03\x04" + GOOD[4:], "not an IDX file"),                  # some other format
    (b"", "not an IDX file"),                                        # empty
    (bytes([0, 0, 0x07, 2]) + GOOD[4:], "unknown IDX type byte 0x07"),
    (GOOD[:10], "truncated header"),                                 # sizes cut off
    (GOOD[:-1], "data truncated"),                                   # one value missing
    (bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 4]) + GOOD[12:], "data truncated"),   # wrong dims
    (GOOD + b"\x00", "trailing bytes"),
    (gzip.compress(GOOD)[:-6], "gzip stream is truncated"),          # interrupted .gz
])
def test_idx_reader_rejects_malformed_files_clearly(raw, message, tmp_path):
    path = tmp_path / "bad-idx3-ubyte.gz"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert path.name in str(err.value)


def test_idx_writer_refuses_unsupported_dtypes():
    with pytest.raises(ValueError, match="cannot store dtype"):
        idx_bytes(np.zeros(3, np.uint16))


# -- shipped digits and load_mnist -----------------------------------------------------------------
SHIPPED_MD5 = {  # /work/shared/README.md and scoretutor/assets/mnist/README.md
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-10k-images-idx3-ubyte.gz": "f53607543632d26f9c479f878aba5dab",
    "train-10k-labels-idx1-ubyte.gz": "e433f59c73edae4edde52461f6057f9d",
}


def test_shipped_files_are_the_documented_ones():
    for name, md5 in SHIPPED_MD5.items():
        assert hashlib.md5((ASSETS / name).read_bytes()).hexdigest() == md5, name
    # the shipped test files are the official ones, so load_mnist needs no download for them
    assert data.MNIST_FILES["t10k-images-idx3-ubyte.gz"] == SHIPPED_MD5["t10k-images-idx3-ubyte.gz"]
    assert data.MNIST_FILES["t10k-labels-idx1-ubyte.gz"] == SHIPPED_MD5["t10k-labels-idx1-ubyte.gz"]
    readme = (ASSETS / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme and "MIT" in readme and "1.1.0" in readme


def test_load_mnist_test_split_is_the_official_test_set(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the test split needs no fallback warning
        x, y = data.load_mnist("test", root=tmp_path, download=False)
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10_000,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    # pixels are k/255 exactly
    assert torch.equal((x * 255).round() / 255, x)


def test_load_mnist_falls_back_to_the_shipped_training_digits_with_one_warning(tmp_path):
    with pytest.warns(UserWarning, match="10,000 shipped training digits") as record:
        x, y = data.load_mnist("train", root=tmp_path, download=False)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "\n" not in msg and "SCORETUTOR_DATA" in msg and "60,000" in msg
    assert x.shape == (10_000, 1, 28, 28) and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=10).tolist()
    assert counts == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert not any(tmp_path.iterdir())  # nothing written


def test_shipped_training_and_test_digits_share_no_image(tmp_path):
    with pytest.warns(UserWarning, match="shipped training digits"):
        xtr, _ = data.load_mnist("train", root=tmp_path, download=False)
    xte, _ = data.load_mnist("test", root=tmp_path, download=False)
    to_bytes = lambda x: {bytes(row) for row in (x * 255).round().to(torch.uint8).flatten(1).numpy()}
    assert not to_bytes(xtr) & to_bytes(xte)


def test_load_mnist_validates_split():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_mnist("valid")


def test_mnist_split_indices_are_a_seeded_random_partition():
    ref, base = data.mnist_split_indices(10_000, seed=0)
    assert len(ref) == len(base) == 5000
    assert torch.equal(torch.cat([ref, base]).sort().values, torch.arange(10_000))
    ref2, _ = data.mnist_split_indices(10_000, seed=0)
    ref3, _ = data.mnist_split_indices(10_000, seed=1)
    assert torch.equal(ref, ref2) and not torch.equal(ref, ref3)
    # not a contiguous block: both halves cover the whole range about evenly (each tenth holds
    # 500 ± 4·√(1000·¼) ≈ 500 ± 63 of the reference half under a random split)
    per_tenth = torch.bincount(ref // 1000, minlength=10)
    assert ((per_tenth - 500).abs() < 63).all()
