"""gunicorn settings for production: ``gunicorn -c python:ur_service.gunicorn_conf``.

Workers are processes (one per core by default), each with a pool of threads (``gthread``, with new connections
spread over the workers: ``ur_service.gunicorn_worker``): a client that
sends its request slowly holds one thread of one worker, not the worker, and the worker's main loop keeps
accepting and handing the next request to a free thread. A connection that sends nothing is put back to wait
(no thread) and closed after ``keepalive`` seconds. Reviews themselves are CPU-bound and durable-rules runs
one evaluation at a time per process (ur_engine's evaluator lock), so threads add room for waiting clients
and database commits, not review throughput; processes add that. The thread pool is finite: facing untrusted
networks, put a buffering proxy in front (README, Production), which receives whole requests before gunicorn
sees them.

The master builds the app once (preload): it migrates the store and loads and checks the rules, and every
worker — a respawned one too — forks from that checked library. POST /v1/admin/reload reaches every worker
through the store's reload log, which carries the accepted library's files (see ``ur_service.reloads``);
SIGHUP does not re-read rules under preload.
Environment: UR_BIND (127.0.0.1:8080), UR_WORKERS (cores), UR_THREADS (16), UR_TIMEOUT (30 s), UR_KEEPALIVE
(5 s), plus those of ur_service.wsgi.
"""

import os
import shutil
import tempfile

from gunicorn.glogging import Logger

# prometheus_client picks its storage when first imported: the directory must be set before any worker
# imports it, i.e. here, when gunicorn reads this file in the master.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ur-metrics-")
    _OWN_METRICS_DIR = True
else:
    _OWN_METRICS_DIR = False

wsgi_app = "ur_service.wsgi:app"
preload_app = True
bind = os.environ.get("UR_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("UR_WORKERS") or os.cpu_count() or 1)
worker_class = "ur_service.gunicorn_worker.BalancedThreadWorker"
threads = int(os.environ.get("UR_THREADS") or 16)
worker_connections = 1000  # connections a worker holds open (waiting ones cost no thread)
timeout = int(os.environ.get("UR_TIMEOUT", "30"))  # a worker whose main loop stalls this long is restarted
graceful_timeout = 20
keepalive = int(os.environ.get("UR_KEEPALIVE", "5"))  # an idle kept-alive or silent new connection is closed
backlog = 256
# Request limits before the app sees anything; the body limit itself is the app's MAX_CONTENT_LENGTH (413).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# gunicorn 27's control socket sits at one path per user: several servers on one host would fight over it, and
# nothing here uses it. (Older gunicorn ignores the unknown setting.)
control_socket_disable = True
accesslog = None  # the app logs each request as JSON, without bodies or query strings
errorlog = "-"


class AppLogsRequests(Logger):
    """gunicorn's logger without its access log. With ``logconfig_dict`` set, gunicorn takes the access log to be
    on and gathers a line's fields (every header, the time formatted) for each request, then hands them to the
    ``gunicorn.access`` logger, which is off: 0.18 M instructions a request for nothing."""

    def _compute_access_log_enabled(self):  # gunicorn ≥ 25 asks this once, at setup
        return False

    def access(self, resp, req, environ, request_time):  # older gunicorn builds the fields in here
        return None


logger_class = AppLogsRequests
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "ur_service.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    # gunicorn merges this over its defaults, whose root and access loggers name handlers defined here.
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False, "qualname": "gunicorn.error"},
        # Off: an access line carries the query string (record_id=…); the app logs each request itself.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False, "qualname": "gunicorn.access"},
    },
}


def on_starting(server):
    """Clear metric files a previous run left in a directory given from outside; reserve the workers' rows in the
    table that spreads connections over them."""
    from ur_service import gunicorn_worker

    gunicorn_worker.reserve_rows(server)
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def pre_fork(server, worker):
    from ur_service import gunicorn_worker

    gunicorn_worker.claim_row(server, worker)


def post_fork(server, worker):
    """Each worker shows in /metrics which library it serves from its first moment, not its first request."""
    app = worker.app.wsgi()  # the app the master built (preload)
    app.extensions["ur_reloads"].announce()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    from ur_service import gunicorn_worker

    gunicorn_worker.free_row(worker)
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
