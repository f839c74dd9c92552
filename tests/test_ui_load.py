"""The web UI under load and a restart (issue 28 §6), with the real server, HTTP clients and a browser.

Twenty jobs are submitted at once by four HTTP clients (four sessions, as four browser tabs would be,
through the page's own `/generate` endpoint); the `/jobs` endpoint lists them in one queue. The server
is stopped (SIGTERM, as a service manager would) with jobs still queued and running, and started
again on the same runs folder; two browser tabs show the recovered jobs in the jobs table. Then every
job finishes with its assets; none is lost, and none runs twice:

- a job finished before the restart is not touched (its model.glb keeps its modification time);
- a job stopped mid-run resumes from its checkpoint (saved as it stopped): `/jobs` says so, and its
  metrics keep the first server's lines as they were (timings included) before the second's;
- a job that never started starts once, from step 0.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from ui_support import UI_TINY, App, chromium_path, playwright_sync, wait_until

from dreamer.ui import form

pytestmark = pytest.mark.slow(seconds=40)

JOBS, CLIENTS, STEPS = 20, 4, 10
COLOURS = ("red", "blue", "green", "yellow", "purple")
SHAPES = ("cube", "sphere", "cone", "cylinder")
SETTINGS = [*UI_TINY, "trainer.checkpoint_every=3", "trainer.evaluate=false", "export.video=false"]  # covered elsewhere
RUN_ID = re.compile(r"\d{8}-\d{6}-[a-z0-9-]+")  # a run folder's name


def _prompts() -> list[str]:
    return [f"a {colour} {shape}" for shape in SHAPES for colour in COLOURS][:JOBS]


def _submit_all(url: str) -> list[tuple[str, str]]:
    """JOBS submissions at once from CLIENTS sessions (threads); their (message, job id) replies (the id as
    the message names it: the page keeps the selected job in session state, which the API does not return)."""
    from gradio_client import Client

    values = form.defaults_for("default", SETTINGS)
    replies: list[tuple[str, str] | BaseException] = []
    lock = threading.Lock()

    def client_submits(prompts: list[str]) -> None:
        try:
            client = Client(url, verbose=False)
            for prompt in prompts:
                message = client.predict(prompt, values.negative_prompt, "default", values.guidance,
                                         values.representation, values.prior, STEPS, values.seed, values.resolution,
                                         [], False, "", api_name="/generate")  # the page's message (the id is state)
                found = re.search(r"as `([^`]+)`", message)
                with lock:
                    replies.append((message, found.group(1) if found else ""))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            with lock:
                replies.append(e)

    prompts = _prompts()
    threads = [threading.Thread(target=client_submits, args=(prompts[i::CLIENTS],)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    errors = [r for r in replies if isinstance(r, BaseException)]
    assert not errors, errors
    return replies  # type: ignore[return-value]


def _client(url: str):
    """One HTTP client per server: making a client fetches and parses the whole API description, which costs
    the busy server more than a `/jobs` call does."""
    from gradio_client import Client

    return Client(url, verbose=False)


def _jobs(client) -> list[dict]:
    return client.predict(api_name="/jobs")


def _listed(tab, expected: int) -> dict[str, str]:
    """{run id: its row's text} of the jobs in the tab's jobs table, once `expected` are found (or after
    60 looks). The table draws only the rows in view (a virtual list), so this scrolls it with the
    mouse wheel and gathers what each view shows."""
    tab.wait_for_function("() => document.querySelectorAll('#job-table [role=row]').length > 1", timeout=30_000)
    rows = tab.locator("#job-table [role=row]")
    rows.nth(1).hover()
    listed: dict[str, str] = {}
    for _ in range(60):
        for text in rows.all_inner_texts():
            found = RUN_ID.search(text)
            if found:
                listed[found.group(0)] = " ".join(text.split())
        if len(listed) >= expected:
            break
        tab.mouse.wheel(0, 120)
        tab.wait_for_timeout(150)
    return listed


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_twenty_jobs_from_several_clients_survive_a_restart_none_lost_none_run_twice(tmp_path):
    chromium = chromium_path()
    sync_playwright = playwright_sync()
    runs = (tmp_path / "runs").resolve()
    shots = Path("docs/screenshots") if os.environ.get("SCREENSHOTS") == "1" else tmp_path
    app = App(runs, tmp_path / "app.log", SETTINGS, "--concurrency", "2")
    try:
        replies = _submit_all(app.url)
        ids = [job_id for _, job_id in replies]
        assert len(replies) == JOBS and len(set(ids)) == JOBS
        assert all(message.startswith("queued **a ") for message, _ in replies), replies
        assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == sorted(ids)

        listed = _jobs(_client(app.url))  # the queue as an HTTP client sees it
        assert sorted(j["id"] for j in listed) == sorted(ids)
        assert sorted(j["queue_position"] for j in listed if j["status"] == "queued") == \
            list(range(1, 1 + sum(j["status"] == "queued" for j in listed)))

        # stop the server as soon as two jobs have finished: most are still queued then (a look at the
        # runs folder is quicker than a request, so the queue cannot drain between the look and the stop)
        def finished() -> list[str]:
            return [i for i in ids if (runs / i / "model.glb").is_file()]

        finished_first = wait_until(lambda: len(finished()) >= 2 and finished(), timeout=180, interval=0.05,
                                    what="two finished jobs")
        app.stop()  # SIGTERM with jobs running and queued
        assert app.proc.returncode == 0, app.tail()

        glb_times = {i: (runs / i / "model.glb").stat().st_mtime_ns for i in ids if (runs / i / "model.glb").is_file()}
        assert set(finished_first) <= set(glb_times)
        stopped = {i: _lines(runs / i / "metrics.jsonl") for i in ids  # (a job stopped before its first step
                   if i not in glb_times and (runs / i / "checkpoints" / "last.pt").is_file()}  # has no lines yet)
        never_started = [i for i in ids if i not in glb_times and i not in stopped]
        assert never_started, "the restart should find jobs still queued"
        unfinished = sorted(set(ids) - set(glb_times))

        app = App(runs, tmp_path / "app2.log", SETTINGS, "--concurrency", "2")
        assert f"queued again after a restart: {len(unfinished)} job(s)" in app.tail()
        client = _client(app.url)
        recovered = {j["id"]: j for j in _jobs(client)}
        assert sorted(recovered) == unfinished
        assert all(recovered[i]["resume"] == (i in stopped) for i in unfinished)  # from the checkpoint or step 0
        with sync_playwright() as pw:  # the queue view of the new server, in two tabs of one browser
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            tabs = [context.new_page() for _ in range(2)]
            for tab in tabs:
                tab.goto(app.url)
            for tab in tabs:
                listed = _listed(tab, len(unfinished))
                assert sorted(listed) == unfinished, listed
                assert all(re.search(r"queued #\d+|running|finished", row) for row in listed.values()), listed
            tabs[0].screenshot(path=str(shots / "ui-queue.png"), full_page=True)
            browser.close()
        wait_until(lambda: all(j["status"] == "finished" for j in _jobs(client)), timeout=300, interval=0.5,
                   what="every recovered job to finish")
    except Exception:
        print(app.tail())
        raise
    finally:
        app.stop()

    for job_id in ids:  # none lost: every job has its assets
        assert (runs / job_id / "model.glb").stat().st_size > 0
        assert json.loads((runs / job_id / "ui-job.json").read_text())["status"] == "finished"
        steps = [r["step"] for r in _metrics(runs / job_id)]
        assert steps == list(range(1, STEPS + 1)), (job_id, steps)
    for job_id, mtime in glb_times.items():  # finished before the restart: not run again
        assert (runs / job_id / "model.glb").stat().st_mtime_ns == mtime, job_id
    for job_id, before in stopped.items():  # stopped mid-run: resumed, so the first server's steps are kept as
        # they were logged (a run from step 0 would have rewritten them, with other timings)
        assert _lines(runs / job_id / "metrics.jsonl")[:len(before)] == before, job_id
    for job_id in never_started:  # queued at the restart: one run, from step 0
        elapsed = [r["elapsed_s"] for r in _metrics(runs / job_id)]
        assert elapsed == sorted(elapsed), job_id
