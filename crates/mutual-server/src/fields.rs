//! Which paths of a PKI mount mutual serves and which parameters each write takes, as OpenBao's
//! path schemas list them (`sdk/framework`): a path served for another method is a 405, and a
//! write's parameters outside its list are named in OpenBao's warning.

use crate::{params::Params, Op};

const ISSUE: &[&str] = &[
    "alt_names",
    "common_name",
    "exclude_cn_from_sans",
    "format",
    "ip_sans",
    "issuer_ref",
    "key_bits",
    "key_type",
    "not_after",
    "not_before",
    "other_sans",
    "private_key_format",
    "remove_roots_from_chain",
    "serial_number",
    "ttl",
    "uri_sans",
    "user_ids",
];

const SIGN: &[&str] = &[
    "alt_names",
    "common_name",
    "csr",
    "exclude_cn_from_sans",
    "format",
    "ip_sans",
    "issuer_ref",
    "not_after",
    "not_before",
    "other_sans",
    "private_key_format",
    "remove_roots_from_chain",
    "serial_number",
    "ttl",
    "uri_sans",
    "user_ids",
];

/// `sign-verbatim` takes `sign`'s and these (and `role` when no role is in the path).
const VERBATIM_EXTRA: &[&str] = &[
    "basic_constraints_valid_for_non_ca",
    "ext_key_usage",
    "ext_key_usage_oids",
    "key_usage",
    "role",
    "signature_bits",
    "use_pss",
];

/// Subject and key fields that generating a CA and signing an intermediate share.
const CA_COMMON: &[&str] = &[
    "alt_names",
    "common_name",
    "country",
    "exclude_cn_from_sans",
    "format",
    "ip_sans",
    "locality",
    "not_after",
    "not_before",
    "not_before_duration",
    "organization",
    "other_sans",
    "ou",
    "postal_code",
    "private_key_format",
    "province",
    "serial_number",
    "signature_bits",
    "street_address",
    "ttl",
    "uri_sans",
    "use_pss",
];

const ROOT_GENERATE: &[&str] = &[
    "ext_key_usage",
    "ext_key_usage_oids",
    "external_key_ref",
    "issuer_name",
    "key_bits",
    "key_name",
    "key_ref",
    "key_type",
    "key_usage",
    "max_path_length",
    "permitted_dns_domains",
];

const INTERMEDIATE_GENERATE: &[&str] = &[
    "add_basic_constraints",
    "external_key_ref",
    "key_bits",
    "key_name",
    "key_ref",
    "key_type",
];

const SIGN_INTERMEDIATE: &[&str] = &[
    "csr",
    "ext_key_usage",
    "ext_key_usage_oids",
    "issuer_name",
    "issuer_ref",
    "key_usage",
    "max_path_length",
    "permitted_dns_domains",
    "skid",
    "use_csr_values",
];

const URLS: &[&str] = &[
    "crl_distribution_points",
    "delta_crl_distribution_points",
    "enable_templating",
    "issuing_certificates",
    "ocsp_servers",
];

const TIDY: &[&str] = &[
    "acme_account_safety_buffer",
    "issuer_safety_buffer",
    "page_size",
    "pause_duration",
    "revoked_safety_buffer",
    "safety_buffer",
    "tidy_acme",
    "tidy_cert_store",
    "tidy_expired_issuers",
    "tidy_invalid_certs",
    "tidy_move_legacy_ca_bundle",
    "tidy_revocation_list",
    "tidy_revoked_cert_issuer_associations",
    "tidy_revoked_certs",
];

/// True when mutual serves `head/tail` of a mount for some method.
pub fn is_served(head: &str, tail: &str) -> bool {
    let one = !tail.is_empty() && !tail.contains('/');
    match (head, tail) {
        ("ca", "" | "pem") | ("ca_chain", "") | ("crl", "" | "pem" | "rotate") => true,
        ("config", "urls" | "crl" | "auto-tidy" | "acme" | "cluster") => true,
        ("roles" | "certs", "") | ("certs", "revoked") | ("tidy" | "tidy-status", "") => true,
        ("revoke" | "issuers", "") | ("sign-verbatim", _) => true,
        ("roles" | "issue" | "sign" | "cert" | "key", _) => one,
        ("root", "" | "sign-intermediate") | ("intermediate", "set-signed") => true,
        ("root", t) => matches!(
            t,
            "generate/internal" | "generate/exported" | "generate/kms"
        ),
        ("intermediate", t) => matches!(t, "generate/internal" | "generate/exported"),
        ("issuer", t) => crate::issuers::is_issuer_path(t),
        _ => false,
    }
}

/// The parameters a write of `head/tail` takes, or None for paths not checked.
fn known(op: Op, head: &str, tail: &str) -> Option<Vec<&'static str>> {
    if op != Op::Write {
        return None;
    }
    let with = |a: &[&'static str], b: &[&'static str]| a.iter().chain(b).copied().collect();
    Some(match (head, tail) {
        ("issue", _) => ISSUE.to_vec(),
        ("sign", _) => SIGN.to_vec(),
        ("sign-verbatim", _) => with(SIGN, VERBATIM_EXTRA),
        ("roles", _) => crate::roles::known_params().collect(),
        ("root", "sign-intermediate") => with(CA_COMMON, SIGN_INTERMEDIATE),
        ("root", _) => with(CA_COMMON, ROOT_GENERATE),
        ("intermediate", "set-signed") => vec!["certificate"],
        ("intermediate", _) => with(CA_COMMON, INTERMEDIATE_GENERATE),
        // `reason` is mutual's own: the CRL reason code Vault does not let one give.
        ("revoke", _) => vec!["certificate", "serial_number", "reason"],
        ("config", "urls") => URLS.to_vec(),
        ("tidy", _) => TIDY.to_vec(),
        _ => return None,
    })
}

/// OpenBao's warning naming the parameters a write does not take, sorted, or None.
pub fn ignored_warning(op: Op, head: &str, tail: &str, p: &Params) -> Option<String> {
    let known = known(op, head, tail)?;
    let mut ignored: Vec<&str> = p.keys().filter(|k| !known.contains(k)).collect();
    if ignored.is_empty() {
        return None;
    }
    ignored.sort_unstable();
    Some(format!(
        "Endpoint ignored these unrecognized parameters: [{}]",
        ignored.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(json: &str) -> Params {
        Params::parse(json.as_bytes(), None).unwrap()
    }

    #[test]
    fn unknown_parameters_are_named_in_openbaos_words() {
        let cases: &[(Op, &str, &str, &str, Option<&str>)] = &[
            (
                Op::Write,
                "issue",
                "svc",
                r#"{"common_name":"a","zzz":1,"bogus":2}"#,
                Some("Endpoint ignored these unrecognized parameters: [bogus zzz]"),
            ),
            (
                Op::Write,
                "issue",
                "svc",
                r#"{"common_name":"a","private_key_format":"pkcs8"}"#,
                None,
            ),
            (
                Op::Write,
                "sign-verbatim",
                "",
                r#"{"csr":"x","use_pss":false,"role":"r"}"#,
                None,
            ),
            (
                Op::Write,
                "roles",
                "svc",
                r#"{"signature_bits":256,"allowed_domain":"typo"}"#,
                Some("Endpoint ignored these unrecognized parameters: [allowed_domain]"),
            ),
            (
                Op::Write,
                "revoke",
                "",
                r#"{"serial_number":"01","reason":"keyCompromise"}"#,
                None,
            ),
            (Op::Read, "roles", "svc", r#"{"whatever":1}"#, None),
            (Op::Write, "crl", "rotate", r#"{"whatever":1}"#, None),
        ];
        for (op, head, tail, body, want) in cases {
            assert_eq!(
                ignored_warning(*op, head, tail, &p(body)).as_deref(),
                *want,
                "{head}/{tail} {body}"
            );
        }
    }

    #[test]
    fn served_paths_are_known_whatever_the_method() {
        for (head, tail, want) in [
            ("issue", "svc", true),
            ("issue", "", false),
            ("cert", "ca_chain", true),
            ("ca_chain", "", true),
            ("roles", "", true),
            ("root", "generate/internal", true),
            ("root", "generate/other", false),
            ("issuer", "default/json", true),
            ("nothing", "", false),
        ] {
            assert_eq!(is_served(head, tail), want, "{head}/{tail}");
        }
    }
}
