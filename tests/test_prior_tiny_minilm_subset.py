"""The vocabulary subset of all-MiniLM-L6-v2 (what an offline GPU machine gets to train the tiny prior):
same token embeddings as the full model on the texts it was written for, found through DREAMER_MINILM."""

from __future__ import annotations

import json

import torch

from dreamer.priors.tiny.minilm_subset import check_subset, vocabulary_texts, write_minilm_subset
from dreamer.priors.tiny.text import MiniLMEncoder, minilm_path

TEXTS = ["", "a red chair", "a chair, crimson", "a small navy mug", "a teal cone"]


def test_subset_keeps_only_the_needed_rows_and_matches_the_full_model(tmp_path):
    size = write_minilm_subset(TEXTS, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    vocab = (tmp_path / "vocab.txt").read_text().splitlines()
    assert config["vocab_size"] == size == len(vocab) and size < 40
    assert vocab[0] == "[PAD]" and config["pad_token_id"] == 0  # the pad id keeps its meaning
    assert {"chair", "red", "[CLS]", "[SEP]", "[UNK]"} <= set(vocab)
    assert check_subset(TEXTS, tmp_path) == 0.0


def test_dreamer_minilm_points_the_encoder_at_the_subset(tmp_path, monkeypatch):
    write_minilm_subset(TEXTS, tmp_path)
    monkeypatch.setenv("DREAMER_MINILM", str(tmp_path))
    assert minilm_path() == str(tmp_path)
    encoder = MiniLMEncoder(max_length=8)
    assert len(encoder.tokenizer) < 40
    # a word outside the subset becomes [UNK]: the embeddings then differ from the full model's
    monkeypatch.delenv("DREAMER_MINILM")
    full = MiniLMEncoder(max_length=8)
    assert torch.equal(encoder(["a red chair"]), full(["a red chair"]))
    assert not torch.allclose(encoder(["a golden lamp"]), full(["a golden lamp"]))


def test_vocabulary_texts_cover_every_caption_and_prompt():
    from dreamer.priors.tiny.captions import all_combos, captions_for

    texts = set(vocabulary_texts())
    assert "" in texts
    for spec in all_combos():
        assert spec.prompt in texts
        assert {c.text for c in captions_for(spec)} <= texts


def test_priors_in_one_process_share_one_encoder_and_it_takes_two_threads_at_once(tmp_path, monkeypatch):
    import threading

    from dreamer.priors.tiny.text import PromptEncoder, shared_minilm

    write_minilm_subset(TEXTS, tmp_path)
    monkeypatch.setenv("DREAMER_MINILM", str(tmp_path))
    first, second = PromptEncoder(8, torch.device("cpu")), PromptEncoder(8, torch.device("cpu"))
    assert torch.equal(first("a red chair"), second("a red chair"))
    assert first.encoder is second.encoder is shared_minilm(8, str(tmp_path))  # loaded once
    monkeypatch.delenv("DREAMER_MINILM")  # another folder is another encoder, not the cached one
    assert PromptEncoder(8, torch.device("cpu"))._encoder_or_load() is not first.encoder
    expected = first.encoder(TEXTS)
    results, errors = [], []

    def encode() -> None:  # the UI's jobs encode their prompts from two threads
        try:
            for _ in range(20):
                results.append(first.encoder(TEXTS))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=encode) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 40 and all(torch.equal(r, expected) for r in results)
