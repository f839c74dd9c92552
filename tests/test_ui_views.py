"""What the page says about a job: ETA, status lines, the queue table and the eval table."""

from pathlib import Path

from dreamer.ui import views
from dreamer.ui.jobs import JobState


def _job(**fields) -> JobState:
    return JobState(id="20260101-000000-a-red-cube", run_dir=Path("/runs/x"), prompt="a red cube", **fields)


def test_eta_reads_like_a_clock():
    assert [views.format_eta(s) for s in (None, float("nan"), -1, 0, 12.4, 185, 3725)] == [
        "", "", "", "0 s", "12 s", "3 min 05 s", "1 h 02 min"]


def test_status_lines_say_where_the_job_stands():
    queued = _job(status="queued", total=40, queue_position=2)
    assert views.status_line(queued) == "**queued** — #2 in line · step 0 / 40"
    assert views.status_line(_job(status="running", step=5, total=40, loss=0.012345, eta_s=70)) == (
        "**running** — step 5 / 40 · loss 0.01235 · ETA 1 min 10 s")
    assert "exporting" in views.status_line(_job(status="running", step=40, total=40))
    assert views.status_line(_job(status="cancelled", step=7, total=40)) == (
        "**cancelled** — step 7 / 40 · checkpoint kept: Resume continues it")
    assert views.status_line(_job(status="failed", step=3, total=40, error="the loss became nan")) == (
        "**failed** — step 3 / 40 · the loss became nan")
    assert 'aria-valuenow="10"' in views.progress_html(_job(status="running", step=10, total=40))
    assert "width:25.0%" in views.progress_html(_job(status="running", step=10, total=40))


def test_queue_table_is_newest_first_with_places_in_line():
    jobs = [_job(status="running", step=3, total=10, eta_s=4), _job(status="queued", total=10, queue_position=1)]
    rows = views.job_rows(jobs)
    assert [row[2] for row in rows] == ["queued #1", "running"] and rows[1][4] == "4 s"


def test_eval_table_only_when_there_are_figures():
    assert views.eval_markdown(None) == "" and views.eval_markdown({"views": 8}) == ""
    table = views.eval_markdown({"iou": 0.8421, "colour_error": 0.1, "r_precision": None, "multi_face_rate": 0.0})
    assert "| IoU | colour error | multi-face rate |" in table and "| 0.842 | 0.100 | 0.000 |" in table


def test_eval_table_shows_the_exported_mesh_in_3d():
    table = views.eval_markdown({"iou": 0.9, "colour_error": 0.05, "r_precision": 1.0, "multi_face_rate": 0.0,
                                 "volume_iou": 0.41, "chamfer_l1": 0.0612, "fscore_002": 0.2, "fscore_005": 0.57,
                                 "normal_consistency": 0.8, "extent_error": [0.3, 0.04, 0.3]})
    renders, mesh = table.split("*exported mesh, in 3D*")
    assert "| 0.900 | 0.050 | 1.000 | 0.000 |" in renders
    assert "| volume IoU | F-score@0.02 | F-score@0.05 | chamfer L1 | normal consistency | extent error x / y / z |" in mesh
    assert "| 0.410 | 0.200 | 0.570 | 0.061 | 0.800 | 0.300 / 0.040 / 0.300 |" in mesh
