"""Download a file from a list of mirrors, md5-verified, written atomically.

``download(filename, md5, mirrors, folder)`` tries ``mirror + filename`` for each mirror in order
with a timeout. Each transfer streams into a temporary file beside the target, is checked against
its Content-Length and its md5, flushed to disk, and only then renamed onto the target
(:func:`scoretutor.files.atomic_write`), so the target is either absent or complete and verified.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from scoretutor.errors import DataError, DownloadError
from scoretutor.files import atomic_write

_CHUNK = 1 << 16


class ChecksumError(DataError):
    """A downloaded (or cached) file does not have its published md5."""


def md5sum(path) -> str:
    """The hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _join(base: str, filename: str) -> str:
    return base if base.endswith(filename) else base.rstrip("/") + "/" + filename


def fetch(url: str, md5: str, target: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``target`` atomically, verifying its length and md5.

    Raises ``ChecksumError`` on an md5 mismatch and ``OSError`` (``urllib.error.URLError``,
    ``TimeoutError``, ``http.client.IncompleteRead`` wrapped as ``OSError``) on transfer errors;
    in every failure the temporary file is removed and ``target`` is left untouched.
    """

    def stream(tmp: Path) -> None:
        h, received = hashlib.md5(), 0
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    received += len(block)
            except Exception as err:  # http.client.IncompleteRead is not an OSError
                if isinstance(err, OSError):
                    raise
                raise OSError(f"transfer interrupted after {received} bytes ({err!r})") from err
        if length is not None and received != int(length):
            raise OSError(f"transfer interrupted: got {received} of {length} bytes")
        if h.hexdigest() != md5:
            raise ChecksumError(f"md5 mismatch for {url}: got {h.hexdigest()}, expected {md5} "
                                "(corrupted or not the published file); nothing was saved")

    return atomic_write(target, stream)


def download(filename: str, md5: str, mirrors: list[str], folder, timeout: float = 30.0) -> Path:
    """Fetch ``filename`` into ``folder`` from the first mirror that delivers it with the right md5.

    Mirrors are base URLs (``https://host/path/``); they are tried in order. Raises
    ``DownloadError`` listing every mirror's failure when none succeeds.
    """
    if not mirrors:
        raise DownloadError(f"no mirrors given to download {filename}")
    target = Path(folder) / filename
    failures = []
    for base in mirrors:
        url = _join(base, filename)
        try:
            return fetch(url, md5, target, timeout=timeout)
        except ChecksumError as err:
            failures.append(str(err))
        except urllib.error.HTTPError as err:
            failures.append(f"{url}: HTTP {err.code} {err.reason}")
        except (OSError, urllib.error.URLError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            failures.append(f"{url}: {reason}")
    raise DownloadError(f"could not download {filename} from any of {len(mirrors)} mirror(s): "
                        + "; ".join(failures))
