"""Gold-QA evaluation of the pipelines: run, score, store, report, compare.

The Scores page reads runs with `list_runs(settings)` and `load_run(settings, run_id)`; the shape of
summary.json is documented in `triptych.evaluate.store`.
"""

from triptych.evaluate.store import LoadedRun, RunNotFoundError, RunSummary, list_runs, load_run

__all__ = ["LoadedRun", "RunNotFoundError", "RunSummary", "list_runs", "load_run"]
