"""`make bench`: seed T teams x M members, drive the cluster through its balancer, then the raw
``websockets`` server (behind HAProxy too) with the same workload, and write the report (JSON +
markdown).

    python -m bench.run --teams 200 --members 10 [--rates 100,250,500] [--step-seconds 10]
                        [--reveal-bursts 3] [--no-raw | --raw-direct] [--profile]
                        [--url http://127.0.0.1:8080]

Starts the cluster (`deploy/cluster/cluster.sh start`) if its balancer does not answer, and then
stops it again at the end unless --keep-cluster. Reports go to var/bench/ (report.json,
report.md, and a time-stamped copy of each). Method and recorded results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import load, procstats

ROOT = Path(__file__).resolve().parent.parent
# Where `deploy/cluster/cluster.sh` keeps its files (the script's own CLUSTER_DIR).
CLUSTER_DIR = procstats.CLUSTER_DIR
CLUSTER_ENV = CLUSTER_DIR / "env"
CLUSTER_SCRIPT = ROOT / "deploy" / "cluster" / "cluster.sh"
DEFAULT_RATES = "100,250,500,750,1000,1500,2000,3000"


def read_env(path: Path) -> dict[str, str]:
    """The ``export K=V`` lines the cluster script wrote, as a dict."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            parts = shlex.split(value) if value else [""]
            env[key] = parts[0] if parts else ""
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loop_seconds() -> float:
    """The box's speed for pure Python: the best of three runs of a loop of 3M additions (the
    figure every report carries, so runs on different boxes can be told apart)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loop_3m_seconds": loop_seconds(),
    }


def summarize_profile(path: Path, top: int = 15) -> dict:
    """Top frames of a py-spy raw (collapsed) profile: own time and time including callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # Threads parked in a wait are not work: leave them out of the shares.
        if frames[-1].startswith(("Condition.wait", "_worker (concurrent", "Runner.run")):
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return {
        "samples": total,
        "own": [[f, round(100 * n / total, 1)] for f, n in own.most_common(top)] if total else [],
        "inclusive": [[f, round(100 * n / total, 1)] for f, n in inclusive.most_common(top * 3)]
        if total
        else [],
    }


class Profiler:
    """py-spy on the first worker during each ladder step; the report keeps the knee's.

    Only samples of the thread holding the GIL are kept (``--gil``): where the worker's Python
    CPU goes, not where its threads wait."""

    def __init__(self, pid: int, seconds: float, out_dir: Path) -> None:
        self.pid, self.seconds, self.out_dir = pid, seconds, out_dir
        self.proc: subprocess.Popen | None = None
        self.files: dict[float, Path] = {}

    def __call__(self, when: str, rate: float) -> None:
        if when == "start":
            path = self.out_dir / f"profile-{rate:g}.txt"
            self.files[rate] = path
            self.proc = subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--gil",
                    "-p",
                    str(self.pid),
                    "-d",
                    str(int(self.seconds)),
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "-o",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elif self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
            self.proc = None


def run_against(url: str, seed: dict, pids: dict, args, on_step=None, vacuum=None, kill=None):
    return asyncio.run(
        load.run(
            url=url,
            seed=seed,
            server_pids=pids,
            rates=[float(r) for r in args.rates.split(",")],
            step_seconds=args.step_seconds,
            hold_seconds=args.hold_seconds,
            slo_ms=args.slo_ms,
            connect_concurrency=args.connect_concurrency,
            connect_retries=args.connect_retries,
            stop_after_failures=args.stop_after_failures,
            reveal_bursts=args.reveal_bursts,
            on_step=on_step,
            vacuum=vacuum,
            mass_disconnect=args.mass_disconnect,
            kill=kill,
            storm_rate=args.storm_rate,
        )
    )


RAW_PATHS = {"both": ("direct", "balancer"), "direct": ("direct",), "balancer": ("balancer",)}
RAW_PATHS["none"] = ()

# The targets of docs/performance.md: each a ratio to the raw server driven directly in the same
# run (or, for memory, an absolute figure), so they hold on any box.
TARGETS = {
    "sustained": ("sustained votes/s at p99 <= SLO, ours / raw", ">=", 0.5),
    "stalls": ("p99 / p50 at the ladder's first step (100 votes/s by default), ours", "<=", 3.0),
    "cpu_per_vote": ("server CPU per vote at the first step, ours / raw", "<=", 3.0),
    "connects": ("handshakes/s, ours / raw", ">=", 0.5),
    "reveal": ("reveal burst p99, ours / raw", "<=", 1.5),
    "memory": ("worker PSS with every socket open, MiB", "<=", 600.0),
}


def _ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def targets(report: dict) -> dict:
    """Each target's figure for ours and raw, the ratio and whether it holds."""
    runs = report["runs"]
    ours, raw = runs["ours"], runs.get("raw")
    out: dict[str, dict] = {}

    def put(name: str, ours_value, raw_value, value) -> None:
        _, op, limit = TARGETS[name]
        holds = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out[name] = {"ours": ours_value, "raw": raw_value, "value": value, "holds": holds}

    def first(run):
        return run["ladder"][0] if run and run["ladder"] else None

    def per_vote(step):
        if not step or not step["votes_per_s"]:
            return None
        return round(step["cpu"]["server"] / step["votes_per_s"], 4)

    o_step, r_step = first(ours), first(raw)
    o_sus = ours["sustained"]["votes_per_s"]
    r_sus = raw["sustained"]["votes_per_s"] if raw else None
    put("sustained", o_sus, r_sus, _ratio(o_sus, r_sus))
    o_lat = o_step["latency"] if o_step else {}
    r_lat = r_step["latency"] if r_step else {}
    stall = _ratio(o_lat.get("p99_ms"), o_lat.get("p50_ms"))
    put("stalls", stall, _ratio(r_lat.get("p99_ms"), r_lat.get("p50_ms")), stall)
    o_cpu, r_cpu = per_vote(o_step), per_vote(r_step)
    put("cpu_per_vote", o_cpu, r_cpu, _ratio(o_cpu, r_cpu))
    o_hs = ours["connect"]["handshakes_per_s"]
    r_hs = raw["connect"]["handshakes_per_s"] if raw else None
    put("connects", o_hs, r_hs, _ratio(o_hs, r_hs))
    o_rv = ours.get("reveal", {}).get("latency", {}).get("p99_ms")
    r_rv = raw.get("reveal", {}).get("latency", {}).get("p99_ms") if raw else None
    put("reveal", o_rv, r_rv, _ratio(o_rv, r_rv))
    mem = ours["connect"]["memory_after_mb"]
    r_mem = raw["connect"]["memory_after_mb"].get("raw") if raw else None
    put("memory", mem.get("workers"), r_mem, mem.get("workers"))
    out["memory"]["ours_rss"] = mem.get("workers_rss")
    return out


RAW_HAPROXY_CFG = """\
# Generated by bench/run.py: the raw server behind HAProxy, as the cluster's workers are.
global
    maxconn {maxconn}
defaults
    mode http
    option http-server-close
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
frontend raw
    bind 127.0.0.1:{port}
    default_backend raw
backend raw
    server raw 127.0.0.1:{raw_port} maxconn 20000
"""


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        time.sleep(0.1)


def run_raw(seed_path: Path, seed: dict, args, lb_procs: int, *, direct: bool) -> dict:
    """Drive the raw server directly (the yardstick of the targets), or behind ``lb_procs``
    HAProxy processes configured like the cluster's (the same path as ours)."""
    port = free_port()
    procs = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "bench.raw_server",
                "--port",
                str(port),
                "--seed",
                str(seed_path),
            ],
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
    ]
    pids = {"raw": [procs[0].pid]}
    try:
        wait_port(port, procs[0])
        if not direct:
            raw_port, port = port, free_port()
            cfg = Path(args.out_dir) / "raw-haproxy.cfg"
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            cfg.write_text(
                RAW_HAPROXY_CFG.format(maxconn=(soft - 200) // 2, port=port, raw_port=raw_port)
            )
            for _ in range(max(lb_procs, 1)):
                procs.append(
                    subprocess.Popen(  # noqa: S603
                        ["haproxy", "-W", "-db", "-f", str(cfg)],  # noqa: S607
                        start_new_session=True,
                        stdout=subprocess.DEVNULL,
                    )
                )
            pids["lb"] = [p.pid for p in procs[1:]]
            wait_port(port, procs[-1])
        return run_against(f"http://127.0.0.1:{port}", seed, pids, args)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


def fmt(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    lines = [f"# Benchmark {report['started_at']}", ""]
    m = report["machine"]
    lines += [
        f"{m['cpus']} CPUs ({m['cpu_model']}; a loop of 3M additions in "
        f"{fmt(m.get('loop_3m_seconds'))} s), {m['memory_gb']} GiB, Python {m['python']}; "
        f"{report['teams']} teams x {report['members']} members; steps of "
        f"{report['step_seconds']:g} s; SLO p99 <= {report['slo_ms']:g} ms.",
        "",
    ]
    if report.get("targets"):
        lines += [
            "Targets (docs/performance.md), ours against the raw server driven directly:",
            "",
            "| target | ours | raw | value | limit | holds |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in report["targets"].items():
            label, op, limit = TARGETS[name]
            holds = {True: "yes", False: "**no**", None: "-"}[t["holds"]]
            lines.append(
                f"| {label} | {fmt(t['ours'])} | {fmt(t['raw'])} | {fmt(t['value'])} | "
                f"{op} {limit:g} | {holds} |"
            )
        lines.append("")
    lines += [
        "| server | sockets | failures | failed attempts (retried) | handshakes/s | server MiB "
        "| worker MiB PSS / RSS | KiB/socket | idle CPU % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["runs"].items():
        c = r["connect"]
        mem = c["memory_after_mb"]
        group = "workers" if "workers" in mem else "raw"
        lines.append(
            f"| {name} | {c['sockets']} | {c['failures']} | {c.get('failed_attempts', '-')} | "
            f"{fmt(c['handshakes_per_s'])} | {fmt(mem['server_mb'])} | "
            f"{fmt(mem.get(group))} / {fmt(mem.get(group + '_rss'))} | "
            f"{fmt(c['server_kb_per_socket'])} | {fmt(r['idle']['cpu']['server'])} |"
        )
    lines += [
        "",
        "| server | target votes/s | votes/s | deliveries/s | p50 ms | p95 ms | p99 ms | max ms "
        "| missing | server CPU % | generator CPU % | holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["runs"].items():
        for s in r["ladder"]:
            lat = s["latency"]
            lines.append(
                f"| {name} | {fmt(s['target_votes_per_s'])} | {fmt(s['votes_per_s'])} | "
                f"{fmt(s['deliveries_per_s'])} | {fmt(lat['p50_ms'])} | {fmt(lat['p95_ms'])} | "
                f"{fmt(lat['p99_ms'])} | {fmt(lat['max_ms'])} | {s['missing_deliveries']} | "
                f"{fmt(s['cpu']['server'])} | {fmt(s['cpu']['generator'])} | "
                f"{'yes' if s['passes'] else 'no'} |"
            )
    lines += [
        "",
        "| server | reveal bursts x teams | p50 ms | p99 ms | max ms | p99 ms of each burst "
        "| missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["runs"].items():
        for key, label in (("reveal", name), ("reveal_after_vacuum", f"{name}, after VACUUM")):
            if key not in r:
                continue
            rv = r[key]
            lat = rv["latency"]
            bursts = rv.get("bursts", [])
            each = ", ".join(fmt(b["latency"]["p99_ms"]) for b in bursts)
            lines.append(
                f"| {label} | {len(bursts)} x {rv['teams']} | {fmt(lat['p50_ms'])} | "
                f"{fmt(lat['p99_ms'])} | {fmt(lat['max_ms'])} | {each} | "
                f"{rv['missing_deliveries']} |"
            )
    disconnects = [
        (n, r["mass_disconnect"]) for n, r in report["runs"].items() if "mass_disconnect" in r
    ]
    if disconnects:
        lines += [
            "",
            "| server | sockets closed at once | server CPU-s above idle | worker CPU-s | "
            "reopened | reopen handshakes/s |",
            "|---|---|---|---|---|---|",
        ]
        for name, md in disconnects:
            spent = md["cpu_seconds_above_idle"]
            lines.append(
                f"| {name} | {md['sockets']} | {fmt(spent.get('server'))} | "
                f"{fmt(spent.get('workers', spent.get('raw')))} | {md['reopened']} | "
                f"{fmt(md['reopen_handshakes_per_s'])} |"
            )
    storm = report["runs"]["ours"].get("storm") if "ours" in report["runs"] else None
    if storm:
        lines += [
            "",
            f"Storm: worker 1 killed (SIGKILL) at {fmt(report['storm_rate'])} votes/s; "
            f"{storm['lost']} of {storm['sockets']} sockets lost and {storm['reconnected']} "
            f"reconnected ({fmt(storm['reconnects_per_s'])}/s; reconnect p50 "
            f"{fmt(storm['reconnect']['p50_ms'])} ms, p99 {fmt(storm['reconnect']['p99_ms'])} ms); "
            f"every socket back after {fmt(storm['all_back_seconds'])} s, a whole window "
            f"(p99 <= SLO, nothing missing) after {fmt(storm['recovered_seconds'])} s.",
        ]
    costs = [
        (name, n, burst)
        for name, r in report["runs"].items()
        for n, burst in enumerate(r.get("reveal", {}).get("bursts", []), 1)
        if "cpu_seconds" in burst
    ]
    if costs:
        lines += [
            "",
            "CPU-seconds each process group spent in each reveal burst (a box of N cores has "
            "N per second of wall clock; `server` sums the workers or the raw server, the "
            "balancer and Redis):",
            "",
            "| server | burst | wall s | p99 ms | CPU-seconds |",
            "|---|---|---|---|---|",
        ]
        for name, n, burst in costs:
            spent = ", ".join(f"{g} {v:.2f}" for g, v in burst["cpu_seconds"].items() if v > 0)
            lines.append(
                f"| {name} | {n} | {fmt(burst['seconds'])} | {fmt(burst['latency']['p99_ms'])} "
                f"| {spent} |"
            )
    lines += [""]
    for name, r in report["runs"].items():
        s = r["sustained"]
        lines.append(
            f"- {name}: sustained {fmt(s['deliveries_per_s'])} deliveries/s "
            f"({fmt(s['votes_per_s'])} votes/s) with p99 <= {report['slo_ms']:g} ms"
        )
    if report.get("ratio") is not None:
        lines.append(
            f"- ratio ours / raw: **{report['ratio']:.2f}** (deliveries/s; the raw server "
            "driven directly; raw-balancer is the same server behind HAProxy, as ours)"
        )
        if report.get("raw_limit_reached") is False:
            lines.append(
                "- the raw server held every step, so its limit is higher and this ratio is "
                "only an upper bound: rerun with higher --rates"
            )
    if report.get("profile"):
        p = report["profile"]
        lines += ["", f"Profile of worker 1 at {fmt(p['rate'])} votes/s (py-spy, own time):", ""]
        lines += [f"- {share}% {frame}" for frame, share in p["summary"]["own"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--rates", default=DEFAULT_RATES, help="votes/s of each ladder step")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--hold-seconds", type=float, default=5)
    parser.add_argument("--slo-ms", type=float, default=50)
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument(
        "--connect-retries",
        type=int,
        default=3,
        help="retry a failed handshake N times with back-off (0: count every failure)",
    )
    parser.add_argument(
        "--stop-after-failures", type=int, default=1, help="end a ladder after N failing steps"
    )
    parser.add_argument(
        "--reveal-bursts",
        type=int,
        default=3,
        help="reveal bursts after the ladder (each on full tables; latency pooled over all)",
    )
    parser.add_argument("--url", default="", help="target (default: the cluster's balancer)")
    parser.add_argument(
        "--raw",
        choices=sorted(RAW_PATHS),
        default="both",
        help="the raw server directly (the targets' yardstick), behind HAProxy as ours, or both",
    )
    parser.add_argument("--no-raw", dest="raw", action="store_const", const="none")
    parser.add_argument("--raw-direct", dest="raw", action="store_const", const="direct")
    parser.add_argument(
        "--mass-disconnect",
        type=int,
        default=1000,
        help="close this many sockets at once after the bursts, then reopen them (0: skip)",
    )
    parser.add_argument(
        "--no-storm",
        dest="storm",
        action="store_false",
        help="skip the storm: SIGKILL worker 1 under load and time its sockets' reconnects",
    )
    parser.add_argument("--storm-rate", type=float, default=100, help="votes/s during the storm")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy worker 1 (GIL holder) at each step"
    )
    parser.add_argument("--keep-cluster", action="store_true")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--out-dir", default=str(ROOT / "var" / "bench"))
    args = parser.parse_args(argv)
    procstats.use_uvloop()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    started_cluster = False
    url = args.url
    if not url:
        env = read_env(CLUSTER_ENV) if CLUSTER_ENV.exists() else {}
        url = env.get("CLUSTER_URL", "http://127.0.0.1:8080")
        if not answers(url):
            print("bench: starting the cluster (deploy/cluster/cluster.sh start)", flush=True)
            subprocess.run([str(CLUSTER_SCRIPT), "start"], check=True)  # noqa: S603
            started_cluster = True
            url = read_env(CLUSTER_ENV)["CLUSTER_URL"]
    cluster_env = {**os.environ, **read_env(CLUSTER_ENV)}
    report: dict = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "teams": args.teams,
        "members": args.members,
        "step_seconds": args.step_seconds,
        "slo_ms": args.slo_ms,
        "rates": args.rates,
        "storm_rate": args.storm_rate,
        "runs": {},
    }
    try:
        seed_path = out_dir / "seed.json"
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
            env=cluster_env,
            check=True,
        )
        seed = json.loads(seed_path.read_text())
        pids = procstats.cluster_pids()
        profiler = None
        if args.profile and pids.get("workers"):
            profiler = Profiler(pids["workers"][0], args.step_seconds, out_dir)
        print(f"bench: cluster at {url}", flush=True)

        # The reveal bursts run as deployed (no maintenance a deployment would not have), then
        # again after a VACUUM ANALYZE of every database (bench.seed.vacuum says why it matters).
        def vacuum() -> None:
            subprocess.run(
                [sys.executable, "-m", "bench.seed", "--vacuum-only"],
                cwd=ROOT,
                env=cluster_env,
                check=True,
            )

        def kill_worker() -> None:
            # SIGKILL, no goodbye: its sockets, presence rows and Redis subscriptions just end.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pids["workers"][0], signal.SIGKILL)

        storm = kill_worker if args.storm and len(pids.get("workers", [])) > 1 else None
        try:
            report["runs"]["ours"] = run_against(
                url, seed, pids, args, on_step=profiler, vacuum=vacuum, kill=storm
            )
        finally:
            if storm is not None:  # as a supervisor would: start the killed worker again
                subprocess.run([str(CLUSTER_SCRIPT), "revive"], check=False)  # noqa: S603
        report["cluster"] = {
            k: cluster_env.get(k)
            for k in (
                "CHANNEL_LAYER_BACKEND",
                "GC_FREEZE",
                "GC_THRESHOLDS",
                "PY_SWITCH_INTERVAL_MS",
                "ROOM_VOTE_BATCH_MS",
                "DATABASE_POOL_MIN_SIZE",
                "DATABASE_POOL_MAX_SIZE",
                "DATABASE_CONN_HEALTH_CHECKS",
                "DATABASE_SERVER_SIDE_BINDING",
                "ROOM_DB_THREADS",
                "CLUSTER_WORKERS",
                "SHARD_URLS",
                "CLUSTER_CELERY",
                "CLUSTER_SERVER",
                "CLUSTER_WS_IMPL",
            )
        }
        if profiler is not None and profiler.files:
            ladder = report["runs"]["ours"]["ladder"]
            knee = next((s for s in ladder if not s["passes"]), ladder[-1])
            rate = knee["target_votes_per_s"]
            report["profile"] = {
                "rate": rate,
                "file": str(profiler.files[rate]),
                "summary": summarize_profile(profiler.files[rate]),
            }
        args.storm = False  # the raw server is one process: nothing to fail over to
        for path in RAW_PATHS[args.raw]:
            name = "raw" if path == "direct" else "raw-balancer"
            print(f"bench: raw websockets server ({path})", flush=True)
            report["runs"][name] = run_raw(
                seed_path, seed, args, len(pids.get("lb", [])), direct=path == "direct"
            )
        if "raw" in report["runs"]:
            raw = report["runs"]["raw"]["sustained"]["deliveries_per_s"]
            ours = report["runs"]["ours"]["sustained"]["deliveries_per_s"]
            report["ratio"] = round(ours / raw, 3) if raw else None
            # A raw server that held its last step was not pushed to its limit: the ratio is
            # then only an upper bound (add higher --rates).
            report["raw_limit_reached"] = not report["runs"]["raw"]["ladder"][-1]["passes"]
        report["targets"] = targets(report)
    finally:
        if started_cluster and not args.keep_cluster:
            subprocess.run([str(CLUSTER_SCRIPT), "stop"], check=False)  # noqa: S603
    stamp = report["started_at"].replace(":", "")
    text = markdown(report)
    for name in ("report", f"report-{stamp}"):
        (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2))
        (out_dir / f"{name}.md").write_text(text)
    print(text)
    print(f"bench: report in {out_dir}/report.json and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
