//! The role check as a table: a case is the story's `service` role, a request for
//! `www.example.com` and a context, each edited to the point, and what must come out.

use std::time::Duration;

use time::{macros::datetime, OffsetDateTime};

use crate::key::{Curve, KeyKind};
use crate::role::{CheckContext, Checked, IssueRequest, RequestKey, Role};

pub const HOUR: u64 = 3600;

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * HOUR)
}

/// The story's `service` role: example.com, bare domains, subdomains, localhost and IP
/// SANs, host names enforced, max_ttl 720h; everything else Vault's default.
pub fn service() -> Role {
    Role {
        name: "service".into(),
        allowed_domains: vec!["example.com".into()],
        allow_bare_domains: true,
        allow_subdomains: true,
        allow_localhost: true,
        allow_ip_sans: true,
        enforce_hostnames: true,
        max_ttl: Some(hours(720)),
        ..Role::default()
    }
}

pub const NOW: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);

pub fn context() -> CheckContext {
    CheckContext {
        now: NOW,
        ca_name: "root".into(),
        ca_not_after: datetime!(2035-01-01 0:00 UTC),
        // Vault's default mount max lease TTL: 32 days.
        system_max_ttl: hours(768),
    }
}

#[derive(Default)]
pub struct Expect {
    pub cn: Option<&'static str>,
    pub dns: Option<&'static [&'static str]>,
    pub email: Option<&'static [&'static str]>,
    pub ip: Option<&'static [&'static str]>,
    pub uri: Option<&'static [&'static str]>,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub warnings: Option<&'static [&'static str]>,
}

pub enum Want {
    Ok(Expect),
    Refused(&'static str),
}

pub struct Case {
    pub label: &'static str,
    pub role: Role,
    pub req: IssueRequest,
    pub ctx: CheckContext,
    pub want: Want,
}

pub fn case(label: &'static str) -> Case {
    Case {
        label,
        role: service(),
        req: IssueRequest {
            common_name: "www.example.com".into(),
            ..IssueRequest::default()
        },
        ctx: context(),
        want: Want::Ok(Expect::default()),
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Case {
    pub fn role(mut self, edit: impl FnOnce(&mut Role)) -> Self {
        edit(&mut self.role);
        self
    }
    pub fn domains(self, domains: &[&str]) -> Self {
        let domains = strings(domains);
        self.role(|r| r.allowed_domains = domains)
    }
    pub fn cn(mut self, cn: &str) -> Self {
        self.req.common_name = cn.into();
        self
    }
    pub fn alt(mut self, names: &[&str]) -> Self {
        self.req.alt_names = strings(names);
        self
    }
    pub fn ips(mut self, ips: &[&str]) -> Self {
        self.req.ip_sans = strings(ips);
        self
    }
    pub fn uris(mut self, uris: &[&str]) -> Self {
        self.req.uri_sans = strings(uris);
        self
    }
    pub fn exclude_cn(mut self) -> Self {
        self.req.exclude_cn_from_sans = true;
        self
    }
    pub fn ttl(mut self, h: u64) -> Self {
        self.req.ttl = Some(hours(h));
        self
    }
    pub fn csr(mut self, key: KeyKind) -> Self {
        self.req.key = RequestKey::Csr(key);
        self
    }
    pub fn ca_not_after(mut self, at: OffsetDateTime) -> Self {
        self.ctx.ca_not_after = at;
        self
    }
    pub fn system_max(mut self, h: u64) -> Self {
        self.ctx.system_max_ttl = hours(h);
        self
    }
    pub fn expect(mut self, edit: impl FnOnce(&mut Expect)) -> Self {
        if let Want::Ok(expect) = &mut self.want {
            edit(expect);
        }
        self
    }
    pub fn dns(self, dns: &'static [&'static str]) -> Self {
        self.expect(|e| e.dns = Some(dns))
    }
    pub fn refused(mut self, code: &'static str) -> Self {
        self.want = Want::Refused(code);
        self
    }
}

pub fn rsa(bits: u32) -> KeyKind {
    KeyKind::Rsa { bits }
}
pub fn ec(curve: Curve) -> KeyKind {
    KeyKind::Ec { curve }
}

pub const LABEL_63: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Runs a table and reports every case that went wrong, not just the first.
pub fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let got = c.role.check(&c.req, &c.ctx);
        let problem = match (&c.want, &got) {
            (Want::Refused(code), Err(r)) if r.code() == *code => None,
            (Want::Refused(code), _) => Some(format!("want {code}, got {got:?}")),
            (Want::Ok(_), Err(r)) => Some(format!("want ok, got {}: {r}", r.code())),
            (Want::Ok(e), Ok(ok)) => compare(e, ok),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", c.label));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

pub fn compare(e: &Expect, ok: &Checked) -> Option<String> {
    let ips: Vec<String> = ok.ip_sans.iter().map(|ip| ip.to_string()).collect();
    let mut diffs = Vec::new();
    let mut field = |name: &str, want: Option<Vec<String>>, got: &[String]| {
        if let Some(want) = want {
            if want != got {
                diffs.push(format!("{name}: want {want:?}, got {got:?}"));
            }
        }
    };
    field(
        "cn",
        e.cn.map(|cn| strings(&[cn])),
        std::slice::from_ref(&ok.common_name),
    );
    field("dns", e.dns.map(strings), &ok.dns_sans);
    field("email", e.email.map(strings), &ok.email_sans);
    field("ip", e.ip.map(strings), &ips);
    field("uri", e.uri.map(strings), &ok.uri_sans);
    field("warnings", e.warnings.map(strings), &ok.warnings);
    let times = [
        ("not_before", e.not_before, ok.not_before),
        ("not_after", e.not_after, ok.not_after),
    ];
    for (name, want, got) in times {
        if want.is_some_and(|want| want != got) {
            diffs.push(format!("{name}: want {want:?}, got {got}"));
        }
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}
