#!/usr/bin/env python3
"""Many issuers per mount through hvac's issuer methods (issue 14): generate roots, list, read,
update, import a CA bundle (config/ca), sign-self-issued, delete; every certificate checked
with openssl.

Usage: hvac_issuers.py ADDR TOKEN WORKDIR. Prints `ok: ...` lines; exits non-zero on failure
and writes facts for comparison between servers to WORKDIR/hvac-issuers-facts.
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


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], input=input, capture_output=True, text=True)


def write(name, text):
    with open(name, "w") as f:
        f.write(text)


client = hvac.Client(url=addr, token=token)
pki = client.secrets.pki
mp = "hv_iss"
client.sys.enable_secrets_engine("pki", path=mp, config={"max_lease_ttl": "87600h"})

first = pki.generate_root(type="internal", common_name="Hvac First Root",
                          extra_params={"ttl": "8760h", "key_type": "ec", "issuer_name": "first"},
                          mount_point=mp)["data"]
second = pki.generate_root(type="exported", common_name="Hvac Second Root",
                           extra_params={"ttl": "8760h", "key_type": "ec", "issuer_name": "second"},
                           mount_point=mp)["data"]
check(first["issuer_id"] != second["issuer_id"], "two issuers")
check("private_key" in second, "exported root carries its key")
listed = pki.list_issuers(mount_point=mp)["data"]
facts["issuers_after_two_roots"] = len(listed["keys"])
facts["default_is_first"] = listed["key_info"][first["issuer_id"]]["is_default"]
facts["second_is_default"] = listed["key_info"][second["issuer_id"]]["is_default"]
facts["key_info_fields"] = sorted(listed["key_info"][first["issuer_id"]].keys())
ok("generate_root twice: two issuers, the first stays default")

read = pki.read_issuer(issuer_ref="second", mount_point=mp)["data"]
facts["read_by_name_id_matches"] = read["issuer_id"] == second["issuer_id"]
facts["read_name"] = read["issuer_name"]
facts["read_chain_len"] = len(read["ca_chain"])
write("second.crt", read["certificate"])
check(openssl("verify", "-CAfile", "second.crt", "second.crt").returncode == 0, "second verifies")
ok("read_issuer by name")

pki.update_issuer(issuer_ref="second",
                  extra_params={"issuer_name": "second-renamed",
                                "issuing_certificates": [f"{addr}/v1/{mp}/issuer/second-renamed/der"]},
                  mount_point=mp)
upd = pki.read_issuer(issuer_ref=second["issuer_id"], mount_point=mp)["data"]
facts["renamed"] = upd["issuer_name"]
facts["own_aia"] = upd["issuing_certificates"] == [f"{addr}/v1/{mp}/issuer/second-renamed/der"]
ok("update_issuer: renamed, own AIA URL")

# Import: a CA made elsewhere (openssl), its key and certificate as one bundle (config/ca).
openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ext.key")
r = openssl("req", "-x509", "-new", "-key", "ext.key", "-subj", "/CN=Hvac Imported Root",
            "-days", "30", "-out", "ext.crt", "-addext", "basicConstraints=critical,CA:true",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
check(r.returncode == 0, f"openssl req: {r.stderr}")
bundle = open("ext.key").read() + open("ext.crt").read()
imp = pki.submit_ca_information(pem_bundle=bundle, mount_point=mp)
imp = imp.json()["data"] if hasattr(imp, "json") else imp["data"]
facts["imported_issuers"] = len(imp["imported_issuers"] or [])
facts["imported_keys"] = len(imp["imported_keys"] or [])
again = pki.submit_ca_information(pem_bundle=bundle, mount_point=mp)
again = again.json()["data"] if hasattr(again, "json") else again["data"]
facts["reimport_existing_issuers"] = len(again["existing_issuers"] or [])
facts["reimport_imported_issuers"] = len(again["imported_issuers"] or [])
facts["issuers_after_import"] = len(pki.list_issuers(mount_point=mp)["data"]["keys"])
ok("submit_ca_information imports a bundle once; again changes nothing")

# sign-self-issued: the imported root signed by the default (first) root.
signed = pki.sign_self_issued(certificate=open("ext.crt").read(), mount_point=mp)["data"]
write("cross.crt", signed["certificate"])
write("first.crt", first["certificate"])
check(openssl("verify", "-CAfile", "first.crt", "cross.crt").returncode == 0,
      "cross-signed imported root verifies under the first root")
ok("sign_self_issued cross-signs under the default issuer")

# Revoke: the renamed second root issues no more and says it is revoked.
rev = pki.revoke_issuer(issuer_ref="second-renamed", mount_point=mp)["data"]
facts["revoked"] = rev["revoked"]
facts["revoked_has_time"] = rev["revocation_time"] > 0
facts["revoked_usage"] = rev["usage"]
r = client.adapter.post(f"/v1/{mp}/issuer/second-renamed/issue/none", json={"common_name": "x"},
                        raise_exception=False)
facts["revoked_issues"] = r.status_code
ok("revoke_issuer")

# Delete: a non-default issuer goes.
ext_id = imp["imported_issuers"][0]
pki.delete_issuer(issuer_ref=ext_id, mount_point=mp)
facts["issuers_after_delete"] = len(pki.list_issuers(mount_point=mp)["data"]["keys"])
ok("delete_issuer of a non-default issuer")

with open("hvac-issuers-facts", "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
print(json.dumps(facts, sort_keys=True))
