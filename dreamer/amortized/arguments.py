"""The command line of `dreamer amortized train` (and `python -m dreamer.amortized.train`), without
importing torch: the CLI builds its parser before any heavy import."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder of the generator (checkpoints, generator.pt, metrics)")
    parser.add_argument("--guidance", default="", help="rule: sds, asd, vsd, … (default: the preset's)")
    parser.add_argument("--prompts", default="", help="a text file, one prompt per line, or 'vocabulary' (default)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default 2000)")
    parser.add_argument("--resume", action="store_true", help="continue the training in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="train.* generator.* or per-prompt run keys, e.g. train.batch_size=8")
