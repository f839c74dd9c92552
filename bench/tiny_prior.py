"""Speed of the tiny prior's parts on this machine: data, network variants, text encoding.

Measures (torch threads as given, default 2): render ms per view (32 px, 1 thread, as in the
view bank), batch assembly from the bank vs rendering live, MiniLM encoding of every training
caption, and for each UNet variant: parameters, fp16 file size, one CFG evaluation (batch 2,
no grad) and one training step (batch 32: forward, backward, AdamW, EMA) → steps/s and the
steps that fit a 2-hour run. Prints a markdown table; takes ~2–3 minutes.
Usage: python bench/tiny_prior.py [--threads 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from dreamer.priors.tiny.data import TinyDataConfig, TrainingData, render_premultiplied, sample_cameras
from dreamer.priors.tiny.ema import EMA
from dreamer.priors.tiny.model import TinyUNetConfig, build_unet, camera_features, count_parameters
from dreamer.priors.tiny.views import build_bank

# Text read by cross-attention at 8 px only (the first shipped layout) or at 16 + 8 px (shipped now).
TEXT_AT_8 = (False, False, True)
VARIANTS = {
    "A (32,64,128), text at 16+8 px (shipped)": TinyUNetConfig(block_out_channels=(32, 64, 128)),
    "A8 (32,64,128), text at 8 px": TinyUNetConfig(block_out_channels=(32, 64, 128), cross_attention=TEXT_AT_8),
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


def bench_models(threads: int, batch: int) -> None:
    torch.set_num_threads(threads)
    print(f"\n| variant | params | fp16 MB | CFG eval (B=2) ms | train step (B={batch}) ms | steps/s | steps in 2 h |")
    print("|---|---|---|---|---|---|---|")
    for name, cfg in VARIANTS.items():
        torch.manual_seed(0)
        unet = build_unet(cfg)
        n = count_parameters(unet)
        x2, t2 = torch.randn(2, 3, 32, 32), torch.tensor([500, 500])
        txt2, cam2 = torch.randn(2, 16, 384), camera_features(torch.tensor([[0.0, 20.0, 2.8]] * 2), 2)
        unet.eval()
        with torch.no_grad():
            cfg_ms = _time(lambda: unet(x2, t2, encoder_hidden_states=txt2, class_labels=cam2), 10) * 1e3
        unet.train()
        opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
        ema = EMA(unet)
        xb, tb = torch.randn(batch, 3, 32, 32), torch.randint(1000, (batch,))
        txtb, camb = torch.randn(batch, 16, 384), torch.randn(batch, 6)

        def step():
            loss = unet(xb, tb, encoder_hidden_states=txtb, class_labels=camb).sample.square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema.update(unet)

        step_s = _time(step, 4)
        print(f"| {name} | {n / 1e6:.2f} M | {n * 2 / 2**20:.1f} | {cfg_ms:.1f} | {step_s * 1e3:.0f} | "
              f"{1 / step_s:.2f} | {int(7200 / step_s)} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--skip-data", action="store_true")
    args = p.parse_args()
    if not args.skip_data:
        bench_data(args.batch)
        bench_text()
    bench_models(args.threads, args.batch)


if __name__ == "__main__":
    main()
