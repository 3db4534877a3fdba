//! `POST <mount>/renew`: a certificate renews itself. The caller is authenticated by the TLS
//! client certificate of its connection (no token); the certificate must be one this mount
//! issued (the very bytes it recorded), unrevoked and within its validity; the CSR proves the
//! new key; the new certificate has the same names under the same role, with the role's
//! current rules and TTL.

use std::{collections::BTreeSet, sync::Arc};

use mutual_pki::{
    cert::CertFacts,
    csr::{self, ParsedCsr},
    role::{IssueRequest, Role},
};
use mutual_store::sign_csr;
use time::OffsetDateTime;

use crate::{
    cert_auth::ClientCert,
    certindex::Lookup,
    error::ApiError,
    lifecycle::Counters,
    params::Params,
    pki::{cpu, default_ttl, is_rsa, record_and_answer, rfc3339},
    reply::Reply,
    state::{App, Mount},
};

/// Answers a renewal, logging and counting the decision.
pub(crate) async fn handle(
    app: &App,
    mount: &Mount,
    client: Option<&ClientCert>,
    p: &Params,
) -> Result<Reply, ApiError> {
    let leaf = client.and_then(|c| c.chain.first());
    let facts = client.and_then(|c| c.leaf.as_ref());
    let result = renew(app, mount, leaf, facts, p).await;
    let serial = facts.map(|f| f.serial.to_string()).unwrap_or_default();
    let cn = facts
        .and_then(|f| f.common_name.clone())
        .unwrap_or_default();
    match &result {
        Ok(_) => {
            Counters::bump(&app.counters.renewals_ok);
            tracing::info!(mount = %mount.record.path, serial, cn, decision = "renewed", "renewal");
        }
        Err(e) => {
            Counters::bump(&app.counters.renewals_refused);
            tracing::info!(mount = %mount.record.path, serial, cn, decision = "refused", reason = %e, "renewal");
        }
    }
    result
}

async fn renew(
    app: &App,
    mount: &Mount,
    leaf: Option<&Vec<u8>>,
    facts: Option<&CertFacts>,
    p: &Params,
) -> Result<Reply, ApiError> {
    let (Some(leaf), Some(f)) = (leaf, facts) else {
        return Err(ApiError::bad(
            "renewal is authenticated by the certificate being renewed: present it as the TLS client certificate (curl --cert/--key) on the server's TLS listener, started with --tls-client-ca",
        ));
    };
    let path = &mount.record.path;
    let serial = &f.serial;
    let not_ours = || {
        ApiError::Forbidden(format!(
            "certificate {serial} ({}) was not issued by mount \"{path}\"; only a certificate of this mount may renew here",
            f.subject
        ))
    };
    let (issued, revoked) = match app.certs.lookup(&app.store, serial).await? {
        Lookup::Found { issued, revoked } => (issued, revoked),
        Lookup::Unknown => return Err(not_ours()),
    };
    if issued.ca != *path || !issued.is(leaf) {
        return Err(not_ours());
    }
    if let Some(r) = revoked {
        return Err(ApiError::Forbidden(format!(
            "certificate {serial} was revoked at {} ({}); a revoked certificate cannot renew",
            rfc3339(r.at),
            r.reason
        )));
    }
    let now = OffsetDateTime::now_utc();
    if now < f.not_before {
        return Err(ApiError::Forbidden(format!(
            "certificate {serial} is not valid yet: notBefore {} is after the CA's clock {} (clock skew?)",
            rfc3339(f.not_before),
            rfc3339(now)
        )));
    }
    if now > f.not_after {
        return Err(ApiError::Forbidden(format!(
            "certificate {serial} expired at {} (now {}); an expired certificate cannot renew: enroll again with a bootstrap token",
            rfc3339(f.not_after),
            rfc3339(now)
        )));
    }
    let role_name = issued.role.clone().ok_or_else(|| {
        ApiError::Forbidden(format!(
            "certificate {serial} has no recorded role (issued before roles were recorded); enroll again with a bootstrap token"
        ))
    })?;
    let role = mount.roles.get(&role_name).cloned().ok_or_else(|| {
        ApiError::Forbidden(format!(
            "role \"{role_name}\", under which certificate {serial} was issued, no longer exists on mount \"{path}\""
        ))
    })?;
    let csr_text = p
        .string("csr")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("csr contains no data"))?;
    // Parsing verifies the CSR's signature: the caller holds the new key.
    let parsed = csr::parse(csr_text.as_bytes())?;
    if let Some(extra) = other_names(&parsed, f) {
        return Err(ApiError::bad(format!(
            "renewal keeps the names of the certificate: the CSR asks for {extra}, which certificate {serial} does not carry ({})",
            names(f).into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let cn = f.common_name.clone().unwrap_or_default();
    let mut req = IssueRequest {
        alt_names: f.dns_names.iter().chain(&f.emails).cloned().collect(),
        ip_sans: f.ip_addresses.iter().map(|ip| ip.to_string()).collect(),
        uri_sans: f.uris.clone(),
        ttl: p.duration("ttl")?,
        exclude_cn_from_sans: !cn.is_empty()
            && !f.dns_names.contains(&cn)
            && !f.emails.contains(&cn),
        common_name: cn,
        ..IssueRequest::default()
    };
    // The names come from the certificate, never from the CSR.
    let role = Arc::new(Role {
        use_csr_common_name: false,
        use_csr_sans: false,
        ..(*role).clone()
    });
    default_ttl(mount, &role, &mut req);
    let ca = mount.ca()?.clone();
    let max = mount.record.max_lease_ttl;
    let (ca2, role2) = (ca.clone(), role.clone());
    let signed = cpu(is_rsa(ca.key.key_type().kind()), move || {
        Ok(sign_csr(
            &ca2,
            &role2,
            max,
            &parsed,
            &req,
            OffsetDateTime::now_utc(),
        )?)
    })
    .await?;
    // The inventory notes the predecessor: a renewal has no token to name.
    let request = format!("{path}/renew of {serial}");
    crate::inventory::on_behalf_of(
        None,
        request,
        record_and_answer(app, &ca, role.no_store, signed, p),
    )
    .await
}

/// Every name of a certificate, typed: `cn:…`, `dns:…`, `ip:…`, `uri:…`, `email:…`.
fn names(f: &CertFacts) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    if let Some(cn) = &f.common_name {
        all.insert(format!("cn:{cn}"));
    }
    all.extend(f.dns_names.iter().map(|d| format!("dns:{d}")));
    all.extend(f.ip_addresses.iter().map(|i| format!("ip:{i}")));
    all.extend(f.uris.iter().map(|u| format!("uri:{u}")));
    all.extend(f.emails.iter().map(|e| format!("email:{e}")));
    all
}

/// The names a CSR asks for that the certificate does not carry, if any. A CSR may name
/// fewer (or none): the new certificate gets the old one's names all the same.
fn other_names(csr: &ParsedCsr, f: &CertFacts) -> Option<String> {
    let have = names(f);
    let mut asked = BTreeSet::new();
    if !csr.common_name.is_empty() {
        asked.insert(format!("cn:{}", csr.common_name));
    }
    asked.extend(csr.dns_names.iter().map(|d| format!("dns:{d}")));
    asked.extend(csr.ip_addresses.iter().map(|i| format!("ip:{i}")));
    asked.extend(csr.uris.iter().map(|u| format!("uri:{u}")));
    asked.extend(csr.emails.iter().map(|e| format!("email:{e}")));
    let extra: Vec<String> = asked.difference(&have).cloned().collect();
    (!extra.is_empty()).then(|| extra.join(", "))
}
