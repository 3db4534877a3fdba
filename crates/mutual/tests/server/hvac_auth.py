#!/usr/bin/env python3
"""Auth as cert-manager and Terraform drive it, through hvac (the Python Vault client):
cert-manager's Vault issuer logs in with AppRole and signs a CSR at sign/:role; Terraform's
provider creates a child token without policies and works with it (it must inherit its
parent's). Every certificate is checked with openssl.

Usage: hvac_auth.py ADDR TOKEN WORKDIR. Prints `ok: ...` lines; exits non-zero on failure and
writes facts for comparison between servers to WORKDIR/hvac-auth-facts.
"""
import json
import os
import subprocess
import sys

import hvac

addr, token, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.chdir(work)
facts = {}


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def ok(what):
    print(f"ok: {what}", flush=True)


def refused(fn):
    try:
        fn()
    except hvac.exceptions.VaultError as e:
        return type(e).__name__
    return None


admin = hvac.Client(url=addr, token=token)
mp = "pki_cm"
admin.sys.enable_secrets_engine("pki", path=mp, config={"max_lease_ttl": "8760h"})
root = admin.secrets.pki.generate_root(
    type="internal", common_name="CM Root", extra_params={"ttl": "8760h", "key_type": "ec"},
    mount_point=mp)["data"]["certificate"]
open("cm-root.crt", "w").write(root)
admin.secrets.pki.create_or_update_role("svc", extra_params={
    "allowed_domains": ["example.com"], "allow_subdomains": True, "max_ttl": "72h",
    "key_type": "ec"}, mount_point=mp)
admin.sys.create_or_update_policy("cert-manager", f"""
path "{mp}/sign/svc" {{
  capabilities = ["create", "update"]
}}
path "auth/token/create" {{
  capabilities = ["create", "update"]
}}
""")
admin.sys.enable_auth_method("approle")
admin.auth.approle.create_or_update_approle(
    "cert-manager", token_policies=["cert-manager"], token_ttl="20m", token_max_ttl="1h")
role_id = admin.auth.approle.read_role_id("cert-manager")["data"]["role_id"]
secret = admin.auth.approle.generate_secret_id("cert-manager")["data"]
check(len(secret["secret_id_accessor"]) > 0, "secret_id_accessor")
ok("pki mount, role, policy and AppRole role set up")

# cert-manager: login with role_id/secret_id, then sign/:role with the token it got.
cm = hvac.Client(url=addr)
login = cm.auth.approle.login(role_id=role_id, secret_id=secret["secret_id"])
auth = login["auth"]
facts["login"] = [auth["lease_duration"], auth["renewable"], sorted(auth["policies"]),
                  auth["metadata"]["role_name"]]
check(cm.is_authenticated(), "the AppRole token is in use")
subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "cm.key", "-out", "cm.csr", "-subj", "/CN=cm.example.com"],
               check=True, capture_output=True)
signed = cm.secrets.pki.sign_certificate(
    "svc", csr=open("cm.csr").read(), common_name="cm.example.com", mount_point=mp,
    extra_params={"ttl": "1h"})["data"]
open("cm.crt", "w").write(signed["certificate"])
v = subprocess.run(["openssl", "verify", "-CAfile", "cm-root.crt", "cm.crt"], capture_output=True)
check(v.returncode == 0, "the signed certificate verifies")
facts["sign_fields"] = sorted(k for k in ("certificate", "issuing_ca", "ca_chain", "serial_number")
                              if k in signed)
facts["issue_denied"] = refused(lambda: cm.secrets.pki.generate_certificate(
    "svc", common_name="x.example.com", mount_point=mp))
ok("AppRole login, then sign/svc of an openssl CSR (as cert-manager's Vault issuer)")

# Terraform: a child token without policies inherits its parent's and can sign.
child = cm.auth.token.create(ttl="10m")["auth"]
facts["child"] = [sorted(child["policies"]), child["orphan"]]
tf = hvac.Client(url=addr, token=child["client_token"])
signed2 = tf.secrets.pki.sign_certificate(
    "svc", csr=open("cm.csr").read(), common_name="cm.example.com", mount_point=mp)["data"]
check(signed2["serial_number"] != signed["serial_number"], "a new serial")
facts["child_escalates"] = refused(lambda: cm.auth.token.create(policies=["root"]))
facts["child_more"] = refused(lambda: cm.auth.token.create(policies=["admin-x"]))
ok("a child token created without policies signs under its parent's")

# Renew, then revoke the parent: the child goes with it.
renewed = cm.auth.token.renew_self()["auth"]
facts["renewed"] = [renewed["renewable"], renewed["lease_duration"] > 0]
admin.auth.token.revoke(auth["client_token"])
facts["child_after_revoke"] = refused(lambda: tf.secrets.pki.sign_certificate(
    "svc", csr=open("cm.csr").read(), common_name="cm.example.com", mount_point=mp))
facts["used_secret_id_again"] = None if cm.auth.approle.login(
    role_id=role_id, secret_id=secret["secret_id"]) else "no"
ok("renew-self; a revoked parent takes its child with it")

open("hvac-auth-facts", "w").write(json.dumps(facts, sort_keys=True))
