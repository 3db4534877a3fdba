#!/usr/bin/env bash
# The certificate inventory at scale (issue 17): a `mutual server` store filled with N
# certificate rows (default 1,000,000; their SAN rows too) by SQL straight into SQLite, then
# the p99 of GET /v1/pki/inventory for a CN prefix search and for an expiry-window search,
# each Q times (default 300) over HTTP with curl, the server pinned to core 0. Target: both
# p99 <= 100 ms.
#
#   bash bench/inventory.sh                  # N=1000000, release build
#   N=100000 Q=100 PROFILE=dev bash bench/inventory.sh   # a quick check with the debug build
#   NOBUILD=1 ...                            # measure what target/ already holds
#
# The rows are synthetic (CN svc-<i>.example.com, SAN the same, notAfter spread over a year,
# one in 50 revoked) with a placeholder PEM: the search never parses certificates. Never run by
# the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-1000000}
Q=${Q:-300}
PROFILE=${PROFILE:-release}
for tool in sqlite3 curl python3 taskset; do
    command -v $tool >/dev/null || { echo "bench/inventory.sh needs $tool" >&2; exit 1; }
done
[ "${NOBUILD:-0}" = 1 ] || cargo build --profile "$PROFILE" -q -p mutual --bin mutual
OUT=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
M=$OUT/mutual

W=$(mktemp -d)
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=http://127.0.0.1:$PORT

start() {
    taskset -c 0 "$M" server --listen 127.0.0.1:$PORT --data "$W/data" > "$W/server.log" 2>&1 &
    SRV=$!
    for _ in $(seq 1 100); do curl -sf "$ADDR/v1/sys/health" >/dev/null && return; sleep 0.1; done
    echo "mutual server did not start" >&2; cat "$W/server.log" >&2; exit 1
}
stop() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""; }

TOKEN=$("$M" server init --data "$W/data" | sed -n 's/^Root Token: //p')
start
api() { curl -sf -H "X-Vault-Token: $TOKEN" "$@"; }
api -X POST -d '{"type":"pki"}' "$ADDR/v1/sys/mounts/pki" >/dev/null
api -X POST -d '{"common_name":"Inventory Root","ttl":"87600h"}' "$ADDR/v1/pki/root/generate/internal" >/dev/null
stop

echo "filling $N certificates into $W/data/mutual.db"
NOW=$(date +%s)
STEP=$(( N < 100000 ? N : 100000 ))
DONE=0
while [ $DONE -lt $N ]; do
    END=$(( DONE + STEP < N ? DONE + STEP : N ))
    sqlite3 "$W/data/mutual.db" <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE i(n) AS (SELECT $DONE UNION ALL SELECT n + 1 FROM i WHERE n + 1 < $END)
INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at,
                   revoked_at, reason, role, revoked_seq)
SELECT printf('%016x', n * 2654435761), 'pki',
       printf('svc-%07d.example.com', n), $NOW - 86400, $NOW + (n * 7919) % 31536000,
       'placeholder', $NOW - (n % 30) * 86400,
       CASE WHEN n % 50 = 0 THEN $NOW END, CASE WHEN n % 50 = 0 THEN 1 END,
       'service', NULL
FROM i;
WITH RECURSIVE i(n) AS (SELECT $DONE UNION ALL SELECT n + 1 FROM i WHERE n + 1 < $END)
INSERT INTO cert_names (kind, value, serial)
SELECT 'dns', printf('svc-%07d.example.com', n),
       printf('%016x', n * 2654435761) FROM i;
COMMIT;
SQL
    DONE=$END
    printf '  %d / %d\n' $DONE $N
done
sqlite3 "$W/data/mutual.db" "ANALYZE;" >/dev/null
start

p99() {  # name, query: Q requests, p50 and p99 of curl's time_total in ms
    local name=$1 query=$2
    for _ in $(seq 1 10); do api "$ADDR/v1/pki/inventory?$query" >/dev/null; done
    for i in $(seq 1 "$Q"); do
        q=${query//@I@/$(printf '%05d' $(( (i * 37) % 99999 )))}
        curl -s -o /dev/null -w '%{time_total}\n' -H "X-Vault-Token: $TOKEN" "$ADDR/v1/pki/inventory?$q"
    done | sort -n | awk -v name="$name" -v q="$Q" '
        { t[NR] = $1 * 1000 }
        END { printf "%-34s p50 %7.1f ms   p99 %7.1f ms   (%d requests)\n", name, t[int(NR*0.5)], t[int(NR*0.99)], q }'
}
echo "searching $N certificates (limit 50 per page)"
p99 "CN prefix (cn=svc-NNNNN)" "cn=svc-@I@"
p99 "expiry window (next 7 days)" "expiring=7d&revoked=false"
p99 "SAN (san=dns:svc-NNNNN00…)" "san=dns:svc-@I@00.example.com"
p99 "role, newest first" "role=service&sort=issued&order=desc"
