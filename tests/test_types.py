"""The package type-checks: mypy with the ``[tool.mypy]`` settings of pyproject.toml, strict on
``core``, ``model`` and ``engine``, finds nothing.

mypy reads the source tree the tests run from (never an installed copy), so the check holds
for a plain ``pip install '.[test]'`` as for an editable one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a cold mypy cache (a fresh checkout, CI) takes several seconds
def test_the_package_type_checks_with_mypy() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "milestoned")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"mypy exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}"
