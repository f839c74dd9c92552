"""Stable keys for caches of shape-library renders (the reference prior's sets, the tiny prior's view bank).

`shape_library_fingerprint()` hashes the library's source, so editing an object invalidates every
render of it; `cache_key(payload)` hashes whatever else changes the renders.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path


@functools.lru_cache(maxsize=1)
def shape_library_fingerprint() -> str:
    """A hash of the shape library's source files: editing an object invalidates its renders."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(payload: dict) -> str:
    """A stable short hash of a JSON-able payload (dict key order does not matter)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]
