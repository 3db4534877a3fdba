//! Roles as Vault's API writes and reads them: parameter names, defaults and JSON shape,
//! mapped onto [`mutual_pki::role::Role`].

use mutual_pki::{
    key::KeyType,
    role::{NotAfterBehavior, Role},
};
use serde_json::{json, Value};

use crate::{error::ApiError, params::Params};

/// Vault's role fields that mutual keeps and shows but does not apply, with Vault's default as
/// JSON text (which also gives the field's JSON type). Setting one to anything but its default
/// is answered with a warning, since the certificates mutual issues will not reflect it.
const KEPT: &[(&str, &str)] = &[
    ("allow_globs_in_identity_templates", "false"),
    ("allow_token_displayname", "false"),
    ("allowed_domains_template", "false"),
    ("allowed_ip_sans_cidr", "[]"),
    ("allowed_other_sans", "[]"),
    ("allowed_serial_numbers", "[]"),
    ("allowed_uri_sans_template", "false"),
    ("allowed_user_ids", "[]"),
    ("basic_constraints_valid_for_non_ca", "false"),
    ("cn_validations", r#"["email","hostname"]"#),
    ("code_signing_flag", "false"),
    ("country", "[]"),
    ("email_protection_flag", "false"),
    ("ext_key_usage", "[]"),
    ("ext_key_usage_oids", "[]"),
    ("generate_lease", "false"),
    (
        "key_usage",
        r#"["DigitalSignature","KeyAgreement","KeyEncipherment"]"#,
    ),
    ("locality", "[]"),
    ("not_after", r#""""#),
    ("not_after_bound", r#""permit""#),
    ("not_before", r#""""#),
    ("not_before_bound", r#""permit""#),
    ("policy_identifiers", "[]"),
    ("postal_code", "[]"),
    ("province", "[]"),
    ("signature_bits", "0"),
    ("street_address", "[]"),
    ("use_pss", "false"),
];

/// The fields mutual applies, besides [`KEPT`]: what a role write knows.
const APPLIED: &[&str] = &[
    "allow_any_name",
    "allow_bare_domains",
    "allow_glob_domains",
    "allow_ip_sans",
    "allow_localhost",
    "allow_subdomains",
    "allow_wildcard_certificates",
    "allow_wildcards",
    "allowed_domains",
    "allowed_uri_sans",
    "client_flag",
    "enforce_hostnames",
    "issuer_ref",
    "key_bits",
    "key_type",
    "leaf_not_after_behavior",
    "max_ttl",
    "no_store",
    "not_before_duration",
    "organization",
    "ou",
    "require_cn",
    "server_flag",
    "ttl",
    "use_csr_common_name",
    "use_csr_sans",
];

/// Every parameter a role write takes.
pub fn known_params() -> impl Iterator<Item = &'static str> {
    APPLIED.iter().copied().chain(KEPT.iter().map(|(k, _)| *k))
}

fn default_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A kept field's value from the request, in the JSON type of its default.
fn kept_value(p: &Params, key: &str, default: &Value) -> Result<Option<Value>, ApiError> {
    if !p.has(key) {
        return Ok(None);
    }
    Ok(Some(match default {
        Value::Bool(_) => json!(p.bool(key)?.unwrap_or(false)),
        Value::Array(_) => json!(p.list(key)?),
        Value::Number(_) => json!(p.u32(key)?.unwrap_or(0)),
        _ => json!(p.string(key).unwrap_or_default()),
    }))
}

/// Builds a role from a write of `roles/:name` (a full replace, Vault's defaults for every
/// field not given), with a warning for each field set to a value mutual does not apply.
pub fn from_params(name: &str, mount: &str, p: &Params) -> Result<(Role, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    let mut vault_fields = std::collections::BTreeMap::new();
    for (key, default) in KEPT {
        let default = default_of(default);
        if let Some(v) = kept_value(p, key, &default)? {
            if v != default {
                warnings.push(format!(
                    "role field \"{key}\" is stored but not applied: mutual issues as if it were {default}"
                ));
                vault_fields.insert(key.to_string(), v);
            }
        }
    }
    if let Some(r) = p.string("issuer_ref").filter(|r| !r.is_empty()) {
        // Applied at issuance (issuers::mount_for_role), so that an issuer made later
        // counts.
        if r != "default" {
            vault_fields.insert("issuer_ref".into(), json!(r));
        }
    }
    let role = role_from_params(name, mount, p)?;
    Ok((
        Role {
            vault_fields,
            ..role
        },
        warnings,
    ))
}

fn role_from_params(name: &str, mount: &str, p: &Params) -> Result<Role, ApiError> {
    let d = Role::default();
    let key_type = p.str_or("key_type", &d.key_type).to_lowercase();
    let mut key_bits = p.u32("key_bits")?.unwrap_or(0);
    if key_type != "any" {
        key_bits = KeyType::from_parts(&key_type, key_bits)?.bits();
    }
    let leaf_not_after_behavior = match p.str_or("leaf_not_after_behavior", "err").as_str() {
        "err" => NotAfterBehavior::Err,
        "truncate" => NotAfterBehavior::Truncate,
        "permit" => NotAfterBehavior::Permit,
        other => {
            return Err(ApiError::bad(format!(
                "invalid value for \"leaf_not_after_behavior\": \"{other}\" (use err, truncate or permit)"
            )))
        }
    };
    let wildcards = match p.bool("allow_wildcard_certificates")? {
        Some(b) => b,
        None => p.bool_or("allow_wildcards", d.allow_wildcards)?,
    };
    Ok(Role {
        name: name.to_string(),
        issuer: mount.to_string(),
        allowed_domains: p.list("allowed_domains")?,
        allow_bare_domains: p.bool_or("allow_bare_domains", d.allow_bare_domains)?,
        allow_subdomains: p.bool_or("allow_subdomains", d.allow_subdomains)?,
        allow_glob_domains: p.bool_or("allow_glob_domains", d.allow_glob_domains)?,
        allow_localhost: p.bool_or("allow_localhost", d.allow_localhost)?,
        allow_any_name: p.bool_or("allow_any_name", d.allow_any_name)?,
        allow_wildcards: wildcards,
        allow_ip_sans: p.bool_or("allow_ip_sans", d.allow_ip_sans)?,
        enforce_hostnames: p.bool_or("enforce_hostnames", d.enforce_hostnames)?,
        allowed_uri_sans: p.list("allowed_uri_sans")?,
        require_cn: p.bool_or("require_cn", d.require_cn)?,
        server_flag: p.bool_or("server_flag", d.server_flag)?,
        client_flag: p.bool_or("client_flag", d.client_flag)?,
        use_csr_common_name: p.bool_or("use_csr_common_name", d.use_csr_common_name)?,
        use_csr_sans: p.bool_or("use_csr_sans", d.use_csr_sans)?,
        key_type,
        key_bits,
        ttl: p.duration("ttl")?.filter(|t| !t.is_zero()),
        max_ttl: p.duration("max_ttl")?.filter(|t| !t.is_zero()),
        not_before_duration: p
            .duration("not_before_duration")?
            .unwrap_or(d.not_before_duration),
        leaf_not_after_behavior,
        ou: p.list("ou")?,
        organization: p.list("organization")?,
        no_store: p.bool_or("no_store", d.no_store)?,
        vault_fields: Default::default(),
    })
}

/// A role as Vault's `GET roles/:name` shows it.
pub fn to_json(r: &Role) -> Value {
    let behavior = match r.leaf_not_after_behavior {
        NotAfterBehavior::Err => "err",
        NotAfterBehavior::Truncate => "truncate",
        NotAfterBehavior::Permit => "permit",
    };
    let mut j = json!({
        "allow_any_name": r.allow_any_name,
        "allow_bare_domains": r.allow_bare_domains,
        "allow_glob_domains": r.allow_glob_domains,
        "allow_ip_sans": r.allow_ip_sans,
        "allow_localhost": r.allow_localhost,
        "allow_subdomains": r.allow_subdomains,
        "allow_wildcard_certificates": r.allow_wildcards,
        "allowed_domains": r.allowed_domains,
        "allowed_uri_sans": r.allowed_uri_sans,
        "client_flag": r.client_flag,
        "enforce_hostnames": r.enforce_hostnames,
        "issuer_ref": "default",
        "key_bits": r.key_bits,
        "key_type": r.key_type,
        "leaf_not_after_behavior": behavior,
        "max_ttl": r.max_ttl.map_or(0, |d| d.as_secs()),
        "no_store": r.no_store,
        "not_before_duration": r.not_before_duration.as_secs(),
        "organization": r.organization,
        "ou": r.ou,
        "require_cn": r.require_cn,
        "server_flag": r.server_flag,
        "ttl": r.ttl.map_or(0, |d| d.as_secs()),
        "use_csr_common_name": r.use_csr_common_name,
        "use_csr_sans": r.use_csr_sans,
    });
    if let Value::Object(m) = &mut j {
        for (key, default) in KEPT {
            let v = r
                .vault_fields
                .get(*key)
                .cloned()
                .unwrap_or_else(|| default_of(default));
            m.insert(key.to_string(), v);
        }
        if let Some(issuer) = r.vault_fields.get("issuer_ref") {
            m.insert("issuer_ref".into(), issuer.clone());
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_write_gets_vaults_defaults() {
        let (r, warnings) = from_params("web", "pki", &Params::default()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let j = to_json(&r);
        assert_eq!(j["key_type"], "rsa");
        assert_eq!(j["key_bits"], 2048);
        assert_eq!(j["server_flag"], true);
        assert_eq!(j["client_flag"], true);
        assert_eq!(j["use_csr_common_name"], true);
        assert_eq!(j["use_csr_sans"], true);
        assert_eq!(j["require_cn"], true);
        assert_eq!(j["allow_localhost"], true);
        assert_eq!(j["not_before_duration"], 30);
        assert_eq!(j["leaf_not_after_behavior"], "err");
        assert_eq!(j["signature_bits"], 0);
        assert_eq!(j["cn_validations"], json!(["email", "hostname"]));
        assert_eq!(j["not_after_bound"], "permit");
        assert_eq!(r.issuer, "pki");
    }

    #[test]
    fn cert_managers_and_the_clis_strings_are_understood() {
        let p = Params::parse(
            br#"{"allowed_domains":"example.com,example.org","allow_subdomains":"true","max_ttl":"2160h0m0s","key_type":"ec","allow_wildcard_certificates":false}"#,
            None,
        )
        .unwrap();
        let (r, _) = from_params("svc", "pki", &p).unwrap();
        assert_eq!(r.allowed_domains, ["example.com", "example.org"]);
        assert!(r.allow_subdomains);
        assert!(!r.allow_wildcards);
        assert_eq!(r.max_ttl, Some(std::time::Duration::from_secs(2160 * 3600)));
        assert_eq!((r.key_type.as_str(), r.key_bits), ("ec", 256));
    }

    #[test]
    fn a_bad_key_size_is_refused() {
        let p = Params::parse(br#"{"key_type":"rsa","key_bits":"1024"}"#, None).unwrap();
        let err = from_params("svc", "pki", &p).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("1024"), "{err}");
    }

    #[test]
    fn fields_mutual_does_not_apply_are_kept_typed_and_warned_about() {
        let p = Params::parse(
            br#"{"signature_bits":"384","code_signing_flag":"true","country":"NL,BE","use_pss":false,"key_usage":["DigitalSignature","KeyAgreement","KeyEncipherment"],"issuer_ref":"default"}"#,
            None,
        )
        .unwrap();
        let (r, warnings) = from_params("svc", "pki", &p).unwrap();
        let j = to_json(&r);
        assert_eq!(j["signature_bits"], 384);
        assert_eq!(j["code_signing_flag"], true);
        assert_eq!(j["country"], json!(["NL", "BE"]));
        assert_eq!(j["issuer_ref"], "default");
        // Set to what mutual does anyway (use_pss false, Vault's key_usage): no warning.
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert_eq!(
            warnings[0],
            "role field \"code_signing_flag\" is stored but not applied: mutual issues as if it were false"
        );
        assert!(warnings.iter().all(|w| !w.contains('\n')));
        // Kept through the store's JSON.
        let back: Role = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(to_json(&back), j);
    }

    #[test]
    fn a_role_read_has_every_field_openbao_returns() {
        let j = to_json(&Role::default());
        for key in [
            "allow_any_name",
            "allow_bare_domains",
            "allow_glob_domains",
            "allow_globs_in_identity_templates",
            "allow_ip_sans",
            "allow_localhost",
            "allow_subdomains",
            "allow_token_displayname",
            "allow_wildcard_certificates",
            "allowed_domains",
            "allowed_domains_template",
            "allowed_ip_sans_cidr",
            "allowed_other_sans",
            "allowed_serial_numbers",
            "allowed_uri_sans",
            "allowed_uri_sans_template",
            "allowed_user_ids",
            "basic_constraints_valid_for_non_ca",
            "client_flag",
            "cn_validations",
            "code_signing_flag",
            "country",
            "email_protection_flag",
            "enforce_hostnames",
            "ext_key_usage",
            "ext_key_usage_oids",
            "generate_lease",
            "issuer_ref",
            "key_bits",
            "key_type",
            "key_usage",
            "locality",
            "max_ttl",
            "no_store",
            "not_after",
            "not_after_bound",
            "not_before",
            "not_before_bound",
            "not_before_duration",
            "organization",
            "ou",
            "policy_identifiers",
            "postal_code",
            "province",
            "require_cn",
            "server_flag",
            "signature_bits",
            "street_address",
            "ttl",
            "use_csr_common_name",
            "use_csr_sans",
            "use_pss",
        ] {
            assert!(j.get(key).is_some(), "{key}");
        }
    }
}
