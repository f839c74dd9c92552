"""Speed of the tiny prior's parts on this machine: data, network variants, text encoding.

Measures (torch threads as given, default 2): render ms per view (32 px, 1 thread, as in the
view bank), batch assembly from the bank vs rendering live, MiniLM encoding of every training
caption, and for each UNet variant: parameters, fp16 file size, one CFG evaluation (batch 2,
no grad) and one training step (batch 32: forward, backward, AdamW, EMA) → steps/s and the
steps that fit a 2-hour run. The variants are timed in interleaved rounds (every variant once per
round, medians over all rounds), because on a shared machine the host's load drifts by a third
within minutes and would otherwise favour whichever variant ran in a quiet spell. Prints a
markdown table; `--write` also puts it in docs/benchmarks.md. Takes ~6 minutes with 2 rounds.
Usage: python bench/tiny_prior.py [--threads 2] [--batch 32] [--rounds 2] [--skip-data] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from dreamer.priors.tiny.data import TinyDataConfig, TrainingData, render_premultiplied, sample_cameras
from dreamer.priors.tiny.ema import EMA
from dreamer.priors.tiny.model import TinyUNetConfig, build_unet, camera_features, count_parameters
from dreamer.priors.tiny.views import build_bank

# Text read by cross-attention at 8 px only (the first shipped layout) or at 16 + 8 px (shipped now).
TEXT_AT_8 = (False, False, True)
EVERY_LEVEL = (True, True, True)
VARIANTS = {
    "A (32,64,128), text at 16+8 px (shipped)": TinyUNetConfig(),
    "A8 (32,64,128), text at 8 px (first weights)": TinyUNetConfig(cross_attention=TEXT_AT_8),
    "A + pooled text in the time embedding": TinyUNetConfig(pooled_text=True),
    "A + text-only attention at 32 px": TinyUNetConfig(cross_attention=EVERY_LEVEL,
                                                       text_only_attention=(True, False, False)),
    "A + self- and cross-attention at 32 px": TinyUNetConfig(cross_attention=EVERY_LEVEL),
    "A, two ResNets per level": TinyUNetConfig(layers_per_block=2),
    "(48,96,128), text at 16+8 px, 16 norm groups": TinyUNetConfig(block_out_channels=(48, 96, 128),
                                                                     norm_num_groups=16),
    "(32,64,192), text at 16+8 px": TinyUNetConfig(block_out_channels=(32, 64, 192)),
    "B (64,128,128), text at 8 px": TinyUNetConfig(block_out_channels=(64, 128, 128), cross_attention=TEXT_AT_8),
    "C (64,128,192), text at 8 px": TinyUNetConfig(block_out_channels=(64, 128, 192), cross_attention=TEXT_AT_8),
}


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def bench_data(batch: int) -> None:
    torch.set_num_threads(1)
    config = TinyDataConfig()
    specs = config.combos()[0]
    gen = torch.Generator().manual_seed(0)
    cams = sample_cameras(16, config, gen)
    for ss in (1, 2):
        c = TinyDataConfig(supersample=ss)
        ms = _time(lambda: render_premultiplied(specs[40], cams, c), 3) / 16 * 1e3
        print(f"render, 32 px, supersample {ss}: {ms:.2f} ms/view (batch of 16 cameras, 1 thread)")
    small = TinyDataConfig(views_per_combo=8)
    t0 = time.perf_counter()
    bank = build_bank(small)
    print(f"bank build: {(time.perf_counter() - t0) / len(bank) * 1e3:.2f} ms/view ({len(bank)} views)")
    data = TrainingData(small, bank)
    print(f"batch of {batch} from the bank: {_time(lambda: data.batch(batch, gen), 5) * 1e3:.1f} ms")
    live = TrainingData(TinyDataConfig(source="live"))
    print(f"batch of {batch} rendered live: {_time(lambda: live.batch(batch, gen), 2) * 1e3:.1f} ms")


def bench_text() -> None:
    from dreamer.priors.tiny.text import MiniLMEncoder

    data = TrainingData(TinyDataConfig(source="live"))
    t0 = time.perf_counter()
    enc = MiniLMEncoder()
    t1 = time.perf_counter()
    enc(data.captions)
    print(f"MiniLM load {t1 - t0:.1f} s; encoding {len(data.captions)} captions {time.perf_counter() - t1:.1f} s")


class _Timed:
    """One variant's UNet with its inputs, optimizer and EMA; collects per-call timings."""

    def __init__(self, config: TinyUNetConfig, batch: int) -> None:
        torch.manual_seed(0)
        self.unet = build_unet(config)
        self.parameters = count_parameters(self.unet)
        self.x2, self.t2 = torch.randn(2, 3, 32, 32), torch.tensor([500, 500])
        self.text2, self.cam2 = torch.randn(2, 16, 384), camera_features(torch.tensor([[0.0, 20.0, 2.8]] * 2), 2)
        self.xb, self.tb = torch.randn(batch, 3, 32, 32), torch.randint(1000, (batch,))
        self.textb, self.camb = torch.randn(batch, 16, 384), torch.randn(batch, 6)
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=1e-4)
        self.ema = EMA(self.unet)
        self.cfg_ms: list[float] = []
        self.step_s: list[float] = []

    def cfg_eval(self) -> None:
        with torch.no_grad():
            self.unet(self.x2, self.t2, encoder_hidden_states=self.text2, class_labels=self.cam2)

    def train_step(self) -> None:
        loss = self.unet(self.xb, self.tb, encoder_hidden_states=self.textb, class_labels=self.camb).sample.square().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.ema.update(self.unet)

    def round(self) -> None:
        self.unet.eval()
        self.cfg_ms.append(_time(self.cfg_eval, 10) * 1e3)
        self.unet.train()
        self.step_s.append(_time(self.train_step, 2))


def bench_models(threads: int, batch: int, rounds: int) -> str:
    """The markdown table of every variant, timed in `rounds` interleaved rounds."""
    torch.set_num_threads(threads)
    timed = {name: _Timed(cfg, batch) for name, cfg in VARIANTS.items()}
    for r in range(rounds):
        for t in timed.values():
            t.round()
        print(f"round {r + 1}/{rounds} done", flush=True)
    base = timed[next(iter(timed))]
    base_cfg, base_step = statistics.median(base.cfg_ms), statistics.median(base.step_s)
    lines = [f"| variant | params | fp16 MB | CFG eval (B=2) ms | train step (B={batch}) s | vs shipped (CFG / step) "
             "| steps in 2 h |", "|---|---|---|---|---|---|---|"]
    for name, t in timed.items():
        cfg_ms, step_s = statistics.median(t.cfg_ms), statistics.median(t.step_s)
        lines.append(f"| {name} | {t.parameters / 1e6:.2f} M | {t.parameters * 2 / 2**20:.1f} | {cfg_ms:.1f} | "
                     f"{step_s:.2f} | {cfg_ms / base_cfg - 1:+.0%} / {step_s / base_step - 1:+.0%} | "
                     f"{int(7200 / step_s)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds of the UNet variants")
    p.add_argument("--skip-data", action="store_true")
    p.add_argument("--write", action="store_true", help="also write the variants table to docs/benchmarks.md")
    args = p.parse_args()
    if not args.skip_data:
        bench_data(args.batch)
        bench_text()
    table = bench_models(args.threads, args.batch, args.rounds)
    print("\n" + table)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import write_section

        body = ("UNet variants of the tiny prior with random weights, timed in interleaved rounds (medians; "
                f"{args.rounds} rounds, {args.threads} threads). The budgets (issue 3): one CFG evaluation ≤ 50 ms, "
                "a full training run ≤ 2 h (the shipped run is 5,500 steps).\n\n" + table)
        write_section("tiny-prior-layouts", "Tiny prior: what larger layouts cost", body,
                      "python bench/tiny_prior.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
