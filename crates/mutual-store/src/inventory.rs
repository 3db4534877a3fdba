//! The inventory: which certificates were issued, searched by the questions operators ask
//! (who holds a certificate for this name, what did this role or token issue, what expires this
//! week, what was revoked), sorted and paged on the server by keyset so that a page costs the
//! same at the millionth row as at the first.
//!
//! Names in the subject alternative name are kept in a side table (`cert_names`) filled when a
//! certificate is recorded, and the token that asked for it in another (`cert_issuers`); every
//! filter and every sort order walks an index (see `schema.rs`), never the whole table.

use mutual_pki::serial::Serial;
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, CertRecord, Store, StoreError};

/// Most rows one search returns.
pub const MAX_PAGE: u32 = 500;

/// The kind of a subject alternative name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameKind {
    /// `dNSName`, stored lower-case.
    Dns,
    /// `iPAddress`, in its canonical text form.
    Ip,
    /// `uniformResourceIdentifier`.
    Uri,
    /// `rfc822Name`.
    Email,
}

impl NameKind {
    /// The word stored and accepted in queries (`dns`, `ip`, `uri`, `email`).
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Dns => "dns",
            NameKind::Ip => "ip",
            NameKind::Uri => "uri",
            NameKind::Email => "email",
        }
    }

    /// The kind named by `word`.
    pub fn parse(word: &str) -> Option<NameKind> {
        match word {
            "dns" => Some(NameKind::Dns),
            "ip" => Some(NameKind::Ip),
            "uri" => Some(NameKind::Uri),
            "email" => Some(NameKind::Email),
            _ => None,
        }
    }

    /// `value` as it is stored, so that a search finds it whatever case it was typed in
    /// (DNS names and e-mail domains compare without case; URIs are kept as issued).
    pub fn normalize(self, value: &str) -> String {
        match self {
            NameKind::Dns | NameKind::Email => value.trim().to_ascii_lowercase(),
            NameKind::Ip => value
                .trim()
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| value.trim().to_string()),
            NameKind::Uri => value.trim().to_string(),
        }
    }
}

/// The subject alternative names of a certificate (PEM), as the inventory stores them. A
/// certificate that does not parse has none: it is still recorded, and found by its other
/// fields.
pub fn names_of(cert_pem: &str) -> Vec<(NameKind, String)> {
    match mutual_pki::cert::pem_certs(cert_pem.as_bytes()) {
        Ok(ders) => ders.first().map(|d| names_of_der(d)).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// [`names_of`] for a certificate already in DER.
pub fn names_of_der(der: &[u8]) -> Vec<(NameKind, String)> {
    let Ok(f) = mutual_pki::cert::alt_names(der) else {
        return Vec::new();
    };
    inventory_names(&f.dns_names, &f.ip_addresses, &f.uris, &f.emails)
}

/// The subject alternative names a certificate was signed with, as the inventory stores them:
/// what an issuing path has in hand without reading the certificate back. The same as
/// [`names_of_der`] of what it signed (tests/inventory.rs checks it).
pub fn inventory_names(
    dns: &[String],
    ips: &[std::net::IpAddr],
    uris: &[String],
    emails: &[String],
) -> Vec<(NameKind, String)> {
    let mut out: Vec<(NameKind, String)> =
        Vec::with_capacity(dns.len() + ips.len() + uris.len() + emails.len());
    out.extend(
        dns.iter()
            .map(|n| (NameKind::Dns, NameKind::Dns.normalize(n))),
    );
    out.extend(ips.iter().map(|ip| (NameKind::Ip, ip.to_string())));
    out.extend(uris.iter().map(|u| (NameKind::Uri, u.clone())));
    out.extend(
        emails
            .iter()
            .map(|e| (NameKind::Email, NameKind::Email.normalize(e))),
    );
    out.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    out.dedup();
    out
}

/// The order of a search's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By notAfter (soonest first unless descending).
    #[default]
    Expiry,
    /// By subject CN.
    CommonName,
    /// By the time it was recorded.
    Issued,
    /// By serial.
    Serial,
    /// By the order of revocation (only revoked certificates).
    Revoked,
}

impl SortKey {
    /// The word accepted in queries.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Expiry => "expiry",
            SortKey::CommonName => "cn",
            SortKey::Issued => "issued",
            SortKey::Serial => "serial",
            SortKey::Revoked => "revoked",
        }
    }

    /// The key named by `word`.
    pub fn parse(word: &str) -> Option<SortKey> {
        match word {
            "expiry" | "not_after" => Some(SortKey::Expiry),
            "cn" | "common_name" => Some(SortKey::CommonName),
            "issued" | "issued_at" => Some(SortKey::Issued),
            "serial" => Some(SortKey::Serial),
            "revoked" => Some(SortKey::Revoked),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::Expiry => "not_after",
            SortKey::CommonName => "common_name",
            SortKey::Issued => "issued_at",
            SortKey::Serial => "serial",
            SortKey::Revoked => "revoked_seq",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, SortKey::CommonName | SortKey::Serial)
    }
}

/// What to look for. Every field narrows the search; an empty search lists everything.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Subject CN starts with this (case-sensitive, as stored).
    pub cn_prefix: Option<String>,
    /// Has this subject alternative name (exact, after [`NameKind::normalize`]).
    pub san: Option<(NameKind, String)>,
    /// Issued under this role.
    pub role: Option<String>,
    /// Issued by this CA (the mount's path on a server).
    pub ca: Option<String>,
    /// Only certificates of these CAs (what the caller may see); `None`: any.
    pub visible_cas: Option<Vec<String>>,
    /// This serial.
    pub serial: Option<Serial>,
    /// notAfter at or after this instant.
    pub expires_after: Option<OffsetDateTime>,
    /// notAfter before this instant.
    pub expires_before: Option<OffsetDateTime>,
    /// `Some(true)`: only revoked; `Some(false)`: only not revoked.
    pub revoked: Option<bool>,
    /// Issued at the request of the token with this accessor.
    pub issued_by: Option<String>,
    /// Order.
    pub sort: SortKey,
    /// Largest first.
    pub descending: bool,
    /// Page size (1..=[`MAX_PAGE`]; 0 means 50).
    pub limit: u32,
    /// Where the previous page ended ([`Page::next`]).
    pub cursor: Option<Cursor>,
}

/// A position in a sorted search: the sort key and serial of the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    key: CursorKey,
    serial: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CursorKey {
    Int(i64),
    Text(String),
}

impl Cursor {
    /// The opaque text handed to callers: `i<number>.<serial hex>` or `t<hex of text>.<serial
    /// hex>`, so that it survives a URL untouched.
    pub fn encode(&self) -> String {
        match &self.key {
            CursorKey::Int(n) => format!("i{n}.{}", self.serial),
            CursorKey::Text(t) => format!("t{}.{}", hex::encode(t), self.serial),
        }
    }

    /// Reads back what [`Cursor::encode`] wrote.
    pub fn decode(text: &str) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadQuery(format!("\"{text}\" is not a cursor of this search"));
        let (key, serial) = text.split_once('.').ok_or_else(bad)?;
        if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let key = match key.split_at_checked(1) {
            Some(("i", n)) => CursorKey::Int(n.parse().map_err(|_| bad())?),
            Some(("t", h)) => CursorKey::Text(
                String::from_utf8(hex::decode(h).map_err(|_| bad())?).map_err(|_| bad())?,
            ),
            _ => return Err(bad()),
        };
        Ok(Cursor {
            key,
            serial: serial.to_ascii_lowercase(),
        })
    }
}

/// A found certificate: its record, when it was recorded, and who asked for it.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The record.
    #[serde(flatten)]
    pub cert: CertRecord,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// The accessor of the token that asked for it (None: issued locally, by a client
    /// certificate, or before the inventory recorded it).
    pub issued_by: Option<String>,
    /// The request that produced it (`pki/issue/web`, `pki/renew of 3a:…`; None when not
    /// recorded).
    pub request: Option<String>,
}

/// One page of results.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The certificates, in the search's order.
    pub certs: Vec<Found>,
    /// The cursor of the next page, when this one was full.
    pub next: Option<String>,
}

/// A bind value of a built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// The SQL of a search and its bind values, in order: pure, so that the indexes each filter
/// relies on are checked by a table test.
pub(crate) fn build(s: &Search) -> (String, Vec<Bind>) {
    let mut sql = String::from(
        "SELECT c.*, i.accessor AS issued_by, COALESCE(c.request, i.request) AS made_by FROM certs c \
         LEFT JOIN cert_issuers i ON i.serial = c.serial WHERE 1 = 1",
    );
    let mut binds = Vec::new();
    if let Some(p) = s.cn_prefix.as_ref().filter(|p| !p.is_empty()) {
        // A range rather than LIKE: LIKE is case-insensitive by default and would not use the
        // (binary) index; every string starting with `p` sorts between `p` and `p` + U+10FFFF.
        sql.push_str(" AND c.common_name >= ? AND c.common_name < ?");
        binds.push(Bind::Text(p.clone()));
        binds.push(Bind::Text(format!("{p}\u{10FFFF}")));
    }
    if let Some((kind, value)) = &s.san {
        sql.push_str(
            " AND c.serial IN (SELECT serial FROM cert_names WHERE kind = ? AND value = ?)",
        );
        binds.push(Bind::Text(kind.as_str().into()));
        binds.push(Bind::Text(kind.normalize(value)));
    }
    if let Some(role) = &s.role {
        sql.push_str(" AND c.role = ?");
        binds.push(Bind::Text(role.clone()));
    }
    if let Some(ca) = &s.ca {
        sql.push_str(" AND c.ca = ?");
        binds.push(Bind::Text(ca.clone()));
    }
    if let Some(cas) = &s.visible_cas {
        if cas.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else if cas.len() == 1 {
            // An equality, so that the (ca, not_after, serial) index also gives the order.
            sql.push_str(" AND c.ca = ?");
            binds.push(Bind::Text(cas[0].clone()));
        } else {
            sql.push_str(" AND c.ca IN (");
            sql.push_str(&vec!["?"; cas.len()].join(", "));
            sql.push(')');
            binds.extend(cas.iter().map(|c| Bind::Text(c.clone())));
        }
    }
    if let Some(serial) = &s.serial {
        sql.push_str(" AND c.serial = ?");
        binds.push(Bind::Text(serial.to_hex()));
    }
    if let Some(t) = s.expires_after {
        sql.push_str(" AND c.not_after >= ?");
        binds.push(Bind::Int(t.unix_timestamp()));
    }
    if let Some(t) = s.expires_before {
        sql.push_str(" AND c.not_after < ?");
        binds.push(Bind::Int(t.unix_timestamp()));
    }
    match s.revoked {
        Some(true) => sql.push_str(" AND c.revoked_at IS NOT NULL"),
        Some(false) => sql.push_str(" AND c.revoked_at IS NULL"),
        None => {}
    }
    if let Some(acc) = &s.issued_by {
        sql.push_str(" AND c.serial IN (SELECT serial FROM cert_issuers WHERE accessor = ?)");
        binds.push(Bind::Text(acc.clone()));
    }
    if s.sort == SortKey::Revoked {
        // The feed's partial index orders revocations; only revoked rows are in it.
        sql.push_str(" AND c.revoked_seq IS NOT NULL");
    }
    let col = s.sort.column();
    let (cmp, dir) = if s.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = &s.cursor {
        if s.sort == SortKey::Serial {
            sql.push_str(&format!(" AND c.serial {cmp} ?"));
        } else {
            sql.push_str(&format!(" AND (c.{col}, c.serial) {cmp} (?, ?)"));
            binds.push(match &c.key {
                CursorKey::Int(n) => Bind::Int(*n),
                CursorKey::Text(t) => Bind::Text(t.clone()),
            });
        }
        binds.push(Bind::Text(c.serial.clone()));
    }
    if s.sort == SortKey::Serial {
        sql.push_str(&format!(" ORDER BY c.serial {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY c.{col} {dir}, c.serial {dir}"));
    }
    sql.push_str(&format!(" LIMIT {}", page_size(s.limit) + 1));
    (crate::db::numbered(&sql), binds)
}

fn page_size(limit: u32) -> u32 {
    match limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    }
}

/// Certificates issued on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// How many.
    pub issued: u64,
}

impl Store {
    /// One page of the certificates that match `search`.
    pub async fn search_certs(&self, search: &Search) -> Result<Page, StoreError> {
        let (sql, binds) = build(search);
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Int(n) => q.bind(n),
                Bind::Text(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(self.pool()).await.map_err(db_err)?;
        let size = page_size(search.limit) as usize;
        let full = rows.len() > size;
        let certs: Vec<Found> = rows
            .iter()
            .take(size)
            .map(|r| Found {
                cert: crate::sqlite::cert_from_row(r),
                issued_at: OffsetDateTime::from_unix_timestamp(r.get("issued_at"))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                issued_by: r
                    .get::<Option<String>, _>("issued_by")
                    .filter(|a| !a.is_empty()),
                request: r
                    .get::<Option<String>, _>("made_by")
                    .filter(|q| !q.is_empty()),
            })
            .collect();
        let next = match (full, rows.get(size - 1)) {
            (true, Some(last)) => {
                let serial: String = last.get("serial");
                let key = if search.sort.is_text() {
                    CursorKey::Text(last.get(search.sort.column()))
                } else {
                    CursorKey::Int(last.get(search.sort.column()))
                };
                Some(Cursor { key, serial }.encode())
            }
            _ => None,
        };
        Ok(Page { certs, next })
    }

    /// The subject alternative names recorded for a certificate.
    pub async fn cert_names(&self, serial: &Serial) -> Result<Vec<(NameKind, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, value FROM cert_names WHERE serial = $1 ORDER BY kind, value",
        )
        .bind(serial.to_hex())
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| Some((NameKind::parse(&k)?, v)))
            .collect())
    }

    /// How many certificates were recorded on each of the last `days` UTC days (days without
    /// any are left out), oldest first, among `visible_cas` when given.
    pub async fn issued_per_day(
        &self,
        days: u32,
        visible_cas: Option<&[String]>,
        now: OffsetDateTime,
    ) -> Result<Vec<DayCount>, StoreError> {
        let start = (now.unix_timestamp() / 86_400 - i64::from(days.max(1)) + 1) * 86_400;
        let mut sql = String::from(
            "SELECT issued_at / 86400 AS day, COUNT(*) AS n FROM certs WHERE issued_at >= ?",
        );
        if let Some(cas) = visible_cas {
            if cas.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND ca IN (");
            sql.push_str(&vec!["?"; cas.len()].join(", "));
            sql.push(')');
        }
        sql.push_str(" GROUP BY day ORDER BY day");
        let sql = crate::db::numbered(&sql);
        let mut q = sqlx::query(&sql).bind(start);
        for ca in visible_cas.unwrap_or_default() {
            q = q.bind(ca);
        }
        let rows = q.fetch_all(self.pool()).await.map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let day: i64 = r.get("day");
                let n: i64 = r.get("n");
                let date = OffsetDateTime::from_unix_timestamp(day * 86_400)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                    .date();
                DayCount {
                    day: date.to_string(),
                    issued: n.max(0) as u64,
                }
            })
            .collect())
    }

    /// Fills the inventory's side tables for certificates recorded before it existed (once
    /// per store: a marker in `meta` says it is done).
    pub(crate) async fn backfill_inventory(&self) -> Result<(), StoreError> {
        let done: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'inventory_names'")
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        if done.is_some() {
            return Ok(());
        }
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT serial, cert_pem FROM certs WHERE serial > $1 ORDER BY serial LIMIT 1000",
            )
            .bind(&after)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
            let Some(last) = rows.last() else { break };
            after = last.0.clone();
            let mut tx = self.pool().begin().await.map_err(db_err)?;
            for (serial, pem) in &rows {
                for (kind, value) in names_of(pem) {
                    sqlx::query(
                        "INSERT INTO cert_names (kind, value, serial) VALUES ($1, $2, $3) ON CONFLICT (kind, value, serial) DO NOTHING",
                    )
                    .bind(kind.as_str())
                    .bind(value)
                    .bind(serial)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
            }
            tx.commit().await.map_err(db_err)?;
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ('inventory_names', '1') ON CONFLICT (key) DO NOTHING")
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// Writes a certificate's names and issuer into the side tables, inside the caller's
/// transaction (the group-commit writer's).
pub(crate) fn insert_side_rows(
    tx: &rusqlite::Transaction<'_>,
    serial: &str,
    names: &[(NameKind, String)],
    issued_by: Option<&str>,
) -> rusqlite::Result<()> {
    if !names.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO cert_names (kind, value, serial) VALUES (?, ?, ?)",
        )?;
        for (kind, value) in names {
            stmt.execute(rusqlite::params![kind.as_str(), value, serial])?;
        }
    }
    if let Some(accessor) = issued_by {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO cert_issuers (serial, accessor) VALUES (?, ?)",
        )?;
        stmt.execute(rusqlite::params![serial, accessor])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(n).unwrap()
    }

    /// Each filter, the SQL it adds and the values it binds: the index each relies on is named
    /// in schema.rs (`certs_cn`, `cert_names` primary key, `certs_role`, `certs_ca`,
    /// `certs_expiry`, `cert_issuers_accessor`).
    #[test]
    fn filters_become_indexed_conditions() {
        let cases: Vec<(Search, &str, Vec<Bind>)> = vec![
            (
                Search {
                    cn_prefix: Some("alice".into()),
                    sort: SortKey::CommonName,
                    ..Search::default()
                },
                "AND c.common_name >= ? AND c.common_name < ? ORDER BY c.common_name ASC, c.serial ASC LIMIT 51",
                vec![Bind::Text("alice".into()), Bind::Text("alice\u{10FFFF}".into())],
            ),
            (
                Search {
                    san: Some((NameKind::Dns, "WWW.Example.com".into())),
                    ..Search::default()
                },
                "AND c.serial IN (SELECT serial FROM cert_names WHERE kind = ? AND value = ?) ORDER BY c.not_after ASC, c.serial ASC LIMIT 51",
                vec![Bind::Text("dns".into()), Bind::Text("www.example.com".into())],
            ),
            (
                Search {
                    role: Some("service".into()),
                    ca: Some("pki".into()),
                    revoked: Some(false),
                    limit: 10,
                    ..Search::default()
                },
                "AND c.role = ? AND c.ca = ? AND c.revoked_at IS NULL ORDER BY c.not_after ASC, c.serial ASC LIMIT 11",
                vec![Bind::Text("service".into()), Bind::Text("pki".into())],
            ),
            (
                Search {
                    expires_after: Some(t(100)),
                    expires_before: Some(t(200)),
                    revoked: Some(true),
                    limit: 100_000,
                    ..Search::default()
                },
                "AND c.not_after >= ? AND c.not_after < ? AND c.revoked_at IS NOT NULL ORDER BY c.not_after ASC, c.serial ASC LIMIT 501",
                vec![Bind::Int(100), Bind::Int(200)],
            ),
            (
                Search {
                    issued_by: Some("acc1".into()),
                    visible_cas: Some(vec!["a".into(), "b".into()]),
                    sort: SortKey::Issued,
                    descending: true,
                    cursor: Some(Cursor::decode("i77.0aff").unwrap()),
                    ..Search::default()
                },
                "AND c.ca IN (?, ?) AND c.serial IN (SELECT serial FROM cert_issuers WHERE accessor = ?) AND (c.issued_at, c.serial) < (?, ?) ORDER BY c.issued_at DESC, c.serial DESC LIMIT 51",
                vec![
                    Bind::Text("a".into()),
                    Bind::Text("b".into()),
                    Bind::Text("acc1".into()),
                    Bind::Int(77),
                    Bind::Text("0aff".into()),
                ],
            ),
            (
                Search {
                    serial: Some(Serial::parse("0a:ff").unwrap()),
                    sort: SortKey::Serial,
                    cursor: Some(Cursor::decode("t.0a").unwrap()),
                    ..Search::default()
                },
                "AND c.serial = ? AND c.serial > ? ORDER BY c.serial ASC LIMIT 51",
                vec![Bind::Text("0aff".into()), Bind::Text("0a".into())],
            ),
            (
                Search {
                    visible_cas: Some(vec![]),
                    ..Search::default()
                },
                "AND 1 = 0 ORDER BY c.not_after ASC, c.serial ASC LIMIT 51",
                vec![],
            ),
        ];
        for (search, tail, binds) in cases {
            let (sql, got) = build(&search);
            let rest = sql.split("WHERE 1 = 1 ").nth(1).unwrap_or_default();
            assert_eq!(rest, crate::db::numbered(tail), "{search:?}");
            assert_eq!(got, binds, "{search:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_named() {
        for c in [
            Cursor {
                key: CursorKey::Int(-5),
                serial: "01ab".into(),
            },
            Cursor {
                key: CursorKey::Text("bob <x>.example".into()),
                serial: "ff".into(),
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in ["", "i1", "x1.ab", "i1.zz", "tzz.ab", "i.ab"] {
            let e = Cursor::decode(bad).unwrap_err().to_string();
            assert_eq!(e, format!("\"{bad}\" is not a cursor of this search"));
        }
    }

    #[test]
    fn names_normalize() {
        let cases = [
            (NameKind::Dns, " WWW.Example.COM ", "www.example.com"),
            (NameKind::Ip, "::0001", "::1"),
            (NameKind::Ip, "not-an-ip", "not-an-ip"),
            (NameKind::Uri, "spiffe://Ex/a", "spiffe://Ex/a"),
            (NameKind::Email, "A@B.org", "a@b.org"),
        ];
        for (kind, input, want) in cases {
            assert_eq!(kind.normalize(input), want);
        }
        for k in ["dns", "ip", "uri", "email"] {
            assert_eq!(NameKind::parse(k).map(|n| n.as_str()), Some(k));
        }
        assert_eq!(NameKind::parse("cn"), None);
    }

    /// The request that produced each certificate is on its own row; only a token's accessor
    /// goes to `cert_issuers`, so a renewal writes no row there. A row of an older release,
    /// whose request is in `cert_issuers`, still shows it.
    #[tokio::test]
    async fn requests_are_kept_with_the_certificate_and_older_rows_still_read() {
        use crate::OwnedCert;
        use mutual_pki::{ca, cert};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).await.unwrap();
        let writer = store.cert_writer().unwrap();
        let now = OffsetDateTime::now_utc();
        let mut serials = vec![];
        let cases = [
            (Some("acc-1"), Some("pki/issue/web")),
            (None, Some("pki/renew of 01:02")),
            (None, None),
        ];
        for (i, (by, request)) in cases.iter().enumerate() {
            let root = ca::generate_root(
                &ca::RootRequest {
                    common_name: format!("c{i}"),
                    ..ca::RootRequest::default()
                },
                now,
            )
            .unwrap();
            let serial = cert::facts(&root.cert_der).unwrap().serial;
            let owned = OwnedCert {
                serial: serial.clone(),
                ca: "pki".into(),
                common_name: format!("c{i}"),
                not_before: now,
                not_after: now + time::Duration::hours(1),
                cert_pem: root.cert_pem.clone(),
                role: Some("web".into()),
            };
            writer
                .record_for(owned, by.map(String::from), request.map(String::from))
                .await
                .unwrap();
            serials.push(serial);
        }
        let found = |serial: &Serial| {
            let search = Search {
                serial: Some(serial.clone()),
                ..Search::default()
            };
            let store = &store;
            async move {
                let page = store.search_certs(&search).await.unwrap();
                assert_eq!(page.certs.len(), 1, "{:?}", search.serial);
                let f = &page.certs[0];
                (f.issued_by.clone(), f.request.clone())
            }
        };
        for (serial, (by, request)) in serials.iter().zip(cases) {
            assert_eq!(
                found(serial).await,
                (by.map(String::from), request.map(String::from)),
                "{serial}"
            );
        }
        let side_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cert_issuers")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(
            side_rows, 1,
            "only the token's certificate has a cert_issuers row"
        );

        // As an older release left a renewal: the request in cert_issuers, none on the row.
        let old = serials[1].to_hex();
        sqlx::query("UPDATE certs SET request = NULL WHERE serial = $1")
            .bind(&old)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("INSERT INTO cert_issuers (serial, accessor, request) VALUES ($1, '', $2)")
            .bind(&old)
            .bind("pki/renew of 01:02")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            found(&serials[1]).await,
            (None, Some("pki/renew of 01:02".to_string()))
        );
    }
}
