//! Step 6, signatures and times from the anchor down to the leaf (OpenSSL's
//! `internal_verify`).

use ::time::OffsetDateTime;
use x509_parser::prelude::*;

use super::parsed::Cert;
use crate::diagnosis::Diagnosis;

fn check_time(c: &Cert<'_>, now: OffsetDateTime) -> Result<(), Diagnosis> {
    if c.facts.not_before > now {
        return Err(Diagnosis::NotYetValid {
            subject: c.facts.subject.clone(),
            not_before: c.facts.not_before,
            now,
        });
    }
    if c.facts.not_after < now {
        return Err(Diagnosis::Expired {
            subject: c.facts.subject.clone(),
            not_after: c.facts.not_after,
            now,
        });
    }
    Ok(())
}

pub(super) fn check_signatures_and_times(
    path: &[&Cert<'_>],
    now: OffsetDateTime,
) -> Result<(), Diagnosis> {
    let top = path.len() - 1;
    // The anchor's own signature is not checked (it is trusted, self-signed or not); its
    // validity is, as OpenSSL does.
    check_time(path[top], now)?;
    for k in (0..top).rev() {
        let (subject, issuer) = (path[k], path[k + 1]);
        // An algorithm x509-parser cannot check is left to the webpki gate.
        if let Err(X509Error::SignatureVerificationError) =
            subject.x.verify_signature(Some(issuer.x.public_key()))
        {
            return Err(Diagnosis::BadSignature {
                subject: subject.facts.subject.clone(),
                issuer: issuer.facts.subject.clone(),
            });
        }
        check_time(subject, now)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;

    /// Signatures and validity periods along the path.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        vec![
            case("expired leaf", vec![a(&s.expired)], vec![a(&s.alice_int)])
                .fails("expired", "CN=old.example.com"),
            case("not yet valid", vec![a(&s.future)], vec![a(&s.alice_int)])
                .fails("not_yet_valid", "CN=future.example.com"),
            case(
                "expired anchor",
                vec![a(&s.under_expired)],
                vec![a(&s.expired_root)],
            )
            .fails("expired", "CN=Expired Root"),
            case(
                "forged signature",
                vec![s.forged_alice.clone()],
                vec![a(&s.alice_int)],
            )
            .fails("bad_signature", "CN=alice.example.com"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
