"""Benchmark smoke: the generator plays every phase against the raw server and the report renders.

Not a timing test: a few teams for a couple of seconds, asserting that what was sent arrived and
that the report holds every figure. The same generator against the real stack runs in
tests/cluster/ (it needs PostgreSQL and Redis).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import load, run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _seed(teams: int, members: int) -> dict:
    """A seed file as bench.seed writes it; the raw server needs no database."""
    return {
        "teams": [
            {
                "slug": f"smoke-t{t}",
                "id": t + 1,
                "members": [
                    {
                        "user_id": t * 100 + m,
                        "username": f"smoke-t{t}-m{m}",
                        "session": f"s{t}x{m}",
                        "role": "facilitator" if m == 0 else "voter",
                    }
                    for m in range(members)
                ],
            }
            for t in range(teams)
        ]
    }


@pytest.fixture
def raw_server(tmp_path):
    seed = _seed(teams=4, members=3)
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(seed))
    port = run.free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bench.raw_server", "--port", str(port), "--seed", str(seed_path)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("the raw server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", seed, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.processes
async def test_every_phase_runs_and_every_delivery_arrives(raw_server):
    url, seed, pid = raw_server
    result = await load.run(
        url=url,
        seed=seed,
        server_pids={"raw": [pid]},
        rates=[20, 40],
        step_seconds=1,
        hold_seconds=0.2,
        slo_ms=10_000,
        reveal_bursts=2,
    )
    assert result["connect"]["sockets"] == 12
    assert result["connect"]["failures"] == 0
    assert result["connect"]["memory_after_mb"]["server_mb"] > 0
    assert [s["target_votes_per_s"] for s in result["ladder"]] == [20, 40]
    for step in result["ladder"]:
        assert step["votes_sent"] > 0
        assert step["votes_acked"] == step["votes_sent"]
        assert step["deliveries"] == step["expected_deliveries"]
        assert step["expected_deliveries"] == 2 * step["votes_sent"]
        assert step["missing_deliveries"] == 0
        assert step["latency"]["p99_ms"] is not None
        assert "server" in step["cpu"]
        assert "generator" in step["cpu"]
    # Two bursts, the second on a new round every voter played a card on.
    assert [b["deliveries"] for b in result["reveal"]["bursts"]] == [12, 12]
    assert result["reveal"]["expected_deliveries"] == 24
    assert result["reveal"]["deliveries"] == 24
    assert result["reveal"]["missing_deliveries"] == 0
    for burst in result["reveal"]["bursts"]:
        assert set(burst["cpu_seconds"]) == set(burst["cpu"])
        for group, pct in burst["cpu"].items():
            assert burst["cpu_seconds"][group] == pytest.approx(
                pct * burst["seconds"] / 100, abs=0.01
            )
    assert result["sustained"]["deliveries_per_s"] > 0
    # The mass disconnect closed every socket at once and opened them all again.
    assert result["mass_disconnect"]["sockets"] == 12
    assert result["mass_disconnect"]["reopened"] == 12
    assert "server" in result["mass_disconnect"]["cpu_seconds_above_idle"]


@pytest.mark.processes
async def test_the_storm_reconnects_every_lost_socket_and_waits_for_a_whole_window(raw_server):
    """Sockets cut under load (as a killed worker's are) come back by themselves, and the storm
    ends at the first one-second window in which every vote reached every teammate."""
    url, seed, pid = raw_server
    probe = load.procstats.Probe({"raw": [pid]})
    generator = load.Generator(url, seed)
    try:
        await generator.connect(10, probe)
        await generator.prepare()

        def cut() -> None:
            for member in generator.members[::2]:
                member.ws.transport.abort()

        result = await generator.storm(cut, probe, rate=20, slo_ms=10_000, timeout=30)
    finally:
        await generator.close()
    assert result["sockets"] == 12
    assert result["lost"] == result["reconnected"] == 6
    assert result["all_back_seconds"] is not None
    assert result["recovered_seconds"] is not None
    assert result["recovered_seconds"] >= result["all_back_seconds"]
    assert result["windows"][-1]["open"] == 12
    assert result["windows"][-1]["missing"] == 0


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs HAProxy (CI installs it)")
def test_the_raw_server_runs_behind_haproxy_as_ours_does(tmp_path):
    """The yardstick takes the same path as the cluster: generator -> HAProxy -> server."""
    seed = _seed(teams=3, members=3)
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(seed))
    args = SimpleNamespace(
        rates="20",
        step_seconds=1,
        hold_seconds=0.2,
        slo_ms=10_000,
        connect_concurrency=10,
        connect_retries=0,
        stop_after_failures=1,
        reveal_bursts=1,
        mass_disconnect=0,
        storm_rate=0,
        out_dir=str(tmp_path),
    )
    result = run.run_raw(seed_path, seed, args, lb_procs=2, direct=False)
    assert result["connect"]["sockets"] == 9
    assert result["connect"]["failures"] == 0
    step = result["ladder"][0]
    assert step["votes_sent"] > 0
    assert step["deliveries"] == step["expected_deliveries"] == 2 * step["votes_sent"]
    # HAProxy's processes are counted as the server's balancer, as for the cluster.
    assert result["connect"]["memory_after_mb"]["lb"] > 0


def test_the_report_renders_every_run():
    step = {
        "target_votes_per_s": 100.0,
        "votes_per_s": 99.5,
        "errors": 0,
        "deliveries_per_s": 895.5,
        "missing_deliveries": 0,
        "latency": {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0},
        "cpu": {"server": 50.0, "generator": 20.0},
        "passes": True,
    }
    one = {
        "connect": {
            "sockets": 10,
            "failures": 0,
            "handshakes_per_s": 100.0,
            "memory_after_mb": {"server_mb": 50.0, "workers": 40.0, "workers_rss": 60.0},
            "server_kb_per_socket": 40.0,
        },
        "idle": {"cpu": {"server": 1.0}},
        "ladder": [step],
        "reveal": {
            "teams": 1,
            "bursts": [
                {"latency": step["latency"]},
                {
                    "latency": {**step["latency"], "p99_ms": 5.0},
                    "seconds": 0.5,
                    "cpu_seconds": {"workers": 0.45, "lb": 0.18, "redis": 0.0, "server": 0.63},
                },
            ],
            "latency": step["latency"],
            "missing_deliveries": 0,
        },
        "sustained": load.sustained([step]),
    }
    report = {
        "started_at": "2026-01-01T00:00:00Z",
        "machine": run.machine(),
        "teams": 1,
        "members": 10,
        "step_seconds": 10.0,
        "slo_ms": 50.0,
        "runs": {"ours": one, "raw": one},
        "ratio": 1.0,
    }
    report["targets"] = run.targets(report)
    assert report["targets"]["sustained"] == {
        "ours": 99.5,
        "raw": 99.5,
        "value": 1.0,
        "holds": True,
    }
    assert report["targets"]["cpu_per_vote"]["value"] == 1.0
    assert report["targets"]["stalls"]["value"] == 3.0  # p99 3 ms / p50 1 ms: at the limit
    assert report["targets"]["memory"]["holds"] is True
    text = run.markdown(report)
    assert "| handshakes/s, ours / raw | 100 | 100 | 1 | >= 0.5 | yes |" in text
    assert "| ours | 10 | 0 | - | 100 | 50 | 40 / 60 | 40 | 1 |" in text
    assert "| ours | 100 | 99.5 | 895.5 | 1 | 2 | 3 | 4 | 0 | 50 | 20 | yes |" in text
    assert "ratio ours / raw: **1.00**" in text
    assert "| ours | 2 x 1 | 1 | 3 | 4 | 3, 5 | 0 |" in text
    # Only bursts that measured their CPU are costed; groups that spent nothing are left out.
    assert "| ours | 2 | 0.5 | 5 | workers 0.45, lb 0.18, server 0.63 |" in text
    assert "| ours | 1 |" not in text
    assert "upper bound" not in text
    assert "upper bound" in run.markdown({**report, "raw_limit_reached": False})
    assert load.step_passes(step, slo_ms=50)
    assert not load.step_passes({**step, "missing_deliveries": 1}, slo_ms=50)


def test_both_servers_begin_a_reveal_as_the_generator_reads_it():
    """The generator reads a ``cards_revealed`` frame by its first bytes; both servers' frames
    must begin that way, or the burst would decode them all (slower, still correct)."""
    from bench import raw_server
    from rooms import broadcast, protocol

    ours = broadcast.encode(
        protocol.event("cards_revealed", version=3, data={"round": {"status": "revealed"}})
    )
    raw = raw_server.dumps({"type": "cards_revealed", "version": 3, "data": {}})
    assert ours.startswith(load.REVEALED)
    assert raw.startswith(load.REVEALED)


async def test_a_replay_restarts_a_table_the_last_burst_left_unrevealed():
    """A table whose reveal failed is still voting: the replay votes on its story again instead
    of ending the run (the failed burst already reported the missing deliveries)."""
    generator = load.Generator("http://127.0.0.1:1", _seed(teams=2, members=2))
    asked: list[tuple[str, str]] = []

    async def command(member, name, **data):
        asked.append((member.team.slug, name))
        if name == "start_round" and member.team.slug == "smoke-t1":
            return {"type": "error", "code": "round_in_progress"}
        return {"type": "ack"}

    generator.command = command
    for member in generator.members:
        member.ws = object()  # open, as far as the replay can tell
    await generator.replay(settle=0)
    rounds = [(slug, name) for slug, name in asked if name != "cast_vote"]
    assert sorted(rounds) == [
        ("smoke-t0", "start_round"),
        ("smoke-t1", "restart_round"),
        ("smoke-t1", "start_round"),
    ]
    assert sum(name == "cast_vote" for _, name in asked) == 4
