#!/usr/bin/env python3
"""The CA story through hvac (the Python Vault client), as an application or cert-manager would
drive it: native JSON types and Go durations, sign of an openssl CSR with cert-manager's fields,
revoke, CRL, list. Every certificate is checked with openssl.

Usage: hvac_story.py ADDR TOKEN WORKDIR. Prints `ok: ...` lines; exits non-zero on failure and
writes facts for comparison between servers to WORKDIR/hvac-facts.
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
check(client.is_authenticated(), "root token is authenticated")
health = client.sys.read_health_status(method="GET")
check(health["initialized"] and not health["sealed"], f"health: {health}")
check(not hvac.Client(url=addr, token="wrong").is_authenticated(), "a wrong token is refused")
ok("authenticated; sys/health answers as Vault does")

mp = "pki_hvac"
client.sys.enable_secrets_engine("pki", path=mp, config={"max_lease_ttl": "87600h"})
check(f"{mp}/" in client.sys.list_mounted_secrets_engines()["data"], "mount listed")
client.sys.tune_mount_configuration(mp, max_lease_ttl="43800h")
tune = client.sys.read_mount_configuration(mp)
facts["tuned_max_lease_ttl"] = tune["data"]["max_lease_ttl"]
ok("mount enabled, listed and tuned")

root = client.secrets.pki.generate_root(
    type="internal", common_name="Hvac Root CA",
    extra_params={"ttl": "43800h", "key_type": "ec", "key_bits": 256}, mount_point=mp)
write("hvac-root.crt", root["data"]["certificate"])
check(openssl("verify", "-CAfile", "hvac-root.crt", "hvac-root.crt").returncode == 0, "root verifies")
client.secrets.pki.set_urls(
    {"issuing_certificates": [f"{addr}/v1/{mp}/ca"], "crl_distribution_points": [f"{addr}/v1/{mp}/crl"]},
    mount_point=mp)
ok("EC root generated; urls set")

# cert-manager's way: booleans as strings, Go durations, lists as JSON arrays.
client.secrets.pki.create_or_update_role("svc", extra_params={
    "allowed_domains": ["example.com"], "allow_subdomains": "true", "allow_bare_domains": True,
    "max_ttl": "2160h0m0s", "ttl": "1h0m0s", "key_type": "ec", "key_bits": "256",
    "allowed_uri_sans": ["spiffe://example.org/*"],
}, mount_point=mp)
role = client.secrets.pki.read_role("svc", mount_point=mp)["data"]
facts["role"] = {k: role[k] for k in ("max_ttl", "ttl", "allow_subdomains", "key_bits", "server_flag",
                                      "client_flag", "use_csr_common_name", "use_csr_sans", "require_cn")}
check(role["max_ttl"] == 2160 * 3600, f"max_ttl {role['max_ttl']}")
check("svc" in client.secrets.pki.list_roles(mount_point=mp)["data"]["keys"], "roles list")
ok("role written with strings and Go durations; read back with Vault's defaults")

leaf = client.secrets.pki.generate_certificate(
    "svc", common_name="api.example.com",
    extra_params={"alt_names": "api2.example.com", "ttl": "2h"}, mount_point=mp)["data"]
write("hvac-api.crt", leaf["certificate"])
check(openssl("verify", "-CAfile", "hvac-root.crt", "hvac-api.crt").returncode == 0, "leaf verifies")
facts["issue_fields"] = sorted(k for k in ("certificate", "issuing_ca", "ca_chain", "private_key",
                                           "private_key_type", "serial_number", "expiration") if k in leaf)
ok("issue/svc answers certificate, issuing_ca, ca_chain, private_key, serial_number, expiration")

# cert-manager's sign request: csr, common_name, alt_names, ip_sans, uri_sans, ttl,
# exclude_cn_from_sans.
subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "cm.key", "-out", "cm.csr", "-subj", "/CN=cm.example.com",
                "-addext", "subjectAltName=DNS:cm.example.com,DNS:www.cm.example.com,"
                "URI:spiffe://example.org/ns/default/sa/cm"],
               check=True, capture_output=True)
csr = open("cm.csr").read()
signed = client.secrets.pki.sign_certificate(
    "svc", csr=csr, common_name="cm.example.com", mount_point=mp, extra_params={
        "alt_names": "cm.example.com,www.cm.example.com", "ip_sans": "", "uri_sans":
        "spiffe://example.org/ns/default/sa/cm", "ttl": "2160h0m0s", "exclude_cn_from_sans": "false",
    })["data"]
write("cm.crt", signed["certificate"])
check(openssl("verify", "-CAfile", "hvac-root.crt", "cm.crt").returncode == 0, "signed verifies")
text = openssl("x509", "-in", "cm.crt", "-noout", "-text").stdout
check("URI:spiffe://example.org/ns/default/sa/cm" in text, "URI SAN")
check("DNS:www.cm.example.com" in text, "DNS SAN")
pub_cert = openssl("x509", "-in", "cm.crt", "-noout", "-pubkey").stdout
pub_key = openssl("pkey", "-in", "cm.key", "-pubout").stdout
check(pub_cert == pub_key, "signed certificate carries the CSR's key")
check({"certificate", "issuing_ca", "ca_chain"} <= set(signed), "sign answers cert-manager's fields")
ok("sign/svc of an openssl CSR with cert-manager's fields")

serial = leaf["serial_number"]
rev = client.secrets.pki.revoke_certificate(serial, mount_point=mp)["data"]
check(rev["revocation_time"] > 0, "revocation_time")
crl_pem = client.secrets.pki.read_crl(mount_point=mp)
write("hvac-crl.pem", crl_pem)
crl_check = openssl("crl", "-in", "hvac-crl.pem", "-CAfile", "hvac-root.crt", "-noout")
check("verify OK" in crl_check.stderr + crl_check.stdout, "CRL signature")
crl_text = openssl("crl", "-in", "hvac-crl.pem", "-noout", "-text").stdout.replace(" ", "")
check("SerialNumber:" + serial.replace(":", "").upper() in crl_text, "serial in CRL")
cert = client.secrets.pki.read_certificate(serial, mount_point=mp)["data"]
check(cert["revocation_time"] > 0, "cert/:serial revoked")
listed = client.secrets.pki.list_certificates(mount_point=mp)["data"]["keys"]
check(serial in listed and signed["serial_number"] in listed, "certs LIST")
ok("revoke, CRL (verified by openssl), cert/:serial and certs LIST")

client.sys.disable_secrets_engine(mp)
check(f"{mp}/" not in client.sys.list_mounted_secrets_engines()["data"], "mount disabled")
ok("mount disabled")

write("hvac-facts", json.dumps(facts, sort_keys=True))
