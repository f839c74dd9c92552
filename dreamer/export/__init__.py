"""File writers: meshes (glb/obj/ply), images and turntable videos (`splats.ply` is written by
`dreamer.render.splat.ply`, the format's one home).

Owns: formats, atomic writes, and the mesh export pipeline that turns (mesh, colour function)
into files. `pipeline.export_mesh` runs the stages: `decimate` (face cap) -> `unwrap` (xatlas UV
charts) -> `bake` (texels rasterized in UV space by `uv_raster`, coloured at their surface
points; `seams` pads chart edges) -> writers: `textured` (GLB, PBR baseColorTexture), `obj`
(OBJ + MTL + PNG), `mesh` (vertex-coloured GLB/OBJ/PLY), with `gltf_tree` touching up the glTF
JSON. `options` holds the caps and their checks; `colour` the colour-query contract
(`colour_at`). Does not own: how a mesh or a render is produced (representations), nor the
Khronos glTF validator (tests/gltf_validator.py: only the tests and benches run it).
"""
