//! The certificate lifecycle beyond Vault's API: bootstrap (join) tokens, the trust bundle,
//! and the counters of renewals and OCSP answers. Renewal, OCSP and the revocation feed have
//! modules of their own; docs/lifecycle-api.md is the contract.

use std::sync::atomic::{AtomicU64, Ordering};

use mutual_pki::cert;
use mutual_store::{TokenRecord, TokenUse};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    pki::{self, rfc3339},
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// Counters of lifecycle decisions, shown by `sys/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Renewals that issued a certificate.
    pub renewals_ok: AtomicU64,
    /// Renewals refused (revoked, expired, other names, unknown certificate...).
    pub renewals_refused: AtomicU64,
    /// OCSP answers by status: good, revoked, unknown, malformed.
    pub ocsp: [AtomicU64; 4],
    /// OCSP answers served from an earlier signature (requests without a nonce).
    pub ocsp_reused: AtomicU64,
    /// Issuances made with a bootstrap token.
    pub bootstrap_uses: AtomicU64,
    /// Bootstrap token uses refused (used up, expired, out of scope).
    pub bootstrap_refused: AtomicU64,
    /// CRLs built and signed: complete, delta.
    pub crl_builds: [AtomicU64; 2],
    /// Microseconds spent building them (reading the revocations, encoding, signing).
    pub crl_build_micros: [AtomicU64; 2],
    /// Revoked certificates attributed to the key that signed them after the fact (a store
    /// from before per-issuer CRLs, or revocations imported).
    pub revocations_attributed: AtomicU64,
    /// Requests on the public listener (`--public-listen`): served, refused.
    pub public: [AtomicU64; 2],
    /// GETs of CA certificates, chains and CRLs: sent, or 304 because the client's
    /// `If-None-Match` named the bytes it already holds.
    pub public_material: [AtomicU64; 2],
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text of the counters.
    pub fn prometheus(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP mutual_renewals_total Renewals by certificate, by decision.\n");
        out.push_str("# TYPE mutual_renewals_total counter\n");
        out.push_str(&format!(
            "mutual_renewals_total{{decision=\"renewed\"}} {}\n",
            get(&self.renewals_ok)
        ));
        out.push_str(&format!(
            "mutual_renewals_total{{decision=\"refused\"}} {}\n",
            get(&self.renewals_refused)
        ));
        out.push_str("# HELP mutual_ocsp_responses_total OCSP answers, by status.\n");
        out.push_str("# TYPE mutual_ocsp_responses_total counter\n");
        for (i, status) in ["good", "revoked", "unknown", "malformed"]
            .iter()
            .enumerate()
        {
            out.push_str(&format!(
                "mutual_ocsp_responses_total{{status=\"{status}\"}} {}\n",
                get(&self.ocsp[i])
            ));
        }
        out.push_str(
            "# HELP mutual_ocsp_reused_total OCSP answers served from an earlier signature.\n",
        );
        out.push_str("# TYPE mutual_ocsp_reused_total counter\n");
        out.push_str(&format!(
            "mutual_ocsp_reused_total {}\n",
            get(&self.ocsp_reused)
        ));
        out.push_str("# HELP mutual_public_requests_total Requests on the public listener (--public-listen), by decision.\n");
        out.push_str("# TYPE mutual_public_requests_total counter\n");
        for (i, decision) in ["served", "refused"].iter().enumerate() {
            out.push_str(&format!(
                "mutual_public_requests_total{{decision=\"{decision}\"}} {}\n",
                get(&self.public[i])
            ));
        }
        out.push_str("# HELP mutual_public_material_responses_total GETs of CA certificates, chains and CRLs: sent, or not modified (the client's If-None-Match named them).\n");
        out.push_str("# TYPE mutual_public_material_responses_total counter\n");
        for (i, answer) in ["sent", "not_modified"].iter().enumerate() {
            out.push_str(&format!(
                "mutual_public_material_responses_total{{answer=\"{answer}\"}} {}\n",
                get(&self.public_material[i])
            ));
        }
        out.push_str(
            "# HELP mutual_bootstrap_token_uses_total Bootstrap token uses, by decision.\n",
        );
        out.push_str("# TYPE mutual_bootstrap_token_uses_total counter\n");
        out.push_str(&format!(
            "mutual_bootstrap_token_uses_total{{decision=\"issued\"}} {}\n",
            get(&self.bootstrap_uses)
        ));
        out.push_str(&format!(
            "mutual_bootstrap_token_uses_total{{decision=\"refused\"}} {}\n",
            get(&self.bootstrap_refused)
        ));
        out.push_str(
            "# HELP mutual_crl_builds_total CRLs built and signed, by kind.
",
        );
        out.push_str(
            "# TYPE mutual_crl_builds_total counter
",
        );
        out.push_str(
            "# HELP mutual_crl_build_seconds_total Time spent building CRLs, by kind.
",
        );
        out.push_str(
            "# TYPE mutual_crl_build_seconds_total counter
",
        );
        for (i, kind) in ["complete", "delta"].iter().enumerate() {
            out.push_str(&format!(
                "mutual_crl_builds_total{{kind=\"{kind}\"}} {}
",
                get(&self.crl_builds[i])
            ));
            out.push_str(&format!(
                "mutual_crl_build_seconds_total{{kind=\"{kind}\"}} {:.6}
",
                get(&self.crl_build_micros[i]) as f64 / 1e6
            ));
        }
        out.push_str("# HELP mutual_revocations_attributed_total Revoked certificates attributed to their signing key after the fact.
");
        out.push_str(
            "# TYPE mutual_revocations_attributed_total counter
",
        );
        out.push_str(&format!(
            "mutual_revocations_attributed_total {}
",
            get(&self.revocations_attributed)
        ));
        out
    }

    /// Counts one CRL built (`delta` or complete) and the time it took.
    pub(crate) fn crl_built(&self, delta: bool, took: std::time::Duration) {
        let i = usize::from(delta);
        Self::bump(&self.crl_builds[i]);
        self.crl_build_micros[i].fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

/// The refusal of a bootstrap token used where it may not be.
pub(crate) fn out_of_scope(tok: &TokenRecord) -> ApiError {
    let role = tok.role.as_deref().unwrap_or_default();
    let mount = tok.mounts.first().map(String::as_str).unwrap_or_default();
    ApiError::Forbidden(format!(
        "this is a bootstrap token for role \"{role}\" on mount \"{mount}\": it may only POST {mount}/sign/{role} or {mount}/issue/{role}"
    ))
}

/// A request on `mount` made with a bootstrap token: only `sign/<role>` and `issue/<role>`,
/// each success taking one use (given back when the issuance fails).
pub(crate) async fn bootstrap(
    app: &App,
    mount: std::sync::Arc<Mount>,
    op: Op,
    rest: &str,
    p: Params,
    tok: &TokenRecord,
    secret: &str,
) -> Result<Reply, ApiError> {
    let role = tok.role.as_deref().unwrap_or_default();
    let in_scope = op == Op::Write
        && tok.allows(&mount.record.path)
        && !tok.is_root()
        && matches!(rest.split_once('/'), Some(("sign" | "issue", r)) if r == role);
    let refused = |e: ApiError| {
        Counters::bump(&app.counters.bootstrap_refused);
        tracing::info!(mount = %mount.record.path, role, accessor = %tok.accessor, decision = "refused", reason = %e, "bootstrap token");
        e
    };
    if !in_scope {
        return Err(refused(out_of_scope(tok)));
    }
    let now = OffsetDateTime::now_utc();
    match app.store.take_token_use(secret, now).await? {
        TokenUse::Taken { used, of } => {
            match pki::handle(app, mount.clone(), op, rest, p).await {
                Ok(reply) => {
                    Counters::bump(&app.counters.bootstrap_uses);
                    tracing::info!(mount = %mount.record.path, role, accessor = %tok.accessor, used, of, decision = "issued", "bootstrap token");
                    Ok(reply)
                }
                Err(e) => {
                    // A refused name or a bad CSR must not burn a one-time token.
                    app.store.return_token_use(secret).await?;
                    Err(e)
                }
            }
        }
        TokenUse::UsedUp { of } => Err(refused(ApiError::Forbidden(format!(
            "bootstrap token used up ({of} of {of} uses)"
        )))),
        TokenUse::Expired { at } => Err(refused(expired(at))),
        TokenUse::Gone => Err(refused(ApiError::PermissionDenied)),
    }
}

/// The refusal of an expired bootstrap token.
pub(crate) fn expired(at: OffsetDateTime) -> ApiError {
    ApiError::Forbidden(format!("bootstrap token expired at {}", rfc3339(at)))
}

/// `GET <mount>/trust-bundle`: the self-signed roots the mount's CA chains to, PEM. One today;
/// a list so that a CA rotation can publish the old and the new root side by side.
pub(crate) fn trust_bundle(mount: &Mount) -> Result<Reply, ApiError> {
    let roots = trust_roots(mount)?;
    Ok(Reply::Raw {
        content_type: "application/x-pem-file",
        body: roots.concat().into_bytes(),
    })
}

fn trust_roots(mount: &Mount) -> Result<Vec<String>, ApiError> {
    let ca = mount.ca()?;
    let self_signed = |pem: &String| {
        cert::pem_certs(pem.as_bytes())
            .ok()
            .and_then(|d| d.first().and_then(|d| cert::facts(d).ok()))
            .is_some_and(|f| f.self_issued)
    };
    let mut roots: Vec<String> = ca
        .chain
        .iter()
        .filter(|p| self_signed(p))
        .cloned()
        .collect();
    // During a rotation the old and the new root side by side, so that leaves of either verify.
    for pem in &mount.rotation_roots {
        if !roots.contains(pem) {
            roots.push(pem.clone());
        }
    }
    if !roots.is_empty() {
        return Ok(roots);
    }
    // An intermediate set without its issuers: the farthest certificate known is the best
    // anchor there is; say so in the log rather than serve nothing.
    tracing::warn!(mount = %mount.record.path, "the mount's chain reaches no self-signed root; the trust bundle holds its topmost CA");
    Ok(ca.chain.last().cloned().into_iter().collect())
}
