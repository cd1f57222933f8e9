"""Where a recording's MP3 is on disk, for every page that plays one (the recordings, a customer's history,
a ticket's calls): only a file that exists under the files directory, whatever the stored path says."""

from __future__ import annotations

from pathlib import Path


def mp3_path(files_dir: Path | None, relative: str | None) -> Path | None:
    if files_dir is None or not relative:
        return None
    root = files_dir.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None
