#!/usr/bin/env bash
# Many issuers per mount through the real `bao` CLI (issue 14): a root mount with a named
# issuer, `bao pki issue` of an intermediate into a second mount, `verify-sign`,
# `list-intermediates`, `reissue`, issuance under a chosen issuer, a leaf revoked into its own
# issuer's CRL; every certificate checked by openssl. Runs against whatever BAO_ADDR/BAO_TOKEN
# point at. Usage: issuers_story.sh WORKDIR. Facts compared between servers go to WORKDIR/facts.
set -euo pipefail
cd "$1"
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
fact() { echo "$1=$2" >> facts; }
: > facts

bao secrets enable -path=iss_root -max-lease-ttl=87600h pki >/dev/null
bao secrets enable -path=iss_int -max-lease-ttl=87600h pki >/dev/null
bao write -format=json iss_root/root/generate/internal common_name="Issuers Root" \
    ttl=8760h key_type=ec issuer_name=root-a > root.json
jq -r .data.certificate root.json > root.crt
fact root_issuer_name "$(jq -r .data.issuer_name root.json)"
bao list -format=json iss_root/issuers | jq -e 'length == 1' >/dev/null || fail "one issuer"
ok "root generated with issuer_name root-a"

bao pki issue -format=json -issuer_name=int-a /iss_root/issuer/root-a /iss_int/ \
    common_name="Issuers Int A" key_type=ec ttl=4380h > int.json
jq -r .data.certificate int.json > int-a.crt
openssl verify -CAfile root.crt int-a.crt >/dev/null || fail "int-a does not verify under the root"
fact int_a_name "$(jq -r .data.issuer_name int.json)"
fact int_a_chain_len "$(jq -r '.data.ca_chain | length' int.json)"
fact int_mount_issuers "$(bao list -format=json iss_int/issuers | jq length)"
fact int_default_is_int_a "$(bao read -format=json iss_int/issuer/default | jq -r '.data.issuer_name == "int-a"')"
ok "bao pki issue: int-a made in iss_int and signed by root-a"

bao pki verify-sign -format=json /iss_root/issuer/root-a /iss_int/issuer/int-a > verify.json
fact verify_sign "$(jq -c -S . verify.json)"
jq -e '.signature_match and .subject_match and .key_id_match and .path_match' verify.json >/dev/null \
    || fail "verify-sign: $(cat verify.json)"
ok "bao pki verify-sign: root-a signed int-a"

bao pki reissue -format=json -issuer_name=int-b /iss_root/issuer/root-a /iss_int/issuer/int-a \
    /iss_int/ ttl=2190h > reissue.json
jq -r .data.certificate reissue.json > int-b.crt
openssl verify -CAfile root.crt int-b.crt >/dev/null || fail "int-b does not verify"
subj_a=$(openssl x509 -in int-a.crt -noout -subject)
subj_b=$(openssl x509 -in int-b.crt -noout -subject)
[ "$subj_a" = "$subj_b" ] || fail "reissue kept the subject: $subj_a vs $subj_b"
fact int_mount_issuers_after_reissue "$(bao list -format=json iss_int/issuers | jq length)"
ok "bao pki reissue: int-b with int-a's subject"

bao pki list-intermediates -format=json -use_names=true /iss_root/issuer/root-a /iss_int > list.json
fact list_intermediates "$(jq -c -S . list.json)"
jq -e '."iss_int/issuer/int-a" and ."iss_int/issuer/int-b"' list.json >/dev/null \
    || fail "list-intermediates: $(cat list.json)"
ok "bao pki list-intermediates: int-a and int-b under root-a"

# Issuance under a chosen issuer: the role's issuer_ref and issuer/:ref/issue.
bao write iss_int/roles/web allowed_domains=example.com allow_subdomains=true max_ttl=72h \
    key_type=ec issuer_ref=int-b >/dev/null
bao write -format=json iss_int/issue/web common_name=a.example.com ttl=1h > leaf-b.json
jq -r .data.certificate leaf-b.json > leaf-b.crt
openssl verify -CAfile root.crt -untrusted int-b.crt leaf-b.crt >/dev/null || fail "leaf under int-b"
[ "$(openssl x509 -in leaf-b.crt -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' ')" = \
  "$(openssl x509 -in int-b.crt -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')" ] \
    || fail "leaf-b not signed by int-b's key"
bao write -format=json iss_int/issuer/int-a/issue/web common_name=b.example.com ttl=1h > leaf-a.json
jq -r .data.certificate leaf-a.json > leaf-a.crt
openssl verify -CAfile root.crt -untrusted int-a.crt leaf-a.crt >/dev/null || fail "leaf under int-a"
fact leaf_a_chain_len "$(jq -r '.data.ca_chain | length' leaf-a.json)"
ok "role issuer_ref=int-b and issuer/int-a/issue/web issue under the chosen issuers"

# bao pki issue of a leaf-less flow: sign-intermediate by a named issuer path.
serial_b=$(jq -r .data.serial_number leaf-b.json)
bao write iss_int/revoke serial_number="$serial_b" >/dev/null
bao read -format=json iss_int/issuer/int-b/crl | jq -r .data.crl > int-b.crl
openssl crl -in int-b.crl -noout -text > int-b.crl.txt
hex_b=$(echo "$serial_b" | tr -d ':' | tr a-f A-F)
grep -q "$hex_b" int-b.crl.txt || fail "revoked leaf not in int-b's CRL"
openssl crl -in int-b.crl -noout -CAfile int-b.crt 2>&1 | grep -q "verify OK" \
    || fail "int-b's CRL is not signed by int-b"
bao read -format=json iss_int/issuer/int-a/crl | jq -r .data.crl > int-a.crl
openssl crl -in int-a.crl -noout -text | grep -q "$hex_b" && fail "int-b's leaf in int-a's CRL"
fact revoked_in_own_crl yes
ok "a revoked leaf is in its issuer's CRL, not in the other's"

# Updates through PATCH (bao patch) and POST (bao write).
bao patch iss_int/issuer/int-a leaf_not_after_behavior=truncate >/dev/null
# A write (POST) replaces every field, as Vault's: the name is given again.
bao write iss_int/issuer/int-b issuer_name=int-b usage=read-only,issuing-certificates >/dev/null
fact int_a_lnab "$(bao read -format=json iss_int/issuer/int-a | jq -r .data.leaf_not_after_behavior)"
fact int_b_usage "$(bao read -format=json iss_int/issuer/int-b | jq -r .data.usage)"
fact int_a_name_kept "$(bao read -format=json iss_int/issuer/int-a | jq -r .data.issuer_name)"
ok "issuer updated by patch and write"

# Default switch and issuance through the old single-issuer path.
bao write iss_int/config/issuers default=int-b >/dev/null
fact default_now "$(bao read -format=json iss_int/issuer/default | jq -r .data.issuer_name)"
bao write -format=json iss_int/root/replace default=int-a > replace.json
fact replace_default_is_int_a "$(bao read -format=json iss_int/issuer/default | jq -r '.data.issuer_name')"
bao write -format=json iss_int/issue/web common_name=c.example.com ttl=1h > leaf-c.json
fact keys_on_int "$(bao list -format=json iss_int/keys | jq length)"
ok "config/issuers and root/replace move the default"

# Keys, rotation and cross-signing on the root mount.
bao write -format=json iss_root/root/rotate/internal common_name="Issuers Root 2" \
    issuer_name=root-b key_type=ec ttl=8760h > rotate.json
fact rotate_name "$(jq -r .data.issuer_name rotate.json)"
fact default_after_rotate "$(bao read -format=json iss_root/issuer/default | jq -r .data.issuer_name)"
bao write iss_root/root/replace default=root-b >/dev/null
fact default_after_replace "$(bao read -format=json iss_root/issuer/default | jq -r .data.issuer_name)"
bao write -format=json iss_root/keys/generate/internal key_name=spare key_type=ec > spare.json
spare_id=$(jq -r .data.key_id spare.json)
fact spare_key "$(jq -r '.data.key_name + " " + .data.key_type' spare.json)"
fact spare_read "$(bao read -format=json iss_root/key/spare | jq -r '.data.key_id == "'"$spare_id"'"')"
bao write -format=json iss_root/intermediate/cross-sign key_ref=spare common_name="Cross Int" > cross.json
fact cross_csr_key_is_spare "$(jq -r '.data.key_id == "'"$spare_id"'"' cross.json)"
jq -r .data.csr cross.json | openssl req -noout -verify 2>&1 | grep -q "verify OK" || fail "cross-sign CSR"
bao write -format=json iss_root/issuers/generate/root/existing key_ref=spare \
    common_name="Spare Root" issuer_name=spare-root ttl=8760h > spare-root.json
fact spare_root_key_is_spare "$(jq -r '.data.key_id == "'"$spare_id"'"' spare-root.json)"
if bao delete iss_root/key/spare >/dev/null 2>&1; then fact delete_used_key refused=no; else fact delete_used_key refused=yes; fi
fact keys_on_root "$(bao list -format=json iss_root/keys | jq length)"
fact issuers_on_root "$(bao list -format=json iss_root/issuers | jq length)"
# An issuer's certificate and CRL are public, as Vault's.
code=$(curl -s -o /dev/null -w '%{http_code}' "$BAO_ADDR/v1/iss_root/issuer/root-b/pem")
fact issuer_pem_without_token "$code"
ok "root/rotate, root/replace, keys/generate, cross-sign and generate/root/existing"

# A CA imported as a certificate, its key later: it signs once the key arrives.
openssl ecparam -name prime256v1 -genkey -noout -out late.key
openssl req -x509 -new -key late.key -subj "/CN=Late Root" -days 30 -out late.crt \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
bao secrets enable -path=iss_late pki >/dev/null
bao write iss_late/issuers/import/cert pem_bundle=@late.crt >/dev/null
bao write iss_late/roles/web allowed_domains=example.com allow_subdomains=true >/dev/null
if bao write iss_late/issue/web common_name=x.example.com >/dev/null 2>&1; then
    fact late_issue_without_key issued
else
    fact late_issue_without_key refused
fi
bao write iss_late/issuers/import/bundle pem_bundle=@late.key >/dev/null
bao write -format=json iss_late/issue/web common_name=y.example.com ttl=1h > late-leaf.json
jq -r .data.certificate late-leaf.json > late-leaf.crt
openssl verify -CAfile late.crt late-leaf.crt >/dev/null || fail "leaf under the late key"
fact late_issue_with_key issued
ok "a certificate imported first signs once its key is imported"

# The issuer's leaf_not_after_behavior applies: int-a truncates (patched above), int-b errs.
bao write iss_int/roles/long allowed_domains=example.com allow_subdomains=true max_ttl=87600h \
    key_type=ec >/dev/null
bao write -format=json iss_int/issuer/int-a/issue/long common_name=t.example.com ttl=8000h > long.json
jq -r .data.certificate long.json > long.crt
[ "$(openssl x509 -in long.crt -noout -enddate)" = "$(openssl x509 -in int-a.crt -noout -enddate)" ] \
    || fail "the leaf is truncated to int-a's notAfter"
fact truncated_to_issuer yes
if bao write iss_int/issuer/int-b/issue/long common_name=u.example.com ttl=8000h >/dev/null 2>&1; then
    fact int_b_outliving_leaf issued
else
    fact int_b_outliving_leaf refused
fi
ok "the issuer's leaf_not_after_behavior decides a leaf that would outlive it"

# bao pki health-check on a mount of several issuers (some without keys): every check runs.
bao pki health-check -format=json iss_int > health.json 2>health.err || true
jq -e 'type == "object"' health.json >/dev/null || fail "health-check: $(cat health.err)"
fact health_checks "$(jq -c 'keys' health.json)"
fact health_checks_skipped "$(jq -c '[.[][]? | select(.status_code == 5 or (.message | test("skipp|not supported|Vault version"; "i")))] | length' health.json)"
ok "bao pki health-check runs every check on a mount of several issuers"
