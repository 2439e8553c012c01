"""Read and write IDX files (the format MNIST ships in), plain or gzipped.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
sizes, then the values in C order, big-endian (http://yann.lecun.com/exdb/mnist/, bottom of page).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from scoretutor.errors import DataError

# type byte -> numpy dtype (big-endian)
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}


def _raw_bytes(source, name: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic 1f 8b."""
    if isinstance(source, bytes | bytearray):
        raw = bytes(source)
    elif hasattr(source, "read_bytes"):  # pathlib.Path or importlib.resources Traversable
        raw = source.read_bytes()
    else:
        raw = Path(source).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as err:
        raise DataError(f"{name}: the gzip stream is truncated ({len(raw)} bytes); "
                         "delete the file and download it again") from err
    except (gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{name}: corrupted gzip data ({err})") from err


def read_idx(source, name: str | None = None) -> np.ndarray:
    """Parse an IDX file (path, ``bytes`` or resource; gzipped or not) into a native-endian array.

    Raises ``ValueError`` naming the file for a wrong magic number, an unknown type byte, or data
    that does not match the sizes in the header (truncated or with trailing bytes).
    """
    name = name or (str(source) if not isinstance(source, bytes | bytearray) else "IDX data")
    raw = _raw_bytes(source, name)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (magic bytes {raw[:4].hex(' ') or 'missing'}, "
                         "expected 00 00 <type> <ndim>)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{name}: unknown IDX type byte 0x{code:02X}; allowed: {allowed}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes, the {ndim} sizes need {header})")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DataError(f"{name}: data {what}: header declares shape {shape} of {dtype.name} "
                         f"({expected} bytes), file holds {got} bytes after the header")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx_bytes(array: np.ndarray, compress: bool = True) -> bytes:
    """Encode an array as IDX (gzipped by default): the inverse of :func:`read_idx`."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(f"IDX cannot store dtype {array.dtype}; allowed: "
                         f"{', '.join(dt.name for dt in IDX_TYPES.values())}")
    code = _CODES[native]
    buf = io.BytesIO()
    buf.write(bytes([0, 0, code, array.ndim]))
    buf.write(np.asarray(array.shape, ">u4").tobytes())
    buf.write(np.ascontiguousarray(array, IDX_TYPES[code]).tobytes())
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if compress else data
