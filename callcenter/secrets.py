"""Credentials generated once per install and kept in ``var/secrets.json`` (mode 0600).

Never a default password: ARI, AMI, the panel's session key and the metrics token (what a scraper
sends to /metrics and /api/phones as ``Authorization: Bearer <token>``) are random on every new
install. A file from an older version gets the secrets it lacks added, the others kept.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    ari_user: str
    ari_password: str
    ami_user: str
    ami_password: str
    session_key: str
    metrics_token: str = ""


def new_password(length: int = 16) -> str:
    # Letters and digits only: SIP phones and config files take them without quoting.
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def load_or_create(var_dir: Path) -> Secrets:
    path = var_dir / "secrets.json"
    if path.exists():
        found = Secrets(**json.loads(path.read_text()))
        if found.metrics_token:
            return found
        completed = replace(found, metrics_token=secrets.token_urlsafe(32))
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        _write(tmp, completed)
        tmp.replace(path)
        return completed
    var_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(var_dir, 0o700)
    created = Secrets(
        ari_user="callcenter", ari_password=new_password(24),
        ami_user="callcenter", ami_password=new_password(24),
        session_key=secrets.token_hex(32), metrics_token=secrets.token_urlsafe(32),
    )
    _write(path, created)
    return created


def _write(path: Path, values: Secrets) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(values), out, indent=2)
