"""Files the package writes: one atomic write, one cache folder, one record of the code's git commit.

- :func:`atomic_write`: write to a temporary file beside the target, flush it to disk, then
  ``os.replace`` it into place, so a crash or Ctrl-C leaves the old file or the new one, never half.
- :func:`cache_dir`: ``$SCORETUTOR_CACHE``, else ``$XDG_CACHE_HOME/scoretutor`` (default
  ``~/.cache/scoretutor``; the platform's cache folder on Windows and macOS).
- :func:`git_commit`: the commit of the checkout the code runs from, for checkpoint cards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "SCORETUTOR_CACHE"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object] | bytes | str) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file (same folder, same suffix, so
    ``np.save`` and friends keep the name), which is fsynced and renamed over ``path``.

    ``write`` may also be the bytes or text to write. The folder is created if missing; the
    temporary file is removed if anything fails (Ctrl-C included). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if isinstance(write, bytes):
            tmp.write_bytes(write)
        elif isinstance(write, str):
            tmp.write_text(write, encoding="utf-8")
        else:
            write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def cache_dir(*parts: str) -> Path:
    """The package's cache folder (or a subfolder of it); not created here."""
    if os.environ.get(CACHE_ENV, "").strip():
        base = Path(os.environ[CACHE_ENV].strip()).expanduser()
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "scoretutor"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "scoretutor"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scoretutor"
    return base.joinpath(*parts)


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit of the git checkout holding ``path`` (default: this package), with "+dirty" if
    tracked files have uncommitted changes; "unknown" outside a checkout or without git."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "") if sha else "unknown"
