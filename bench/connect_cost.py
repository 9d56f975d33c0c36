"""What connects and closes cost one worker: CPU-seconds per 1000 handshakes and per 1000 closes,
and the wall time of a handshake on an otherwise idle worker.

    python -m bench.connect_cost --url http://127.0.0.1:8101 --pid <worker pid> \\
        --seed var/bench/seed.json --sockets 1000

Drives one ASGI worker directly (no balancer), so the figures are that worker's own: on a box
shared with other work, throughput moves with the neighbours while CPU-seconds per operation
barely do (docs/performance.md, round 12). Phases:

1. **serial**: ``--serial`` sockets opened one after the other and closed again: wall time per
   handshake (until the snapshot arrives) on an idle worker;
2. **burst**: ``--sockets`` sockets (whole teams of the seed) opened ``--concurrency`` at a
   time; the worker's CPU from the first handshake until every presence row is written and the
   worker is back to idle;
3. **mass close**: all of them closed at once; the worker's CPU until every presence row is
   gone (read from the shards, ``SHARD_URLS``) and the worker is idle again.

CPU is the worker process's user + system time above its idle rate (measured first). Run with
the worker's environment (``source var/cluster/env``) so the shards can be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench import procstats
from bench.load import Generator, Member
from bench.run import summarize_profile


def _shard_dsns() -> list[str]:
    """The shards' connection strings from SHARD_URLS (``alias@region=url,...``)."""
    return [item.split("=", 1)[1] for item in os.environ.get("SHARD_URLS", "").split(",") if item]


def presence_rows(channel_prefix: str = "ws.") -> int:
    """Presence rows on every shard (the seed's teams are the only ones at a table)."""
    import psycopg

    total = 0
    for dsn in _shard_dsns():
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM rooms_presence WHERE channel_name LIKE %s",
                (channel_prefix + "%",),
            ).fetchone()
            total += row[0] if row else 0
    return total


class Worker:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.idle_rate = 0.0

    def cpu(self) -> float:
        times = self.proc.cpu_times()
        return times.user + times.system

    async def measure_idle(self, seconds: float = 3.0) -> None:
        start = self.cpu()
        await asyncio.sleep(seconds)
        self.idle_rate = (self.cpu() - start) / seconds

    async def settled(self, since: float, until_rows: int, timeout: float = 120) -> float:
        """Wait until the shards hold ``until_rows`` presence rows and the worker spent no more
        than its idle rate over a quiet 0.5 s; the wall time since ``since``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if await asyncio.to_thread(presence_rows) == until_rows:
                break
            await asyncio.sleep(0.1)
        while time.perf_counter() < deadline:
            before = self.cpu()
            await asyncio.sleep(0.5)
            if self.cpu() - before <= self.idle_rate * 0.5 + 0.01:
                break
        return time.perf_counter() - since - 0.5  # the last quiet half second is not the work's


class Spy:
    """py-spy on the worker while a phase runs (``--profile``): samples of the thread holding
    the GIL, as bench.run's profiler takes them."""

    def __init__(self, pid: int, path: Path | None) -> None:
        self.pid, self.path = pid, path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Spy:
        if self.path is not None:
            self.proc = subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--gil",
                    "-p",
                    str(self.pid),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(self.path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # attached before the phase starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)

    def summary(self) -> dict | None:
        return (
            summarize_profile(self.path) if self.path is not None and self.path.exists() else None
        )


async def run(args: argparse.Namespace, seed: dict) -> dict:
    generator = Generator(args.url, seed)
    members: list[Member] = generator.members
    burst = members[: args.sockets]
    serial = members[args.sockets : args.sockets + args.serial]
    worker = Worker(args.pid)
    await worker.measure_idle()
    report: dict = {"worker_idle_cpu_percent": round(worker.idle_rate * 100, 2)}

    # 1. serial handshakes on an idle worker
    if serial:
        walls = []
        for member in serial:
            walls.append(await generator._open(member))
            await member.ws.close()
            member.ws = None
            await asyncio.sleep(0.02)
        await worker.settled(time.perf_counter(), 0)
        report["serial_handshake_ms"] = {
            "median": round(statistics.median(walls) * 1000, 2),
            "p90": round(sorted(walls)[int(len(walls) * 0.9)] * 1000, 2),
            "n": len(walls),
        }

    # 2. a burst of connects
    gate = asyncio.Semaphore(args.concurrency)

    async def one(member: Member) -> None:
        async with gate:
            await generator._open(member)

    profile = Path(args.profile) if args.profile else None
    with (spy := Spy(args.pid, profile and profile.with_suffix(".connect.txt"))):
        cpu, started = worker.cpu(), time.perf_counter()
        await asyncio.gather(*(one(m) for m in burst))
        opened_in = time.perf_counter() - started
        wall = await worker.settled(started, len(burst))
        spent = worker.cpu() - cpu - worker.idle_rate * wall
    report["connect_profile"] = spy.summary()
    report["burst"] = {
        "sockets": len(burst),
        "seconds_to_last_snapshot": round(opened_in, 2),
        "handshakes_per_s": round(len(burst) / opened_in, 1),
        "cpu_seconds_per_1000": round(spent * 1000 / len(burst), 2),
    }

    # 3. every socket closes at once
    async def close(member: Member) -> None:
        if member.ws is not None:
            await member.ws.close(timeout=10)

    with (spy := Spy(args.pid, profile and profile.with_suffix(".close.txt"))):
        cpu, started = worker.cpu(), time.perf_counter()
        await asyncio.gather(*(close(m) for m in burst))
        wall = await worker.settled(started, 0)
        spent = worker.cpu() - cpu - worker.idle_rate * wall
    report["close_profile"] = spy.summary()
    report["mass_close"] = {
        "sockets": len(burst),
        "seconds_to_no_rows": round(wall, 2),
        "cpu_seconds_per_1000": round(spent * 1000 / len(burst), 2),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="one worker, e.g. http://127.0.0.1:8101")
    parser.add_argument("--pid", type=int, required=True, help="that worker's process id")
    parser.add_argument("--seed", required=True, help="bench.seed's output")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--serial", type=int, default=50)
    parser.add_argument(
        "--profile", default="", help="py-spy the worker in each phase: files <this>.*.txt"
    )
    args = parser.parse_args(argv)
    procstats.use_uvloop()
    seed = json.loads(Path(args.seed).read_text())
    print(json.dumps(asyncio.run(run(args, seed)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
