//! `mutual ca import-vault`: moves a CA from a running Vault/OpenBao into the local store as a
//! mount, through Vault's own API: the default issuer's chain (`issuer/default/json`), its
//! URLs and max lease TTL, every certificate (`LIST certs`, `cert/:serial`) and every
//! revocation (`LIST certs/revoked` and each certificate's `revocation_time`), so that leaves
//! issued there stay listed, revocable and in mutual's CRL. Vault never exports a CA key: the
//! operator brings it (`--key-file`, or `issuers/import/bundle` later). docs/from-vault.md.

use anyhow::{bail, Context, Result};
use mutual_pki::{cert, crl::Reason, key::PrivateKey};
use mutual_store::MountRecord;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    backend::{Backend, Target},
    remote::Remote,
};
use crate::{cli::CaImportVaultArgs, output};

pub async fn run(target: &Target, json_out: bool, a: CaImportVaultArgs) -> Result<()> {
    if target.addr.is_some() {
        bail!(super::UsageError(
            "import-vault writes into the local store (--data DIR), not through --addr; run it before `mutual server --data DIR` starts (or restart the server)".into()
        ));
    }
    let Backend::Local(store) = target.open_or_create().await? else {
        bail!("import-vault needs the local store");
    };
    let from = a.from_mount.trim_matches('/').to_string();
    let mount = a.mount.clone().unwrap_or_else(|| from.clone());
    let src = Remote::new(
        &a.from_addr,
        Some(a.from_token.clone()),
        a.from_cacert.as_deref(),
    )?;
    let key = match &a.key_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading --key-file {}", f.display()))?;
            Some(
                PrivateKey::from_pem(&text)
                    .with_context(|| format!("--key-file {}", f.display()))?,
            )
        }
        None => None,
    };
    let issuer = src
        .read(&format!("{from}/issuer/default/json"))
        .await?
        .with_context(|| format!("{} has no default issuer on mount \"{from}\"", a.from_addr))?;
    let chain: Vec<String> = issuer.data["ca_chain"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some(ca_pem) = chain.first() else {
        bail!(
            "{} answered no certificate for {from}/issuer/default",
            a.from_addr
        );
    };
    let ca_der = cert::pem_certs(ca_pem.as_bytes())?.remove(0);
    if let Some(k) = &key {
        mutual_pki::ca::check_key_matches(&ca_der, k).with_context(|| {
            format!(
                "--key-file {} is not the key of the CA on {from}",
                a.key_file
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new("-"))
                    .display()
            )
        })?;
    }
    // The mount, with the source's max lease TTL and URLs.
    if !store.list_mounts().await?.iter().any(|m| m.path == mount) {
        let mut record = MountRecord::new(&mount, "pki");
        if let Some(t) = src.read(&format!("sys/mounts/{from}/tune")).await? {
            let secs = t.data["max_lease_ttl"].as_u64().unwrap_or(0);
            record.max_lease_ttl = std::time::Duration::from_secs(secs);
        }
        if let Some(u) = src.read(&format!("{from}/config/urls")).await? {
            let list = |k: &str| -> Vec<String> {
                u.data[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            record.urls.issuing_certificates = list("issuing_certificates");
            record.urls.crl_distribution_points = list("crl_distribution_points");
            record.urls.ocsp_servers = list("ocsp_servers");
        }
        store.create_mount(&record).await?;
    }
    let imported = store.import_ca(&mount, &chain, key.as_ref()).await?;
    // Roles, as Vault answers them: mutual takes Vault's role fields unchanged.
    let mut roles = 0usize;
    for name in src.list(&format!("{from}/roles")).await? {
        let Some(r) = src.read(&format!("{from}/roles/{name}")).await? else {
            continue;
        };
        let body = serde_json::to_vec(&r.data)?;
        let params = mutual_server::Params::parse(&body, None)
            .map_err(|e| anyhow::anyhow!("role \"{name}\" of {from}: {e}"))?;
        let (role, _) = mutual_server::role_from_params(&name, &mount, &params)
            .map_err(|e| anyhow::anyhow!("role \"{name}\" of {from}: {e}"))?;
        store.put_mount_role(&mount, &role).await?;
        roles += 1;
    }
    // Every certificate and revocation: `certs` lists them all, `certs/revoked` the revoked
    // (also those whose row a tidy may have left only there).
    let mut serials = src.list(&format!("{from}/certs")).await?;
    for s in src.list(&format!("{from}/certs/revoked")).await? {
        if !serials.contains(&s) {
            serials.push(s);
        }
    }
    let ca_serial = cert::facts(&ca_der)?.serial.to_string();
    let (mut certs, mut revoked) = (0usize, 0usize);
    for serial in &serials {
        if *serial == ca_serial {
            continue;
        }
        let Some(c) = src.read(&format!("{from}/cert/{serial}")).await? else {
            continue;
        };
        let Some(pem) = c.data["certificate"].as_str() else {
            continue;
        };
        let at = c.data["revocation_time"].as_i64().unwrap_or(0);
        let revocation = (at > 0).then(|| {
            let reason = c.data["revocation_reason"]
                .as_str()
                .and_then(|r| r.parse::<Reason>().ok())
                .unwrap_or(Reason::Unspecified);
            (
                OffsetDateTime::from_unix_timestamp(at)
                    .unwrap_or_else(|_| OffsetDateTime::now_utc()),
                reason,
            )
        });
        if revocation.is_some() {
            revoked += 1;
        }
        store.import_cert(&mount, pem, revocation).await?;
        certs += 1;
    }
    let report = json!({
        "mount": mount,
        "issuer_id": imported.id,
        "with_key": key.is_some(),
        "certificates": certs,
        "roles": roles,
        "revoked": revoked,
    });
    if json_out {
        return output::json(&report);
    }
    let subject = cert::facts(&ca_der)?.subject;
    println!(
        "imported CA {subject} from {}/{from} into mount {mount}",
        a.from_addr
    );
    println!("  issuer       {}", imported.id);
    println!(
        "  key          {}",
        if key.is_some() {
            "imported: mutual issues under it"
        } else {
            "not given: import it with issuers/import/bundle to issue"
        }
    );
    println!("  certificates {certs} ({revoked} revoked, in mutual's CRL)");
    println!("  roles        {roles}");
    Ok(())
}
