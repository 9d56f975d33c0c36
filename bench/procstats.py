"""CPU and memory of the server's processes (and of the generator) while a phase runs.

CPU is reported in percent of one core over the phase (200 = both cores of a 2-core box busy);
memory as PSS (proportional set size: shared pages split between the processes sharing them),
so forked children and PostgreSQL's shared buffers are not counted twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
# The cluster's files: var/cluster unless CLUSTER_DIR moves them (deploy/cluster/cluster.sh).
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR") or ROOT / "var" / "cluster")
CLUSTER_RUN = CLUSTER_DIR / "run"
# What counts as "the server" for the memory target: the processes that hold the sockets and
# carry the events (PostgreSQL and Celery are reported beside it).
SERVER_GROUPS = ("workers", "lb", "redis", "raw")


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def _group_of(name: str) -> str:
    if name.startswith("worker-"):
        return "workers"
    if name.startswith("haproxy"):
        return "lb"
    if name.startswith("celery"):
        return "celery"
    return name


def cluster_pids(run_dir: Path = CLUSTER_RUN) -> dict[str, list[int]]:
    """The cluster's processes by role, from the pid files `make cluster` wrote, plus PostgreSQL."""
    groups: dict[str, list[int]] = {}
    for pidfile in sorted(run_dir.glob("*.pid")):
        with contextlib.suppress(ValueError, OSError):
            groups.setdefault(_group_of(pidfile.stem), []).append(int(pidfile.read_text()))
    postgres = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
    if postgres:
        groups["postgres"] = postgres
    return groups


class Probe:
    """CPU and memory of the server's processes by role, and of this generator.

    Children are looked up again at every reading: PostgreSQL forks a backend per connection and
    the workers open theirs while the benchmark runs, so a list taken once would miss them.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.roots: dict[str, list[int]] = {g: list(pids) for g, pids in groups.items()}
        self.roots["generator"] = [os.getpid()]
        self._known: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._known.get(pid)
        if proc is None:
            with contextlib.suppress(psutil.Error):
                proc = self._known[pid] = psutil.Process(pid)
        return proc

    def _members(self, group: str) -> list[psutil.Process]:
        procs: dict[int, psutil.Process] = {}
        for pid in self.roots[group]:
            proc = self._process(pid)
            if proc is None:
                continue
            procs[pid] = proc
            if group != "generator":
                with contextlib.suppress(psutil.Error):
                    for child in proc.children(recursive=True):
                        procs.setdefault(child.pid, self._process(child.pid) or child)
        return list(procs.values())

    @staticmethod
    def _cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
        seconds: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                seconds[proc.pid] = times.user + times.system
        return seconds

    def cpu_start(self) -> tuple[float, dict[str, dict[int, float]]]:
        return time.perf_counter(), {g: self._cpu_seconds(self._members(g)) for g in self.roots}

    def cpu_stop(self, start: tuple[float, dict[str, dict[int, float]]]) -> dict[str, float]:
        """Percent of one core each group used since ``start``; ``server`` sums SERVER_GROUPS.
        A process born since ``start`` counts whole; one that ended since is left out."""
        began, before = start
        wall = max(time.perf_counter() - began, 1e-9)
        used = {}
        for group in self.roots:
            now = self._cpu_seconds(self._members(group))
            spent = sum(cpu - before[group].get(pid, 0.0) for pid, cpu in now.items())
            used[group] = round(spent / wall * 100, 1)
        used["server"] = round(sum(v for g, v in used.items() if g in SERVER_GROUPS), 1)
        return used

    def memory(self) -> dict[str, float]:
        """PSS in MiB per group (``<group>``) and RSS (``<group>_rss``); ``server_mb`` sums the
        PSS of SERVER_GROUPS. PSS shares the pages the workers have in common (the interpreter,
        Django) between them; RSS counts them in every worker, as a container limit does."""
        out: dict[str, float] = {}
        for group in self.roots:
            pss = rss = 0
            for proc in self._members(group):
                with contextlib.suppress(psutil.Error):
                    info = proc.memory_full_info()
                    pss += getattr(info, "pss", info.rss)
                    rss += info.rss
            out[group] = round(pss / 2**20, 1)
            out[f"{group}_rss"] = round(rss / 2**20, 1)
        out["server_mb"] = round(sum(v for g, v in out.items() if g in SERVER_GROUPS), 1)
        return out
