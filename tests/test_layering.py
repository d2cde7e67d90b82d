"""Data flows one way (shared/STYLE.md): the import-linter contracts of pyproject.toml hold, and they fail on
a wrong import. (Third-party bans - Playwright, SQLAlchemy, FastAPI in their own packages - are ruff's
banned-api, run by scripts/test.sh.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("portal_agent", "api", "agent", "portals", "store", "core", "fixtures")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layers_contracts_hold():
    r = lint_imports(REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_a_wrong_import_breaks_its_contract(tmp_path):
    """A copy of the tree where the store reaches up to the entry package and the sandbox into the store."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.csv",
                                                                                  "static", "templates"))
    with open(tmp_path / "store" / "repo.py", "a") as f:
        f.write("\nimport portal_agent.cli  # noqa\n")
    with open(tmp_path / "fixtures" / "control.py", "a") as f:
        f.write("\nfrom store import repo  # noqa\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0
    assert "layers: portal_agent > api > agent > portals | store > core BROKEN" in r.stdout
    assert "the sandbox imports no product code BROKEN" in r.stdout
    assert "store.repo -> portal_agent.cli" in r.stdout and "fixtures.control -> store.repo" in r.stdout
