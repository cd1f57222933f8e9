from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.config import load_settings
from callcenter.errors import ConfigError
from callcenter.settings_file import SettingsFile, opt

REPO = Path(__file__).resolve().parents[2]


def test_documented_default_file_states_the_built_in_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_file = load_settings(REPO / "config" / "callcenter.toml", environ={})
    monkeypatch.chdir(tmp_path)  # no config/callcenter.toml here: defaults only
    built_in = load_settings(environ={})
    for section in ("sip", "asterisk", "ari", "web", "database", "paths", "log", "cdr", "acd"):
        assert getattr(from_file, section) == getattr(built_in, section), section
    for table in ("dids", "queues", "pause_reasons", "wrapup_codes"):
        assert getattr(from_file, table) == getattr(built_in, table), table
    assert from_file.queues["support"].members == {"2003": 50, "2004": 90}
    assert from_file.queues["support"].overflow == "queue:sales"
    assert from_file.pause_reasons["training"].needs_approval


def test_every_key_of_the_default_file_is_commented() -> None:
    lines = (REPO / "config" / "callcenter.toml").read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("["):
            above = lines[:number]
            previous = next(text for text in reversed(above)
                            if not text.startswith("[") and ("=" not in text or text.startswith("#")))
            assert previous.lstrip().startswith("#"), f"line {number + 1} has no comment above it: {line}"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[web]\nport = 9000\n")
    settings = load_settings(config, environ={"CALLCENTER_WEB__PORT": "9100", "CALLCENTER_LOG__LEVEL": "debug"})
    assert settings.web.port == 9100
    assert settings.log.level == "debug"


@pytest.mark.parametrize(("text", "message"), [
    ("[web]\nport = 'x'\n", "c.toml:2: [web] port: must be a whole number, got 'x'"),
    ("[web]\nport = 70000\n", "c.toml:2: [web] port: must be at most 65535, got 70000"),
    ("[web]\n\nprot = 1\n", "c.toml:3: [web] prot: unknown key (known keys: bind, demo, port, secure_cookies)"),
    ("[webb]\nport = 1\n", "c.toml:1: [webb]: unknown section"),
    ("[log]\nlevel = 'loud'\n", "c.toml:2: [log] level: must be one of debug, info, warning, error, got 'loud'"),
    ("[asterisk]\nmanage = 'yes'\n", "c.toml:2: [asterisk] manage: must be true or false"),
    ("[web\nport = 1\n", "c.toml:1: syntax:"),
    ("[dids.1000]\nname = 'x'\nroute = 'fax:1'\n", "c.toml:1: [dids.1000]: route 'fax:1': must be one of"),
    ("[dids.abc]\nroute = 'greeting:x'\n", "c.toml:1: [dids.abc]: a DID is 1-32 digits"),
    ("[ari]\nreconnect_min = 9.0\nreconnect_max = 1.0\n", "c.toml:2: [ari] reconnect_min: must not exceed"),
    ("[queues]\nsales = '2002'\n", "c.toml:2: [queues.sales]: must be a table (strategy, members, ...) or a list"),
    ("[queues]\n'bad name' = ['2002']\n", "c.toml:2: [queues.bad name]: a queue name is"),
    ("[queues.s]\nstrategy = 'random'\n", "c.toml:2: [queues.s] strategy: must be one of longest-idle, ring-all"),
    ("[queues.s]\nmembers = { '2001' = 0 }\n", "c.toml:2: [queues.s] members: skill of 2001 must be"),
    ("[queues.s]\n\nring_timeout = 1\n", "c.toml:3: [queues.s] ring_timeout: must be a whole number 5-600"),
    ("[queues.s]\noverflow = 'queue:t'\n", "c.toml:2: [queues.s] overflow: queue 't' is not another"),
    ("[queues.s]\noverflow = 'fax:1'\n", "c.toml:2: [queues.s] overflow: must be"),
    ("[queues.s]\ncolour = 1\n", "c.toml:2: [queues.s] colour: unknown key"),
    ("[dids.1]\nroute = 'queue:none'\n", "c.toml:1: [dids.1]: route 'queue:none': no queue 'none' is configured"),
    ("[pause_reasons]\nmissed = 'Missed'\n", "c.toml:2: [pause_reasons] missed: a code is"),
    ("[pause_reasons]\nlunch = { label = 'L', approval = 'yes' }\n", "c.toml:2: [pause_reasons] lunch: must be"),
    ("[wrapup_codes]\nsale = 3\n", "c.toml:2: [wrapup_codes] sale: must be code = "),
    ("[acd]\nmissed_limit = 0\n", "c.toml:2: [acd] missed_limit: must be at least 1"),
])
def test_wrong_values_name_file_line_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert str(error.value).startswith(str(tmp_path / message)), str(error.value)


def test_wrong_environment_value_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CALLCENTER_WEB__PORT: must be a whole number"):
        load_settings(REPO / "config" / "callcenter.toml", environ={"CALLCENTER_WEB__PORT": "eighty"})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "none.toml", environ={})


def test_database_defaults_to_sqlite_under_var(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[paths]\nvar_dir = '{tmp_path}/v'\n")
    assert load_settings(config, environ={}).database_url == f"sqlite:///{tmp_path}/v/callcenter.db"



CAMPAIGN = "[campaigns.spring]\nqueue = 'sales'\ncaller_id = '+48221234500'\n"


@pytest.mark.parametrize(("text", "message"), [
    ("[campaigns.spring]\nqueue = 'sales'\n", "c.toml:1: [campaigns.spring] caller_id: is required"),
    ("[campaigns.spring]\nqueue = 'nope'\ncaller_id = '+1'\n", "c.toml:2: [campaigns.spring] queue: no queue"),
    (CAMPAIGN + "caller_id_x = 1\n", "c.toml:4: [campaigns.spring] caller_id_x: unknown key"),
    (CAMPAIGN + "mode = 'blast'\n", "c.toml:4: [campaigns.spring] mode: must be one of preview, progressive"),
    (CAMPAIGN + "ring_seconds = 10\n", "c.toml:4: [campaigns.spring] ring_seconds: must be a whole number 15-120"),
    (CAMPAIGN + "hours = '21:00-08:00'\n", "c.toml:4: [campaigns.spring] hours: calling window '21:00-08:00'"),
    (CAMPAIGN + "abandon_target = '12%'\n", "c.toml:4: [campaigns.spring] abandon_target: must be a percentage"),
    (CAMPAIGN + "abandon_windows = ['7d']\n", "c.toml:4: [campaigns.spring] abandon_windows: must be a list of"),
    (CAMPAIGN + "timezone = 'Mars/Base'\n", "c.toml:4: [campaigns.spring] timezone: must be a time zone"),
    (CAMPAIGN + "retries = { engaged = '5m x3' }\n", "c.toml:4: [campaigns.spring] retries: retries: unknown outcome"),
    (CAMPAIGN + "dispositions = { bought = 'done' }\n",
     "c.toml:4: [campaigns.spring] dispositions: 'bought' is not a wrap-up code"),
])
def test_wrong_campaigns_name_file_line_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert str(error.value).startswith(str(tmp_path / message)), str(error.value)


def test_a_campaign_takes_its_defaults_and_the_retry_defaults_for_what_it_leaves_out(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CAMPAIGN + "retries = { busy = '2m x4' }\nabandon_target = '2.5%'\n")
    spec = load_settings(config, environ={}).campaigns["spring"]
    assert (spec.mode, spec.ring_seconds, spec.abandon_target, spec.abandon_windows, spec.min_agents) == (
        "predictive", 25, 2.5, ("30d", "24h"), 5)
    assert (spec.retries["busy"].delay, spec.retries["busy"].max_attempts) == (120, 4)
    assert spec.retries["no_answer"].delay == 3600 and str(spec.hours) == "08:00-21:00"


@dataclass(frozen=True)
class _Widget:
    size: int = opt(3, lo=1, hi=9)
    colour: str = opt("red", choices=("red", "blue"))


def test_the_loader_reads_a_features_section_and_table_without_knowing_the_feature(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[widget]\nsize = 5\n\n[widgets.a]\nx = 1\n")
    source = SettingsFile.read(config, {"CALLCENTER_WIDGET__COLOUR": "blue"}, sections=["widget"], tables=["widgets"])
    assert source.section("widget", _Widget) == _Widget(size=5, colour="blue")
    assert source.table("widgets", {}) == {"a": {"x": 1}}
    assert source.table("gadgets", {"b": 2}) == {"b": 2}
    error = source.error("[widgets.a] x", "must be 2", source.line_of("widgets.a", "x"))
    assert str(error) == f"{config}:5: [widgets.a] x: must be 2"
    with pytest.raises(ConfigError, match=r"env CALLCENTER_WIDGET__SIZE: must be at most 9"):
        SettingsFile.read(config, {"CALLCENTER_WIDGET__SIZE": "10"}, sections=["widget"], tables=["widgets"]).section(
            "widget", _Widget)
