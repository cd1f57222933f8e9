"""What a newcomer meets first: the shipped configuration and the README's own commands, run as written
on a fresh install."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from callcenter import cli
from callcenter.config import load_settings
from callcenter.db.engine import Database
from callcenter.users import services as users

ROOT = Path(__file__).parents[2]


def test_the_demo_records_its_queues_and_gives_them_a_unit() -> None:
    """Before: the demo recorded nothing ([recording] policy = "never" and no queue policy)."""
    settings = load_settings(ROOT / "config" / "callcenter.toml", environ={})
    assert {name: (q.record, q.org_unit) for name, q in settings.queues.items()} == {
        "sales": ("always", "Demo"), "support": ("always", "Demo")}
    assert settings.web.demo  # the demo IVR's account lookup is served


def test_the_readme_user_commands_work_as_written_on_a_fresh_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the README added extension 2006, which the demo already seeds."""
    database_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    db = Database(database_url)
    db.migrate()
    with db.session() as session:
        users.seed_demo(session)
    db.dispose()
    monkeypatch.setenv("CALLCENTER_DATABASE__URL", database_url)
    monkeypatch.setenv("CALLCENTER_PATHS__VAR_DIR", str(tmp_path / "var"))
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\.venv/bin/callcenter (users .*)$", readme, re.MULTILINE)
    assert [c.split()[1] for c in commands] == ["add", "list", "passwd", "remove"]
    for command in commands:
        assert cli.main(["--config", str(ROOT / "config" / "callcenter.toml"), *shlex.split(command)]) == 0, \
            (command, capsys.readouterr())
