//! Name constraint fields of `root/generate` and `root/sign-intermediate`: Vault's
//! `permitted_dns_domains` and the newer excluded, IP, email and URI fields, read into the
//! constraints `mutual-pki` stamps into the CA certificate.

use mutual_pki::constraints::{IpRange, NameConstraints};

use crate::{error::ApiError, params::Params};

/// The constraints asked for by a request (empty when it names none).
pub(crate) fn from_params(p: &Params) -> Result<NameConstraints, ApiError> {
    let ranges = |field: &str| -> Result<Vec<IpRange>, ApiError> {
        p.list(field)?
            .iter()
            .map(|r| {
                r.parse::<IpRange>()
                    .map_err(|e| ApiError::bad(format!("invalid value for \"{field}\": {e}")))
            })
            .collect()
    };
    Ok(NameConstraints {
        permitted_dns_domains: p.list("permitted_dns_domains")?,
        excluded_dns_domains: p.list("excluded_dns_domains")?,
        permitted_ip_ranges: ranges("permitted_ip_ranges")?,
        excluded_ip_ranges: ranges("excluded_ip_ranges")?,
        permitted_email_addresses: p.list("permitted_email_addresses")?,
        excluded_email_addresses: p.list("excluded_email_addresses")?,
        permitted_uri_domains: p.list("permitted_uri_domains")?,
        excluded_uri_domains: p.list("excluded_uri_domains")?,
    })
}
