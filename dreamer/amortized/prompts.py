"""The prompts an amortised generator trains on, and which of them each process takes at each step.

Randomness is a function of (seed, step, prompt index) only, never of a process's own state, so one
process at batch 2B and two processes at batch B see the same prompts, cameras, t and ε:

- one global shuffle of the prompts per epoch (`epoch_order`), read as one long stream;
- step s takes positions [s·B, (s+1)·B) of the stream (`step_prompts`), and process r of W the r-th
  of W equal slices of them (`shard`);
- each (step, prompt) pair seeds its own generator (`sample_generator`) for its camera, background,
  render jitter, t and ε.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from dreamer.errors import UserError


def vocabulary_prompts() -> list[str]:
    """The tiny prior's trained colour × shape pairs (158): the 18 held-out pairs are left out."""
    from dreamer.priors.tiny.captions import split_combos

    train, _ = split_combos()
    return [spec.prompt for spec in train]


def held_out_prompts() -> list[str]:
    from dreamer.priors.tiny.captions import split_combos

    return [spec.prompt for spec in split_combos()[1]]


def is_held_out_prompt(prompt: str) -> bool:
    """Whether `prompt` names one of the held-out (colour, shape) pairs (paraphrases included)."""
    from dreamer.priors.tiny.captions import is_held_out
    from dreamer.shapes import parse_prompt

    try:
        return is_held_out(parse_prompt(prompt))
    except UserError:  # not a library prompt: it cannot be a held-out pair
        return False


def load_prompts(source: str) -> tuple[list[str], list[str]]:
    """(training prompts, held-out prompts left out) from "vocabulary" or a text file (one prompt per
    line, blank lines and lines starting with # skipped). Held-out pairs never reach training."""
    if source == "vocabulary":
        return vocabulary_prompts(), []
    path = Path(source)
    if not path.is_file():
        raise UserError(f"--prompts {source}: no such file (give a text file, one prompt per line, or 'vocabulary')")
    lines = [line.strip() for line in path.read_text().splitlines()]
    prompts = list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))
    kept = [p for p in prompts if not is_held_out_prompt(p)]
    if not kept:
        raise UserError(f"--prompts {source}: no training prompt left (empty, or only held-out pairs)")
    return kept, [p for p in prompts if p not in kept]


@lru_cache(maxsize=8)
def epoch_order(seed: int, epoch: int, count: int) -> tuple[int, ...]:
    """The prompts' order in `epoch`: one permutation of range(count) drawn from (seed, epoch)."""
    g = torch.Generator().manual_seed(_mix(seed, epoch, 0x5EED))
    return tuple(torch.randperm(count, generator=g).tolist())


def step_prompts(seed: int, step: int, batch_size: int, count: int) -> list[int]:
    """The global batch of `step`: positions [step·B, (step+1)·B) of the epoch-by-epoch stream."""
    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, count)
        out.append(epoch_order(seed, epoch, count)[offset])
    return out


def shard(batch: list[int], rank: int, world_size: int) -> list[int]:
    """Process `rank`'s slice of a global batch (contiguous, equal sizes)."""
    if len(batch) % world_size:
        raise ValueError(f"a batch of {len(batch)} does not split over {world_size} processes")
    per = len(batch) // world_size
    return batch[rank * per:(rank + 1) * per]


def _mix(*values: int) -> int:
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_generator(seed: int, step: int, prompt_index: int) -> torch.Generator:
    """The CPU generator of one (step, prompt) sample: its camera, background, jitter, t and ε."""
    return torch.Generator().manual_seed(_mix(seed, step, prompt_index))
