"""Makes our prompts reproducibly: espeak-ng speaks the texts in sounds/prompts.toml and sox turns
them into 8 kHz mono 16-bit WAV, which Asterisk plays without transcoding from slin."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from callcenter.errors import ProvisioningError

VOICES = {"en": "en-gb", "de": "de", "tr": "tr", "pl": "pl", "hu": "hu", "az": "az"}


def build_prompts(sounds_dir: Path) -> list[str]:
    """Builds the prompts whose text changed or whose file is missing; returns what it made."""
    catalogue = sounds_dir / "prompts.toml"
    if not catalogue.exists():
        return []
    try:
        prompts = tomllib.loads(catalogue.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProvisioningError(f"{catalogue}: {exc}") from None
    manifest_path = sounds_dir / ".built.json"
    manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    made: list[str] = []
    for lang, texts in prompts.items():
        if not isinstance(texts, dict):
            raise ProvisioningError(f"{catalogue}: [{lang}] must be a table of name = \"text\"")
        for name, text in texts.items():
            key = f"{lang}/{name}"
            target = sounds_dir / lang / f"{name}.wav"
            digest = hashlib.sha256(f"{VOICES.get(lang, lang)}\0{text}".encode()).hexdigest()
            if target.exists() and manifest.get(key) == digest:
                continue
            _speak(VOICES.get(lang, lang), str(text), target)
            manifest[key] = digest
            made.append(key)
    if made:
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return made


def _speak(voice: str, text: str, target: Path) -> None:
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            raise ProvisioningError(f"{tool} is needed to make prompts: run `callcenter asterisk install`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True,
                       capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(target)], check=True,
                       capture_output=True)
