"""The batch's contact sheet: one row per prompt, four views of its result beside its prompt and status."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamer.batch.task import PromptResult

ROW_HEIGHT = 96
LABEL_WIDTH = 260


def _views(run_dir: Path) -> np.ndarray | None:
    """Four views side by side: the turntable's frames at 0°, 90°, 180°, 270°, else the last preview."""
    import imageio.v3 as iio

    for video in (run_dir / "turntable.mp4", run_dir / "turntable.gif"):
        if video.is_file():
            frames = iio.imread(video)
            picks = [frames[round(k * len(frames) / 4) % len(frames)][..., :3] for k in range(4)]
            return np.concatenate(picks, axis=1)
    previews = sorted((run_dir / "previews").glob("*.png"))
    return iio.imread(previews[-1])[..., :3] if previews else None


def write_contact_sheet(results: list[PromptResult], path: Path) -> Path | None:
    """batch.png: each prompt's label (with its status) and four views, scaled to one row height."""
    from PIL import Image, ImageDraw

    if not results:
        return None
    rows = []
    for r in results:
        preview = _views(Path(r.run_dir)) if r.status != "failed" else None
        width = LABEL_WIDTH + (4 * ROW_HEIGHT)
        row = Image.new("RGB", (width, ROW_HEIGHT), "white")
        if preview is not None:
            picture = Image.fromarray(preview)
            scale = ROW_HEIGHT / picture.height
            picture = picture.resize((max(1, round(picture.width * scale)), ROW_HEIGHT))
            row.paste(picture.crop((0, 0, min(picture.width, 4 * ROW_HEIGHT), ROW_HEIGHT)), (LABEL_WIDTH, 0))
        draw = ImageDraw.Draw(row)
        draw.text((8, ROW_HEIGHT // 2 - 12), r.prompt[:40], fill="black")
        status = r.status if r.status != "failed" else f"failed: {(r.error or '')[:34]}"
        draw.text((8, ROW_HEIGHT // 2 + 4), status, fill="firebrick" if r.status == "failed" else "dimgray")
        rows.append(np.asarray(row))
    from dreamer.export.images import save_image

    return save_image(path, np.concatenate(rows, axis=0).astype(np.float32) / 255.0)
