"""`dreamer ui`: start the web UI in `ui/` (beside this package in the source checkout).

Gradio is imported here, inside the command, so `import dreamer` stays light. The `ui` package
lives at the top of the repository (it is a front door, like the CLI, not part of the library);
this puts the repository on `sys.path` when it is not there already.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from dreamer.errors import UserError

REPO = Path(__file__).resolve().parent.parent


def ui_module(name: str = "app") -> ModuleType:
    """`ui.<name>` from the checkout's ui/ folder; a one-line error when it or Gradio is missing."""
    if not (REPO / "ui" / "__init__.py").is_file():
        raise UserError(f"the web UI is not installed: no ui/ folder in {REPO} (it ships with the source checkout)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        return importlib.import_module(f"ui.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "gradio":
            raise UserError('the web UI needs Gradio: pip install "gradio>=6,<7"') from None
        raise


def run_ui(runs: str, host: str, port: int, concurrency: int, auth: str | None, overrides: list[str]) -> int:
    ui_module("app").launch(runs=runs, host=host, port=port, concurrency=concurrency, auth=auth,
                            overrides=overrides)
    return 0
