"""A vocabulary subset of all-MiniLM-L6-v2 that covers the tiny prior's captions, for offline GPU boxes.

A machine that trains the tiny prior needs MiniLM, but a rented GPU box may have no package index
and little room to carry files: the full model is 87 MB, mostly its 30,522-row word-embedding table.
The captions use under a hundred of those tokens (86), so `write_minilm_subset` keeps only those rows (in
their original order) with a matching `vocab.txt`, and every other tensor unchanged. Loaded by
`MiniLMEncoder` (point `DREAMER_MINILM` at the folder), it gives the same token embeddings as the
full model for every text whose WordPiece tokens it holds: greedy longest-match splitting picks
the same pieces when all the pieces it picked before are still there and nothing longer was added.
A text with other words would meet [UNK]; `check_subset` compares the two models on a text list.

    python -m dreamer.priors.tiny.minilm_subset OUT_DIR    # all captions of every colour × shape pair
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence


from dreamer.priors.tiny.captions import all_combos, captions_for

_TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json")


def vocabulary_texts() -> list[str]:
    """Every text the tiny prior is trained or judged on: all captions and prompts of every pair, and ""."""
    texts = {""}
    for spec in all_combos():  # held-out pairs too: bench/prior_accuracy.py prompts them
        texts.add(spec.prompt)
        texts.update(c.text for c in captions_for(spec))
    return sorted(texts)


def write_minilm_subset(texts: Sequence[str], out_dir: Path | str, source: Path | str | None = None) -> int:
    """Write the subset of the MiniLM at `source` (default: the bundled one) covering `texts`; returns its vocabulary size."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from dreamer.priors.tiny.text import bundled_minilm_path

    source = Path(source or bundled_minilm_path())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    used = set(tokenizer.all_special_ids)
    for ids in tokenizer(list(texts))["input_ids"]:
        used.update(ids)
    keep = sorted(used)  # original order: [PAD] (id 0, the pad_token_id) stays first
    vocab = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (out_dir / "vocab.txt").write_text("".join(vocab[i] + "\n" for i in keep), encoding="utf-8")
    for name in _TOKENIZER_FILES:
        (out_dir / name).write_bytes((source / name).read_bytes())
    config = json.loads((source / "config.json").read_text())
    config["vocab_size"] = len(keep)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = load_file(str(source / "model.safetensors"))
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][keep].contiguous()
    save_file(weights, str(out_dir / "model.safetensors"))
    return len(keep)


def check_subset(texts: Sequence[str], subset_dir: Path | str, source: Path | str | None = None) -> float:
    """Largest absolute difference between the token embeddings of `texts` from the subset and from the full model."""
    from dreamer.priors.tiny.text import MiniLMEncoder, bundled_minilm_path

    full = MiniLMEncoder(source=source or bundled_minilm_path())
    subset = MiniLMEncoder(source=subset_dir)
    return float((full(list(texts)) - subset(list(texts))).abs().max())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dreamer.priors.tiny.minilm_subset OUT_DIR", file=sys.stderr)
        return 2
    texts = vocabulary_texts()
    size = write_minilm_subset(texts, args[0])
    diff = check_subset(texts, args[0])
    print(f"wrote {args[0]}: {size} tokens kept, {len(texts)} texts, largest embedding difference {diff:.2e}")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
