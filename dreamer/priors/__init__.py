"""Diffusion priors behind one interface (`dreamer.priors.base.Prior`).

Owns:
  - `base.py`: the `Prior` contract and `PromptEmbedding` (with view-dependent variants).
  - `schedule.py`: the noise schedule, once — ᾱ from diffusers' DDPMScheduler, α_t/σ_t, forward
    noising and the ε / v / x0 conversions that every prior and guidance rule uses.
  - the embedded priors: `reference.py` and `reference_video.py` (the exact denoisers over
    shape-library renders and animated-library clips) on one base, `exact_prior.py`, with their
    mixture mathematics in `exact_mixture.py`, settings in `reference_config.py`, reference cameras
    in `reference_orbit.py` and on-disk cache in `reference_cache.py`; and `tiny/` (the project's own
    small UNet, its training and sampling); `pixel_space.py` is their [0, 1] ↔ [−1, 1] image encoding.
  - the diffusers-backed priors: `stable_diffusion.py`, `sdxl.py`, `deepfloyd_if.py`, on
    `_diffusers_common.py` (loading from a local folder or the offline cache, dtypes, one-line errors).
Does not own: cameras or 3D; guidance math (`dreamer.guidance`); device choice (`dreamer.devices`).
"""
