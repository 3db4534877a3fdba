//! The purpose (part of step 2): a leaf fit for the TLS side asked for, issuers whose EKU
//! allows it.

use super::parsed::{has_key_usage, Cert};
use crate::diagnosis::{Diagnosis, Purpose, PurposeProblem};
use crate::key::KeyKind;

pub(super) fn check_purpose(c: &Cert<'_>, leaf: bool, wanted: Purpose) -> Result<(), Diagnosis> {
    let f = &c.facts;
    let wrong = |has: &[String], problem| Diagnosis::WrongPurpose {
        subject: f.subject.clone(),
        wanted,
        has: has.to_vec(),
        problem,
    };
    if f.has_extended_key_usage && !f.extended_key_usage.iter().any(|e| e == wanted.eku_name()) {
        return Err(wrong(
            &f.extended_key_usage,
            PurposeProblem::ExtendedKeyUsage,
        ));
    }
    if !leaf {
        return Ok(());
    }
    if f.is_ca {
        return Err(wrong(&f.extended_key_usage, PurposeProblem::CaCertificate));
    }
    if has_key_usage(c) {
        let rsa = matches!(f.key, KeyKind::Rsa { .. });
        let signs = f.key_usage.iter().any(|k| k == "digitalSignature");
        let encrypts = f.key_usage.iter().any(|k| k == "keyEncipherment");
        let ok = signs || (wanted == Purpose::Server && rsa && encrypts);
        if !ok {
            return Err(wrong(&f.key_usage, PurposeProblem::KeyUsage));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;
    use crate::diagnosis::Purpose;

    /// EKU, keyUsage and CA certificates against the TLS side asked for.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        let server = Some(Purpose::Server);
        vec![
            case(
                "no EKU fits any purpose",
                vec![a(&s.no_eku)],
                vec![a(&s.alice_int)],
            ),
            case("both EKUs", vec![a(&s.both)], vec![a(&s.alice_int)]).purpose(server),
            case("no purpose asked", vec![a(&s.www)], vec![a(&s.root)]).purpose(None),
            case(
                "CA checked without purpose",
                vec![a(&s.alice_int)],
                vec![a(&s.root)],
            )
            .purpose(None),
            case("server cert as client", vec![a(&s.www)], vec![a(&s.root)])
                .fails("wrong_purpose", "CN=www.example.com"),
            case(
                "client cert as server",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .purpose(server)
            .fails("wrong_purpose", "CN=alice.example.com"),
            case(
                "anyExtendedKeyUsage is not clientAuth",
                vec![a(&s.any_eku)],
                vec![a(&s.alice_int)],
            )
            .fails("wrong_purpose", "CN=any.example.com"),
            case(
                "keyEncipherment only",
                vec![a(&s.enc_only)],
                vec![a(&s.alice_int)],
            )
            .fails("wrong_purpose", "CN=enc.example.com"),
            case("CA as leaf", vec![a(&s.alice_int)], vec![a(&s.root)])
                .fails("wrong_purpose", "CN=Alice Intermediate Authority"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
