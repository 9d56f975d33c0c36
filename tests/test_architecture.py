"""The import contracts hold on this tree, and the restructured layout's contracts catch an import
against them.

``make lint`` runs ``lint-imports`` with pyproject.toml's contracts (the layout of today);
``.importlinter.target`` holds the contracts of the restructured layout. The target's packages are
written as a tiny tree under ``tmp_path``: one module per layer, each importing only what the
layers allow, then one import against them. lint-imports runs as the command line runs it, in a
process of its own, so the tiny ``pokerproject`` does not meet the real one imported here.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / ".importlinter.target"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# The restructured layout, bottom to top; every import here is allowed.
LAYOUT = {
    "pokerproject/__init__.py": "",
    "pokerproject/errors.py": "",
    "pokerproject/events.py": "from pokerproject import errors\n",
    "pokerproject/outbox.py": "from pokerproject import events\n",
    "pokerproject/regions/__init__.py": "",
    "pokerproject/regions/config.py": "",
    "accounts/__init__.py": "",
    "accounts/models.py": "import django.db\n\nfrom pokerproject.regions import config\n",
    "stories/__init__.py": "",
    "stories/services.py": "from accounts import models\nfrom pokerproject import outbox\n",
    "rooms/__init__.py": "",
    "rooms/game.py": "import dataclasses\n\nfrom pokerproject import errors\n",
    "rooms/services.py": "from rooms import game\nfrom stories import services\n",
    "rooms/realtime.py": "import channels\n\nfrom rooms import services\n",
    # Tests are outside the architecture: they may import anything.
    "rooms/tests/__init__.py": "",
    "rooms/tests/test_realtime.py": "import api\nfrom rooms import realtime\n",
    "integrations/__init__.py": "from rooms import services\n",
    "replication/__init__.py": "from pokerproject import outbox\nfrom stories import services\n",
    "operations/__init__.py": "import accounts.models\n",
    "api/__init__.py": "import integrations\nimport operations\nimport replication\n",
    "pokerproject/settings.py": "from pokerproject.regions import config\n",
    "pokerproject/health.py": "",
    "pokerproject/celery.py": "",
    "pokerproject/wsgi.py": "",
    "pokerproject/api_urls.py": "import api\n",
    "pokerproject/urls.py": "from pokerproject import api_urls, health\n",
    "pokerproject/asgi.py": "from rooms import realtime\n",
}


def contract_name(contract_id: str) -> str:
    config = configparser.ConfigParser()
    config.read(TARGET)
    return config[f"importlinter:contract:{contract_id}"]["name"]


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
    return tmp_path


def test_this_tree_keeps_the_active_contracts():
    result = lint_imports(cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout


def test_the_target_contracts_hold_on_the_target_layout(target_tree):
    result = lint_imports(str(TARGET), cwd=target_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = sum(
        1 for line in TARGET.read_text().splitlines() if "[importlinter:contract:" in line
    )
    assert f"Contracts: {contracts} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        pytest.param("accounts/models.py", "from rooms import services", "layers", id="up-a-layer"),
        pytest.param(
            "pokerproject/events.py", "import stories.services", "layers", id="platform-up"
        ),
        pytest.param("rooms/services.py", "import pokerproject.celery", "layers", id="into-config"),
        pytest.param("integrations/__init__.py", "import operations", "layers", id="siblings"),
        pytest.param(
            "rooms/game.py", "from django.db import models", "game-is-pure", id="orm-in-game"
        ),
        pytest.param("rooms/game.py", "from rooms import services", "rooms-inside", id="rules-up"),
        pytest.param(
            "api/__init__.py", "from rooms import realtime", "realtime-transport", id="api-ws"
        ),
    ],
)
def test_an_import_against_the_target_breaks_its_contract(target_tree, module, line, contract):
    path = target_tree / module
    path.write_text(path.read_text() + line + "\n")
    result = lint_imports(str(TARGET), cwd=target_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract_name(contract)} BROKEN" in result.stdout
