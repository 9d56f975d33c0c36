"""Every way the project starts an ASGI server caps the WebSocket frames the server reads,
from the table's own limit (ROOM_MAX_FRAME_BYTES): the servers would otherwise buffer up to
16 MiB (uvicorn) or 1 MiB (daphne) of a frame before the table refuses anything over 4 KiB."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "deploy" / "cluster" / "cluster.sh"


def _run(cmd: list[str], **env: str) -> list[str]:
    out = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    return shlex.split(out)


def _after(argv: list[str], flag: str) -> str:
    assert flag in argv, argv
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(("limit", "cap"), [("4096", "65536"), ("8192", "131072")])
def test_cluster_uvicorn_workers_get_a_ws_max_size(limit, cap):
    argv = _run(
        ["bash", str(CLUSTER), "worker-cmd"],
        SERVER="uvicorn",
        ROOM_MAX_FRAME_BYTES=limit,
        WORKERS="4",
        WORKER_BASE_PORT="8100",
    )
    # One launcher forking a uvicorn worker per port (pokerproject/prefork.py).
    assert argv[1:3] == ["-m", "pokerproject.prefork"]
    assert _after(argv, "--ports") == "8101,8102,8103,8104"
    assert _after(argv, "--ws-max-size") == cap


def test_cluster_daphne_workers_get_a_ws_max_size():
    argv = _run(["bash", str(CLUSTER), "worker-cmd"], SERVER="daphne", ROOM_MAX_FRAME_BYTES="4096")
    assert Path(argv[0]).name == "daphne"
    assert _after(argv, "--websocket-max-message-size") == "65536"
    assert _after(argv, "--websocket-max-frame-size") == "65536"


def test_an_explicit_ws_max_size_wins():
    argv = _run(["bash", str(CLUSTER), "worker-cmd"], SERVER="uvicorn", WS_MAX_SIZE="1234")
    assert _after(argv, "--ws-max-size") == "1234"


def test_the_image_runs_uvicorn_with_a_ws_max_size():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^\s+ROOM_MAX_FRAME_BYTES=4096 \\$", dockerfile, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd[:2] == ["sh", "-c"]
    # The container's shell line, with the server replaced by an echo of its arguments.
    line = cmd[2].replace("exec uvicorn", "exec echo uvicorn", 1)
    argv = _run(["sh", "-c", line], PORT="8000", ROOM_MAX_FRAME_BYTES="4096")
    assert _after(argv, "--ws-max-size") == "65536"


@pytest.mark.parametrize("manifest", ["deploy/compose.yaml", "deploy/k8s/config.yaml"])
def test_the_manifests_set_the_frame_limit_the_image_derives_the_cap_from(manifest):
    text = (ROOT / manifest).read_text()
    assert re.search(r'^\s+ROOM_MAX_FRAME_BYTES: "4096"$', text, re.M)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_passes_the_cap_to_daphne():
    out = subprocess.run(
        ["make", "-n", "run"],  # noqa: S607 - make from PATH
        cwd=ROOT,
        env={**os.environ, "ROOM_MAX_FRAME_BYTES": "4096"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    daphne = shlex.split(out[out.index(".venv/bin/daphne") :].replace("\\\n", " "))
    assert _after(daphne, "--websocket-max-message-size") == "65536"
    assert _after(daphne, "--websocket-max-frame-size") == "65536"
