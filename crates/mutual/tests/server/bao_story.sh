#!/usr/bin/env bash
# The story of docs/architecture.md through the real `bao` CLI, against whatever
# BAO_ADDR/BAO_TOKEN point at (`mutual server --dev` or OpenBao's dev server), every
# certificate and CRL checked by openssl.
# Usage: bao_story.sh WORKDIR. Prints `ok: …` lines; exits non-zero at the first failure.
# Facts the caller compares between servers are written to WORKDIR/facts.
set -euo pipefail
cd "$1"
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
fact() { echo "$1=$2" >> facts; }
: > facts
count_certs() { grep -c 'BEGIN CERTIFICATE' "$1" || true; }

bao secrets enable -path=pki_local -max-lease-ttl=87600h pki >/dev/null
bao write pki_local/config/urls \
    issuing_certificates="$BAO_ADDR/v1/pki_local/ca" \
    crl_distribution_points="$BAO_ADDR/v1/pki_local/crl" >/dev/null
bao write -format=json pki_local/root/generate/internal \
    common_name="Local Root CA" ttl=87600h key_type=rsa key_bits=2048 > root.json
jq -r .data.certificate root.json > root.crt
openssl x509 -in root.crt -noout -subject | grep -q "Local Root CA" || fail "root subject"
openssl x509 -in root.crt -noout -text | grep -q "Public-Key: (2048 bit)" || fail "root is not RSA 2048"
openssl verify -CAfile root.crt root.crt >/dev/null || fail "root does not verify"
[ "$(jq -r .data.serial_number root.json)" != null ] || fail "root has no serial_number"
ok "root generated, RSA 2048, self-signed"

bao write pki_local/roles/service allowed_domains=example.com allow_bare_domains=true \
    allow_subdomains=true allow_localhost=true allow_ip_sans=true enforce_hostnames=true \
    max_ttl=720h key_type=ec key_bits=256 >/dev/null
bao read -format=json pki_local/roles/service > role.json
fact role_max_ttl "$(jq -r .data.max_ttl role.json)"
fact role_allowed_domains "$(jq -c .data.allowed_domains role.json)"
fact role_server_flag "$(jq -r .data.server_flag role.json)"
fact role_key_type "$(jq -r .data.key_type role.json)"
bao list -format=json pki_local/roles | jq -e 'index("service")' >/dev/null || fail "roles list"
ok "role service written, read, listed"

bao write -format=json pki_local/issue/service common_name=www.example.com \
    alt_names=localhost ip_sans=127.0.0.1 ttl=24h > www.json
jq -r .data.certificate www.json > www.crt
jq -r .data.private_key www.json > www.key
jq -r .data.issuing_ca www.json > www-issuing.crt
fact www_private_key_type "$(jq -r .data.private_key_type www.json)"
fact www_ca_chain_len "$(jq -r '.data.ca_chain | length' www.json)"
cmp -s <(openssl x509 -in www-issuing.crt) <(openssl x509 -in root.crt) || fail "issuing_ca is not the root"
openssl verify -CAfile root.crt -purpose sslserver www.crt >/dev/null || fail "www does not verify"
sans=$(openssl x509 -in www.crt -noout -ext subjectAltName)
for want in DNS:www.example.com DNS:localhost "IP Address:127.0.0.1"; do
    grep -q "$want" <<<"$sans" || fail "www lacks SAN $want: $sans"
done
cmp -s <(openssl pkey -in www.key -pubout) <(openssl x509 -in www.crt -noout -pubkey) || fail "key does not match"
openssl x509 -in www.crt -noout -text | grep -q "CA Issuers - URI:$BAO_ADDR/v1/pki_local/ca" || fail "no AIA"
openssl x509 -in www.crt -noout -text | grep -q "URI:$BAO_ADDR/v1/pki_local/crl" || fail "no CRL DP"
fact www_serial_format "$(jq -r .data.serial_number www.json | sed 's/[0-9a-f]/x/g' | cut -c1-8)"
ok "www.example.com issued with localhost and 127.0.0.1, verifies against the root"

for who in alice bob; do
    bao write -format=json pki_local/issue/service common_name=$who.example.com ttl=24h > $who.json
    jq -r .data.certificate $who.json > $who.crt
    openssl verify -CAfile root.crt -purpose sslclient $who.crt >/dev/null || fail "$who client cert"
done
ok "alice and bob client certificates from the root"

for who in alice bob; do
    Who="$(tr a-z A-Z <<<"${who:0:1}")${who:1}"
    bao secrets enable -path=pki_$who pki >/dev/null
    bao secrets tune -max-lease-ttl=43800h pki_$who >/dev/null
    bao write -format=json pki_$who/intermediate/generate/internal \
        common_name="$Who Intermediate Authority" key_type=ec key_bits=256 > $who-csr.json
    jq -r .data.csr $who-csr.json > $who.csr
    openssl req -in $who.csr -noout -verify 2>/dev/null || fail "$who CSR signature"
    bao write -format=json pki_local/root/sign-intermediate csr=@$who.csr \
        format=pem_bundle ttl=43800h > $who-signed.json
    jq -r .data.certificate $who-signed.json > $who-int.pem
    fact sign_intermediate_bundle_certs "$(count_certs $who-int.pem)"
    fact sign_intermediate_ca_chain_len "$(jq -r '.data.ca_chain | length' $who-signed.json)"
    openssl verify -CAfile root.crt $who-int.pem >/dev/null || fail "$who intermediate"
    openssl x509 -in $who-int.pem -noout -subject | grep -q "$Who Intermediate Authority" || fail "$who subject"
    bao write pki_$who/intermediate/set-signed certificate=@$who-int.pem >/dev/null
    curl -sf "$BAO_ADDR/v1/pki_$who/ca/pem" > $who-ca.crt
    cmp -s <(openssl x509 -in $who-ca.crt) <(openssl x509 -in $who-int.pem) || fail "$who ca/pem"
    bao write pki_$who/config/urls issuing_certificates="$BAO_ADDR/v1/pki_$who/ca" \
        crl_distribution_points="$BAO_ADDR/v1/pki_$who/crl" >/dev/null
    bao write pki_$who/roles/service allowed_domains=example.com allow_bare_domains=true \
        allow_subdomains=true allow_localhost=true allow_ip_sans=true max_ttl=720h \
        key_type=ec >/dev/null
    bao write -format=json pki_$who/issue/service common_name=$who.example.com ttl=24h > $who-leaf.json
    jq -r .data.certificate $who-leaf.json > $who-leaf.crt
    jq -r .data.issuing_ca $who-leaf.json > $who-leaf-issuing.crt
    jq -r '.data.ca_chain[]' $who-leaf.json > $who-leaf-chain.crt
    fact leaf_ca_chain_len "$(count_certs $who-leaf-chain.crt)"
    openssl x509 -in $who-leaf.crt -noout -issuer | grep -q "$Who Intermediate Authority" || fail "$who leaf issuer"
    openssl verify -CAfile root.crt -untrusted $who-leaf-issuing.crt -purpose sslclient $who-leaf.crt >/dev/null \
        || fail "$who leaf does not chain to the root through issuing_ca"
    curl -sf "$BAO_ADDR/v1/pki_$who/ca_chain" > $who-ca_chain.pem
    openssl verify -CAfile root.crt -untrusted $who-ca_chain.pem $who-leaf.crt >/dev/null || fail "$who ca_chain"
done
# Alice-only trust: the intermediate alone accepts Alice's leaf and rejects Bob's.
openssl verify -partial_chain -CAfile alice-leaf-issuing.crt alice-leaf.crt >/dev/null || fail "alice partial"
if openssl verify -partial_chain -CAfile alice-leaf-issuing.crt bob-leaf.crt >/dev/null 2>&1; then
    fail "bob accepted by alice's intermediate"
fi
ok "pki_alice and pki_bob intermediates signed by the root; leaves chain to the root"

serial=$(jq -r .data.serial_number alice.json)
bao write -format=json pki_local/revoke serial_number=$serial > revoke.json
[ "$(jq -r .data.revocation_time revoke.json)" -gt 0 ] || fail "revocation_time"
curl -sf "$BAO_ADDR/v1/pki_local/crl/pem" > crl.pem
openssl crl -in crl.pem -CAfile root.crt -noout 2>&1 | grep -q "verify OK" || fail "CRL signature"
hex=$(tr -d : <<<"$serial" | tr a-f A-F)
openssl crl -in crl.pem -noout -text | tr -d ' ' | grep -q "SerialNumber:$hex" || fail "serial $hex not in CRL"
curl -sf "$BAO_ADDR/v1/pki_local/crl" > crl.der
openssl crl -inform DER -in crl.der -CAfile root.crt -noout 2>&1 | grep -q "verify OK" || fail "DER CRL"
if openssl verify -crl_check -CRLfile crl.pem -CAfile root.crt alice.crt >/dev/null 2>&1; then
    fail "revoked alice still verifies with the CRL"
fi
openssl verify -crl_check -CRLfile crl.pem -CAfile root.crt bob.crt >/dev/null || fail "bob with CRL"
ok "alice revoked; the CRL is signed by the root, lists her, and openssl enforces it"

bao read -format=json pki_local/cert/$serial > cert.json
cmp -s <(jq -r .data.certificate cert.json | openssl x509) <(openssl x509 -in alice.crt) || fail "cert/:serial"
[ "$(jq -r .data.revocation_time cert.json)" -gt 0 ] || fail "cert/:serial revocation_time"
bao list -format=json pki_local/certs > certs.json
for f in www alice bob; do
    s=$(jq -r .data.serial_number $f.json)
    jq -e --arg s "$s" 'index($s)' certs.json >/dev/null || fail "$s ($f) not in certs LIST"
done
curl -sf "$BAO_ADDR/v1/pki_local/ca" | openssl x509 -inform DER -noout -subject | grep -q "Local Root CA" || fail "ca (DER)"
ok "cert/:serial, certs LIST, ca and ca/pem answer as expected"
