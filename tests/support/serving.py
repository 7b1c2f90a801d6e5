"""Run a test's socketserver (an http.server) in a background thread, and stop it at once.

`serve_forever()` notices `shutdown()` only when its select() times out: every 0.5 s by default,
so each stop waited up to half a second, and per-test servers added up to many seconds. A 10 ms
poll stops them at once and costs a hundred idle wake-ups a second while one runs (no busy loop).

    thread = serve_in_thread(httpd)
    ...
    stop_serving(httpd, thread)
"""

from __future__ import annotations

import socketserver
import threading

POLL_INTERVAL = 0.01  # seconds: how long shutdown() may wait for the serving loop to notice


def serving_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread (not started) that serves `server` until `stop_serving`."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True)


def serve_in_thread(server: socketserver.BaseServer) -> threading.Thread:
    """Start serving `server` in a daemon thread; returns the thread."""
    thread = serving_thread(server)
    thread.start()
    return thread


def stop_serving(server: socketserver.BaseServer, thread: threading.Thread | None, timeout: float = 5) -> None:
    """Stop the serving loop, close the listening socket, and wait for the thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout)
