"""A touch-up of trimesh's glTF JSON tree before it is written (its `tree_postprocessor` hook)."""

from __future__ import annotations

ARRAY_BUFFER = 34962  # vertex attributes
ELEMENT_ARRAY_BUFFER = 34963  # triangle indices


def set_buffer_view_targets(tree: dict) -> None:
    """Mark the buffer views of vertex attributes and indices with their GPU buffer target, as
    the glTF validator asks (its BUFFER_VIEW_TARGET_MISSING hint); images keep none."""
    accessors, views = tree.get("accessors", []), tree.get("bufferViews", [])
    for mesh in tree.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            uses = [(index, ARRAY_BUFFER) for index in primitive.get("attributes", {}).values()]
            if "indices" in primitive:
                uses.append((primitive["indices"], ELEMENT_ARRAY_BUFFER))
            for accessor, target in uses:
                view = accessors[accessor].get("bufferView")
                if view is not None:
                    views[view]["target"] = target
