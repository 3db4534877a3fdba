//! Roles as Vault's API writes and reads them: parameter names, defaults and JSON shape,
//! mapped onto [`mutual_pki::role::Role`].

use mutual_pki::{
    key::KeyType,
    role::{NotAfterBehavior, Role},
};
use serde_json::{json, Value};

use crate::{error::ApiError, params::Params};

/// Builds a role from a write of `roles/:name` (a full replace, Vault's defaults for every
/// field not given).
pub fn from_params(name: &str, mount: &str, p: &Params) -> Result<Role, ApiError> {
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
    })
}

/// A role as Vault's `GET roles/:name` shows it.
pub fn to_json(r: &Role) -> Value {
    let behavior = match r.leaf_not_after_behavior {
        NotAfterBehavior::Err => "err",
        NotAfterBehavior::Truncate => "truncate",
        NotAfterBehavior::Permit => "permit",
    };
    json!({
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_write_gets_vaults_defaults() {
        let r = from_params("web", "pki", &Params::default()).unwrap();
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
        assert_eq!(r.issuer, "pki");
    }

    #[test]
    fn cert_managers_and_the_clis_strings_are_understood() {
        let p = Params::parse(
            br#"{"allowed_domains":"example.com,example.org","allow_subdomains":"true","max_ttl":"2160h0m0s","key_type":"ec","allow_wildcard_certificates":false}"#,
            None,
        )
        .unwrap();
        let r = from_params("svc", "pki", &p).unwrap();
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
}
