"""Pure rendering functions: rays, volume rendering (and later splat / mesh rasterization).

Owns: math that turns samples into pixels. Does not own: parameters (representations).
"""
