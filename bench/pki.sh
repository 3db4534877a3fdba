#!/usr/bin/env bash
# In-process issuance per core (key generation and certificate signing apart), EC P-256 and
# RSA 2048, beside `openssl speed` on the same core. Both pinned to core 0.
# Usage: bench/pki.sh   (BENCH_MS=3000 per figure by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_MS=${BENCH_MS:-3000}
secs=$(( (BENCH_MS + 999) / 1000 ))
cargo bench -p mutual-pki --bench issuance --no-run -q 2>/dev/null
ours=$(taskset -c 0 cargo bench -p mutual-pki --bench issuance -q 2>/dev/null | grep -E '^(keygen|sign)_')
speed=$(taskset -c 0 openssl speed -seconds "$secs" ecdsap256 rsa2048 2>/dev/null)
# openssl speed: "rsa 2048 bits  0.000600s 0.000018s   1666.0  55000.0" (sign/s is column 6)
o_rsa=$(echo "$speed" | awk '/^rsa 2048 bits/ {print $6; exit}')
o_ec=$(echo "$speed" | awk '/256 bits ecdsa \(nistp256\)/ {print $7; exit}')
get() { echo "$ours" | awk -v k="$1" '$1 == k {print $2}'; }
printf '%-34s %12s %14s %8s\n' "figure (per core)" "mutual /s" "openssl sign/s" "ratio"
for row in "sign_cert_ec_p256:$o_ec" "sign_cert_rsa_2048:$o_rsa"; do
    k=${row%%:*}; o=${row##*:}; m=$(get "$k")
    printf '%-34s %12.0f %14.0f %7.2fx\n' "$k (certificate)" "$m" "$o" "$(awk -v o="$o" -v m="$m" 'BEGIN {print o / m}')"
done
for k in keygen_ec_p256 keygen_rsa_2048; do
    printf '%-34s %12.0f %14s %8s\n' "$k" "$(get $k)" "-" "-"
done
echo "ratio = openssl raw signatures per second / mutual certificates signed per second (target: <= 1.5x)"
