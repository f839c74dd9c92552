"""`dreamer ui`: start the web UI (`dreamer.ui`, the checkout's top-level ui/ folder mapped into the package).

Gradio is imported here, inside the command, so `import dreamer` stays light.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dreamer.errors import UserError


def ui_module(name: str = "app") -> ModuleType:
    """`dreamer.ui.<name>`; a one-line error when Gradio is missing."""
    try:
        return importlib.import_module(f"dreamer.ui.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "gradio":
            raise UserError('the web UI needs Gradio: pip install "gradio>=6,<7"') from None
        raise


def run_ui(runs: str, host: str, port: int, concurrency: int, auth: str | None, overrides: list[str]) -> int:
    ui_module("app").launch(runs=runs, host=host, port=port, concurrency=concurrency, auth=auth,
                            overrides=overrides)
    return 0
