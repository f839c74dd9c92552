"""Load an embedded prior by its registry name for the benches (`--weights` replaces tiny-mv's folder)."""

from __future__ import annotations

import dataclasses


def load_prior(name: str, mv_weights: str | None = None):
    from dreamer import registry

    config = registry.default_config("prior", name)
    if mv_weights and name == "tiny-mv":
        config = dataclasses.replace(config, weights=mv_weights)
    return registry.component_class("prior", name)(config, "cpu")
