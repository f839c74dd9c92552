"""What a mesh export writes and its size caps, checked before any work is done."""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamer.errors import UserError

FORMATS = ("glb", "obj", "ply")
MAX_FACES = 50_000  # xatlas' unwrap time grows quickly with faces: ~15-30 s at 50k on 2 cores
MIN_FACES = 100  # below this decimation destroys any shape
TEXTURE_SIZE = 1024
TEXTURE_SIZES = (16, 8192)  # smallest and largest texture side accepted
PADDING = 4


@dataclass
class MeshExportOptions:
    """Formats, caps and texture settings of one mesh export (mirrors `RunConfig.export`)."""

    formats: list[str] = field(default_factory=lambda: ["glb"])  # glb is written whatever is asked
    max_faces: int = MAX_FACES  # decimate to at most this many triangles before unwrapping
    texture: bool = True  # bake colour into a UV texture; False: vertex colours in every format
    texture_size: int = TEXTURE_SIZE  # texture side in texels, a power of two
    padding: int = PADDING  # texels of chart colour dilated into the empty texels around charts

    def validate(self) -> "MeshExportOptions":
        """Raise a one-line `UserError` for the first bad value; returns self."""
        for fmt in self.formats:
            if fmt not in FORMATS:
                raise UserError(f"unknown export format '{fmt}': choose glb, obj or ply")
        if not _is_int(self.max_faces) or self.max_faces < MIN_FACES:
            raise UserError(f"max faces must be an integer of at least {MIN_FACES}, got {self.max_faces!r}")
        lo, hi = TEXTURE_SIZES
        size = self.texture_size
        if not _is_int(size) or size < lo or size > hi or size & (size - 1):
            raise UserError(f"texture size must be a power of two from {lo} to {hi} (e.g. 1024), got {size!r}")
        if not _is_int(self.padding) or not 0 <= self.padding <= 64:
            raise UserError(f"texture padding must be an integer from 0 to 64 texels, got {self.padding!r}")
        if not isinstance(self.texture, bool):
            raise UserError(f"texture must be true or false, got {self.texture!r}")
        return self

    def wanted(self) -> list[str]:
        """The formats to write, glb first, each once."""
        return list(dict.fromkeys(["glb", *self.formats]))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_formats(text: str) -> list[str]:
    """'glb, obj,ply' -> ['glb', 'obj', 'ply'] (lower-cased; checked by `validate`)."""
    return [f.strip().lower() for f in text.split(",") if f.strip()]
