"""The analytic shape library: SDF objects with colours in the canonical frame.

Owns: primitive and composite SDF objects, named colours, the prompt parser, ground-truth renders
(sphere tracing) and ground-truth meshes, the random training views of the embedded prior and the
evaluator (`views`), and the keys of caches of its renders (`fingerprint`). Does not own: cameras
(dreamer.cameras), training loops.
The bottom layer: imports nothing from dreamer but `cameras` and `errors`.

Public API (implemented in the submodules):
    OBJECTS: dict[str, ShapeObject]          # name -> object ("cube", "chair", ...)
    COLOURS: dict[str, tuple[float, float, float]]  # name -> RGB in [0, 1]
    ObjectSpec(shape: str, colour: str)      # frozen dataclass; .prompt -> "a red chair"
    parse_prompt(prompt) -> ObjectSpec       # raises dreamer.errors.UserError when out of vocabulary
    render_spec(spec, camera, background=(1,1,1), supersample=1) -> ShapeRender
    spec_mesh(spec, resolution=128) -> trimesh.Trimesh (vertex colours)
    sdf_and_colour(spec, points [N,3]) -> (sdf [N], rgb [N,3])

A prompt without a colour gets DEFAULT_COLOUR ("gray"). Modules: colours (named + accent colours),
sdf_primitives (batched SDFs), composition (Part, ShapeObject), objects (the catalogue), spec
(ObjectSpec, sdf_and_colour), prompt (parser), raytrace (sphere-traced renders, `ShapeRender`), mesh,
views (`ViewConfig`: random cameras, coverage renders, backgrounds), fingerprint (cache keys).
"""

from dreamer.shapes.colours import COLOURS, DEFAULT_COLOUR
from dreamer.shapes.composition import Part, ShapeObject
from dreamer.shapes.mesh import spec_mesh
from dreamer.shapes.objects import OBJECTS
from dreamer.shapes.prompt import parse_prompt
from dreamer.shapes.raytrace import ShapeRender, render_spec
from dreamer.shapes.spec import ObjectSpec, sdf_and_colour

__all__ = [
    "COLOURS",
    "DEFAULT_COLOUR",
    "OBJECTS",
    "ObjectSpec",
    "Part",
    "ShapeObject",
    "ShapeRender",
    "parse_prompt",
    "render_spec",
    "sdf_and_colour",
    "spec_mesh",
]
