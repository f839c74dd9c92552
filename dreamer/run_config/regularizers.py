"""Regularizer weights, typed per representation: a mapping name -> weight checked name by name."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from dreamer import registry
from dreamer.config import merge, to_dict
from dreamer.errors import UserError


def known_regularizers(representation: str) -> list[str]:
    """The regularizer names of a representation (the fields of its `regularizer_weights`)."""
    cls = registry.component_class("representation", representation).regularizer_weights
    return [f.name for f in dataclasses.fields(cls)]


def regularizers_for(representation: str, weights: Any, prefix: str = "regularizers") -> Any:
    """The typed regularizer weights of `representation` from a mapping name -> weight (None: all off).

    A name the representation does not have is a UserError with the closest one it does have.
    """
    cls = registry.component_class("representation", representation).regularizer_weights
    if weights is None:
        weights = {}
    if dataclasses.is_dataclass(weights):
        weights = to_dict(weights)
    if not isinstance(weights, dict):
        raise UserError(f"config section '{prefix}' must map regularizer names to weights, got {weights!r}")
    known = known_regularizers(representation)
    for key in weights:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            listing = f"{representation} knows: {', '.join(known)}" if known else f"{representation} has none"
            raise UserError(f"{prefix}: unknown '{key}' for {representation}{hint} ({listing})")
    return merge(cls(), weights, prefix=prefix)
