//! The key of a CSR against the role's `key_type` and `key_bits` (generated keys are the
//! role's own and need no check).

use super::{Role, RoleRefusal};
use crate::key::KeyKind;

impl Role {
    pub(super) fn check_key(&self, key: &KeyKind) -> Result<(), RoleRefusal> {
        let key_type = self.key_type.trim().to_lowercase();
        if key_type == "any" {
            if let KeyKind::Other { oid } = key {
                return Err(RoleRefusal::UnsupportedKey {
                    oid: oid.clone(),
                    role: self.name.clone(),
                });
            }
        } else if key.kind() != key_type {
            return Err(RoleRefusal::KeyTypeMismatch {
                key: key.clone(),
                role: self.name.clone(),
                key_type: self.key_type.clone(),
            });
        }
        // key_bits speaks of the role's own key type; under "any" only the RSA floor applies.
        let role_bits = if key.kind() == key_type {
            self.key_bits
        } else {
            0
        };
        let min_bits = match key {
            KeyKind::Rsa { .. } => role_bits.max(2048),
            KeyKind::Ec { .. } => role_bits,
            KeyKind::Ed25519 | KeyKind::Other { .. } => 0,
        };
        if key.bits() < min_bits {
            return Err(RoleRefusal::KeyTooWeak {
                key: key.clone(),
                role: self.name.clone(),
                key_bits: self.key_bits,
                min_bits,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::key::{Curve, KeyKind};
    use crate::role::testkit::*;

    pub(in crate::role) fn cases() -> Vec<Case> {
        vec![
            // Keys.
            case("generated key: no key check")
                .role(|r| r.key_bits = 8192)
                .expect(|e| e.cn = Some("www.example.com")),
            case("CSR RSA 2048 under rsa").csr(rsa(2048)),
            case("CSR RSA 1024 refused")
                .csr(rsa(1024))
                .refused("key_too_weak"),
            case("CSR RSA 2048 under key_bits 4096")
                .role(|r| r.key_bits = 4096)
                .csr(rsa(2048))
                .refused("key_too_weak"),
            case("CSR RSA 4096 under key_bits 4096")
                .role(|r| r.key_bits = 4096)
                .csr(rsa(4096)),
            case("CSR EC under rsa")
                .csr(ec(Curve::P256))
                .refused("key_type_mismatch"),
            case("CSR Ed25519 under rsa")
                .csr(KeyKind::Ed25519)
                .refused("key_type_mismatch"),
            case("CSR EC P-256 under ec")
                .role(|r| r.key_type = "ec".into())
                .csr(ec(Curve::P256)),
            case("CSR EC P-256 under ec key_bits 384")
                .role(|r| {
                    r.key_type = "ec".into();
                    r.key_bits = 384;
                })
                .csr(ec(Curve::P256))
                .refused("key_too_weak"),
            case("CSR EC P-384 under ec key_bits 384")
                .role(|r| {
                    r.key_type = "ec".into();
                    r.key_bits = 384;
                })
                .csr(ec(Curve::P384)),
            case("CSR Ed25519 under any")
                .role(|r| r.key_type = "any".into())
                .csr(KeyKind::Ed25519),
            case("CSR EC under any")
                .role(|r| r.key_type = "any".into())
                .csr(ec(Curve::P521)),
            case("CSR RSA 1024 under any")
                .role(|r| r.key_type = "any".into())
                .csr(rsa(1024))
                .refused("key_too_weak"),
            case("CSR DSA under any")
                .role(|r| r.key_type = "any".into())
                .csr(KeyKind::Other {
                    oid: "1.2.840.10040.4.1".into(),
                })
                .refused("unsupported_key"),
            case("CSR DSA under rsa")
                .csr(KeyKind::Other {
                    oid: "1.2.840.10040.4.1".into(),
                })
                .refused("key_type_mismatch"),
        ]
    }

    #[test]
    fn keys_table() {
        run(&cases());
    }
}
