"""Which code and config a benchmark measured: the git commit (short hash), whether the tree had uncommitted
changes, and the preset resolved with its overrides; and the check that refuses to resume from results
another commit or config made (bench/vocabulary.py, bench/four_d.py)."""

from __future__ import annotations

import hashlib
import json
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


@dataclass(frozen=True)
class Provenance:
    """What every result carries: the code (commit, dirty) and the config (preset, overrides, resolved sha)."""

    commit: str
    dirty: bool
    config: str
    overrides: tuple[str, ...]
    config_sha: str

    def fields(self) -> dict:
        return {"commit": self.commit, "dirty": self.dirty, "config": self.config,
                "overrides": list(self.overrides), "config_sha": self.config_sha}


def config_sha(config: str, overrides: list[str], four_d: bool = False) -> str:
    """The preset (any name under configs/, or a YAML path) resolved with the overrides, hashed without
    its prompt; a one-line error for an unknown preset or override, or a preset of the other kind (a 4D
    preset for a static benchmark, a static one for the 4D benchmark)."""
    from dreamer.config import to_dict
    from dreamer.errors import UserError
    from dreamer.run_config import load_run_config

    try:
        cfg = load_run_config(config, None, list(overrides))
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    if getattr(cfg, "is_4d", False) and not four_d:
        raise SystemExit(f"error: preset '{config}' is a 4D preset; the vocabulary benchmark judges static objects")
    if four_d and not getattr(cfg, "is_4d", False):
        raise SystemExit(f"error: preset '{config}' is not a 4D preset; the 4D benchmark judges moving objects")
    data = to_dict(cfg)
    data.pop("prompt", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def make_provenance(config: str, overrides: list[str], state: GitState, four_d: bool = False) -> Provenance:
    return Provenance(state.commit, state.dirty, config, tuple(overrides), config_sha(config, overrides, four_d))


def check_record(result: dict, path: Path, current: Provenance) -> None:
    """A one-line error when a result read back for resuming was made by another commit or config."""
    where = f"{path} was made"
    advice = "; delete it or pass another --out"
    if "commit" not in result:
        raise SystemExit(f"error: {where} by an unrecorded commit and config (before they were recorded){advice}")
    if result["commit"] != current.commit:
        raise SystemExit(f"error: {where} by commit {result['commit']}, this tree is commit {current.commit}{advice}")
    if result.get("config") != current.config:
        raise SystemExit(f"error: {where} with preset {result.get('config')!r}, not {current.config!r}{advice}")
    if list(result.get("overrides") or []) != list(current.overrides):
        raise SystemExit(f"error: {where} with overrides {' '.join(result.get('overrides') or []) or '(none)'!r}, "
                         f"not {' '.join(current.overrides) or '(none)'!r}{advice}")
    if result.get("config_sha") != current.config_sha:
        raise SystemExit(f"error: {where} with resolved config {result.get('config_sha')}, not {current.config_sha} "
                         f"(preset {current.config!r} or the defaults changed){advice}")


def read_back(folder: Path, current: Provenance) -> dict | None:
    """A finished run's result to resume from (checked against `current`), or None when it must run."""
    record = folder / "bench.json"
    if not (record.exists() and (folder / "eval.json").exists()):
        return None
    result = json.loads(record.read_text())
    check_record(result, record, current)
    return result
