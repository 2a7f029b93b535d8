#!/usr/bin/env bash
# Server benchmarks (issue 4):
#   1. CPU time of the server process per issuance: the issue's "both API calls" (creation
#      options + complete, excluding Entra and the authenticator, which run in the driver
#      process), median over batches, on SQLite; budget 2 ms. Creating the issuance request
#      (made ahead of time, e.g. by a bulk job) is measured apart and printed too.
#   2. GET /api/v1/people/{id} throughput with wrk for 10 s; target 5000 requests/s.
# Prints each figure and its ratio to the target. Needs wrk (Debian package `wrk`).
set -euo pipefail
command -v wrk >/dev/null || { echo "bench/server.sh needs wrk: apt-get install wrk" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ISSUANCES=${ISSUANCES:-1000}
BATCHES=${BATCHES:-20}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

cargo build --release -q -p keyward --bin keyward
cargo build --release -q -p keyward-server --example issuance_driver
BIN=${CARGO_TARGET_DIR:-target}/release/keyward
DRIVER=${CARGO_TARGET_DIR:-target}/release/examples/issuance_driver
DIR=$(mktemp -d)
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

export KEYWARD_LOG=warn
TOKEN=$("$BIN" admin --data-dir "$DIR" --config "$DIR/none.toml" token create --name bench --role admin 2>/dev/null)
"$BIN" serve --data-dir "$DIR" --config "$DIR/none.toml" --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$DIR/serve.err" &
SERVER=$!
for _ in $(seq 1 100); do
    URL=$(sed -n 's/^Keyward server listening on //p' "$DIR/serve.out")
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { cat "$DIR/serve.err" >&2; exit 1; }

echo "== issuance: server CPU per issuance (SQLite, $ISSUANCES issuances in $BATCHES batches)"
"$DRIVER" "$URL" "$TOKEN" "$SERVER" "$ISSUANCES" "$BATCHES" | tee "$DIR/driver.out"
CPU=$(sed -n 's/^cpu_ms_per_issuance_median=//p' "$DIR/driver.out")
PERSON=$(sed -n 's/^person_id=//p' "$DIR/driver.out")
CREATE=$(sed -n 's/^cpu_ms_per_create_median=//p' "$DIR/driver.out")
awk -v c="$CPU" -v r="$CREATE" 'BEGIN {
    printf "issuance server CPU median (options + complete): %.3f ms (budget 2 ms, ratio %.2f of budget)\n", c, c / 2
    printf "creating the issuance request: %.3f ms more; all three calls: about %.3f ms\n", r, c + r }'

echo "== GET /api/v1/people/{id}: wrk -t1 -c$CONNECTIONS -d$DURATION"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $TOKEN" "$URL/api/v1/people/$PERSON" | tee "$DIR/wrk.out"
RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$DIR/wrk.out")
NON2XX=$(awk '/Non-2xx/ { print $NF }' "$DIR/wrk.out")
[ -z "$NON2XX" ] || { echo "wrk saw $NON2XX non-2xx responses" >&2; exit 1; }
awk -v r="$RPS" 'BEGIN { printf "people/{id}: %.0f requests/s (target 5000, ratio %.2f)\n", r, r / 5000 }'
