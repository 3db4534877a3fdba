#!/usr/bin/env bash
# ACL policies and tokens through the real `bao` CLI, against whatever BAO_ADDR/BAO_TOKEN
# point at (`mutual server --dev` or OpenBao's dev server). Every step records its outcome
# (`ok` or `refused`) or a value in WORKDIR/facts; the caller compares both servers' facts.
# Usage: auth_story.sh WORKDIR.
set -uo pipefail
cd "$1"
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}"
: > facts
fact() { echo "$1=$2" >> facts; }
# outcome NAME CMD...: runs CMD, records ok/refused, keeps its output in NAME.out.
outcome() {
    local name=$1; shift
    if "$@" > "$name.out" 2>&1; then fact "$name" ok; else fact "$name" refused; fi
}
as() { local t=$1; shift; BAO_TOKEN=$t "$@"; }
token_of() { jq -r .auth.client_token; }

bao secrets enable -path=pki_auth pki >/dev/null || exit 1
bao write pki_auth/root/generate/internal common_name="Auth Root" ttl=8760h key_type=ec >/dev/null || exit 1
bao write pki_auth/roles/web allowed_domains=example.com allow_subdomains=true max_ttl=72h \
    key_type=ec >/dev/null || exit 1

cat > issuer.hcl <<'EOF'
# Issue under any role of pki_auth, and make child tokens.
path "pki_auth/issue/*" {
  capabilities = ["create", "update"]
}
path "pki_auth/roles" {
  capabilities = ["list"]
}
path "auth/token/create" {
  capabilities = ["create", "update"]
}
EOF
outcome policy_write bao policy write issuer issuer.hcl
outcome policy_read bao policy read issuer
fact policy_read_same "$(cmp -s <(bao policy read issuer) issuer.hcl && echo yes || echo no)"
fact policy_listed "$(bao policy list | grep -cx -e issuer -e default -e root)"
printf 'path "pki_auth/*" {\n  capabilities = ["reed"]\n}\n' > bad.hcl
outcome policy_bad bao policy write bad bad.hcl
fact policy_bad_names_capability "$(grep -c 'reed' policy_bad.out)"

T=$(bao token create -policy=issuer -ttl=1h -format=json | token_of)
fact token_policies "$(bao token lookup -format=json "$T" | jq -c .data.policies)"
fact token_lease "$(bao token lookup -format=json "$T" | jq -r '.data.creation_ttl')"
outcome issue_with_policy as "$T" bao write pki_auth/issue/web common_name=a.example.com
outcome issue_outside_role_domain as "$T" bao write pki_auth/issue/web common_name=evil.com
outcome list_roles as "$T" bao list pki_auth/roles
outcome read_role_denied as "$T" bao read pki_auth/roles/web
outcome write_role_denied as "$T" bao write pki_auth/roles/other allowed_domains=example.com
outcome mounts_denied as "$T" bao secrets list
outcome policy_write_denied as "$T" bao policy write evil issuer.hcl
outcome lookup_self as "$T" bao token lookup
outcome renew_self as "$T" bao token renew -format=json
fact renew_lease "$(jq -r .auth.lease_duration renew_self.out 2>/dev/null)"

C=$(as "$T" bao token create -format=json | token_of)
fact child_policies "$(as "$C" bao token lookup -format=json | jq -c .data.policies)"
fact child_orphan "$(as "$C" bao token lookup -format=json | jq -c .data.orphan)"
outcome child_issue as "$C" bao write pki_auth/issue/web common_name=b.example.com
outcome child_escalates as "$T" bao token create -policy=issuer -policy=admin
fact child_escalates_says_subset "$(grep -c 'subset' child_escalates.out)"
outcome child_orphan_denied as "$T" bao token create -orphan
outcome child_periodic_denied as "$T" bao token create -period=1h

outcome revoke_parent bao token revoke "$T"
outcome child_after_parent_revoked as "$C" bao token lookup
outcome parent_after_revoke as "$T" bao token lookup

U=$(bao token create -policy=issuer -use-limit=2 -format=json | token_of)
outcome uses_1 as "$U" bao write pki_auth/issue/web common_name=c.example.com
outcome uses_2 as "$U" bao write pki_auth/issue/web common_name=d.example.com
outcome uses_3 as "$U" bao write pki_auth/issue/web common_name=e.example.com

E=$(bao token create -policy=issuer -ttl=1h -explicit-max-ttl=3s -format=json)
fact explicit_max_lease "$(jq -r .auth.lease_duration <<<"$E")"
E=$(token_of <<<"$E")
outcome before_max_ttl as "$E" bao token lookup
sleep 4
outcome past_max_ttl as "$E" bao token lookup
outcome renew_past_max_ttl as "$E" bao token renew

outcome policy_delete bao policy delete issuer
fact policy_listed_after_delete "$(bao policy list | grep -cx issuer)"
outcome delete_default bao policy delete default
outcome write_root bao policy write root issuer.hcl
echo "done"
