"""Every ``make <target>`` the README and docs tell a user to run is a target of the Makefile that
does something (a ``.PHONY`` name without a rule answers "Nothing to be done" and exits 0: the
command looked fine and did nothing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "ghl_sandbox" / "README.md"]
_MAKE = re.compile(r"`make ([a-z][a-z0-9-]*)")


def _documented_targets() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for target in _MAKE.findall(doc.read_text(encoding="utf-8")):
            found.setdefault(target, []).append(doc.relative_to(REPO).as_posix())
    return found


def test_the_docs_name_the_two_commands_and_more() -> None:
    assert {"demo", "test"} <= set(_documented_targets())


@pytest.mark.parametrize("target", sorted(_documented_targets()))
def test_each_documented_make_target_has_a_recipe(target: str) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n: print the commands without running them (the setup step included when .venv is missing).
    done = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60)
    where = ", ".join(sorted(set(_documented_targets()[target])))
    assert done.returncode == 0, f"`make {target}` ({where}) fails: {done.stderr}"
    assert "Nothing to be done" not in done.stdout + done.stderr, f"`make {target}` ({where}) has no recipe"
    assert done.stdout.strip(), f"`make {target}` ({where}) runs nothing"
