#!/usr/bin/env bash
# userpass, token roles, AppRole CIDR bounds and audit devices through the real `bao` CLI,
# against whatever BAO_ADDR/BAO_TOKEN point at (`mutual server --dev` or OpenBao's dev
# server). Every step records its outcome (`ok`/`refused`) or a value in WORKDIR/facts; the
# caller compares both servers' facts. Usage: authx_story.sh WORKDIR.
set -uo pipefail
cd "$1"
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}"
: > facts
fact() { echo "$1=$2" >> facts; }
outcome() {
    local name=$1; shift
    if "$@" > "$name.out" 2>&1; then fact "$name" ok; else fact "$name" refused; fi
}
as() { local t=$1; shift; [ -n "$t" ] || return 1; BAO_TOKEN=$t "$@"; }
token_of() { jq -r .auth.client_token; }

bao secrets enable -path=pki_x pki >/dev/null || exit 1
bao write pki_x/root/generate/internal common_name="X Root" ttl=8760h key_type=ec >/dev/null || exit 1
bao write pki_x/roles/web allowed_domains=example.com allow_subdomains=true max_ttl=72h \
    key_type=ec >/dev/null || exit 1
cat > issuer.hcl <<'HCL'
path "pki_x/issue/*" {
  capabilities = ["create", "update"]
}
HCL
bao policy write issuer issuer.hcl >/dev/null || exit 1
bao policy write admin issuer.hcl >/dev/null || exit 1

# userpass, for people.
outcome up_enable bao auth enable userpass
fact up_listed "$(bao auth list -format=json | jq -r '."userpass/".type')"
outcome up_user bao write auth/userpass/users/alice password=s3cret-pw token_policies=issuer \
    token_ttl=10m token_max_ttl=20m
fact up_user_read "$(bao read -format=json auth/userpass/users/alice | jq -c '[.data.token_policies, .data.token_ttl, .data.token_max_ttl, (.data | has("password"))]')"
fact up_users "$(bao list -format=json auth/userpass/users | jq -c .)"
L=$(bao write -format=json auth/userpass/login/alice password=s3cret-pw)
fact up_login "$(jq -c '[.auth.lease_duration, .auth.renewable, .auth.policies, .auth.metadata.username]' <<<"$L")"
A=$(token_of <<<"$L")
outcome up_issue as "$A" bao write pki_x/issue/web common_name=alice.example.com
outcome up_login_cli bao login -method=userpass -no-store username=alice password=s3cret-pw
outcome up_bad_password bao write auth/userpass/login/alice password=wrong
fact up_bad_password_says "$(grep -c 'invalid username or password' up_bad_password.out)"
outcome up_unknown_user bao write auth/userpass/login/mallory password=s3cret-pw
outcome up_no_password bao write auth/userpass/users/bob token_policies=issuer
outcome up_change_password bao write auth/userpass/users/alice/password password=n3w-pw
outcome up_old_password bao write auth/userpass/login/alice password=s3cret-pw
outcome up_new_password bao write auth/userpass/login/alice password=n3w-pw
outcome up_delete bao delete auth/userpass/users/alice
outcome up_after_delete bao write auth/userpass/login/alice password=n3w-pw

# Token roles.
outcome role_write bao write auth/token/roles/signer allowed_policies=issuer orphan=true \
    token_explicit_max_ttl=2h
fact role_read "$(bao read -format=json auth/token/roles/signer | jq -c '[.data.allowed_policies, .data.orphan, .data.renewable, .data.token_explicit_max_ttl]')"
fact roles_listed "$(bao list -format=json auth/token/roles | jq -c .)"
R=$(bao token create -role=signer -format=json)
fact role_token "$(jq -c '[.auth.policies, .auth.orphan, .auth.renewable]' <<<"$R")"
RT=$(token_of <<<"$R")
fact role_token_lookup "$(bao token lookup -format=json "$RT" | jq -c '[.data.path, .data.creation_ttl]')"
outcome role_token_issue as "$RT" bao write pki_x/issue/web common_name=r.example.com
outcome role_escalates bao token create -role=signer -policy=admin
fact role_escalates_says "$(grep -c "subset of the role's allowed policies" role_escalates.out)"
outcome role_unknown bao token create -role=nope
# A child of a token with little asks a role for more: the role, not the parent, decides.
bao policy write role-user - >/dev/null <<'HCL'
path "auth/token/create/signer" {
  capabilities = ["update"]
}
HCL
P=$(bao token create -policy=role-user -format=json | token_of)
outcome role_from_weak_parent as "$P" bao token create -role=signer
bao write auth/token/roles/periodic allowed_policies=issuer token_period=1h >/dev/null
PT=$(bao token create -role=periodic -format=json)
fact role_periodic "$(jq -c '[.auth.lease_duration, .auth.renewable]' <<<"$PT")"
fact role_periodic_lookup "$(bao token lookup -format=json "$(token_of <<<"$PT")" | jq -c '[.data.period, .data.path]')"
bao write auth/token/roles/fixed allowed_policies=issuer renewable=false >/dev/null
FT=$(bao token create -role=fixed -ttl=10m -format=json)
fact role_fixed "$(jq -c '[.auth.lease_duration, .auth.renewable]' <<<"$FT")"
outcome role_fixed_renew as "$(token_of <<<"$FT")" bao token renew
outcome role_delete bao delete auth/token/roles/signer
outcome role_after_delete bao token create -role=signer

# cert roles through the API (logins need TLS: server_cert_login.rs and bao_agent.rs).
outcome cert_enable bao auth enable cert
bao read -field=certificate pki_x/cert/ca > ca.pem
outcome cert_role bao write auth/cert/certs/web certificate=@ca.pem \
    allowed_common_names=web.example.com token_policies=issuer token_ttl=10m
fact cert_role_read "$(bao read -format=json auth/cert/certs/web | jq -c '[.data.allowed_common_names, .data.token_policies, .data.token_ttl, (.data.certificate | contains("BEGIN CERTIFICATE"))]')"
fact cert_roles "$(bao list -format=json auth/cert/certs | jq -c .)"
outcome cert_role_junk bao write auth/cert/certs/junk certificate=nope
outcome cert_role_delete bao delete auth/cert/certs/web
fact cert_roles_after "$(bao list -format=json auth/cert/certs 2>/dev/null | jq -c . || echo none)"

# AppRole secret IDs bound to CIDRs: the login comes from 127.0.0.1.
bao auth enable approle >/dev/null 2>&1
bao write auth/approle/role/cidr token_policies=issuer >/dev/null || exit 1
ROLE_ID=$(bao read -field=role_id auth/approle/role/cidr/role-id)
FAR=$(bao write -f -field=secret_id auth/approle/role/cidr/secret-id cidr_list=10.0.0.0/8)
NEAR=$(bao write -f -field=secret_id auth/approle/role/cidr/secret-id cidr_list=127.0.0.1/32)
outcome cidr_far bao write auth/approle/login role_id="$ROLE_ID" secret_id="$FAR"
fact cidr_far_says "$(grep -c 'source address' cidr_far.out)"
outcome cidr_near bao write auth/approle/login role_id="$ROLE_ID" secret_id="$NEAR"
bao write auth/approle/role/bound token_policies=issuer secret_id_bound_cidrs=127.0.0.0/8 >/dev/null
bao write auth/approle/role/oldname token_policies=issuer bound_cidr_list=10.9.0.0/16 >/dev/null
ROLE4=$(bao read -field=role_id auth/approle/role/oldname/role-id)
S4=$(bao write -f -field=secret_id auth/approle/role/oldname/secret-id)
outcome cidr_old_name_far bao write auth/approle/login role_id="$ROLE4" secret_id="$S4"
ROLE2=$(bao read -field=role_id auth/approle/role/bound/role-id)
S2=$(bao write -f -field=secret_id auth/approle/role/bound/secret-id)
outcome cidr_role_near bao write auth/approle/login role_id="$ROLE2" secret_id="$S2"
bao write auth/approle/role/away token_policies=issuer token_bound_cidrs=10.1.0.0/16 >/dev/null
ROLE3=$(bao read -field=role_id auth/approle/role/away/role-id)
S3=$(bao write -f -field=secret_id auth/approle/role/away/secret-id)
# token_bound_cidrs bounds where the token is used: the login works, the token does not.
L3=$(bao write -format=json auth/approle/login role_id="$ROLE3" secret_id="$S3")
fact cidr_token_far_login "$(jq -c '.auth.policies' <<<"$L3")"
outcome cidr_token_far_use as "$(token_of <<<"$L3")" bao token lookup

# Audit devices.
outcome audit_enable bao audit enable file file_path="$PWD/audit.log"
fact audit_listed "$(bao audit list -format=json | jq -c '[."file/".type, ."file/".options.file_path == "'"$PWD"'/audit.log"]')"
outcome audit_twice bao audit enable file file_path="$PWD/audit2.log"
outcome audit_bad_type bao audit enable -path=nope nope-type
H=$(bao write -field=hash sys/audit-hash/file input=s.secret)
fact audit_hash_form "$(grep -c '^hmac-sha256:[0-9a-f]\{64\}$' <<<"$H")"
outcome audited_request bao read pki_x/roles/web
fact audit_has_lines "$([ -s audit.log ] && echo yes || echo no)"
outcome audit_disable bao audit disable file/
fact audit_after_disable "$(bao audit list -format=json 2>/dev/null | jq -c 'keys')"
echo done
