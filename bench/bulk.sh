#!/usr/bin/env bash
# Bulk provisioning benchmark (issue 5): `keyward bulk provision` with soft keys against
# `keyward sim --latency-ms 100` whose Graph write quota is scaled down to WRITES per second.
# Each successful issuance costs exactly one Graph write (POST fido2Methods; see the sim's cost
# table in crates/keyward-sim/src/throttle.rs), so no run can beat WRITES users/s: that is the
# quota-bound ceiling. Prints users/s and the ratio to the ceiling (target >= 0.9) with
# --concurrency CONCURRENCY, then the same with --concurrency 1 (round-trip bound).
# Knobs: USERS (300), WRITES (20), CONCURRENCY (32), SERIAL_USERS (USERS), LATENCY_MS (100).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
USERS=${USERS:-300}
WRITES=${WRITES:-20}
CONCURRENCY=${CONCURRENCY:-32}
SERIAL_USERS=${SERIAL_USERS:-$USERS}
LATENCY_MS=${LATENCY_MS:-100}
WRITES_PER_USER=1

cargo build --release -q -p keyward --bin keyward
BIN=${CARGO_TARGET_DIR:-target}/release/keyward
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
export KEYWARD_LOG=warn
export KEYWARD_SOFTKEY_PASSPHRASE=bench-vault-passphrase

TOTAL=$((USERS + SERIAL_USERS))
"$BIN" sim --example-seed | python3 -c '
import json, sys, uuid
seed = json.load(sys.stdin)
for i in range(int(sys.argv[1])):
    seed["users"].append({"id": str(uuid.uuid4()), "userPrincipalName": f"bench{i:05d}@contoso.onmicrosoft.com",
                          "displayName": f"Bench User {i}", "accountEnabled": True, "groups": []})
json.dump(seed, sys.stdout)' "$TOTAL" >"$DIR/seed.json"

wait_line() { # file prefix
    for _ in $(seq 1 300); do
        local v; v=$(sed -n "s|^$2||p" "$1" | head -1)
        [ -n "$v" ] && { echo "$v"; return; }
        sleep 0.1
    done
    echo "no '$2' in $1" >&2; exit 1
}

"$BIN" sim --listen 127.0.0.1:0 --seed "$DIR/seed.json" --latency-ms "$LATENCY_MS" \
    --throttle "writes=$WRITES/1s" >"$DIR/sim.out" 2>"$DIR/sim.err" &
PIDS+=($!)
AUTHORITY=$(wait_line "$DIR/sim.out" "authority: ")
SIM_BASE=${AUTHORITY%/*}
TENANT=${AUTHORITY##*/}

TOKEN=$("$BIN" admin --data-dir "$DIR" --config "$DIR/none.toml" token create --name bench --role admin 2>/dev/null)
"$BIN" serve --data-dir "$DIR" --config "$DIR/none.toml" --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$DIR/serve.err" &
PIDS+=($!)
URL=$(wait_line "$DIR/serve.out" "Keyward server listening on ")
export KEYWARD_SERVER=$URL KEYWARD_TOKEN=$TOKEN

api() { curl -fsS -X "$1" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$URL$2" ${3:+-d "$3"}; }
api PUT /api/v1/connector "{\"enabled\":true,\"clientId\":\"6731de76-14a6-49ae-97bc-6eba6914391e\",\"tenantId\":\"$TENANT\",
  \"credential\":{\"kind\":\"secret\",\"clientSecret\":\"sim-secret-change-me\"},\"authorityUrl\":\"$SIM_BASE\",\"graphUrl\":\"$SIM_BASE\"}" >/dev/null
api POST /api/v1/people/sync '{}' >/dev/null

run() { # name first count concurrency
    local csv="$DIR/$1.csv"
    echo "upn" >"$csv"
    for i in $(seq "$2" $(($2 + $3 - 1))); do printf 'bench%05d@contoso.onmicrosoft.com\n' "$i" >>"$csv"; done
    local start end
    start=$(date +%s.%N)
    "$BIN" bulk provision "$csv" --key "soft:$DIR/keys-$1" --concurrency "$4" --write-quota "$WRITES" --report "$DIR/$1-report.csv" \
        >"$DIR/$1.out" 2>"$DIR/$1.err" || { tail -n 5 "$DIR/$1.out" "$DIR/$1.err" >&2; grep -m3 ",failed," "$DIR/$1-report.csv" >&2; exit 1; }
    end=$(date +%s.%N)
    local ok; ok=$(grep -c ',done,provisioned,' "$DIR/$1-report.csv" || true)
    [ "$ok" -eq "$3" ] || { echo "$1: only $ok of $3 provisioned" >&2; grep -m3 ",failed," "$DIR/$1-report.csv" >&2; exit 1; }
    awk -v n="$3" -v s="$start" -v e="$end" -v w="$WRITES" -v wpu="$WRITES_PER_USER" -v c="$4" 'BEGIN {
        t = e - s; r = n / t; ceiling = w / wpu
        printf "concurrency %d: %d soft-key users in %.1f s = %.2f users/s; quota-bound ceiling %.2f users/s (%d writes/s / %d write per user); ratio %.2f\n", c, n, t, r, ceiling, w, wpu, r / ceiling }'
}

echo "== bulk provision, sim --latency-ms $LATENCY_MS --throttle writes=$WRITES/1s"
run parallel 0 "$USERS" "$CONCURRENCY"
run serial "$USERS" "$SERIAL_USERS" 1
