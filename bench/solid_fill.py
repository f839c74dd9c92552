"""The same checkpoints exported with and without filling unseen space (dreamer/render/solid.py).

    python bench/solid_fill.py RUNS_FOLDER [--write]

For every finished run folder (with eval.json) under RUNS_FOLDER (e.g. one sample of bench/vocabulary.py), the NeRF's mesh is
extracted twice at 128³, once with `fill_unseen=False` (`export.fill_unseen=false`: the surface as it was
before issue 19) and once with it (the default), and both are scored in 3D against the ground truth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_section  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()

    import trimesh

    from dreamer.eval.geometry import geometry_metrics
    from dreamer.shapes import parse_prompt, spec_mesh
    from dreamer.trainer.outputs import load_run

    rows = []
    for folder in sorted(d for d in args.runs.iterdir() if (d / "eval.json").exists()):  # finished runs only
        config, representation, _ = load_run(folder, device="cpu")
        truth = spec_mesh(parse_prompt(config.prompt))
        cells = []
        for fill in (False, True):
            mesh = representation.to_mesh(128, fill_unseen=fill)
            m = geometry_metrics(trimesh.Trimesh(mesh.vertices, mesh.faces), truth)
            cells += [m.volume_iou, m.fscore_005, m.volume]
        rows.append([config.prompt, *cells, m.volume_gt])
        print(rows[-1], flush=True)
    table = markdown_table(["prompt", "volume IoU (no fill)", "F@0.05 (no fill)", "volume (no fill)",
                            "volume IoU (fill)", "F@0.05 (fill)", "volume (fill)", "volume (truth)"], rows)
    print(table)
    if args.write:
        body = (f"Checkpoints of `{args.runs}` (default preset), each exported twice at 128³.\n\n{table}")
        write_section("solid-fill", "Exports with and without filling unseen space", body,
                      "python bench/solid_fill.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
