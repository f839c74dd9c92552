"""The runs folder guard: every file the app serves, and every run it opens, lies inside `--runs`.

Paths are resolved (symbolic links followed) before the check, so neither `..` nor a link inside
the runs folder can point the app at another file. Run folder names come from the prompt through
`dreamer.api.slugify` (lowercase letters, digits and dashes) behind a timestamp.
"""

from __future__ import annotations

import re
from pathlib import Path

from dreamer.api import UserError, default_run_dir

CACHE_NAME = ".ui-cache"  # Gradio's copies of served files, kept inside the runs folder
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def runs_root(path: Path | str) -> Path:
    """The runs folder, created if missing, as an absolute resolved path."""
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"runs folder '{root}' is a file: choose another --runs")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create runs folder '{root}': {e.strerror}; choose another --runs") from None
    return root.resolve()


def inside_runs(runs_dir: Path, path: Path | str) -> Path:
    """`path` resolved, or a one-line UserError when it is not inside `runs_dir`."""
    resolved = Path(runs_dir, path).resolve()  # a relative path is taken relative to the runs folder
    root = Path(runs_dir).resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UserError(f"'{path}' is outside the runs folder '{root}': the app serves nothing else")
    return resolved


def run_dir_for(runs_dir: Path, run_id: str) -> Path:
    """The folder of run `run_id`, a plain folder name directly inside the runs folder."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or run_id == CACHE_NAME:
        raise UserError(f"'{run_id}' is not a run name: pick a run from the history")
    path = inside_runs(runs_dir, run_id)
    if path.parent != Path(runs_dir).resolve():
        raise UserError(f"'{run_id}' is not a run folder directly inside the runs folder")
    return path


def new_run_dir(runs_dir: Path, prompt: str) -> Path:
    """A new, empty run folder named `<time>-<prompt slug>` (then `-2`, `-3`, ... when taken)."""
    base = default_run_dir(prompt, runs_dir)
    for n in range(1, 1000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return inside_runs(runs_dir, candidate)
    raise UserError(f"too many runs named '{base.name}' in '{runs_dir}'")
