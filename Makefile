# The two commands a newcomer needs: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test install browser tools unit integration lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e '.[test,sim]'
	@rm -f $(VENV)/.installed-* && touch $@

# Python packages, Asterisk (system package or Debian-sid root), sipp, ffmpeg, prompts.
install: $(STAMP)
	$(VENV)/bin/callcenter asterisk install

run: install
	$(VENV)/bin/callcenter run

lint: $(STAMP)
	$(PY) -m ruff check callcenter tests bench
	$(PY) -m mypy callcenter

# Debian's chromium for the panel's browser tests (Playwright drives it; nothing downloads a browser build).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# FTPS clients the unit tests drive (curl, lftp) and openssl; `callcenter asterisk install` brings them too.
tools:
	@command -v lftp >/dev/null && command -v curl >/dev/null && command -v openssl >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lftp curl openssl; }

unit: $(STAMP) browser tools
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

# The integration suite runs twice, side by side: on SQLite and on a throwaway PostgreSQL cluster, each
# with its own Asterisk and controller (tests/support/integration.sh says why and how long).
integration: install browser
	$(PY) tests/support/postgres.py install
	tests/support/integration.sh $(PY) $(PYTEST_ARGS)

test: install lint unit integration

bench: install
	$(PY) bench/cps.py
	$(PY) bench/ledger.py
	$(PY) bench/ivr.py
	$(PY) bench/acd.py
	$(PY) bench/recording.py
	$(PY) bench/ftps.py
	$(PY) bench/export.py
	$(PY) bench/dialer.py
	$(PY) bench/connect.py
	$(PY) bench/webhooks.py

clean:
	rm -rf $(VENV) var
