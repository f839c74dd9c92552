"""Write a benchmark's results into its own section of docs/benchmarks.md.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; other
sections are left untouched, so benchmarks can be re-run one at a time.
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEvery figure here is written by a script under `bench/`; re-run it to refresh its section.\n"


def machine_line() -> str:
    import os

    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"torch {torch.__version__}, threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")


def write_section(name: str, title: str, body: str, command: str) -> Path:
    text = DOC.read_text() if DOC.exists() else HEADER
    block = (f"<!-- bench:{name} -->\n## {title}\n\nCommand: `{command}`  \nMachine: {machine_line()}\n\n"
             f"{body.strip()}\n<!-- /bench:{name} -->")
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    return DOC


def write_labelled_section(key: str, title: str, label: str | None, body: str, command: str) -> Path:
    """`write_section` under `key-label` and "title (label)" when a label is given (a section of its own, so
    earlier sections are kept), else under `key` and `title`."""
    if label:
        key, title = f"{key}-{label}", f"{title} ({label})"
    return write_section(key, title, body, command)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def refuse_existing(key: str) -> None:
    """Exit with a one-line error when docs/benchmarks.md already has section `key` (reports are never overwritten)."""
    text = DOC.read_text() if DOC.exists() else ""
    if f"<!-- bench:{key} -->" in text:
        raise SystemExit(f"error: {DOC.name} already has the section {key}; reports are never overwritten: "
                         "draw another --seed (or pass --no-write)")
