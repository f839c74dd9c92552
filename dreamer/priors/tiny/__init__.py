"""The embedded `tiny` prior: a small text- and camera-conditioned pixel-space diffusion model.

Owns: its training data (multi-view shape-library renders with captions, `data` / `captions` /
`views`), the frozen MiniLM text encoder and its caption-embedding cache (`text`), the network
(`model`: a diffusers UNet2DConditionModel, v-prediction, 32 px), its weight files (`weights`),
the training loop with resumable checkpoints (`train`), DDIM sampling (`sample`) and the `Prior`
that guidance rules use (`prior.TinyPrior`). Does not own: guidance math, cameras, the shapes.

Heavy imports (diffusers, transformers) happen inside the functions that need them.
"""
