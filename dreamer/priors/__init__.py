"""Diffusion priors behind one interface (`dreamer.priors.base.Prior`).

Owns: the embedded `reference` prior and the diffusers-backed priors (Stable Diffusion,
DeepFloyd IF). Does not own: cameras or 3D; guidance math.
"""
