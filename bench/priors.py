"""Load an embedded prior by its registry name for the benches (`--weights` replaces the weights folder of
the multi-view priors, tiny-mv and tiny-3d: what bench/tiny_mv_gpu.sh has just trained)."""

from __future__ import annotations

import dataclasses

MULTI_VIEW = ("tiny-mv", "tiny-3d")


def load_prior(name: str, mv_weights: str | None = None):
    from dreamer import registry

    config = registry.default_config("prior", name)
    if mv_weights and name in MULTI_VIEW:
        config = dataclasses.replace(config, weights=mv_weights)
    return registry.component_class("prior", name)(config, "cpu")
