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
as() { local t=$1; shift; [ -n "$t" ] || return 1; BAO_TOKEN=$t "$@"; }
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
fact old_policy_list "$(bao read -format=json sys/policy | jq -c '[(.data.policies | index("issuer") != null), (.data.keys | index("root") != null)]')"
fact old_policy_rules "$(bao read -field=rules sys/policy/issuer | cmp -s - issuer.hcl && echo same || echo differs)"
fact default_policy_self "$(bao policy read default | grep -c 'auth/token/lookup-self')"
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

# AppRole, as cert-manager and Agent log in.
outcome auth_enable bao auth enable approle
fact auth_listed "$(bao auth list -format=json | jq -r '."approle/".type')"
outcome role_write bao write auth/approle/role/web token_policies=issuer token_ttl=20m \
    token_max_ttl=30m secret_id_ttl=10m secret_id_num_uses=2
fact role_read "$(bao read -format=json auth/approle/role/web | jq -c '[.data.token_policies, .data.token_ttl, .data.token_max_ttl, .data.secret_id_num_uses, .data.secret_id_ttl, .data.bind_secret_id]')"
ROLE_ID=$(bao read -field=role_id auth/approle/role/web/role-id)
SID=$(bao write -f -format=json auth/approle/role/web/secret-id)
fact secret_id_reply "$(jq -c '[.data.secret_id_num_uses, .data.secret_id_ttl, (.data.secret_id_accessor | length > 0)]' <<<"$SID")"
SID=$(jq -r .data.secret_id <<<"$SID")
L=$(bao write -format=json auth/approle/login role_id="$ROLE_ID" secret_id="$SID")
fact login_auth "$(jq -c '[.auth.lease_duration, .auth.renewable, .auth.policies, .auth.metadata.role_name]' <<<"$L")"
A=$(token_of <<<"$L")
outcome approle_issue as "$A" bao write pki_auth/issue/web common_name=f.example.com
outcome approle_renew as "$A" bao token renew -format=json
fact approle_renew_lease "$(jq -r .auth.lease_duration approle_renew.out 2>/dev/null)"
outcome login_2 bao write auth/approle/login role_id="$ROLE_ID" secret_id="$SID"
outcome login_3_used_up bao write auth/approle/login role_id="$ROLE_ID" secret_id="$SID"
outcome login_bad_secret bao write auth/approle/login role_id="$ROLE_ID" secret_id=nope
outcome login_no_secret bao write auth/approle/login role_id="$ROLE_ID"
outcome login_bad_role bao write auth/approle/login role_id=nope secret_id="$SID"
outcome secret_id_too_many_uses bao write -f auth/approle/role/web/secret-id num_uses=5
S2=$(bao write -f -field=secret_id auth/approle/role/web/secret-id ttl=2s)
sleep 3
outcome login_expired_secret bao write auth/approle/login role_id="$ROLE_ID" secret_id="$S2"
outcome role_unbound bao write auth/approle/role/open bind_secret_id=false token_policies=issuer

outcome policy_delete bao policy delete issuer
fact policy_listed_after_delete "$(bao policy list | grep -cx issuer)"
outcome delete_default bao policy delete default
outcome write_root bao policy write root issuer.hcl
echo "done"
