"""The trainer: the loop, optimizers, checkpoints/resume, progress events and the run folder.

Owns: what happens each step and what is saved. Does not own: what a render or a loss is
(representations, guidance) or any file format (export).
"""
