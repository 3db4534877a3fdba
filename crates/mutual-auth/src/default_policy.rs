//! The `default` policy, with the content Vault and OpenBao ship (`vault/policy/policy_store.go`).

/// The text of the `default` policy, as `bao policy read default` prints it.
pub const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;

/// Policies that cannot be written or deleted.
pub const IMMUTABLE: &[&str] = &["root", "response-wrapping"];

/// The `default` policy, parsed.
pub fn default_policy() -> crate::Policy {
    // The text is a constant checked by the test below; a failure here is a build defect.
    crate::Policy::parse("default", DEFAULT_POLICY).expect("the built-in default policy parses")
}

#[cfg(test)]
mod tests {
    use crate::{Acl, Capability};

    #[test]
    fn default_policy_grants_self_service_only() {
        let p = super::default_policy();
        assert_eq!(p.rules.len(), 16);
        assert_eq!(p.rules.iter().filter(|r| r.templated).count(), 2);
        let acl = Acl::new([&p]).unwrap();
        let cases = [
            ("auth/token/lookup-self", Capability::Read, true),
            ("auth/token/renew-self", Capability::Update, true),
            ("auth/token/revoke-self", Capability::Update, true),
            ("auth/token/lookup-self", Capability::Update, false),
            ("auth/token/create", Capability::Update, false),
            ("cubbyhole/x/y", Capability::Delete, true),
            ("sys/tools/hash/sha2-512", Capability::Update, true),
            (
                "identity/oidc/provider/p1/authorize",
                Capability::Read,
                true,
            ),
            (
                "identity/entity/id/{{identity.entity.id}}",
                Capability::Read,
                false,
            ),
            ("pki/issue/web", Capability::Update, false),
            ("sys/policies/acl/default", Capability::Read, false),
        ];
        for (path, cap, want) in cases {
            assert_eq!(acl.allows(path, cap).is_allowed(), want, "{cap} {path}");
        }
    }
}
