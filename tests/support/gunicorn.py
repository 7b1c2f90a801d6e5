"""The portal served by a real gunicorn (wsgi:app) in a subprocess on 127.0.0.1, for tests of what
only a real server shows: its access log, TLS.

    with Gunicorn(env, access_log=path) as server:        # http
    with Gunicorn(env, tls=(certfile, keyfile)) as server:  # https
        server.url  # http(s)://127.0.0.1:<port>

`env` is added to this process's environment (PORTAL_ENV, DATABASE_URL, ...). The server runs in a
process group of its own and is stopped (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict[str, str], *, access_log: Path | None = None, tls: tuple[str, str] | None = None,
                 server_name: str = "127.0.0.1", ca_file: str | None = None, workers: int = 2,
                 startup_timeout: float = 60.0) -> None:
        self.env, self.access_log, self.tls = env, access_log, tls
        self.server_name, self.ca_file = server_name, ca_file
        self.workers, self.startup_timeout = workers, startup_timeout
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{server_name}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--worker-class", "sync",
                   "--no-control-socket", "--bind", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
                   "--error-logfile", "-", "--log-level", "info", "--graceful-timeout", "5"]
        if self.access_log is not None:
            command += ["--access-logfile", str(self.access_log)]
        if self.tls:
            command += ["--certfile", self.tls[0], "--keyfile", self.tls[1]]
        self.process = subprocess.Popen(
            [*command, "wsgi:app"], env={**os.environ, **self.env}, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self._wait_until_up()

    def _connection(self) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        context = ssl.create_default_context(cafile=self.ca_file)
        connection = http.client.HTTPSConnection(self.server_name, self.port, timeout=5, context=context)
        # connect to 127.0.0.1 whatever the name resolves to, with the name for SNI and the certificate
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.sock = context.wrap_socket(raw, server_hostname=self.server_name)
        return connection

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = self._connection()
        try:
            connection.request("GET", path, headers={"Host": f"{self.server_name}:{self.port}", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start on {self.url}:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        """What gunicorn wrote to its error log (stdout and stderr), the last 4000 characters."""
        return Path(self._log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
