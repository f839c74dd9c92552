"""One network for many prompts: a text-conditioned generator of NeRF triplanes, trained by score
distillation over (prompt, camera) pairs, on one process or many (torch.distributed).

- `config`: the generator's architecture and the training settings (typed dataclasses);
- `generator`: text vector -> triplanes -> the NeRF renderer (and a plain NeRF for one prompt);
- `prompts`: the training prompts, the held-out pairs kept out, the per-rank shards;
- `train`: the training loop (`dreamer amortized train`, `torchrun -m dreamer.amortized.train`);
- `use`: a run folder for one prompt in a forward pass, and interpolation videos.
"""
