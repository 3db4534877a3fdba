//! Roles in plain words: what a role lets a caller obtain, one sentence per rule, for the
//! dashboard's role pages. Pure; the sentences are pinned by a table test.

use mutual_pki::{duration, role::Role};

/// What `role` allows, as sentences.
pub(crate) fn describe(role: &Role) -> Vec<String> {
    let mut out = Vec::new();
    let domains = role.allowed_domains.join(", ");
    if role.allow_any_name {
        out.push("Any name may be requested.".to_string());
    } else if role.allowed_domains.is_empty() {
        out.push("No domain names are allowed (allowed_domains is empty).".to_string());
    } else {
        let mut kinds = Vec::new();
        if role.allow_bare_domains {
            kinds.push(format!("exactly {domains}"));
        }
        if role.allow_subdomains {
            kinds.push(format!("any name under {domains}"));
        }
        if role.allow_glob_domains {
            kinds.push(format!("names matching the patterns {domains}"));
        }
        if kinds.is_empty() {
            out.push(format!(
                "Domains {domains} are listed, but neither the bare domain nor subdomains are allowed."
            ));
        } else {
            out.push(format!("Names: {}.", kinds.join("; ")));
        }
    }
    if role.allow_localhost {
        out.push("localhost may be requested.".to_string());
    }
    if role.allow_wildcards && !role.allow_any_name {
        out.push("Wildcard names (*.name) are allowed within those names.".to_string());
    }
    out.push(if role.allow_ip_sans {
        "IP addresses may be put in the certificate.".to_string()
    } else {
        "No IP addresses.".to_string()
    });
    out.push(if role.allowed_uri_sans.is_empty() {
        "No URI names (SPIFFE IDs).".to_string()
    } else {
        format!("URI names matching {}.", role.allowed_uri_sans.join(", "))
    });
    if !role.require_cn {
        out.push("A common name is optional.".to_string());
    }
    let usage = match (role.server_flag, role.client_flag) {
        (true, true) => "Usable by servers and by clients.",
        (true, false) => "Usable by servers only.",
        (false, true) => "Usable by clients only.",
        (false, false) => "Neither server nor client use is granted.",
    };
    out.push(usage.to_string());
    match (role.ttl, role.max_ttl) {
        (Some(t), Some(m)) if !t.is_zero() && !m.is_zero() => out.push(format!(
            "Lifetime {} by default, {} at most.",
            duration::format(t),
            duration::format(m)
        )),
        (_, Some(m)) if !m.is_zero() => {
            out.push(format!("Lifetime {} at most.", duration::format(m)))
        }
        _ => out.push("Lifetime limited by the mount only.".to_string()),
    }
    let bits = if role.key_bits == 0 {
        String::new()
    } else {
        format!(" ({} bits)", role.key_bits)
    };
    if role.key_type == "any" {
        out.push("Keys: any type (a CSR's own; generated keys are RSA 2048).".to_string());
    } else {
        out.push(format!("Keys: {}{bits}.", role.key_type));
    }
    if role.no_store {
        out.push("Issued certificates are not recorded (no_store).".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn roles_read_as_sentences() {
        let service = Role {
            name: "service".into(),
            issuer: "pki".into(),
            allowed_domains: vec!["example.com".into()],
            allow_bare_domains: true,
            allow_subdomains: true,
            allow_localhost: true,
            allow_ip_sans: true,
            allow_wildcards: false,
            require_cn: true,
            server_flag: true,
            client_flag: true,
            ttl: None,
            max_ttl: Some(Duration::from_secs(720 * 3600)),
            key_type: "ec".into(),
            key_bits: 256,
            ..Role::default()
        };
        let cases: Vec<(Role, Vec<&str>)> = vec![
            (
                service.clone(),
                vec![
                    "Names: exactly example.com; any name under example.com.",
                    "localhost may be requested.",
                    "IP addresses may be put in the certificate.",
                    "No URI names (SPIFFE IDs).",
                    "Usable by servers and by clients.",
                    "Lifetime 720h at most.",
                    "Keys: ec (256 bits).",
                ],
            ),
            (
                Role {
                    allow_any_name: true,
                    allow_localhost: false,
                    allow_ip_sans: false,
                    allowed_uri_sans: vec!["spiffe://example.org/*".into()],
                    server_flag: false,
                    require_cn: false,
                    ttl: Some(Duration::from_secs(3600)),
                    no_store: true,
                    key_bits: 0,
                    ..service.clone()
                },
                vec![
                    "Any name may be requested.",
                    "No IP addresses.",
                    "URI names matching spiffe://example.org/*.",
                    "A common name is optional.",
                    "Usable by clients only.",
                    "Lifetime 1h by default, 720h at most.",
                    "Keys: ec.",
                    "Issued certificates are not recorded (no_store).",
                ],
            ),
            (
                Role {
                    allowed_domains: vec![],
                    allow_localhost: false,
                    allow_wildcards: true,
                    max_ttl: None,
                    ..service
                },
                vec![
                    "No domain names are allowed (allowed_domains is empty).",
                    "Wildcard names (*.name) are allowed within those names.",
                    "IP addresses may be put in the certificate.",
                    "No URI names (SPIFFE IDs).",
                    "Usable by servers and by clients.",
                    "Lifetime limited by the mount only.",
                    "Keys: ec (256 bits).",
                ],
            ),
        ];
        for (role, want) in cases {
            assert_eq!(describe(&role), want);
        }
    }
}
