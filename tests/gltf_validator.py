"""The Khronos glTF validator for tests (and bench/export.py): zero errors or a failure listing them.

It runs the npm package `gltf-validator` through node: `make validator` installs it into .tools/
(git-ignored); `tools/validate_gltf.mjs` prints its JSON report; $GLTF_VALIDATOR_DIR names another
install prefix. `assert_valid_gltf` skips with the reason when the validator cannot run here (no
node, not installed), except in CI (CI=true), where `.ci/run` installs it and a skip would hide a
broken set-up. It lives on the tests' side: the library never needs node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the checkout (this file lives in tests/)
SCRIPT = ROOT / "tools" / "validate_gltf.mjs"


@dataclass
class GltfReport:
    errors: int
    warnings: int
    infos: int
    hints: int
    messages: list[dict] = field(default_factory=list)  # the validator's issues: code, message, severity, pointer

    def error_lines(self) -> list[str]:
        """'CODE at POINTER: message' for each error (severity 0)."""
        return [f"{m['code']} at {m.get('pointer', '?')}: {m['message']}" for m in self.messages
                if m.get("severity") == 0]


def validator_dir() -> Path:
    return Path(os.environ.get("GLTF_VALIDATOR_DIR", ROOT / ".tools"))


def validator_problem() -> str | None:
    """Why the validator cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (the glTF validator runs on Node.js)"
    if not SCRIPT.is_file():
        return f"{SCRIPT} is missing (a source checkout is needed)"
    if not (validator_dir() / "node_modules" / "gltf-validator").is_dir():
        return f"gltf-validator is not installed under {validator_dir()}: run `make validator`"
    return None


def validate_gltf(path: Path | str, timeout: float = 120.0) -> GltfReport:
    """The validator's verdict on a .glb/.gltf file; RuntimeError if it cannot run."""
    problem = validator_problem()
    if problem:
        raise RuntimeError(problem)
    proc = subprocess.run(["node", str(SCRIPT), str(path), "--validator-dir", str(validator_dir())],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"glTF validator failed on {path}: {proc.stderr.strip()}")
    issues = json.loads(proc.stdout)["issues"]
    return GltfReport(errors=issues["numErrors"], warnings=issues["numWarnings"], infos=issues["numInfos"],
                      hints=issues["numHints"], messages=issues.get("messages", []))


def assert_valid_gltf(path):
    """Zero validator errors in `path`; returns the report (for stricter checks)."""
    problem = validator_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"glTF validator unavailable in CI: {problem}")
        pytest.skip(f"glTF validator unavailable: {problem}")
    report = validate_gltf(path)
    assert report.errors == 0, f"{path}: {report.errors} glTF errors:\n" + "\n".join(report.error_lines())
    return report
