"""Many prompts on Ray: `dreamer batch PROMPTS.txt --out DIR`.

- `task`: one prompt's run, idempotent (a temporary folder renamed into place; finished runs skipped,
  interrupted ones resumed from their checkpoint);
- `runner`: the Ray side (a local Ray or a cluster's), retries, progress with ETA, batch.json;
- `sheet`: the contact sheet of the results.
"""
