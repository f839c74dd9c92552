"""The web UI (`dreamer ui`): a Gradio app over dreamer's public Python API.

Owns: the job queue (`jobs.py`, no Gradio in it), the run history read back from run folders
(`history.py`; a 4D run's frames zipped for download: `frames.py`), the choices and config
resolution behind the form (`form.py`), the guard that keeps every served file inside the runs
folder (`paths.py`), what the page shows of a run (`views.py`) and the Gradio layout and callbacks
(`app.py`). Does not own: any math, training, exporting or checkpoint loading — those are
`dreamer.api.generate` and the run folder's.
"""
