"""`ruff check` of the whole repository (the rule set in pyproject.toml, [tool.ruff]) finds nothing."""
import subprocess
import sys
from pathlib import Path

import pytest

# Skipping without ruff is acceptable only because the `test` extra (which CI installs: `pip install .[test]`)
# lists ruff, so in CI this test always runs.
pytest.importorskip("ruff")

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}\n{result.stderr}"
