use anyhow::{bail, Result};
use mutual_pki::{
    ca::RootRequest,
    ca::Urls,
    cert,
    constraints::{IpRange, NameConstraints},
    key::KeyType,
};
use serde_json::json;

use super::backend::Target;
use super::ca_info::CaInfo;

use crate::{
    cli::{CaCommand, KeyArgs},
    output,
};

fn key_type(k: &KeyArgs) -> Result<KeyType> {
    Ok(KeyType::from_parts(
        k.key_type.name(),
        k.key_bits.unwrap_or(0),
    )?)
}

pub async fn run(target: &Target, json: bool, cmd: CaCommand) -> Result<()> {
    match cmd {
        CaCommand::Init(a) => {
            let key_type = key_type(&a.key)?;
            let store = target.open_or_create().await?;
            let ca = store
                .init_root(
                    "root",
                    &RootRequest {
                        common_name: a.name.clone(),
                        key_type,
                        ttl: a.ttl,
                        path_len: a.path_len,
                        name_constraints: constraints(&a.constraints)?,
                        ..RootRequest::default()
                    },
                )
                .await?;
            report_ca(json, "created root CA", &ca)?;
            if !json {
                let (what, place) = store.location();
                println!("  {what:<12} {place}");
            }
            Ok(())
        }
        CaCommand::Intermediate(a) => {
            let key_type = key_type(&a.key)?;
            let store = target.open().await?;
            let ca = store
                .create_intermediate(
                    &a.ca,
                    &a.parent,
                    &RootRequest {
                        common_name: a.name.clone(),
                        key_type,
                        ttl: a.ttl,
                        path_len: a.path_len,
                        name_constraints: constraints(&a.constraints)?,
                        ..RootRequest::default()
                    },
                )
                .await?;
            report_ca(json, "created intermediate CA", &ca)
        }
        CaCommand::List => {
            let store = target.open().await?;
            let cas = store.list_cas().await?;
            let mut rows = Vec::new();
            let mut items = Vec::new();
            let mut issuer_rows = Vec::new();
            for ca in &cas {
                let f = cert::facts(&ca.cert_der)?;
                let issuers = store.issuers(&ca.name).await?;
                let mut item = ca_json(ca, &f);
                item["issuers"] = json!(issuers);
                items.push(item);
                for i in &issuers {
                    issuer_rows.push(vec![
                        ca.name.clone(),
                        i.id.clone(),
                        if i.name.is_empty() {
                            "-".into()
                        } else {
                            i.name.clone()
                        },
                        i.common_name.clone(),
                        i.not_after.get(..10).unwrap_or_default().to_string(),
                        match (i.default, i.rotation.as_str()) {
                            (true, "") => "default".into(),
                            (true, part) => format!("default, {part} ({})", i.phase),
                            (false, "") => "-".into(),
                            (false, part) => format!("{part} ({})", i.phase),
                        },
                    ]);
                }
                rows.push(vec![
                    ca.name.clone(),
                    f.common_name.clone().unwrap_or_default(),
                    f.key.to_string(),
                    output::short_time(f.not_after),
                    ca.parent.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            if json {
                output::json(&items)
            } else {
                output::table(&["NAME", "COMMON NAME", "KEY", "EXPIRES", "PARENT"], &rows);
                if !issuer_rows.is_empty() {
                    println!();
                    output::table(
                        &["CA", "ISSUER", "NAME", "COMMON NAME", "EXPIRES", "STATE"],
                        &issuer_rows,
                    );
                }
                Ok(())
            }
        }
        CaCommand::ImportVault(a) => super::import_vault::run(target, json, a).await,
        CaCommand::Rotate(a) => super::rotate::run(target, json, a).await,
        CaCommand::Cert { name } => {
            let store = target.open().await?;
            let ca = store.get_ca(&name).await?;
            if json {
                output::json(&json!({ "name": ca.name, "certificate": ca.cert_pem }))
            } else {
                print!("{}", ca.cert_pem);
                Ok(())
            }
        }
        CaCommand::Urls(a) => {
            if a.issuing.is_empty() && a.crl.is_empty() && a.ocsp.is_empty() {
                bail!(crate::cmd::UsageError(
                    "give --issuing URL, --crl URL and/or --ocsp URL".into()
                ));
            }
            for url in a.issuing.iter().chain(&a.crl).chain(&a.ocsp) {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!("\"{url}\" is not an http:// or https:// URL");
                }
            }
            let store = target.open().await?;
            let urls = Urls {
                issuing_certificates: a.issuing,
                crl_distribution_points: a.crl,
                ocsp_servers: a.ocsp,
            };
            store.set_urls(&a.name, &urls).await?;
            if json {
                output::json(
                    &json!({ "name": a.name, "issuing_certificates": urls.issuing_certificates, "crl_distribution_points": urls.crl_distribution_points, "ocsp_servers": urls.ocsp_servers }),
                )
            } else {
                println!(
                    "URLs of CA {} set; certificates it issues from now on carry them",
                    a.name
                );
                for u in &urls.issuing_certificates {
                    println!("  issuing      {u}");
                }
                for u in &urls.crl_distribution_points {
                    println!("  crl          {u}");
                }
                for u in &urls.ocsp_servers {
                    println!("  ocsp         {u}");
                }
                Ok(())
            }
        }
    }
}

fn ca_json(ca: &CaInfo, f: &cert::CertFacts) -> serde_json::Value {
    json!({
        "name": ca.name,
        "common_name": f.common_name,
        "subject": f.subject,
        "issuer": f.issuer,
        "parent": ca.parent,
        "key": f.key.to_string(),
        "serial_number": f.serial.to_string(),
        "not_after": output::rfc3339(f.not_after),
        "urls": ca.urls,
        "certificate": ca.cert_pem,
    })
}

fn report_ca(json: bool, what: &str, ca: &CaInfo) -> Result<()> {
    let f = cert::facts(&ca.cert_der)?;
    if json {
        return output::json(&ca_json(ca, &f));
    }
    println!("{what} {} ({})", ca.name, f.subject);
    println!("  key          {}", f.key);
    println!("  valid until  {}", output::short_time(f.not_after));
    println!("  serial       {}", f.serial);
    if let Some(p) = &ca.parent {
        println!("  signed by    {p} ({})", f.issuer);
    }
    println!("  certificate  mutual ca cert {}", ca.name);
    Ok(())
}

/// The name constraints asked for on the command line.
fn constraints(a: &crate::cli::ConstraintArgs) -> Result<NameConstraints> {
    let ranges = |flag: &str, v: &[String]| -> Result<Vec<IpRange>> {
        v.iter()
            .map(|r| {
                r.parse::<IpRange>()
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            })
            .collect()
    };
    Ok(NameConstraints {
        permitted_dns_domains: a.permit_dns.clone(),
        excluded_dns_domains: a.exclude_dns.clone(),
        permitted_ip_ranges: ranges("permit-ip", &a.permit_ip)?,
        excluded_ip_ranges: ranges("exclude-ip", &a.exclude_ip)?,
        permitted_email_addresses: a.permit_email.clone(),
        excluded_email_addresses: a.exclude_email.clone(),
        permitted_uri_domains: a.permit_uri.clone(),
        excluded_uri_domains: a.exclude_uri.clone(),
    })
}
