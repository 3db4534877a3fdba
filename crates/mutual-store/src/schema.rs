//! The store's tables, in one place: every statement is idempotent and runs each time a store
//! is created or opened, so that a store made by an older release gains the newer tables.

/// The CAs, roles and issued certificates of the local store, then the mounts, their roles,
/// pending intermediate keys and the tokens of the server.
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cas (
        name TEXT PRIMARY KEY,
        cert_pem TEXT NOT NULL,
        key_sealed BLOB NOT NULL,
        parent TEXT,
        chain_pem TEXT NOT NULL DEFAULT '',
        urls TEXT NOT NULL DEFAULT '{}',
        crl_number INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS certs (
        serial TEXT PRIMARY KEY,
        ca TEXT NOT NULL,
        common_name TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        cert_pem TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        revoked_at INTEGER,
        reason INTEGER)",
    "CREATE INDEX IF NOT EXISTS certs_revoked ON certs(ca, serial) WHERE revoked_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS certs_ca ON certs(ca, serial)",
    // Mounts, their roles, pending intermediate keys, tokens: the server's.
    "CREATE TABLE IF NOT EXISTS mounts (
        path TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        max_lease_ttl INTEGER NOT NULL DEFAULT 0,
        default_lease_ttl INTEGER NOT NULL DEFAULT 0,
        accessor TEXT NOT NULL,
        uuid TEXT NOT NULL,
        urls TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mount_roles (
        mount TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (mount, name))",
    "CREATE TABLE IF NOT EXISTS pending_keys (mount TEXT PRIMARY KEY, key_sealed BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (
        hash TEXT PRIMARY KEY,
        accessor TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        mounts TEXT NOT NULL,
        created_at INTEGER NOT NULL)",
    // ACL policies (their text; mutual-auth parses them), auth methods enabled through
    // sys/auth, AppRole roles and their secret IDs (by HMAC).
    "CREATE TABLE IF NOT EXISTS acl_policies (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS auth_mounts (
        path TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        accessor TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS approle_roles (
        mount TEXT NOT NULL,
        name TEXT NOT NULL,
        role_id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (mount, name))",
    "CREATE TABLE IF NOT EXISTS approle_secret_ids (
        hmac TEXT PRIMARY KEY,
        mount TEXT NOT NULL,
        role TEXT NOT NULL,
        accessor TEXT NOT NULL UNIQUE,
        uses_left INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        cidrs TEXT NOT NULL DEFAULT '[]')",
    // Entries of the other auth methods (userpass users, cert roles, token roles) by mount,
    // and the audit devices with their HMAC salt.
    "CREATE TABLE IF NOT EXISTS auth_entries (
        mount TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (mount, name))",
    "CREATE TABLE IF NOT EXISTS audit_devices (
        path TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        options TEXT NOT NULL DEFAULT '{}',
        salt TEXT NOT NULL,
        created_at INTEGER NOT NULL)",
    // Per-mount configuration documents by kind (`crl`, `auto-tidy`), JSON.
    "CREATE TABLE IF NOT EXISTS mount_config (
        mount TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (mount, kind))",
    // The inventory (inventory.rs): subject alternative names and the token that asked for
    // each certificate, filled when it is recorded; one index per filter and sort order, each
    // ending in the serial that keyset pagination breaks ties with.
    "CREATE TABLE IF NOT EXISTS cert_names (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        serial TEXT NOT NULL,
        PRIMARY KEY (kind, value, serial)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS cert_names_serial ON cert_names(serial)",
    "CREATE TABLE IF NOT EXISTS cert_issuers (serial TEXT PRIMARY KEY, accessor TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cert_issuers_accessor ON cert_issuers(accessor, serial)",
    "CREATE INDEX IF NOT EXISTS certs_cn ON certs(common_name, serial)",
    "CREATE INDEX IF NOT EXISTS certs_expiry ON certs(not_after, serial)",
    // certs_expiry serves every query by expiry that the older certs_not_after served; each
    // index is one more B-tree insert per issued certificate.
    "DROP INDEX IF EXISTS certs_not_after",
    "CREATE INDEX IF NOT EXISTS certs_issued ON certs(issued_at, serial)",
    // `tidy` and `DELETE <mount>/root` delete certificates; their side rows go with them.
    "CREATE TRIGGER IF NOT EXISTS certs_inventory_gone AFTER DELETE ON certs BEGIN
        DELETE FROM cert_names WHERE serial = old.serial;
        DELETE FROM cert_issuers WHERE serial = old.serial;
    END",
    // ACME (acme.rs): accounts, orders, authorizations, EAB keys and issued certificates of
    // each mount's ACME server, as JSON documents by kind; `lookup` finds an account by its
    // key's thumbprint, `expires` is what tidy removes stale orders and authorizations by.
    "CREATE TABLE IF NOT EXISTS acme_objects (
        mount TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        account TEXT NOT NULL,
        lookup TEXT NOT NULL,
        body TEXT NOT NULL,
        expires BIGINT NOT NULL,
        PRIMARY KEY (mount, kind, id))",
    "CREATE INDEX IF NOT EXISTS acme_objects_lookup ON acme_objects(mount, kind, lookup)",
    "CREATE INDEX IF NOT EXISTS acme_objects_account ON acme_objects(mount, kind, account)",
    "CREATE INDEX IF NOT EXISTS acme_objects_expires ON acme_objects(kind, expires)",
];

/// Indexes on columns that `ADDED_COLUMNS` (sqlite.rs) adds, run after it: in `SCHEMA` they
/// would fail on a store whose `certs` table predates the column.
pub(crate) const SCHEMA_AFTER_COLUMNS: &[&str] = &[
    // Role (or CA) and the default order (expiry) in one index: a role or a mount holding most
    // of a million certificates is still answered without sorting them (bench/inventory.sh).
    "CREATE INDEX IF NOT EXISTS certs_role ON certs(role, not_after, serial)",
    "CREATE INDEX IF NOT EXISTS certs_ca_expiry ON certs(ca, not_after, serial)",
];
