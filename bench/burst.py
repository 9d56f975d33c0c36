"""What one reveal and one vote cost the workers in CPU: a small harness for a cluster of one.

    CLUSTER_DIR=var/cluster-x WORKERS=1 CELERY=0 deploy/cluster/cluster.sh start
    CLUSTER_DIR=var/cluster-x python -m bench.burst --teams 200 --bursts 5 --votes 1000

Seeds T teams x M members, opens every socket (against the cluster's balancer, or ``--url``),
then: an idle hold (the workers' CPU at rest), a step of votes at ``--rate`` votes/s, and
``--bursts`` reveal bursts of every team at once, each after a replay (a new round, every voter's
card) that is not timed. It reports CPU-seconds of each process group (psutil) per 1000 votes and
per 1000 reveals, idle subtracted. Cost per unit of work is what this is for: on a box shared with
other work the latency and the throughput move with the neighbours, the CPU a reveal takes
much less (docs/performance.md, round 13).
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
from pathlib import Path

from bench import load, procstats
from bench.run import CLUSTER_ENV, ROOT, read_env


def per_thousand(cpu_pct: dict[str, float], idle_pct: dict[str, float], seconds: float, n: int):
    """CPU-seconds per 1000 units of work of each group, the idle rate subtracted."""
    return {
        group: round((pct - idle_pct.get(group, 0.0)) * seconds / 100 / n * 1000, 3)
        for group, pct in cpu_pct.items()
        if n
    }


class Spy:
    """py-spy on the first worker around one phase (``--profile``): raw collapsed stacks of
    every thread, written when the phase ends."""

    def __init__(self, pid: int | None, path: Path | None, extra: list[str]) -> None:
        self.pid, self.path, self.extra = pid, path, extra
        self.proc: subprocess.Popen | None = None

    async def __aenter__(self) -> None:
        if self.pid is None or self.path is None:
            return
        spy = str(ROOT / ".venv" / "bin" / "py-spy")
        command = [spy, "record", "-r", "200", "-p", str(self.pid), "-f", "raw"]
        command += ["-o", str(self.path), "--nonblocking", *self.extra]
        self.proc = subprocess.Popen(  # noqa: S603, ASYNC220 - starting it does not block
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await asyncio.sleep(1)  # attached

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(self.proc.wait, 30)


async def measure(args: argparse.Namespace, seed: dict, url: str) -> dict:
    pids = procstats.cluster_pids()
    probe = procstats.Probe(pids)
    out = Path(args.out).parent if args.out else ROOT / "var" / "bench"
    worker = pids["workers"][0] if args.profile and pids.get("workers") else None

    def spy(name: str) -> Spy:
        path = out / f"spy-{args.prefix}-{name}.txt" if worker else None
        return Spy(worker, path, ["--gil"] if args.profile == "gil" else [])

    generator = load.Generator(url, seed)
    connect = await generator.connect(100, probe, retries=3)
    print(f"burst: {connect['sockets']} sockets, {connect['failures']} failed", flush=True)
    await generator.prepare(concurrency=100)
    await asyncio.sleep(2)
    idle = await generator.hold(args.idle_seconds, probe)
    report: dict = {"connect": connect, "idle": idle}
    if args.votes:
        seconds = args.votes / args.rate
        async with spy("votes"):
            step = await generator.vote_step(args.rate, seconds, probe)
        step["per_1000_votes_cpu_s"] = per_thousand(
            step["cpu"], idle["cpu"], step["seconds"], step["votes_acked"]
        )
        report["votes"] = step
        print(
            f"burst: {step['votes_acked']} votes at {step['votes_per_s']}/s, "
            f"p99 {step['latency']['p99_ms']} ms, missing {step['missing_deliveries']}; "
            f"CPU-s per 1000 votes {step['per_1000_votes_cpu_s']}",
            flush=True,
        )
    bursts = []
    for i in range(args.bursts):
        await generator.replay(concurrency=100)
        async with spy(f"burst{i}"):
            burst = await generator.reveal_burst(probe)
        burst["per_1000_reveals_cpu_s"] = per_thousand(
            burst["cpu"], idle["cpu"], burst["seconds"], burst["teams"]
        )
        bursts.append(burst)
        print(
            f"burst: {burst['teams']} reveals in {burst['seconds']} s, "
            f"p99 {burst['latency']['p99_ms']} ms, missing {burst['missing_deliveries']}; "
            f"CPU-s per 1000 reveals {burst['per_1000_reveals_cpu_s']}",
            flush=True,
        )
    report["bursts"] = bursts
    if bursts:
        groups = bursts[0]["per_1000_reveals_cpu_s"]
        report["per_1000_reveals_median"] = {
            g: round(statistics.median(b["per_1000_reveals_cpu_s"][g] for b in bursts), 3)
            for g in groups
        }
        print(f"burst: median CPU-s per 1000 reveals {report['per_1000_reveals_median']}")
    await generator.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--prefix", default="burst")
    parser.add_argument("--url", default="", help="target (default: the cluster's balancer)")
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--votes", type=int, default=1000, help="votes of the vote step")
    parser.add_argument("--rate", type=float, default=100, help="votes/s of the vote step")
    parser.add_argument("--idle-seconds", type=float, default=5)
    parser.add_argument("--out", default="")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="all",
        choices=("all", "gil"),
        help="py-spy the worker in each phase: every running thread, or the GIL's holder only",
    )
    args = parser.parse_args(argv)
    procstats.use_uvloop()
    env = read_env(CLUSTER_ENV)
    seed_path = ROOT / "var" / "bench" / f"seed-{args.prefix}.json"
    subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "bench.seed",
            f"--teams={args.teams}",
            f"--members={args.members}",
            f"--prefix={args.prefix}",
            f"--out={seed_path}",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    seed = json.loads(seed_path.read_text())
    report = asyncio.run(measure(args, seed, args.url or env["CLUSTER_URL"]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
