#!/usr/bin/env bash
# CRLs of a mount with two issuers at scale (issue 14): a durable `mutual server` store filled
# by SQL with N revoked certificates split between the two issuers (the real leaf PEM of each,
# so that attribution parses real certificates), then, server pinned to core 0:
#   - the one-time attribution of N revocations that name no signing key (a store from an older
#     release, or imported), which the server does in the background at start;
#   - `crl/rotate` (both issuers' complete CRLs built and signed), best and worst of 3;
#   - `crl/rotate-delta` (both issuers' delta CRLs) with 100 revocations since the base, best
#     and worst of 5;
# for N = 100,000 and 1,000,000 (targets at 1M: complete <= 3 s, delta <= 10 ms). Then EC
# `issue/:role` at c=8 on a one-issuer mount and on a two-issuer mount (role on the second
# issuer) in the same run, alternating, with the ratio (target: unchanged).
#
#   bash bench/crl.sh                 # release build; SIZES="100000 1000000", SECS=5
#   NOBUILD=1 SIZES=100000 ...        # measure what target/ holds, the smaller size only
#
# Never run by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${SIZES:-100000 1000000}
SECS=${SECS:-5}
PROFILE=${PROFILE:-release}
for tool in sqlite3 curl jq openssl python3 taskset; do
    command -v $tool >/dev/null || { echo "bench/crl.sh needs $tool" >&2; exit 1; }
done
[ "${NOBUILD:-0}" = 1 ] ||
    cargo build --profile "$PROFILE" -q -p mutual -p mutual-bench --bin mutual --bin ca-load
OUT=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
M=$OUT/mutual
LOAD=$OUT/ca-load

W=$(mktemp -d)
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=http://127.0.0.1:$PORT

start() { # args to mutual server
    taskset -c 0 "$M" server --listen 127.0.0.1:$PORT "$@" >"$W/server.log" 2>&1 &
    SRV=$!
    for _ in $(seq 1 600); do curl -sf "$ADDR/v1/sys/health" >/dev/null && return; sleep 0.1; done
    echo "mutual server did not start" >&2; cat "$W/server.log" >&2; exit 1
}
stop() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""; }
api() { # method path [json] -> body
    curl -sf -X "$1" -H "X-Vault-Token: $TOKEN" ${3:+-d "$3"} "$ADDR/v1/$2"
}
secs() { # path -> seconds of one authenticated GET
    curl -sf -o /dev/null -w '%{time_total}' -H "X-Vault-Token: $TOKEN" "$ADDR/v1/$1"
}
timed() { # path times -> sets best and worst (seconds) of that many GETs
    best=999; worst=0
    for _ in $(seq 1 "$2"); do
        t=$(secs "$1")
        best=$(awk -v a="$best" -v b="$t" 'BEGIN {print (b < a) ? b : a}')
        worst=$(awk -v a="$worst" -v b="$t" 'BEGIN {print (b > a) ? b : a}')
    done
}
two_issuers() { # mount: a default EC root, a second one, a role on each
    api POST "sys/mounts/$1" '{"type":"pki","config":{"max_lease_ttl":"87600h"}}' >/dev/null
    api POST "$1/root/generate/internal" '{"common_name":"First Root","key_type":"ec"}' >/dev/null
    api POST "$1/issuers/generate/root/internal" \
        '{"common_name":"Second Root","key_type":"ec","issuer_name":"second"}' >/dev/null
    api POST "$1/roles/r" '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec"}' >/dev/null
    api POST "$1/roles/r2" \
        '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","issuer_ref":"second"}' >/dev/null
    api POST "$1/config/crl" '{"auto_rebuild":true,"enable_delta":true,"delta_rebuild_interval":"1h"}' >/dev/null
}
entries() { # path -> serials in that CRL
    curl -sf "$ADDR/v1/$1" | openssl crl -noout -text | grep -c 'Serial Number' || true
}

echo "== CRLs of two issuers, durable store, server on core 0 =="
TOKEN=$("$M" server init --data "$W/data" | sed -n 's/^Root Token: //p')
offset=0
for N in $SIZES; do
    mnt=crl$N
    start --data "$W/data"
    two_issuers "$mnt"
    echo '{"common_name":"x.example.com","ttl":"24h"}' >"$W/issue.json"
    PEM1=$(api POST "$mnt/issue/r" "$(cat "$W/issue.json")" | jq -r .data.certificate)
    PEM2=$(api POST "$mnt/issue/r2" "$(cat "$W/issue.json")" | jq -r .data.certificate)
    stop
    # Revoked rows without a signing key, half under each issuer, their sequence numbers below
    # the store's counter (as a store of an older release holds them).
    printf '%-52s' "filling $N revoked rows by SQL ..."
    t0=$(date +%s)
    sqlite3 "$W/data/mutual.db" "
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
        INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at,
                           revoked_at, reason, revoked_seq)
        SELECT printf('7f%038x', i + $offset), '$mnt', 'x.example.com', strftime('%s','now'),
               strftime('%s','now') + 86400, CASE WHEN i % 2 = 0 THEN '$PEM1' ELSE '$PEM2' END,
               strftime('%s','now'), strftime('%s','now'), 0,
               (SELECT seq FROM revocation_seq) + i FROM n;
        UPDATE revocation_seq SET seq = (SELECT MAX(revoked_seq) FROM certs);"
    echo " $(($(date +%s) - t0)) s"
    offset=$((offset + N))
    start --data "$W/data"
    # The server attributes them in the background at start, and logs how long it took.
    for _ in $(seq 1 1200); do grep "attributed to the keys" "$W/server.log" | grep -q "mount=$mnt " && break; sleep 0.5; done
    took=$(grep "attributed to the keys" "$W/server.log" | grep "mount=$mnt " |
        sed -n 's/.* secs=\([0-9.]*\).*/\1/p' | head -1)
    printf '%-52s %8.3f s\n' "attribution of $N unattributed, once (at start)" "${took:-0}"
    timed "$mnt/crl/rotate" 3
    n1=$(entries "$mnt/issuer/default/crl/pem")
    n2=$(entries "$mnt/issuer/second/crl/pem")
    printf '%-52s %8.3f s best, %.3f s worst   (%d + %d entries%s)\n' \
        "complete CRLs of both issuers, $N revoked" "$best" "$worst" "$n1" "$n2" \
        "$([ "$N" = 1000000 ] && echo '; target <= 3 s')"
    # 100 fresh revocations, 50 under each issuer, after the bases.
    for role in r r2; do
        taskset -c 1 "$LOAD" --addr "$ADDR" --token "$TOKEN" --path "/v1/$mnt/issue/$role" \
            --body-file "$W/issue.json" -c 4 -n 50 --print-serials 2>/dev/null
    done | while read -r s; do echo "{\"serial_number\":\"$s\"}"; done >"$W/revokes.txt"
    taskset -c 1 "$LOAD" --addr "$ADDR" --token "$TOKEN" --path "/v1/$mnt/revoke" \
        --body-lines "$W/revokes.txt" -c 1 >/dev/null
    timed "$mnt/crl/rotate-delta" 5
    d1=$(entries "$mnt/issuer/default/crl/delta/pem")
    d2=$(entries "$mnt/issuer/second/crl/delta/pem")
    printf '%-52s %8.1f ms best, %.1f ms worst   (%d + %d entries%s)\n' \
        "delta CRLs of both issuers, $N revoked" "$(awk -v t="$best" 'BEGIN {print t * 1000}')" \
        "$(awk -v t="$worst" 'BEGIN {print t * 1000}')" "$d1" "$d2" \
        "$([ "$N" = 1000000 ] && echo '; target <= 10 ms')"
    stop
done

echo "== EC issue/:role at c=8, one issuer vs two (role on the second), --dev, alternating =="
start --dev --dev-root-token-id root
TOKEN=root
api POST sys/mounts/one '{"type":"pki","config":{"max_lease_ttl":"87600h"}}' >/dev/null
api POST one/root/generate/internal '{"common_name":"Only Root","key_type":"ec"}' >/dev/null
api POST one/roles/r '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec"}' >/dev/null
two_issuers two
rps() { # path
    taskset -c 1 "$LOAD" --addr "$ADDR" --token root --path "/v1/$1" --body-file "$W/issue.json" \
        -c 8 --secs "$SECS" | jq -r .rps
}
a=0; b=0
for _ in 1 2; do
    a=$(awk -v x="$a" -v y="$(rps one/issue/r)" 'BEGIN {print x + y / 2}')
    b=$(awk -v x="$b" -v y="$(rps two/issue/r2)" 'BEGIN {print x + y / 2}')
done
printf '%-52s %8.0f /s\n' "one issuer" "$a"
printf '%-52s %8.0f /s   (%.2fx of one issuer; target: unchanged)\n' "two issuers, the second's role" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')"
stop
