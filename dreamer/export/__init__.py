"""File writers: meshes (glb/obj/ply), images and turntable videos.

Owns: formats and atomic writes. Does not own: how a mesh or a render is produced.
"""
