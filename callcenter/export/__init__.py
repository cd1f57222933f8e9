"""The daily CSV export (CDR-2, CDR-3): CDRs and queue calls of a day, for everyone and per unit.

- ``cdr``: the CDR CSV (header, row format, streaming writer).
- ``queue_calls``: the two queue-call CSVs (one row per queued call, one per place it rang).
- ``daily``: one day's files, atomically written, and catching up on missed days.
- ``scheduler``: the daily export and purge jobs (APScheduler, persistent job store).
- ``cli``: ``callcenter export``.

See docs/export.md. Kept free of imports so that ``callcenter.cli`` stays quick to load.
"""
