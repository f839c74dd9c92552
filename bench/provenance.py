"""Which code a benchmark measured: the git commit (short hash) and whether the tree had uncommitted changes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class GitState:
    commit: str  # short hash of HEAD, "unknown" outside a git checkout
    dirty: bool  # uncommitted changes to tracked files, or untracked files git does not ignore

    def describe(self) -> str:
        return f"commit {self.commit}" + (" + uncommitted changes (dirty)" if self.dirty else " (clean)")


def git_state(root: Path | str = ROOT) -> GitState:
    """HEAD's short hash and the tree's dirtiness; ("unknown", dirty) when git cannot tell (not provably clean)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.CalledProcessError):
        return GitState("unknown", True)
    return GitState(commit, dirty)
