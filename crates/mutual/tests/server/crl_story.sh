#!/usr/bin/env bash
# CRL and tidy configuration through the real `bao` CLI, against whatever BAO_ADDR/BAO_TOKEN
# point at (`mutual server --dev` or OpenBao's dev server): the keys and JSON types of
# config/crl, config/auto-tidy and tidy-status, Vault's rules between the config/crl fields, and
# a tidy that removes an expired certificate. Every step records a fact in WORKDIR/facts; the
# caller compares both servers' facts. Usage: crl_story.sh WORKDIR.
set -uo pipefail
cd "$1"
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}"
: > facts
fact() { echo "$1=$2" >> facts; }
outcome() {
    local name=$1; shift
    if "$@" > "$name.out" 2>&1; then fact "$name" ok; else fact "$name" refused; fi
}
# The keys of .data with their JSON types. Vault's Enterprise fields (cross_cluster_revocation,
# unified_crl*) that mutual also answers are not in OpenBao, so they are left out here.
# true when serial $1 is listed under pki_crl/certs (an empty list is a 404 to the CLI).
listed() {
    local out
    out=$(bao list -format=json pki_crl/certs 2>/dev/null)
    [ -n "$out" ] || out='[]'
    jq --arg s "$1" 'index($s) != null' <<< "$out"
}
shape() {
    jq -c '.data | del(.cross_cluster_revocation, .unified_crl, .unified_crl_on_existing_paths)
        | to_entries | map("\(.key):\(.value | type)") | sort | join(",")'
}

bao secrets enable -path=pki_crl pki >/dev/null || exit 1
bao write pki_crl/root/generate/internal common_name="CRL Root" ttl=8760h key_type=ec >/dev/null || exit 1
bao write pki_crl/roles/r allowed_domains=example.com allow_subdomains=true key_type=ec >/dev/null || exit 1

fact crl_shape "$(bao read -format=json pki_crl/config/crl | shape)"
fact crl_defaults "$(bao read -format=json pki_crl/config/crl | jq -c '.data | {expiry, disable, auto_rebuild, auto_rebuild_grace_period, enable_delta, delta_rebuild_interval, ocsp_expiry}')"
outcome crl_delta_without_rebuild bao write pki_crl/config/crl enable_delta=true
fact crl_delta_without_rebuild_says "$(grep -c 'auto rebuilding is disabled' crl_delta_without_rebuild.out)"
outcome crl_grace_not_shorter bao write pki_crl/config/crl auto_rebuild=true expiry=1h
outcome crl_bad_expiry bao write pki_crl/config/crl expiry=bogus
bao write -format=json pki_crl/config/crl expiry=48h auto_rebuild=true enable_delta=true \
    delta_rebuild_interval=1s > crl_write.out 2>&1
fact crl_write_shape "$(shape < crl_write.out)"
fact crl_after "$(bao read -format=json pki_crl/config/crl | jq -c '.data | {expiry, auto_rebuild, enable_delta, delta_rebuild_interval, disable}')"
fact crl_still_served "$(curl -s -o /dev/null -w '%{http_code}' "$BAO_ADDR/v1/pki_crl/crl")"
fact delta_served "$(curl -s -o /dev/null -w '%{http_code}' "$BAO_ADDR/v1/pki_crl/crl/delta")"
fact delta_json "$(curl -s "$BAO_ADDR/v1/pki_crl/cert/delta-crl" | jq -r '.data.certificate | startswith("-----BEGIN X509 CRL-----")')"

fact autotidy_shape "$(bao read -format=json pki_crl/config/auto-tidy | shape)"
fact autotidy_defaults "$(bao read -format=json pki_crl/config/auto-tidy | jq -c '.data | {enabled, interval_duration, safety_buffer, tidy_cert_store, pause_duration}')"
# enabled=false: an auto-tidy run must not race the manual one below on either server.
bao write -format=json pki_crl/config/auto-tidy enabled=false interval_duration=2h \
    tidy_cert_store=true safety_buffer=1s > autotidy_write.out 2>&1
fact autotidy_write_shape "$(shape < autotidy_write.out)"
fact autotidy_written "$(bao read -format=json pki_crl/config/auto-tidy | jq -c '.data | {enabled, interval_duration, safety_buffer, revoked_safety_buffer, tidy_cert_store}')"

fact tidy_status_fresh "$(bao read -format=json pki_crl/tidy-status | shape)"
fact tidy_state_fresh "$(bao read -field=state pki_crl/tidy-status)"
S=$(bao write -format=json pki_crl/issue/r common_name=short.example.com ttl=2s | jq -r .data.serial_number)
fact short_listed "$(listed "$S")"
sleep 4
outcome tidy bao write pki_crl/tidy tidy_cert_store=true safety_buffer=1s
for _ in $(seq 100); do
    [ "$(bao read -field=state pki_crl/tidy-status)" = Finished ] && break
    sleep 0.1
done
fact tidy_status_after "$(bao read -format=json pki_crl/tidy-status | shape)"
fact tidy_counts "$(bao read -format=json pki_crl/tidy-status | jq -c '.data | {state, cert_store_deleted_count, revoked_cert_deleted_count, safety_buffer, tidy_cert_store, tidy_revoked_certs, error}')"
fact short_still_listed "$(listed "$S")"
