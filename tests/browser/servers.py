"""Local Jupyter servers (JupyterLab, Voilà) for the browser tests: 127.0.0.1, a free port, a token.

Each server is a subprocess in its own session; :meth:`JupyterServer.stop` asks it to shut down
(kernels included) over its REST API and then terminates/kills its process group, so nothing is
left running even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernel_env(**extra: str) -> dict[str, str]:
    """The environment for a server and its kernels: this checkout first on the path, fast mode."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("SCORETUTOR_FAST", "1")
    env.update(extra)
    return env


class JupyterServer:
    """A Jupyter server subprocess; ``url`` is its base URL, ``token`` its token."""

    def __init__(self, args: list[str], port: int, token: str, log_path: Path, env: dict[str, str],
                 status_path: str = "/api/status"):
        self.port, self.token, self.log_path = port, token, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.status_path = status_path
        self._log = open(log_path, "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        sep = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{self.url}{path}{sep}token={self.token}", timeout=timeout) as r:
            return r.read()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get(self.status_path, timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        """Shut down kernels and server over the API, then make sure the process group is gone."""
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST",
                                             data=b"", headers={"Authorization": f"token {self.token}"})
                urllib.request.urlopen(req, timeout=5).read()
                self.proc.wait(timeout=15)
            except Exception:  # noqa: BLE001 -- fall through to signals
                pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self._log.close()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def start_lab(workdir: Path, notebook_dir: Path) -> JupyterServer:
    """JupyterLab on ``notebook_dir`` with settings made for a robot: no autosave (the committed
    notebooks never get outputs), no windowing (every cell is in the DOM), no news, the app object
    exposed as ``window.jupyterapp``; settings, workspaces and runtime files under ``workdir``."""
    settings = workdir / "settings"
    _write_json(settings / "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings", {"autosave": False})
    _write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    port, token = free_port(), secrets.token_hex(16)
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={notebook_dir}", "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    env = kernel_env(JUPYTER_RUNTIME_DIR=str(workdir / "runtime"), JUPYTER_CONFIG_DIR=str(workdir / "config"))
    server = JupyterServer(args, port, token, workdir / "jupyterlab.log", env)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server
