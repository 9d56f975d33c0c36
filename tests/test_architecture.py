"""The import contracts (pyproject.toml, run by ``make lint``) hold on this tree, and catch an
import against them.

The layout's packages are written as a tiny tree under ``tmp_path`` with a copy of
pyproject.toml: one module per layer, each importing only what the layers allow, then one import
against them. lint-imports runs as the command line runs it, in a process of its own, so the
tiny ``pokerproject`` does not meet the real one imported here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# The layout, bottom to top; every import here is allowed.
LAYOUT = {
    "pokerproject/__init__.py": "from pokerproject import celery\n",
    "pokerproject/celery.py": "import celery\n",
    "pokerproject/channel_layers.py": "import channels\n",
    "pokerproject/errors.py": "",
    "pokerproject/admin.py": "from pokerproject import errors\n",
    "pokerproject/events.py": "from pokerproject import errors\n",
    "pokerproject/metrics.py": "import prometheus_client\n",
    "pokerproject/outbox.py": "from pokerproject import celery, events, metrics\n",
    "pokerproject/logs.py": "",
    "pokerproject/tracing.py": "",
    "pokerproject/regions/__init__.py": "",
    "pokerproject/regions/config.py": "",
    "accounts/__init__.py": "",
    "accounts/roles.py": "from pokerproject import errors\n",
    "accounts/models.py": "from accounts import roles\nfrom pokerproject.regions import config\n",
    "stories/__init__.py": "",
    "stories/services.py": "from accounts import models\nfrom pokerproject import events\n",
    "rooms/__init__.py": "",
    "rooms/game.py": "import dataclasses\n\nfrom pokerproject import errors\n",
    "rooms/models.py": "from rooms import game\n",
    "rooms/protocol.py": "from accounts import roles\n",
    "rooms/broadcast.py": "from rooms import protocol\n",
    "rooms/presence.py": "",
    "rooms/errors.py": "from pokerproject import errors\n",
    "rooms/selectors.py": "from rooms import models, presence\n",
    "rooms/sql.py": "from rooms import models\n",
    "rooms/services.py": "from rooms import broadcast, selectors\nfrom stories import services\n",
    "rooms/forms.py": "from rooms import game\n",
    "rooms/views.py": "from rooms import forms, selectors\n",
    "rooms/urls.py": "from rooms import views\n",
    "rooms/admin.py": "from rooms import models\n",
    "rooms/apps.py": "from rooms import services\n",
    "rooms/realtime/__init__.py": "",
    "rooms/realtime/consumers.py": "import channels\n\nfrom rooms import services\n",
    # Tests are outside the architecture: they may import anything.
    "rooms/tests/__init__.py": "",
    "rooms/tests/test_realtime.py": "import api\nfrom rooms.realtime import consumers\n",
    "integrations/__init__.py": "from pokerproject import outbox\nfrom rooms import services\n",
    "replication/__init__.py": "from pokerproject import outbox\nfrom rooms import services\n",
    "notifications/__init__.py": "import integrations\nfrom pokerproject import outbox\n",
    "operations/__init__.py": "import accounts.models\nimport replication\n",
    "api/__init__.py": "import integrations\nimport replication\n",
    "pokerproject/settings.py": "from pokerproject.regions import config\n",
    "pokerproject/health.py": "",
    "pokerproject/inputs.py": "import api\n",
    "pokerproject/security.py": "",
    "pokerproject/jsi18n.py": "",
    "pokerproject/prefork.py": "",
    "pokerproject/wsgi.py": "",
    "pokerproject/urls.py": "import api\nfrom pokerproject import health, jsi18n\n",
    "pokerproject/asgi.py": "from rooms.realtime import consumers\n",
}


def contract_name(contract_id: str) -> str:
    contracts = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
    return next(c["name"] for c in contracts if c["id"] == contract_id)


def lint_imports(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Wide enough that no contract's name is wrapped away from its KEPT or BROKEN.
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200"}
    return subprocess.run(  # noqa: S603 - this venv's lint-imports
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def target_tree(tmp_path: Path) -> Path:
    for name, source in LAYOUT.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    shutil.copy(CONFIG, tmp_path / "pyproject.toml")
    return tmp_path


def test_this_tree_keeps_the_active_contracts():
    result = lint_imports(cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout


def test_the_contracts_hold_on_the_layout(target_tree):
    result = lint_imports(cwd=target_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = len(tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"])
    assert f"Contracts: {contracts} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        pytest.param("accounts/models.py", "from rooms import services", "layers", id="up-a-layer"),
        pytest.param(
            "pokerproject/events.py", "import stories.services", "layers", id="platform-up"
        ),
        pytest.param("rooms/services.py", "import pokerproject.urls", "layers", id="into-config"),
        pytest.param("integrations/__init__.py", "import replication", "layers", id="siblings"),
        pytest.param("replication/__init__.py", "import operations", "layers", id="up-to-ops"),
        pytest.param(
            "integrations/__init__.py", "import notifications", "layers", id="up-to-notify"
        ),
        pytest.param(
            "stories/services.py", "from rooms import services as table", "layers", id="backlog-up"
        ),
        pytest.param(
            "rooms/game.py", "from django.db import models", "game-is-pure", id="orm-in-game"
        ),
        pytest.param("rooms/game.py", "from rooms import services", "rooms-inside", id="rules-up"),
        pytest.param(
            "rooms/selectors.py", "from rooms import services", "rooms-inside", id="reads-up"
        ),
        pytest.param(
            "api/__init__.py",
            "from rooms.realtime import consumers",
            "realtime-transport",
            id="api-ws",
        ),
    ],
)
def test_an_import_against_the_layers_breaks_its_contract(target_tree, module, line, contract):
    path = target_tree / module
    path.write_text(path.read_text() + line + "\n")
    result = lint_imports(cwd=target_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract_name(contract)} BROKEN" in result.stdout


def test_a_back_import_in_the_real_tree_breaks_the_layers(tmp_path):
    """The same check on a copy of this tree: the backlog reaching up into webhooks fails."""
    for package in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["root_packages"]:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(CONFIG, tmp_path / "pyproject.toml")
    services = tmp_path / "stories" / "services.py"
    services.write_text(services.read_text() + "\nfrom integrations import webhooks  # noqa\n")
    result = lint_imports(cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stories is not allowed to import integrations" in result.stdout
