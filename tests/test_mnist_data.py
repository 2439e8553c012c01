"""MNIST loading: the IDX reader, the shipped offline digits, the cache and the download path.

The download tests run a real HTTP server on 127.0.0.1 (random port) serving tiny hand-made IDX
files from a temporary folder; nothing touches the real network.
"""

import gzip
import hashlib
import http.server
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from scoretutor.mnist import data
from scoretutor.mnist.download import ChecksumError, DownloadError, download, fetch
from scoretutor.mnist.idx import idx_bytes, read_idx

ASSETS = data.SHIPPED_DIR / "digits"


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
SHIPPED_MD5 = {  # /work/shared/README.md and scoretutor/mnist/shipped/digits/README.md
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


# -- cache folder and mirrors ----------------------------------------------------------------------
def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SCORETUTOR_DATA", raising=False)
    monkeypatch.delenv("SCORETUTOR_CACHE", raising=False)
    if sys.platform.startswith("linux"):
        assert data.mnist_cache_dir() == tmp_path / "xdg" / "scoretutor" / "mnist"
    monkeypatch.setenv("SCORETUTOR_CACHE", str(tmp_path / "cache"))  # one cache rule for the package
    assert data.mnist_cache_dir() == tmp_path / "cache" / "mnist"
    monkeypatch.setenv("SCORETUTOR_DATA", str(tmp_path / "env"))
    assert data.mnist_cache_dir() == tmp_path / "env"
    assert data.mnist_cache_dir(tmp_path / "root") == tmp_path / "root"


def test_mirror_precedence(monkeypatch):
    monkeypatch.delenv("SCORETUTOR_MNIST_MIRRORS", raising=False)
    assert data.mnist_mirrors() == list(data.MNIST_MIRRORS)
    monkeypatch.setenv("SCORETUTOR_MNIST_MIRRORS", " http://a/x/ , http://b/ ,")
    assert data.mnist_mirrors() == ["http://a/x/", "http://b/"]
    assert data.mnist_mirrors(["http://c/"]) == ["http://c/"]
    assert data.mnist_mirrors("http://d/") == ["http://d/"]


# -- downloads from a real local HTTP server -------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves files below the server's folder. Paths under /cut/ send the full Content-Length but
    only half the body, then close the connection; paths under /slow/ wait 2 s before answering."""

    def do_GET(self):
        path = self.server.folder / self.path.lstrip("/")
        if self.path.startswith("/slow/"):
            time.sleep(2)
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/cut/"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


TINY = {  # hand-made MNIST-like files: 5 training and 3 test digits
    "train-images-idx3-ubyte.gz": idx_bytes(np.arange(5 * 784).reshape(5, 28, 28).astype(np.uint8)),
    "train-labels-idx1-ubyte.gz": idx_bytes(np.array([3, 1, 4, 1, 5], np.uint8)),
    "t10k-images-idx3-ubyte.gz": idx_bytes(np.full((3, 28, 28), 255, np.uint8)),
    "t10k-labels-idx1-ubyte.gz": idx_bytes(np.array([2, 7, 1], np.uint8)),
}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local server with mirrors good/, corrupt/ (one flipped byte), cut/ and slow/; the md5s of
    the tiny files replace the published ones. Yields (base URL, closed-port URL, cache folder)."""
    served = tmp_path / "served"
    for sub in ["good", "cut", "slow", "corrupt"]:
        (served / sub).mkdir(parents=True)
        for name, raw in TINY.items():
            (served / sub / name).write_bytes(raw)
    for name, raw in TINY.items():
        (served / "corrupt" / name).write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    monkeypatch.setattr(data, "MNIST_FILES", {n: hashlib.md5(r).hexdigest() for n, r in TINY.items()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # e.g. the client gave up on slow/: expected
    server.folder = served
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    with socket.socket() as s:  # a port that nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", closed, tmp_path / "cache"
    finally:
        server.shutdown()
        server.server_close()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_from_a_good_mirror_then_load_from_the_cache(mirror):
    url, _, cache = mirror
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        x, y = data.load_mnist("train", root=cache, mirrors=[url + "good/"])
    assert x.shape == (5, 1, 28, 28) and y.tolist() == [3, 1, 4, 1, 5]
    assert torch.equal((x * 255).round().to(torch.uint8).flatten(), torch.arange(5 * 784).to(torch.uint8))
    assert _files(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]  # no .part
    # now the cache serves the files: an unusable mirror list is not even tried
    x2, _ = data.load_mnist("train", root=cache, mirrors=["http://127.0.0.1:1/"])
    assert torch.equal(x, x2)


def test_corrupted_file_is_a_clear_error_and_nothing_is_cached(mirror):
    url, _, cache = mirror
    name = "train-labels-idx1-ubyte.gz"
    with pytest.raises(ChecksumError, match="md5 mismatch .* nothing was saved"):
        fetch(url + "corrupt/" + name, data.MNIST_FILES[name], cache / name)
    assert _files(cache) == []
    with pytest.warns(UserWarning, match="md5 mismatch") as record:
        x, _ = data.load_mnist("train", root=cache, mirrors=[url + "corrupt/"])
    assert len(x) == 10_000 and "shipped training digits" in str(record[0].message)
    assert _files(cache) == []


def test_interrupted_transfer_leaves_nothing_and_the_next_mirror_is_used(mirror):
    url, _, cache = mirror
    name = "train-images-idx3-ubyte.gz"
    with pytest.raises(DownloadError, match="cut/train-images-idx3-ubyte.gz: .*(interrupted|Incomplete)"):
        download(name, data.MNIST_FILES[name], [url + "cut/"], cache, timeout=5)
    assert _files(cache) == []
    x, y = data.load_mnist("train", root=cache, mirrors=[url + "cut/", url + "good/"])
    assert len(x) == 5 and _files(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_unreachable_mirror_then_a_working_one(mirror):
    url, closed, cache = mirror
    x, y = data.load_mnist("train", root=cache, mirrors=[closed, url + "missing/", url + "good/"])
    assert y.tolist() == [3, 1, 4, 1, 5]


def test_slow_mirror_times_out_and_the_next_is_used(mirror):
    url, _, cache = mirror
    name = "t10k-labels-idx1-ubyte.gz"
    path = download(name, data.MNIST_FILES[name], [url + "slow/", url + "good/"], cache, timeout=0.3)
    assert path.read_bytes() == TINY[name]


def test_all_mirrors_failing_names_each_and_falls_back(mirror):
    url, closed, cache = mirror
    name = "train-images-idx3-ubyte.gz"
    with pytest.raises(DownloadError) as err:
        download(name, data.MNIST_FILES[name], [closed, url + "missing/", url + "corrupt/"], cache)
    msg = str(err.value)
    assert closed in msg and "404" in msg and "md5 mismatch" in msg and "3 mirror(s)" in msg
    with pytest.warns(UserWarning, match="using the 10,000 shipped training digits"):
        x, _ = data.load_mnist("train", root=cache, mirrors=[closed])
    assert len(x) == 10_000 and _files(cache) == []


def test_environment_variables_choose_the_cache_and_mirrors(mirror, monkeypatch):
    url, closed, cache = mirror
    monkeypatch.setenv("SCORETUTOR_DATA", str(cache))
    monkeypatch.setenv("SCORETUTOR_MNIST_MIRRORS", f"{closed},{url}good/")
    _, y = data.load_mnist("train")
    assert y.tolist() == [3, 1, 4, 1, 5] and len(_files(cache)) == 2


def test_cached_files_are_checked(mirror):
    url, _, cache = mirror
    cache.mkdir()
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        (cache / name).write_bytes(TINY[name])
    x, y = data.load_mnist("test", root=cache)  # a cached test set wins over the shipped one
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [2, 7, 1] and (x == 1).all()
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(TINY["train-labels-idx1-ubyte.gz"])
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz has md5 .* delete it"):
        data.load_mnist("test", root=cache)


def test_cached_files_of_the_wrong_shape_are_refused(mirror, monkeypatch):
    _, _, cache = mirror
    cache.mkdir()
    bad = {"t10k-images-idx3-ubyte.gz": idx_bytes(np.zeros((3, 27, 28), np.uint8)),
           "t10k-labels-idx1-ubyte.gz": TINY["t10k-labels-idx1-ubyte.gz"]}
    for name, raw in bad.items():
        (cache / name).write_bytes(raw)
    monkeypatch.setattr(data, "MNIST_FILES", {n: hashlib.md5(r).hexdigest() for n, r in bad.items()})
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(N, 28, 28\), got uint8 \(3, 27"):
        data.load_mnist("test", root=cache)
