"""The files an operator watches the system with (deploy/prometheus, deploy/grafana, deploy/k8s):
the alert rules pass promtool's check and their unit tests, every dashboard query is valid
PromQL on metrics the code exports, the Kubernetes manifests validate, and (``processes``) during
a short load on ``make cluster OBSERVE=1`` every dashboard panel's query returns data from the
cluster's own Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
K8S = ROOT / "deploy" / "k8s"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def _need(tool: str | None, name: str) -> str:
    if tool:
        return tool
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (.ci/run installs the Debian package prometheus)")
    pytest.skip(f"{name} is not installed (Debian package prometheus)")


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) of every panel target, Grafana's interval made concrete."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m")
                found.append((path.stem, panel["title"], expr))
    return found


def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    promtool = _need(PROMTOOL, "promtool")
    check = subprocess.run(  # noqa: S603
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(  # noqa: S603
        [promtool, "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES_TEST.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_prometheus_configurations_are_valid(tmp_path):
    """compose's Prometheus and the one `make cluster OBSERVE=1` generates. (Debian's promtool
    has no Kubernetes discovery, so the k8s one is checked as a manifest only.)"""
    promtool = _need(PROMTOOL, "promtool")
    generated = subprocess.run(  # noqa: S603
        [str(ROOT / "deploy" / "cluster" / "cluster.sh"), "prometheus-cfg"],
        env={**os.environ, "CLUSTER_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "metrics-token").write_text("token")
    cluster_cfg = tmp_path / "prometheus.yml"
    cluster_cfg.write_text(generated)
    for path, flags in (
        (ROOT / "deploy" / "prometheus" / "prometheus-compose.yml", ["--syntax-only"]),
        (cluster_cfg, []),
    ):
        done = subprocess.run(  # noqa: S603
            [promtool, "check", "config", *flags, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_line_in_the_operations_doc():
    operations = (ROOT / "docs" / "operations.md").read_text()
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 7
    tested = RULES_TEST.read_text()
    for rule in alerts:
        name = rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}"
        assert f"#### {name}" in operations, f"no runbook heading for {name}"
        assert f"alertname: {name}" in tested, f"no unit test for {name}"


def test_every_dashboard_query_is_valid_promql_on_exported_metrics(tmp_path):
    """Each query parses (promtool checks it as a recording rule), and each metric it reads is
    one the code exports or the rules record, so a renamed metric breaks this test."""
    promtool = _need(PROMTOOL, "promtool")
    queries = panel_queries()
    assert len(DASHBOARDS) == 3
    assert len(queries) >= 30
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"panel:{i}", "expr": q} for i, (_, _, q) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run(  # noqa: S603
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

    exported = set(
        re.findall(r'"(poker_[a-z_]+)"', (ROOT / "pokerproject" / "metrics.py").read_text())
    )
    for module in ("pokerproject/outbox.py", "replication/metrics.py"):
        exported |= set(re.findall(r'"(poker_[a-z_]+)"', (ROOT / module).read_text()))
    recorded = {
        r["record"]
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    for dashboard, title, expr in queries:
        for name in re.findall(r"\b(poker[:_][a-z0-9_:]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in recorded or base in exported or name in exported, (
                f"{dashboard} / {title}: {name} is not exported"
            )


def test_the_kubernetes_manifests_validate():
    """Every manifest of deploy/k8s (the app, Prometheus, Grafana) against the Kubernetes schema."""
    validate = Path(sys.executable).parent / "kubernetes-validate"
    assert validate.exists(), "kubernetes-validate is pinned in requirements-dev.txt"
    manifests = [p for p in sorted(K8S.glob("*.yaml")) if p.name not in ("kustomization.yaml",)]
    assert any("prometheus" in p.name for p in manifests)
    assert any("grafana" in p.name for p in manifests)
    done = subprocess.run(  # noqa: S603
        [str(validate), "--strict", "--no-warn", "-k", "1.33.0", *map(str, manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_kubernetes_dashboards_are_the_files_grafana_is_given():
    """The k8s Grafana gets deploy/grafana/dashboards through kustomize's configMapGenerator."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    generated = {
        Path(f).name
        for g in kustomization.get("configMapGenerator", [])
        for f in g.get("files", [])
    }
    assert {p.name for p in DASHBOARDS} <= generated


# --- a live cluster ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_pair() -> int:
    """A base port whose two successors are free (the cluster's workers listen on BASE+1, +2)."""
    for _ in range(50):
        base = _free_port()
        ok = True
        for port in (base + 1, base + 2):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise AssertionError("no two free consecutive ports")


def _query(prometheus: str, expr: str) -> list:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _cluster_env(directory: Path) -> dict[str, str]:
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", f"source {directory}/env && env -0"],  # noqa: S607
        capture_output=True,
        check=True,
    )
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


async def _errors_and_resync(base_url: str, seed: dict) -> None:
    """A member's socket sends a frame that is not JSON and asks for a snapshot."""
    from bench.client import TableClient

    team = seed["teams"][0]
    async with TableClient(base_url, team["slug"], team["members"][0]["session"]) as client:
        await client.ws.send("{not json")
        assert (await client.wait_for("error"))["code"] == "bad_json"
        await client.command("get_snapshot")


@pytest.mark.processes
@pytest.mark.timeout(900)
def test_every_panel_has_data_during_a_load_on_the_observed_cluster(tmp_path):
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the cluster needs PostgreSQL (DATABASE_URL=postgres://...)")
    _need(PROMETHEUS, "prometheus")
    if not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists():
        pytest.skip("the cluster needs HAProxy")
    server = urllib.parse.urlsplit(database_url)
    pg_url = f"{server.scheme}://{server.netloc}"
    run = uuid.uuid4().hex[:6]
    directory = tmp_path / "cluster"
    env = {
        **os.environ,
        "CLUSTER_DIR": str(directory),
        "WORKERS": "2",
        "LB_PROCS": "1",
        "CLUSTER_PORT": str(_free_port()),
        "WORKER_BASE_PORT": str(_free_pair()),
        "CLUSTER_REDIS_PORT": str(_free_port()),
        "PROMETHEUS_PORT": str(_free_port()),
        "PG_URL": pg_url,
        "DB_PREFIX": f"poker_metrics_{run}",
        "SHARDS": "eu-1@eu,eu-2@eu",
        "DATABASE_POOL_MAX_SIZE": "2",
        "OBSERVE": "1",
        "SCRAPE_INTERVAL": "1s",
        "REPLICATION_SWEEP_SECONDS": "3",
        "WEBHOOK_SWEEP_SECONDS": "3",
    }
    for key in (
        "DATABASE_URL",
        "SHARD_URLS",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CHANNEL_LAYER_PREFIX",
    ):
        env.pop(key, None)
    cluster = str(ROOT / "deploy" / "cluster" / "cluster.sh")
    databases = [env["DB_PREFIX"], f"{env['DB_PREFIX']}_eu_1", f"{env['DB_PREFIX']}_eu_2"]
    try:
        started = subprocess.run(  # noqa: S603
            [cluster, "start"], env=env, capture_output=True, text=True, check=False, timeout=400
        )
        logs = directory / "logs"
        assert started.returncode == 0, (
            started.stdout
            + started.stderr
            + "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in logs.glob("*.log"))
        )
        prometheus = (directory / "prometheus-url").read_text().strip()
        cluster_env = {**_cluster_env(directory), "PATH": os.environ["PATH"]}
        base_url = cluster_env["CLUSTER_URL"]
        seed_path = tmp_path / "seed.json"
        seed_cmd = [sys.executable, "-m", "bench.seed", "--teams=4", "--members=3"]
        subprocess.run(  # noqa: S603
            [*seed_cmd, f"--prefix=obs{run}", f"--out={seed_path}"],
            env=cluster_env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        seed = json.loads(seed_path.read_text())
        asyncio.run(_errors_and_resync(base_url, seed))
        load = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "bench.load",
                f"--url={base_url}",
                f"--seed={seed_path}",
                "--rates=20",
                "--step-seconds=8",
                "--hold-seconds=1",
            ],
            env=cluster_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert load.returncode == 0, load.stdout[-3000:] + load.stderr[-3000:]
        time.sleep(6)  # a few scrapes and rule evaluations after the load

        empty = []
        for dashboard, title, expr in panel_queries():
            if not _query(prometheus, expr):
                empty.append(f"{dashboard} / {title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
        # Figures that must have moved, not only exist.
        [votes] = _query(
            prometheus, 'sum(poker_ws_commands_total{command="cast_vote",outcome="ack"})'
        )
        assert float(votes["value"][1]) > 50
        workers = _query(
            prometheus, 'count(count by (pid) (poker_process_cpu_seconds_total{kind="web"}))'
        )
        assert float(workers[0]["value"][1]) == 2
        celery = _query(prometheus, 'sum(poker_celery_tasks_total{outcome="success"})')
        assert float(celery[0]["value"][1]) > 0
    finally:
        subprocess.run([cluster, "stop"], env=env, capture_output=True, check=False, timeout=120)  # noqa: S603
        import psycopg

        with (
            contextlib.suppress(Exception),
            psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn,
        ):
            for name in databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
