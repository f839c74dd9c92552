"""The catalogue: primitives and composites in the canonical frame.

+Y up, the front faces +Z, centred near the origin and inside a sphere of radius ~0.6. Parts
left at the default colour are PRIMARY (the prompt's colour); others name a fixed accent.
Chair, mug, house (and the snowman's face) have a distinct front so Janus errors show:
the chair back is at -Z, the mug handle at +X with a badge on +Z, the house door and
windows on +Z.
"""

from __future__ import annotations

from dreamer.shapes.composition import Part, ShapeObject
from dreamer.shapes.sdf_primitives import (
    Box,
    Capsule,
    Clipped,
    Cone,
    Cup,
    Cylinder,
    Dome,
    Frustum,
    Gable,
    Pyramid,
    Sphere,
    Torus,
)

ALONG_X = (0.0, 0.0, 90.0)  # rotates a +Y-axis primitive onto the X axis
ALONG_Z = (90.0, 0.0, 0.0)  # rotates +Y onto +Z (a cone's apex then points to the front)


def _primitive(name: str, part: Part, description: str) -> ShapeObject:
    return ShapeObject(name, (part,), description)


def _snowman() -> ShapeObject:
    parts = [
        Part(Sphere(0.28), (0.0, -0.30, 0.0)),
        Part(Sphere(0.21), (0.0, 0.08, 0.0)),
        Part(Sphere(0.15), (0.0, 0.38, 0.0)),
        Part(Sphere(0.025), (-0.055, 0.42, 0.128), colour="charcoal"),
        Part(Sphere(0.025), (0.055, 0.42, 0.128), colour="charcoal"),
        Part(Cone(0.03, 0.07), (0.0, 0.38, 0.20), ALONG_Z, colour="carrot"),
        Part(Sphere(0.025), (0.0, 0.14, 0.195), colour="charcoal"),
        Part(Sphere(0.025), (0.0, 0.04, 0.20), colour="charcoal"),
    ]
    return ShapeObject("snowman", tuple(parts), "three stacked balls; coal eyes and buttons, carrot nose on +Z")


def _mushroom() -> ShapeObject:
    parts = [
        Part(Frustum(0.15, 0.11, 0.25), (0.0, -0.20, 0.0), colour="offwhite"),
        Part(Dome((0.50, 0.42, 0.50)), (0.0, 0.0, 0.0)),
    ]
    return ShapeObject("mushroom", tuple(parts), "domed cap (primary) on an off-white stem")


def _table() -> ShapeObject:
    legs = [
        Part(Box((0.03, 0.27, 0.03)), (sx * 0.38, -0.13, sz * 0.24))
        for sx in (-1, 1)
        for sz in (-1, 1)
    ]
    top = Part(Box((0.46, 0.03, 0.32), rounding=0.01), (0.0, 0.17, 0.0))
    return ShapeObject("table", (top, *legs), "rectangular top on four legs, all primary")


def _chair() -> ShapeObject:
    front_legs = [Part(Box((0.025, 0.20, 0.025)), (sx * 0.215, -0.26, 0.215)) for sx in (-1, 1)]
    # The back legs run on up to become the posts of the backrest.
    back_posts = [Part(Box((0.025, 0.47, 0.025)), (sx * 0.215, 0.01, -0.215)) for sx in (-1, 1)]
    parts = [
        Part(Box((0.25, 0.03, 0.25), rounding=0.005), (0.0, -0.03, 0.0)),
        *front_legs,
        *back_posts,
        Part(Box((0.24, 0.10, 0.02)), (0.0, 0.36, -0.215)),  # backrest panel
        Part(Box((0.24, 0.025, 0.02)), (0.0, 0.14, -0.215)),  # lower back rail
    ]
    return ShapeObject("chair", tuple(parts), "seat, four legs, backrest at -Z; all primary")


def _mug() -> ShapeObject:
    # The handle is the +X half of a ring standing in the XY plane, its cut ends in the wall.
    handle = Clipped(Torus(0.16, 0.04), axis=0, minimum=0.0)
    parts = [
        Part(Cup(0.32, 0.38, 0.04)),
        Part(handle, (0.30, 0.0, 0.0), ALONG_Z),
        # A flat badge on the front: without it the back view is just the mirrored front view.
        Part(Cylinder(0.10, 0.012), (0.0, 0.02, 0.316), ALONG_Z, colour="offwhite"),
    ]
    return ShapeObject("mug", tuple(parts), "open cylinder (primary), handle on +X, off-white badge on +Z")


def _house() -> ShapeObject:
    slab = Box((0.38, 0.02, 0.25))  # one side of the pitched roof, laid along the 45-degree slope
    parts = [
        Part(Box((0.34, 0.24, 0.28)), (0.0, -0.20, 0.0)),  # walls, y from -0.44 to 0.04
        Part(Gable(0.28, 0.14, 0.34), (0.0, 0.18, 0.0)),  # gable ends, wall-coloured
        Part(slab, (0.0, 0.194, 0.154), (45.0, 0.0, 0.0), colour="slate"),
        Part(slab, (0.0, 0.194, -0.154), (-45.0, 0.0, 0.0), colour="slate"),
        Part(Box((0.04, 0.11, 0.04)), (0.20, 0.31, -0.14), colour="slate"),  # chimney
        Part(Box((0.07, 0.12, 0.015)), (0.0, -0.32, 0.28), colour="door"),
        Part(Box((0.06, 0.06, 0.012)), (-0.20, -0.16, 0.28), colour="glass"),
        Part(Box((0.06, 0.06, 0.012)), (0.20, -0.16, 0.28), colour="glass"),
        Part(Box((0.012, 0.06, 0.06)), (-0.34, -0.16, 0.0), colour="glass"),
        Part(Box((0.012, 0.06, 0.06)), (0.34, -0.16, 0.0), colour="glass"),
    ]
    return ShapeObject("house", tuple(parts), "primary walls, slate roof, door and windows on +Z")


def _tree() -> ShapeObject:
    parts = [
        Part(Cylinder(0.07, 0.12), (0.0, -0.38, 0.0), colour="bark"),
        Part(Cone(0.38, 0.20), (0.0, -0.12, 0.0)),
        Part(Cone(0.30, 0.18), (0.0, 0.10, 0.0)),
        Part(Cone(0.20, 0.15), (0.0, 0.33, 0.0)),
    ]
    return ShapeObject("tree", tuple(parts), "three stacked cones (primary) on a bark trunk")


def _lamp() -> ShapeObject:
    parts = [
        Part(Cylinder(0.20, 0.025), (0.0, -0.475, 0.0), colour="charcoal"),
        Part(Cylinder(0.022, 0.30), (0.0, -0.15, 0.0), colour="metal"),
        Part(Frustum(0.30, 0.17, 0.17), (0.0, 0.25, 0.0)),
    ]
    return ShapeObject("lamp", tuple(parts), "table lamp: charcoal base, metal pole, primary shade")


def _dumbbell() -> ShapeObject:
    parts = [
        Part(Cylinder(0.035, 0.48), rotation=ALONG_X, colour="metal"),
        Part(Cylinder(0.22, 0.09), (-0.33, 0.0, 0.0), ALONG_X),
        Part(Cylinder(0.22, 0.09), (0.33, 0.0, 0.0), ALONG_X),
    ]
    return ShapeObject("dumbbell", tuple(parts), "metal bar along X with a primary weight at each end")


def _catalogue() -> dict[str, ShapeObject]:
    objects = [
        _primitive("cube", Part(Box((0.35, 0.35, 0.35))), "axis-aligned cube"),
        _primitive("sphere", Part(Sphere(0.5)), "sphere of radius 0.5"),
        _primitive("cylinder", Part(Cylinder(0.35, 0.42)), "upright cylinder"),
        _primitive("cone", Part(Cone(0.42, 0.42)), "upright cone, apex up"),
        _primitive("torus", Part(Torus(0.40, 0.15)), "ring lying flat in XZ"),
        _primitive("pyramid", Part(Pyramid(0.35, 0.35)), "square pyramid, apex up"),
        _primitive("capsule", Part(Capsule(0.24, 0.30)), "upright capsule"),
        _snowman(),
        _mushroom(),
        _table(),
        _chair(),
        _mug(),
        _house(),
        _tree(),
        _lamp(),
        _dumbbell(),
    ]
    return {obj.name: obj for obj in objects}


OBJECTS: dict[str, ShapeObject] = _catalogue()

# Words the parser accepts for a shape, mapped to its name in OBJECTS.
SHAPE_SYNONYMS: dict[str, str] = {
    "box": "cube",
    "ball": "sphere",
    "donut": "torus",
    "doughnut": "torus",
    "pill": "capsule",
    "cup": "mug",
}


def canonical_shape(word: str) -> str | None:
    """The OBJECTS key for a shape word or synonym (case-insensitive), or None."""
    word = word.strip().lower()
    word = SHAPE_SYNONYMS.get(word, word)
    return word if word in OBJECTS else None
