"""The cluster's worker launcher (pokerproject/prefork.py), as real processes: started with the
command line `make cluster` uses (``cluster.sh worker-cmd``) for two ports, it forks a uvicorn
worker per port that shares the imported application's pages, starts a worker that died again
(alone: the other keeps its sockets), stops every worker on SIGTERM, and takes none of them
along when it is killed itself without warning."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, multiprocess

from tests.processes import embedded_env, free_port, kill_group, wait_until

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster" / "cluster.sh"


def _free_pair() -> int:
    """A base port whose next two ports are free (the launcher listens on base+1, base+2)."""
    for _ in range(50):
        base = free_port()
        if all(_port_free(base + i) for i in (1, 2)):
            return base
    raise AssertionError("no two free consecutive ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Launcher:
    def __init__(self, tmp: Path) -> None:
        self.metrics = tmp / "metrics"
        self.metrics.mkdir()
        self.env = embedded_env(tmp, GC_FREEZE="1", PROMETHEUS_MULTIPROC_DIR=str(self.metrics))
        subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, str(ROOT / "manage.py"), "migrate_all"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        base = _free_pair()
        self.ports = [base + 1, base + 2]
        self.run_dir = tmp / "run"
        self.logs = tmp / "logs"
        self.run_dir.mkdir()
        self.logs.mkdir()
        printed = subprocess.run(  # noqa: S603 - our own script
            ["bash", str(CLUSTER), "worker-cmd"],  # noqa: S607 - bash from PATH
            cwd=ROOT,
            env={**self.env, "SERVER": "uvicorn", "WORKERS": "2", "WORKER_BASE_PORT": str(base)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        argv = [*shlex.split(printed), "--pid-dir", str(self.run_dir), "--log-dir", str(self.logs)]
        self.log = tmp / "launcher.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - the cluster's own worker command
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_serving()

    def explain(self) -> str:
        parts = [self.log.read_text()]
        parts += [p.read_text() for p in sorted(self.logs.glob("*.log"))]
        return "\n".join(parts)

    def wait_serving(self) -> None:
        def serving() -> bool:
            assert self.process.poll() is None, self.explain()
            return all(_answers(port) for port in self.ports)

        wait_until(serving, timeout=90, what="both workers", explain=self.explain)

    def worker_pid(self, index: int) -> int:
        return int((self.run_dir / f"worker-{index}.pid").read_text())


@pytest.fixture
def launcher(tmp_path):
    started = Launcher(tmp_path)
    try:
        yield started
    finally:
        workers = list(started.run_dir.glob("worker-*.pid"))
        kill_group(started.process)
        for pidfile in workers:
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def test_each_port_has_a_forked_worker_sharing_the_application(launcher):
    pids = [launcher.worker_pid(1), launcher.worker_pid(2)]
    assert len(set(pids)) == 2
    for pid in pids:
        worker = psutil.Process(pid)
        assert worker.ppid() == launcher.process.pid
        # Its own process group: it can be signalled alone.
        assert os.getpgid(pid) == pid
        # A worker that imported the application itself shares little beyond the interpreter
        # (its PSS is ~80 % of its RSS); a forked one shares most of what it holds.
        memory = worker.memory_full_info()
        assert memory.pss < 0.6 * memory.rss, memory
    # Each worker logs to its own file.
    assert {p.name for p in launcher.logs.glob("worker-*.log")} == {"worker-1.log", "worker-2.log"}


def test_a_worker_that_dies_is_started_again_alone(launcher):
    first, other = launcher.worker_pid(1), launcher.worker_pid(2)
    os.killpg(first, signal.SIGKILL)
    wait_until(
        lambda: launcher.worker_pid(1) != first,
        timeout=30,
        what="a new worker-1",
        explain=launcher.explain,
    )
    launcher.wait_serving()
    assert launcher.worker_pid(2) == other
    assert psutil.Process(other).is_running()
    assert "worker 1" in launcher.log.read_text()


def _web_starts(directory: Path) -> float:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    value = registry.get_sample_value("poker_process_starts_total", {"kind": "web"})
    return value or 0.0


def _writers(directory: Path) -> set[int]:
    return {int(re.search(r"_(\d+)\.db$", p.name).group(1)) for p in directory.glob("*.db")}


def test_the_host_figures_are_the_workers(launcher):
    """Each worker counts its own start; the launcher, which imported the application too,
    is not one of the host's processes."""
    first = launcher.worker_pid(1)
    assert launcher.process.pid not in _writers(launcher.metrics)
    assert {first, launcher.worker_pid(2)} <= _writers(launcher.metrics)
    assert _web_starts(launcher.metrics) == 2
    os.killpg(first, signal.SIGKILL)
    wait_until(lambda: launcher.worker_pid(1) != first, timeout=30, what="a new worker-1")
    launcher.wait_serving()
    assert _web_starts(launcher.metrics) == 3
    assert launcher.process.pid not in _writers(launcher.metrics)


def test_sigterm_stops_every_worker_and_the_launcher(launcher):
    pids = [launcher.worker_pid(1), launcher.worker_pid(2)]
    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.process.wait(timeout=30) == 0, launcher.explain()
    wait_until(
        lambda: not any(psutil.pid_exists(pid) for pid in pids),
        timeout=10,
        what="the workers to stop",
    )
    assert not list(launcher.run_dir.glob("worker-*.pid"))
    assert not any(_answers(port) for port in launcher.ports)


def test_the_workers_die_with_a_killed_launcher(launcher):
    pids = [launcher.worker_pid(1), launcher.worker_pid(2)]
    launcher.process.send_signal(signal.SIGKILL)
    launcher.process.wait(timeout=10)
    wait_until(
        lambda: not any(psutil.pid_exists(pid) and _alive(pid) for pid in pids),
        timeout=20,
        what="the orphaned workers to stop",
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
