"""Which prompts exist, and the media URI Asterisk plays for one in a language."""

from __future__ import annotations

from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722", ".sln16")


class PromptCatalog:
    """Our prompts (``sounds/<lang>/<name>.<ext>``, copied where Asterisk reads them) first, then
    Asterisk's own sound library by name; a missing language falls back to English."""

    def __init__(self, ours_host: Path, ours_asterisk: str, library_host: Path | None) -> None:
        self.ours_host = ours_host
        self.ours_asterisk = ours_asterisk
        self.library_host = library_host

    @staticmethod
    def _has(directory: Path, name: str) -> bool:
        return any((directory / f"{name}{suffix}").exists() for suffix in AUDIO_SUFFIXES)

    def media(self, name: str, lang: str = "en") -> str:
        for language in dict.fromkeys((lang, "en")):
            if self._has(self.ours_host / language, name):
                return f"sound:{self.ours_asterisk}/{language}/{name}"
        return f"sound:{name}"

    def exists(self, name: str) -> bool:
        """Is the prompt there in at least one language, ours or Asterisk's?"""
        for root in (self.ours_host, self.library_host):
            if root is None or not root.is_dir():
                continue
            if any(self._has(lang_dir, name) for lang_dir in root.iterdir() if lang_dir.is_dir()):
                return True
        return False
