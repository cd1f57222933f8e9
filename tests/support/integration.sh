#!/usr/bin/env bash
# The integration suite on SQLite and on PostgreSQL, side by side. Each run starts its own Asterisk instance
# and controller on free ports of its own; the tests mostly wait on real time (rings, prompts, talk), so on
# two cores the two runs take as long as one: 13.7 min each, alone or together (measured 2026-12-03). A run
# that hangs is stopped after 25 minutes and fails, instead of holding CI. Usage: integration.sh PYTHON [ARGS]
set -uo pipefail
python=$1
shift
suite() {
    local db=$1
    shift
    CALLCENTER_TEST_DB=$db timeout --kill-after=30 1500 "$python" -m pytest -q tests/integration "$@" 2>&1 \
        | sed -u "s/^/[$db] /"
}
suite sqlite "$@" &
sqlite=$!
suite postgresql "$@" &
postgresql=$!
status=0
wait "$sqlite" || { echo "integration on SQLite failed"; status=1; }
wait "$postgresql" || { echo "integration on PostgreSQL failed"; status=1; }
exit "$status"
