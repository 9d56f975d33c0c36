"""Several uvicorn workers forked from one process that imported the application first.

``python -m pokerproject.prefork --ports 8101,8102,...`` imports Django and the ASGI application
once, freezes what it imported (``gc.freeze()``), then forks one uvicorn worker per port. The
workers share the pages of the interpreter, Django and the project with the parent and with each
other instead of holding a copy each: four workers hold about 200 MiB less than four separate
uvicorn processes (docs/performance.md, round 15). The frozen objects are never scanned by the
collector, so it does not write to them and their pages stay shared.

The parent is a supervisor and nothing else: it opens no connection, starts no thread and no
event loop before it forks (a child would inherit them half-shared), starts a worker again when
one dies (a fork of the warm image: it serves again in milliseconds, not in the seconds an
import takes), and on SIGTERM or SIGINT stops every worker gracefully and exits. Each worker is
the leader of its own process group, so it can be signalled alone (``kill -- -PID``), and dies
with the parent (``PR_SET_PDEATHSIG``) rather than serving on as an orphan.

``--pid-dir`` writes each worker's pid to ``worker-<n>.pid`` (rewritten when it is started
again); ``--log-dir`` sends each worker's output to ``worker-<n>.log``. deploy/cluster/cluster.sh
starts the cluster's workers this way (docs/operations.md, "Cluster").
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pokerproject import metrics

logger = logging.getLogger("pokerproject.prefork")

# A worker that dies sooner than this after its start is started again only after RESTART_DELAY,
# so a worker that cannot start (a port taken, a broken setting) does not spin the parent.
QUICK_DEATH = 1.0
RESTART_DELAY = 1.0
PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    index: int
    port: int
    pid: int = 0
    started: float = 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pokerproject.prefork",
        description="Fork one uvicorn worker per port from a process that imported the app once.",
    )
    parser.add_argument("--ports", required=True, help="comma-separated: one worker per port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--app", default="pokerproject.asgi:application")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    parser.add_argument(
        "--ws", default="websockets-sansio", choices=["websockets-sansio", "websockets", "wsproto"]
    )
    parser.add_argument("--ws-ping-interval", type=float, default=20.0)
    parser.add_argument("--ws-ping-timeout", type=float, default=20.0)
    parser.add_argument("--ws-max-size", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=5)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--pid-dir", type=Path, help="write worker-<n>.pid files here")
    parser.add_argument("--log-dir", type=Path, help="send worker <n>'s output to worker-<n>.log")
    args = parser.parse_args(argv)
    try:
        args.ports = [int(part) for part in args.ports.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--ports: comma-separated port numbers, not {args.ports!r}")
    if not args.ports:
        parser.error("--ports: at least one port")
    return args


def load_application(path: str):
    """Import the application and everything a worker imports on its first request, so that it
    is in the shared pages rather than imported again by each worker."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
    import uvicorn.importer
    import uvicorn.lifespan.off
    import uvicorn.protocols.http.h11_impl
    import uvicorn.protocols.http.httptools_impl
    import uvicorn.protocols.websockets.websockets_sansio_impl
    import uvloop  # noqa: F401
    from django.db import connections

    app = uvicorn.importer.import_from_string(path)
    # Nothing may be open when the workers fork: they would share one connection.
    connections.close_all()
    return app


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _serve(app, worker: Worker, args: argparse.Namespace, parent: int) -> None:
    """The child: one uvicorn server on ``worker.port``. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent(parent)
        if args.log_dir:
            fd = os.open(
                args.log_dir / f"worker-{worker.index}.log",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o644,
            )
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        import uvicorn

        metrics.forked()
        config = uvicorn.Config(
            app,
            host=args.host,
            port=worker.port,
            loop=args.loop,
            http=args.http,
            ws=args.ws,
            ws_ping_interval=args.ws_ping_interval,
            ws_ping_timeout=args.ws_ping_timeout,
            ws_max_size=args.ws_max_size,
            lifespan="off",
            access_log=False,
            log_level=args.log_level,
            timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        )
        uvicorn.Server(config).run()
        code = 0
    except BaseException:
        logging.getLogger("uvicorn.error").exception("worker %s failed", worker.index)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Supervisor:
    def __init__(self, app, args: argparse.Namespace) -> None:
        self.app, self.args = app, args
        self.workers = [Worker(i, port) for i, port in enumerate(args.ports, start=1)]
        self.stopping = False

    def _pidfile(self, worker: Worker) -> Path | None:
        return self.args.pid_dir / f"worker-{worker.index}.pid" if self.args.pid_dir else None

    def spawn(self, worker: Worker) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _serve(self.app, worker, self.args, parent)
        worker.pid, worker.started = pid, time.monotonic()
        pidfile = self._pidfile(worker)
        if pidfile:
            tmp = pidfile.with_suffix(".tmp")
            tmp.write_text(str(pid))
            tmp.replace(pidfile)

    def _on_signal(self, signum: int, _frame) -> None:
        if not self.stopping:
            logger.warning("prefork: %s: stopping the workers", signal.Signals(signum).name)
            # A worker that does not finish its graceful shutdown in time is killed.
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.alarm(self.args.timeout_graceful_shutdown + 5)
        self.stopping = True
        self._signal_workers(signal.SIGTERM)

    def _on_alarm(self, _signum: int, _frame) -> None:
        logger.warning("prefork: workers still running after the graceful timeout: killing them")
        self._signal_workers(signal.SIGKILL)

    def _signal_workers(self, sig: int) -> None:
        for worker in self.workers:
            if worker.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, sig)

    def _reaped(self, pid: int, status: int) -> Worker | None:
        worker = next((w for w in self.workers if w.pid == pid), None)
        if worker is None:
            return None
        worker.pid = 0
        if not self.stopping:
            logger.warning(
                "prefork: worker %s (port %s, pid %s) ended (%s): starting it again",
                worker.index,
                worker.port,
                pid,
                _describe(status),
            )
        # Its per-process gauges (open sockets) would otherwise count until the next scrape.
        if metrics.MULTIPROC_DIR:
            with contextlib.suppress(OSError):
                metrics.forget_dead_processes()
        return worker

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # Everything imported so far lives as long as the workers: out of the collector's sight,
        # so no collection in a worker writes to (and so copies) the shared pages.
        gc.collect()
        gc.freeze()
        # The host's figures are its workers': each counts its own start (pokerproject.metrics).
        metrics.launcher()
        for worker in self.workers:
            self.spawn(worker)
        while any(w.pid for w in self.workers):
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            dead = self._reaped(pid, status)
            if dead is None or self.stopping:
                continue
            if time.monotonic() - dead.started < QUICK_DEATH:
                time.sleep(RESTART_DELAY)
            if not self.stopping:
                self.spawn(dead)
        for worker in self.workers:
            pidfile = self._pidfile(worker)
            if pidfile:
                pidfile.unlink(missing_ok=True)
        return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = load_application(args.app)
    return Supervisor(app, args).run()


if __name__ == "__main__":
    sys.exit(main())
