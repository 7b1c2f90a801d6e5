"""gunicorn's settings for the portal: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

- JSON logs (`JsonGunicornLogger`): gunicorn's error log and its access log, one JSON object per
  line, with link tokens redacted (`/l/[redacted]`) and the proxy's X-Request-ID as `request_id`;
  the app's own loggers are set up the same way by create_app (LOG_FORMAT, app/ops/logs.py).
- Prometheus in multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (give the dispatchers and the
  notification workers of this host the same folder): at start, the folder is made and the files of
  processes no longer running are removed (`on_starting`); when a worker exits, what prometheus_client
  keeps only for live processes goes with it (`child_exit`).
- WORKER_NICE: the workers run that much nicer than the master (`post_fork`). The documents pool (the
  PDF downloads, which the proxy sends to a gunicorn of their own; docs/operations.md, "Documents")
  runs with 10, so that drawing a PDF takes only the CPU the pages and the APIs leave; a master that
  leads its session makes the session's whole group nicer too (`on_starting`; app/core/priority.py).

Every value below can be overridden on the command line or by GUNICORN_CMD_ARGS; see docs/operations.md.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # gunicorn started from elsewhere (systemd's WorkingDirectory, a container)
    sys.path.insert(0, str(ROOT))

from gunicorn.glogging import Logger  # noqa: E402

from app.core.metrics import clean_multiprocess_dir, multiprocess_dir, process_exited  # noqa: E402
from app.core.priority import autogroup_nice, lower_priority, nicer_session, worker_nice  # noqa: E402
from app.ops.logs import JsonFormatter, prepare_handler  # noqa: E402

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# The TLS proxy on this host sets X-Forwarded-For/-Proto; the app trusts PROXY_FIX_COUNT of them.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


class JsonGunicornLogger(Logger):
    """gunicorn's logger with its handlers made JSON and redacting; the access line names the request id."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                prepare_handler(handler, json_lines=os.environ.get("LOG_FORMAT", "json") == "json")

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        request_id = next((value for name, value in req.headers if name.upper() == "X-REQUEST-ID"), None)
        try:
            self.access_log.info(self.cfg.access_log_format, atoms, extra={"request_id": request_id})
        except Exception:  # noqa: BLE001 - as gunicorn's own: a bad format must not break a request
            self.exception("access log failed")


logger_class = JsonGunicornLogger


def on_starting(_server):
    folder = multiprocess_dir()
    if folder:
        clean_multiprocess_dir(folder)
    nicer_session(worker_nice())


def child_exit(_server, worker):
    process_exited(worker.pid)


def post_fork(_server, _worker):
    lower_priority()  # WORKER_NICE; a worker leads no session, so only the worker itself is made nicer


__all__ = ["JsonFormatter", "JsonGunicornLogger", "autogroup_nice", "child_exit", "logger_class", "on_starting",
           "post_fork"]
