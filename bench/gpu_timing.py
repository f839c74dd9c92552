"""Time every paper preset for a few dozen steps with full-size random-weight priors (no download).

    python bench/gpu_timing.py            # CUDA: 50 steps per preset, writes "GPU" in docs/benchmarks.md
    python bench/gpu_timing.py --cpu      # the same code path on the CPU with tiny models (CI; < 1 min)
    python bench/gpu_timing.py --only lucid-ism dreamerxl-tsm --no-write

The priors are built from their published architecture configs (written out below) with random
weights, saved once per run in diffusers' folder layout under a temporary folder, and loaded by
the priors' own `from_pretrained` code through `prior.model=<folder>`:
- Stable Diffusion 2.1-base: UNet, VAE, OpenCLIP-H text tower (hidden 1024, 23 layers) + an
  offline character tokenizer (the vocabulary only decides which ids reach the embedding table);
- SDXL base: UNet, VAE (kept fp32 on disk: it overflows in fp16) and both text encoders
  (CLIP-L and OpenCLIP-bigG with projection);
- DeepFloyd IF-I-XL: the stage-I UNet (4.3 B parameters). Its T5-XXL text encoder is cut to one
  layer of the real width (4096): it runs once per run, before the first step, on the CPU by default
  (`offload_text_encoder`), so it does not change s/step. No paper preset uses IF; it is timed as
  `dreamfusion-sd` with `prior=deepfloyd-if` (DreamFusion's own prior is pixel-space Imagen).
Weights go to disk in fp16 where the prior runs in fp16 on CUDA (`dtype: auto`), fp32 with --cpu.

Each preset then runs through the real Trainer (`dreamer.api.resolve_config` + `Trainer.fit`, the
path `dreamer.api.generate` takes, without the export and eval that follow training) at the
preset's own resolution for `--steps` steps. Reported: the mean s/step over the steps after
`--warmup` (the last step is left out as well: it writes the checkpoint), the peak GPU memory of
the run (torch.cuda.max_memory_allocated, the prior's loading included), and the projected time of
a full run, s/step × the preset's steps (first stage only: DreamGaussian's 50-step mesh stage is
not timed). Schedules that depend on the run's length see 50-step runs, which does not change what
a step costs; densification does not happen in 50 steps, so Gaussian counts stay at their initial
values (growth makes later Gaussian steps slower).

`--budget` seconds (from the script's start) stops timing presets when too little time is left;
those rows say "not timed" and the script still exits 0. A preset that raises is a FAILED row and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import string
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Every paper preset: configs/*.yaml except the "-tiny" CPU twins, default and reference
# (tests/test_gpu_check.py checks that this list covers configs/).
PRESETS = ("dreamfusion-sd", "dreamgaussian-sds", "prolificdreamer-vsd", "esd", "lucid-ism", "scaledreamer-asd",
           "dreamerxl-tsm")
# Paper presets not timed yet, with why (a row in the report says so; tests/test_gpu_check.py checks that
# PRESETS and NOT_TIMED together cover configs/).
NOT_TIMED = {
    "4d-animatediff": "needs full-size random-weight SD 1.5 + MotionAdapter folders, which build_model_folder "
                      "does not build yet (tiny parts: tests/test_presets.py)",
    "4d-zeroscope": "needs a full-size random-weight UNet3DConditionModel folder, which build_model_folder does not "
                    "build yet (tiny parts: tests/test_presets.py)",
}
# Extra rows: (label, preset, prior) for priors no paper preset uses.
EXTRA = (("dreamfusion-sd + IF", "dreamfusion-sd", "deepfloyd-if"),)

# Published wall times of the authors' code, printed beside ours.
ANCHORS = {
    "dreamgaussian-sds": "DreamGaussian: 500 steps ≈ 2 min",
    "dreamfusion-sd": "threestudio DreamFusion-SD ≈ 30 min",
    "lucid-ism": "LucidDreamer ≈ 35 min",
    "prolificdreamer-vsd": "ProlificDreamer: hours",
    "esd": "(VSD-based; ProlificDreamer: hours)",
}

PROMPT = "a red chair"
CLIP_VOCAB = 49408  # CLIP's / OpenCLIP's vocabulary size
T5_VOCAB = 32128

# ----------------------------------------------------------------------------- architectures
# Stable Diffusion 2.1-base (stabilityai/stable-diffusion-2-1-base), diffusers configs.
SD21_BASE_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True, dual_cross_attention=False, only_cross_attention=False, upcast_attention=False,
)
SD_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu",
    norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)
SD21_TEXT = dict(  # OpenCLIP ViT-H/14's text tower, as SD 2.x ships it (CLIPTextModel)
    vocab_size=CLIP_VOCAB, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
)
SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    prediction_type="epsilon", clip_sample=False, steps_offset=1)

# SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True, act_fn="silu",
    norm_num_groups=32, norm_eps=1e-5, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, upcast_attention=False,
)
SDXL_VAE = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
SDXL_TEXT = dict(  # CLIP ViT-L/14 (CLIPTextModel)
    vocab_size=CLIP_VOCAB, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)
SDXL_TEXT_2 = dict(  # OpenCLIP ViT-bigG/14 (CLIPTextModelWithProjection)
    vocab_size=CLIP_VOCAB, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=1280,
)

# DeepFloyd IF-I-XL v1.0 stage I (DeepFloyd/IF-I-XL-v1.0): 4.3 B parameters, 64 px pixel space.
IF_I_XL_UNET = dict(
    sample_size=64, in_channels=3, out_channels=6, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
                      "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                    "ResnetUpsampleBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(704, 1408, 2112, 2816), layers_per_block=3,
    act_fn="gelu", norm_num_groups=32, norm_eps=1e-5, attention_head_dim=64, cross_attention_dim=2816,
    cross_attention_norm="group_norm", encoder_hid_dim=4096, encoder_hid_dim_type="text_proj",
    addition_embed_type="text", addition_embed_type_num_heads=64, resnet_time_scale_shift="scale_shift",
    resnet_skip_time_act=False, time_embedding_act_fn="gelu", upcast_attention=False, use_linear_projection=False,
)
IF_T5 = dict(  # T5-v1.1-XXL's width, one layer (see the module docstring)
    vocab_size=T5_VOCAB, d_model=4096, d_kv=64, d_ff=10240, num_layers=1, num_heads=64,
    feed_forward_proj="gated-gelu", decoder_start_token_id=0,
)
IF_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="learned_range",
                    prediction_type="epsilon")

# --cpu: the same block types and layouts at a few channels.
TINY_SD_UNET = {**SD21_BASE_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1,
                "norm_num_groups": 4, "cross_attention_dim": 16, "attention_head_dim": (2, 2, 2, 2)}
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                norm_num_groups=4, sample_size=16, scaling_factor=0.18215)
TINY_TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, projection_dim=16)
TINY_SDXL_UNET = {**SDXL_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16), "layers_per_block": 1,
                  "transformer_layers_per_block": (1, 1, 2), "attention_head_dim": (2, 2, 2), "norm_num_groups": 4,
                  "cross_attention_dim": 32, "addition_time_embed_dim": 4,
                  "projection_class_embeddings_input_dim": 6 * 4 + 16}
TINY_IF_UNET = {**IF_I_XL_UNET, "sample_size": 16, "block_out_channels": (16, 32),
                "down_block_types": ("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                "up_block_types": ("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), "layers_per_block": 1,
                "norm_num_groups": 8, "attention_head_dim": 8, "cross_attention_dim": 32, "encoder_hid_dim": 16,
                "addition_embed_type_num_heads": 2}
TINY_T5 = dict(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, feed_forward_proj="gated-gelu",
               decoder_start_token_id=0)
TINY_IMAGE_SIZE = 16  # what the tiny priors see (SD / SDXL: native; IF: prior.image_size)

BUILT_PRIORS = ("sd21-base", "sdxl", "deepfloyd-if")  # priors with a random-weight builder, in the order they run
# Rough seconds on one H200 to (build + save the model folder, load it and run one preset's 50 steps): a preset
# is not started with less time left than this (guesses before the first GPU run; see --budget).
GPU_NEEDS = {"sd21-base": (20, 30), "sdxl": (60, 90), "deepfloyd-if": (60, 45)}


# ----------------------------------------------------------------------------- building model folders

def write_tokenizer(folder: Path):
    """A CLIPTokenizer over single characters (no merges), written to `folder` and returned."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    symbols = string.ascii_lowercase + string.digits + ",.-'!?"
    tokens = list(symbols) + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def _special_ids(tok) -> dict:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


@dataclass
class BuiltModel:
    name: str  # sd21-base | sdxl | deepfloyd-if
    folder: Path
    parameters: dict[str, int] = field(default_factory=dict)  # part -> parameter count
    seconds: float = 0.0  # build + save
    bytes: int = 0  # on disk


def _save(model, folder: Path, dtype, parts: dict, name: str) -> None:
    """Cast, move to the CPU (safetensors writes host memory) and save in diffusers' layout."""
    parts[name] = sum(p.numel() for p in model.parameters())
    model.to(device="cpu", dtype=dtype).save_pretrained(folder / name)


def build_model_folder(name: str, folder: Path, tiny: bool, device: str) -> BuiltModel:
    """Random-weight parts of model `name` at full size (or tiny), saved under `folder` as diffusers would.

    Modules are created on `device` (random init of billions of parameters is much faster on a GPU)."""
    import diffusers
    import torch
    import transformers

    start = time.perf_counter()
    fp16, fp32 = torch.float16, torch.float32
    net_dtype = fp32 if tiny else fp16
    parts: dict[str, int] = {}
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tok = write_tokenizer(folder / "tokenizer")
    vocab = len(tok) if tiny else CLIP_VOCAB

    def clip(config: dict, with_projection: bool = False):
        cfg = {**config, **TINY_TEXT, "vocab_size": vocab} if tiny else config
        cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
        return cls(transformers.CLIPTextConfig(**cfg, **_special_ids(tok)))

    with torch.device(device):
        if name == "sd21-base":
            diffusers.DDPMScheduler(**SD_SCHEDULER).save_pretrained(folder / "scheduler")
            _save(clip(SD21_TEXT), folder, net_dtype, parts, "text_encoder")
            _save(diffusers.AutoencoderKL(**(TINY_VAE if tiny else SD_VAE)), folder, net_dtype, parts, "vae")
            _save(diffusers.UNet2DConditionModel(**(TINY_SD_UNET if tiny else SD21_BASE_UNET)), folder, net_dtype,
                  parts, "unet")
        elif name == "sdxl":
            write_tokenizer(folder / "tokenizer_2")
            diffusers.DDPMScheduler(**SD_SCHEDULER).save_pretrained(folder / "scheduler")
            _save(clip(SDXL_TEXT), folder, net_dtype, parts, "text_encoder")
            _save(clip(SDXL_TEXT_2, with_projection=True), folder, net_dtype, parts, "text_encoder_2")
            # SDXL's VAE gives NaN in fp16 (force_upcast): it stays fp32 on disk as in the prior
            _save(diffusers.AutoencoderKL(**({**TINY_VAE, "scaling_factor": 0.13025} if tiny else SDXL_VAE)), folder,
                  fp32, parts, "vae")
            _save(diffusers.UNet2DConditionModel(**(TINY_SDXL_UNET if tiny else SDXL_UNET)), folder, net_dtype,
                  parts, "unet")
        elif name == "deepfloyd-if":
            diffusers.DDPMScheduler(**IF_SCHEDULER).save_pretrained(folder / "scheduler")
            t5 = {**TINY_T5, "vocab_size": len(tok)} if tiny else IF_T5
            _save(transformers.T5EncoderModel(transformers.T5Config(**t5, pad_token_id=tok.pad_token_id,
                                                                    eos_token_id=tok.eos_token_id)),
                  folder, net_dtype, parts, "text_encoder")
            _save(diffusers.UNet2DConditionModel(**(TINY_IF_UNET if tiny else IF_I_XL_UNET)), folder, net_dtype,
                  parts, "unet")
        else:
            raise ValueError(f"unknown model {name!r}")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return BuiltModel(name, folder, parts, time.perf_counter() - start, size)


# ----------------------------------------------------------------------------- one preset

@dataclass
class Row:
    label: str
    preset: str
    prior: str
    representation: str = ""
    resolution: int = 0
    preset_steps: int = 0
    steps: int = 0
    timed_steps: int = 0
    s_per_step: float | None = None
    peak_gib: float | None = None
    setup_s: float | None = None
    status: str = "ok"  # ok | FAILED: ... | not timed: ...
    extra: dict = field(default_factory=dict)

    @property
    def projected_s(self) -> float | None:
        return None if self.s_per_step is None else self.s_per_step * self.preset_steps


def preset_path(preset: str) -> Path:
    return ROOT / "configs" / f"{preset}.yaml"


def preset_steps(preset: str) -> int:
    import yaml

    return int(yaml.safe_load(preset_path(preset).read_text())["steps"])


def run_overrides(steps: int, device: str, folder: Path, prior: str, representation: str, tiny: bool) -> list[str]:
    """The dotted overrides of a timing run: N steps, no previews / progress / eval / second stage."""
    dotted = [f"steps={steps}", f"device={device}", "trainer.preview_every=0", f"trainer.checkpoint_every={10 ** 9}",
              f"trainer.log_every={10 ** 9}", "trainer.progress=false", "trainer.evaluate=false",
              "export.video=false", "refine.steps=0"]
    if prior:
        dotted.append(f"prior.name={prior}")
    dotted.append(f"prior.model={folder}")
    if tiny:
        dotted.append("resolution=32")
        if representation == "gaussians":
            dotted += ["representation.num_gaussians=256", "representation.max_gaussians=4096"]
        if prior == "deepfloyd-if":
            dotted.append(f"prior.image_size={TINY_IMAGE_SIZE}")
    return dotted


def time_preset(row: Row, folder: Path, workdir: Path, args, cuda: bool) -> Row:
    import torch

    from dreamer.api import resolve_config
    from dreamer.trainer.run_folder import RunFolder
    from dreamer.trainer.trainer import Trainer

    path = preset_path(row.preset)
    base = resolve_config(PROMPT, str(path))
    row.representation, row.preset_steps = base.representation.name, preset_steps(row.preset)
    prior_override = "" if row.prior == base.prior.name else row.prior
    dotted = run_overrides(args.steps, "cuda" if cuda else "cpu", folder, prior_override, row.representation,
                           args.cpu)
    cfg = resolve_config(PROMPT, str(path), dotted)
    row.resolution, row.steps = cfg.resolution, cfg.steps
    stamps: list[float] = []

    def on_progress(_event) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer = Trainer(cfg, RunFolder(workdir / "runs" / row.label.replace(" ", "").replace("+", "-")),
                      on_progress=on_progress)
    row.setup_s = time.perf_counter() - t0
    prior = trainer.prior
    row.extra["prior_dtype"] = str(getattr(prior, "model_dtype", "")).replace("torch.", "")
    vae = getattr(prior, "vae", None)
    if vae is not None:
        row.extra["vae_dtype"] = str(vae.dtype).replace("torch.", "")
    try:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.fit()
        if cuda:
            row.peak_gib = torch.cuda.max_memory_allocated() / 2 ** 30
    finally:
        del trainer, prior, vae
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)]  # step k's wall time
    measured = times[args.warmup:-1] or times[args.warmup:] or times  # the last step also checkpoints
    row.timed_steps = len(measured)
    row.s_per_step = sum(measured) / len(measured)
    return row


# ----------------------------------------------------------------------------- the table

def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table(rows: list[Row], cpu: bool) -> str:
    from report import markdown_table

    headers = ["preset", "prior", "dtype", "representation", "render px", "s/step", "peak GPU GiB", "preset steps",
               "projected full run", "published (authors' code)", "status"]
    body = []
    for r in rows:
        dtype = r.extra.get("prior_dtype", "—")
        if r.extra.get("vae_dtype", dtype) != dtype:
            dtype += f" (VAE {r.extra['vae_dtype']})"
        body.append([r.label, r.prior, dtype, r.representation or "—", r.resolution or "—",
                     "—" if r.s_per_step is None else f"{r.s_per_step:.3f}",
                     "n/a (CPU)" if cpu else ("—" if r.peak_gib is None else f"{r.peak_gib:.1f}"),
                     r.preset_steps or "—", fmt_duration(r.projected_s), ANCHORS.get(r.preset, "—"), r.status])
    return markdown_table(headers, body)


def models_table(models: list[BuiltModel]) -> str:
    from report import markdown_table

    def count(n: int) -> str:
        return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"

    rows = [[m.name, ", ".join(f"{k} {count(v)}" for k, v in m.parameters.items()),
             f"{m.bytes / 2 ** 30:.2f}", f"{m.seconds:.0f}"] for m in models]
    return markdown_table(["model", "parameters (random weights)", "GiB on disk", "build + save s"], rows)


def device_line(cuda: bool) -> str:
    import torch

    if not cuda:
        return f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads"
    p = torch.cuda.get_device_properties(0)
    return f"{p.name}, {p.total_memory / 2 ** 30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"


# ----------------------------------------------------------------------------- main

def quiet_libraries() -> None:
    """No per-file progress bars or dtype notices from diffusers / transformers in the log."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def plan(only: list[str] | None) -> list[tuple[str, Row]]:
    """(model name, row) in running order: everything on SD 2.1-base first, then SDXL, then IF."""
    from dreamer.config import load_yaml

    jobs = []
    for preset in PRESETS:
        prior = load_yaml(preset_path(preset))["prior"]["name"]
        jobs.append((prior, Row(preset, preset, prior)))
    for label, preset, prior in EXTRA:
        jobs.append((prior, Row(label, preset, prior)))
    if only:
        jobs = [j for j in jobs if j[1].preset in only or j[1].label in only]
    order = list(BUILT_PRIORS)
    for model, _ in jobs:
        if model not in order:
            raise SystemExit(f"gpu_timing: no random-weight builder for prior {model!r}: add one to build_model_folder")
    return sorted(jobs, key=lambda j: order.index(j[0]))


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="tiny models on the CPU, a few steps at 32 px (CI)")
    p.add_argument("--steps", type=int, help="steps per preset (default 50; 5 with --cpu)")
    p.add_argument("--warmup", type=int, help="first steps left out of s/step (default 5; 1 with --cpu)")
    p.add_argument("--only", nargs="*", help="presets (or row labels) to time")
    p.add_argument("--budget", type=float, default=0.0,
                   help="seconds from the start after which no further preset is started (0 = no limit)")
    p.add_argument("--reserve", type=float, default=30.0,
                   help="do not start a preset (or a model build) with fewer seconds than this left")
    p.add_argument("--workdir", help="where model folders, runs and gpu-timing.md go (default: a new temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the model folders (default: deleted after use)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 with --cpu, where the tiny "
                                               "models gain nothing from more and shared cores make spinning threads slow)")
    p.add_argument("--no-write", action="store_true", help="print the table only (never docs/benchmarks.md)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args.steps = args.steps or (5 if args.cpu else 50)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.cpu else 5)
    if args.steps < args.warmup + 1:
        p.error("--steps must exceed --warmup")

    import torch

    quiet_libraries()
    threads = args.threads or (1 if args.cpu else 0)
    if threads:
        torch.set_num_threads(threads)
    cuda = not args.cpu
    if cuda and not torch.cuda.is_available():
        print("gpu_timing: no CUDA device here (torch.cuda.is_available() is False); use --cpu", file=sys.stderr)
        return 2
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="dreamer-gpu-timing-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DREAMER_CACHE", str(workdir / "cache"))
    device = "cuda" if cuda else "cpu"
    print(f"gpu_timing: {device_line(cuda)}; {args.steps} steps per preset, {args.warmup} warm-up; work in {workdir}",
          flush=True)

    def left() -> float:
        return float("inf") if not args.budget else args.budget - (time.time() - started)

    jobs = plan(args.only)
    rows: list[Row] = []
    models: list[BuiltModel] = []
    failed = False
    built: dict[str, BuiltModel | Exception] = {}
    for index, (model, row) in enumerate(jobs):
        rows.append(row)
        need = args.reserve
        if not args.cpu:
            build, run = GPU_NEEDS.get(model, (0, 0))
            need = max(need, run + (0 if model in built else build))
        if left() < need:
            row.status = f"not timed: out of time ({args.budget:.0f} s budget)"
            print(f"== {row.label}: {row.status}", flush=True)
            continue
        if model not in built:
            print(f"== building {model} ({'tiny' if args.cpu else 'full size'}) ...", flush=True)
            try:
                built[model] = build_model_folder(model, workdir / "models" / model, args.cpu, device)
                models.append(built[model])
                m = built[model]
                print(f"   {m.name}: {sum(m.parameters.values()) / 1e6:.1f} M parameters, "
                      f"{m.bytes / 2 ** 30:.2f} GiB, {m.seconds:.1f} s", flush=True)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a row
                traceback.print_exc()
                built[model] = exc
        source = built[model]
        if isinstance(source, Exception):
            row.status = f"FAILED: building {model}: {type(source).__name__}: {str(source)[:200]}"
            failed = True
            continue
        print(f"== {row.label} ({row.prior}) ...", flush=True)
        try:
            time_preset(row, source.folder, workdir, args, cuda)
            peak = "n/a" if row.peak_gib is None else f"{row.peak_gib:.1f} GiB"
            print(f"   {row.s_per_step:.3f} s/step over {row.timed_steps} steps at {row.resolution} px, "
                  f"setup {row.setup_s:.1f} s, peak {peak}, {row.extra}", flush=True)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            row.status = f"FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            failed = True
        if not args.keep and all(m != model for m, _ in jobs[index + 1:]):
            shutil.rmtree(source.folder, ignore_errors=True)  # disk: SDXL and IF are 7-9 GiB each

    for preset, why in NOT_TIMED.items():
        if not args.only or preset in args.only:
            rows.append(Row(preset, preset, "", status=f"not timed: {why}"))

    notes = [
        f"Device: {device_line(cuda)}. {args.steps} steps per preset at the preset's resolution; s/step is the "
        f"mean over steps {args.warmup + 1}–{args.steps - 1} (warm-up and the checkpointing last step left out). "
        "Peak memory is torch.cuda.max_memory_allocated over the run, the prior's loading included. "
        "Projected full run = s/step × the preset's steps (first stage; DreamGaussian's 50-step mesh stage and "
        "the exports are not included). Priors: random weights in the published architectures, loaded through "
        "`prior.model=<folder>` (see bench/gpu_timing.py: IF's T5 is one layer of the real width).",
    ]
    if args.cpu:
        notes.append("--cpu: tiny models (a few channels), 32 px renders, 256 Gaussians: the figures check the "
                     "code path, not the speed; projections are not comparable with the anchors.")
    body = "\n\n".join([table(rows, args.cpu), "Models:\n\n" + models_table(models), *notes])
    print("\n" + body + "\n", flush=True)
    out = workdir / "gpu-timing.md"
    out.write_text(body + "\n")
    print(f"gpu_timing: table written to {out}")
    if not (args.cpu or args.no_write):  # --cpu never rewrites the docs (CI runs it)
        from report import write_section

        doc = write_section("gpu", "GPU", body, "bench/gpu_check.sh")
        print(f"gpu_timing: wrote the GPU section of {doc}")
    print(f"gpu_timing: {time.time() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
