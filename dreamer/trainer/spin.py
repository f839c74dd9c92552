"""Whole turns per loop, chosen by a hypothesis test under the video prior (issue 29: spins that are learnt).

No method of the field learns a large global rotation from SDS gradients alone (TC4D takes it from a
trajectory, DreamGaussian4D from a driving video): a spin has to travel π at mid-loop from a start
where a slightly turned object scores no better than a still one. So at the start of the motion stage
the trainer asks the video prior which of a few whole-turn hypotheses fits the prompt best (0 = no
spin, +1 / −1 = one turn per loop either way, about the vertical axis), and fixes it in the similarity
track (`SimilarityTrack.turns`); gradients then learn the rest (phase, residual rotation,
translation, deformation) as before.

The test is a diffusion classifier: each hypothesis renders the same clips (same cameras, phases),
which are noised with the same (t, ε) draws, and scores how much better the prompt denoises them than
the empty prompt does (`prompt_score`); the lowest score is the hypothesis the prompt explains best, and
a turn is taken only when its score beats no turn by `motion.spin_margin` of no turn's. Probed with the
exact oracle on a red chair (Gaussians on its surface; seeds 0 and 1, 3 clips, 6 draws): "spinning"
scores +1 turn 50–70 % below no turn, while "sliding" and "bouncing" score a turn 0–29 % below no turn
(none of the hypotheses has their motion), hence the margin of 0.35. The draws
come from a generator of their own (seeded from the run's seed), so a run whose test has a single
hypothesis draws nothing and is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import clip_cameras, sample_orbit
from dreamer.priors import schedule


@dataclass
class SpinChoice:
    """What the test measured and chose."""

    turns: float  # the chosen whole turns per loop
    errors: dict[float, float]  # each hypothesis's prompt score (`prompt_score`: lower is better)

    def to_dict(self) -> dict:
        return {"turns": self.turns, "errors": {str(k): v for k, v in self.errors.items()}}


@torch.no_grad()
def prompt_score(prior, embedding, clips: torch.Tensor, cameras, t: torch.Tensor, noise: torch.Tensor) -> float:
    """How much better the prompt denoises clips [B, F, H, W, 3] in [0, 1] (renders) than the empty prompt does:
    mean ‖ε̂(prompt) − ε‖² − mean ‖ε̂(∅) − ε‖² over the (t [D], ε [D, B, F, C, h, w]) draws. Lower is better; the
    difference estimates −log p(prompt | clip) up to a constant (a diffusion classifier), so a clip that is merely
    easy to denoise (blurred, or still) gains nothing over one that is hard."""
    z = prior.encode_images(clips.permute(0, 1, 4, 2, 3))  # [B, F, C, h, w]
    batch = z.shape[0]
    text = torch.cat([embedding.conditional(cameras, batch), embedding.empty_prompt(batch).to(embedding.cond.dtype)])
    both = cameras if cameras is None else type(cameras).cat([cameras, cameras])
    total = 0.0
    for t_k, eps in zip(t, noise):
        t_batch = t_k.repeat(2 * batch).to(z.device)
        alpha, sigma = schedule.alphas_sigmas(prior.alphas_cumprod, t_batch, z.ndim)
        x_t = alpha * torch.cat([z, z]) + sigma * torch.cat([eps, eps]).to(z)
        err = ((prior.predict_noise(x_t, t_batch, text, both).float() - torch.cat([eps, eps]).to(z)) ** 2)
        cond, empty = err.chunk(2)
        total += float(cond.mean() - empty.mean())
    return total / len(t)


@torch.no_grad()
def choose_spin(representation, prior, embedding, config, clip_frames: int, device) -> SpinChoice | None:
    """Set `representation.track.turns` to the hypothesis of `config.motion.spin_turns` that the prior scores
    best (None, and nothing drawn, when there is one hypothesis or no track). The test clips are `clip_frames`
    long, the training clips' length (`MotionTrainer.clip_frames`)."""
    m = config.motion
    track = getattr(representation, "track", None)
    if track is None or len(m.spin_turns) < 2:
        return None
    gen = torch.Generator().manual_seed(int(config.seed) * 7919 + 17)
    cams = sample_orbit(m.spin_clips, config.camera, config.resolution, config.resolution, generator=gen)
    if m.video_resolution:
        cams = cams.with_resolution(m.video_resolution)
    phase = torch.rand(len(cams), 1, generator=gen)
    clip = clip_cameras(cams, phase + torch.arange(clip_frames, dtype=torch.float32)[None] / clip_frames).to(device)
    T = int(prior.num_train_timesteps)
    low, high = int(m.spin_t[0] * T), int(m.spin_t[1] * T)
    t = torch.randint(low, max(high, low + 1), (m.spin_draws,), generator=gen)
    latent = (m.spin_clips, clip_frames, *prior.latent_shape)
    noise = schedule.frame_noise((m.spin_draws * m.spin_clips, *latent[1:]), gen,
                                 prior.frame_noise_share).unflatten(0, (m.spin_draws, m.spin_clips))
    errors = {}
    for turns in m.spin_turns:
        track.turns.fill_(float(turns))
        rgb = representation.render(clip).rgb.unflatten(0, (m.spin_clips, clip_frames))
        errors[float(turns)] = prompt_score(prior, embedding, rgb, clip, t, noise)
    best = min(errors, key=errors.get)
    if best != 0.0 and 0.0 in errors and not errors[0.0] - errors[best] > m.spin_margin * abs(errors[0.0]):
        best = 0.0  # a turn must explain the prompt clearly better than none
    track.turns.fill_(best)
    return SpinChoice(best, errors)
