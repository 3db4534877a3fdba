//! Every flag of the `mutual` command line, its help text and its parsing, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use mutual_tls::{DenyAt, Matcher, MatcherError};

/// Every duration flag: Vault's forms (`90s`, `30m`, `720h`, `30d`).
fn duration(s: &str) -> Result<Duration, String> {
    mutual_pki::duration::parse(s).map_err(|e| e.to_string())
}

/// Every `--allow`: an identity matcher, parsed once, here.
fn matcher(s: &str) -> Result<Matcher, MatcherError> {
    s.parse()
}

/// `--deny-at http|handshake`.
fn deny_at() -> impl TypedValueParser<Value = DenyAt> {
    PossibleValuesParser::new([
        PossibleValue::new("http")
            .help("After the handshake: HTTP 403 with a body naming the caller"),
        PossibleValue::new("handshake").help(
            "In the TLS handshake itself (alert access_denied), logged with the peer's identity",
        ),
    ])
    .try_map(|s| s.parse::<DenyAt>())
}

/// An address the proxy listens on, `HOST:PORT` with an IP host.
fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("\"{s}\" is not HOST:PORT"))
}

/// The proxy's `--backend http://HOST:PORT`, kept as its `HOST:PORT`.
fn backend(s: &str) -> Result<String, String> {
    mutual_proxy::config::backend_authority(s)
}

/// mutual makes mutual TLS between services boring: a certificate authority, an mTLS data
/// path and a doctor that says why a certificate is refused.
#[derive(Debug, Parser)]
#[command(name = "mutual", version, about, max_term_width = 100)]
pub struct Cli {
    /// Data directory of the embedded store.
    #[arg(
        long,
        global = true,
        env = "MUTUAL_DATA",
        default_value = "./mutual-data"
    )]
    pub data: PathBuf,

    /// The store in a PostgreSQL database instead of `--data` (`postgres://USER@HOST:PORT/DB`):
    /// several `mutual server` nodes on one database; the offline CA commands and `server init`
    /// use it too. `MUTUAL_KEK` must be set, the same on every node.
    #[arg(long, global = true, env = "MUTUAL_DATABASE", hide_env_values = true)]
    pub database: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Talk to a running `mutual server` at this URL instead of the local store (the CA
    /// commands: ca, role, issue, sign, revoke, crl, certs). Several nodes of one CA as
    /// `URL,URL,…`: tried in order, the next one after a connection error or a 5xx.
    #[arg(long, global = true, env = "MUTUAL_ADDR")]
    pub addr: Option<String>,

    /// API token for `--addr`.
    #[arg(long, global = true, env = "MUTUAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// CA certificates that an `https://` `--addr` must chain to (like `VAULT_CACERT`).
    #[arg(long, global = true, env = "MUTUAL_CACERT")]
    pub cacert: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand whose arguments clap builds only when that subcommand is the one run. Every
/// command of the one binary otherwise builds the whole tree of every command's flags at
/// start: code spread over the binary that a long-running process (the agent, the proxy) then
/// keeps resident for nothing.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: Subcommand> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Certificate authorities: init, intermediate, list, cert, urls.
    #[command(subcommand)]
    Ca(Lazy<CaCommand>),
    /// Roles: the rules that bound what a CA issues.
    #[command(subcommand)]
    Role(Lazy<RoleCommand>),
    /// Issue a certificate with a new key under a role.
    Issue(Lazy<IssueArgs>),
    /// Sign a CSR under a role's rules.
    Sign(Lazy<SignArgs>),
    /// Revoke a certificate by serial (colon hex or plain hex).
    Revoke(Lazy<RevokeArgs>),
    /// Write a CA's current CRL.
    Crl(Lazy<CrlArgs>),
    /// Inventory of issued certificates.
    Certs(Lazy<CertsArgs>),
    /// Readable summary of a certificate or chain (a file, or - for stdin).
    Inspect(Lazy<InspectArgs>),
    /// Verify a chain against a CA file; on failure say exactly why.
    Verify(Lazy<VerifyArgs>),
    /// Play the story of mTLS between services on loopback, narrated, checking every step.
    Demo(Lazy<DemoArgs>),
    /// The CA over HTTP, wire-compatible with Vault/OpenBao's PKI API (`/v1/...`).
    Server(Lazy<ServerArgs>),
    /// API tokens of `mutual server`, each scoped to mounts: create, revoke, list.
    #[command(subcommand)]
    Token(Lazy<TokenCommand>),
    /// Serve over mTLS (hello) or plain HTTP (echo, a backend for the proxy).
    #[command(subcommand)]
    Serve(Lazy<ServeCommand>),
    /// mTLS HTTP client; when refused, it says why instead of `bad certificate`.
    Curl(Lazy<CurlArgs>),
    /// Diagnose an mTLS endpoint: what it presents, which client CAs it accepts, and whether
    /// the given identity would be accepted and why not.
    Doctor(Lazy<DoctorArgs>),
    /// Authorizing mTLS reverse proxy in front of a plain HTTP backend.
    Proxy(Lazy<Box<ProxyArgs>>),
    /// Client mode: plaintext in on a local port, mTLS out with our certificate.
    Tunnel(Lazy<TunnelArgs>),
    // --- mutual agent (enrollment and renewal; flags in AgentArgs below) ---
    /// Enroll with a bootstrap token and keep a certificate renewed on disk (cert.pem,
    /// key.pem, ca.pem), running a hook after each renewal.
    Agent(Lazy<AgentArgs>),
}

/// `mutual ca …`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the store (if needed) and a root CA named `root`.
    Init(CaInitArgs),
    /// Create an intermediate CA signed by its parent.
    Intermediate(CaIntermediateArgs),
    /// List the CAs of the store.
    List,
    /// Print a CA's certificate (PEM, one certificate).
    Cert {
        /// CA name.
        name: String,
    },
    /// Set the AIA (issuing) and CRL distribution point URLs put into issued certificates.
    Urls(CaUrlsArgs),
    /// Move a CA from a running Vault/OpenBao into the local store as a mount: its
    /// certificate chain (and key, from --key-file: Vault never exports one), its issued
    /// certificates and their revocations (docs/from-vault.md).
    ImportVault(CaImportVaultArgs),
    /// Rotate a CA as one operation: stage the next issuer (cross-signed), publish both in
    /// the trust bundle, switch issuance at the chosen time, retire the old one after its
    /// last certificate expires. Again later to see (and advance) where it stands.
    Rotate(CaRotateArgs),
}

/// `mutual ca import-vault`
#[derive(Debug, Args)]
pub struct CaImportVaultArgs {
    /// The Vault/OpenBao to read from (`http://127.0.0.1:8200`).
    #[arg(long)]
    pub from_addr: String,
    /// Its token (needs read and list on the mount).
    #[arg(long, env = "MUTUAL_FROM_TOKEN", hide_env_values = true)]
    pub from_token: String,
    /// Its PKI mount.
    #[arg(long, default_value = "pki")]
    pub from_mount: String,
    /// CA file that its https certificate chains to.
    #[arg(long)]
    pub from_cacert: Option<PathBuf>,
    /// The mount to create (or fill) in the local store (default: --from-mount).
    #[arg(long)]
    pub mount: Option<String>,
    /// The CA's private key (PEM); without it the CA is imported to list and verify, not
    /// to issue (import the key later through issuers/import/bundle).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// `mutual ca rotate`
#[derive(Debug, Args)]
pub struct CaRotateArgs {
    /// The CA (a mount path of the store, or a CA name).
    pub name: String,
    /// Switch issuance to the new issuer this long from now (e.g. 24h; default: now).
    #[arg(long, value_parser = duration)]
    pub switch_after: Option<Duration>,
    /// Switch issuance at this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead.
    #[arg(long, conflicts_with = "switch_after")]
    pub switch_at: Option<String>,
    /// Common name of the new issuer (default: the old one's with today's date).
    #[arg(long)]
    pub common_name: Option<String>,
    /// Only show (and advance) the rotation in progress.
    #[arg(long)]
    pub status: bool,
}

/// Key flags shared by CA creation.
#[derive(Debug, Args, Clone)]
pub struct KeyArgs {
    /// Key type.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Ec)]
    pub key_type: KeyTypeArg,
    /// Key size: 2048, 3072 or 4096 for RSA; 256 or 384 for EC (default: 2048 / 256).
    #[arg(long)]
    pub key_bits: Option<u32>,
}

/// Key types on the command line.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KeyTypeArg {
    /// ECDSA (P-256 or P-384).
    Ec,
    /// RSA (2048, 3072, 4096).
    Rsa,
    /// Ed25519.
    Ed25519,
}

impl KeyTypeArg {
    /// Vault's name.
    pub fn name(self) -> &'static str {
        match self {
            KeyTypeArg::Ec => "ec",
            KeyTypeArg::Rsa => "rsa",
            KeyTypeArg::Ed25519 => "ed25519",
        }
    }
}

/// `mutual ca init`
#[derive(Debug, Args)]
pub struct CaInitArgs {
    /// Common name of the root.
    #[arg(long, default_value = "Local Root CA")]
    pub name: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Lifetime of the root.
    #[arg(long, default_value = "87600h", value_parser = duration)]
    pub ttl: Duration,
    /// pathLenConstraint of the root (default: none).
    #[arg(long)]
    pub path_len: Option<u8>,
    #[command(flatten)]
    pub constraints: ConstraintArgs,
}

/// Name constraints put into a CA certificate (Vault's `permitted_dns_domains` and the other
/// constraint fields): every certificate issued below it must name only what they permit.
/// Each flag is repeatable and takes comma-separated values.
#[derive(Debug, Args, Default)]
pub struct ConstraintArgs {
    /// DNS subtree names must be in: `example.com` (it and below), `.example.com` (below only).
    #[arg(long = "permit-dns", value_delimiter = ',')]
    pub permit_dns: Vec<String>,
    /// DNS subtree names must not be in.
    #[arg(long = "exclude-dns", value_delimiter = ',')]
    pub exclude_dns: Vec<String>,
    /// IP range (CIDR, e.g. 10.0.0.0/8) addresses must be in.
    #[arg(long = "permit-ip", value_delimiter = ',')]
    pub permit_ip: Vec<String>,
    /// IP range addresses must not be in.
    #[arg(long = "exclude-ip", value_delimiter = ',')]
    pub exclude_ip: Vec<String>,
    /// Mailbox (`a@example.com`), host (`example.com`) or domain (`.example.com`) of emails.
    #[arg(long = "permit-email", value_delimiter = ',')]
    pub permit_email: Vec<String>,
    /// Mailbox, host or domain emails must not be in.
    #[arg(long = "exclude-email", value_delimiter = ',')]
    pub exclude_email: Vec<String>,
    /// Host (`example.org`) or domain (`.example.org`) of URI SANs (SPIFFE IDs included).
    #[arg(long = "permit-uri", value_delimiter = ',')]
    pub permit_uri: Vec<String>,
    /// Host or domain URI SANs must not name.
    #[arg(long = "exclude-uri", value_delimiter = ',')]
    pub exclude_uri: Vec<String>,
}

/// `mutual ca intermediate`
#[derive(Debug, Args)]
pub struct CaIntermediateArgs {
    /// Short name of the new CA in the store (e.g. `alice`).
    pub ca: String,
    /// Common name of the intermediate (e.g. "Alice Intermediate Authority").
    #[arg(long)]
    pub name: String,
    /// The CA that signs it.
    #[arg(long, default_value = "root")]
    pub parent: String,
    /// Lifetime (capped at the parent's).
    #[arg(long, default_value = "43800h", value_parser = duration)]
    pub ttl: Duration,
    #[command(flatten)]
    pub key: KeyArgs,
    /// pathLenConstraint (default: none).
    #[arg(long)]
    pub path_len: Option<u8>,
    #[command(flatten)]
    pub constraints: ConstraintArgs,
}

/// `mutual ca urls`
#[derive(Debug, Args)]
pub struct CaUrlsArgs {
    /// CA name.
    pub name: String,
    /// URL where the CA's certificate can be fetched (AIA caIssuers); repeatable.
    #[arg(long = "issuing")]
    pub issuing: Vec<String>,
    /// CRL distribution point URL; repeatable.
    #[arg(long = "crl")]
    pub crl: Vec<String>,
    /// OCSP responder URL (AIA OCSP), e.g. http://ca:8200/v1/pki/ocsp; repeatable.
    #[arg(long = "ocsp")]
    pub ocsp: Vec<String>,
}

/// `mutual role …`
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create or replace a role (Vault semantics).
    Set(RoleSetArgs),
    /// List roles.
    List,
    /// Show a role.
    Show {
        /// Role name.
        name: String,
    },
}

/// `mutual role set`
#[derive(Debug, Args)]
pub struct RoleSetArgs {
    /// Role name.
    pub name: String,
    /// The CA that signs under this role.
    #[arg(long)]
    pub ca: String,
    /// Domains names may be drawn from (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub allowed_domains: Vec<String>,
    /// Allow subdomains of the allowed domains.
    #[arg(long)]
    pub allow_subdomains: bool,
    /// Allow the allowed domains themselves.
    #[arg(long)]
    pub allow_bare_domains: bool,
    /// Allow globs (`*`) in allowed domains.
    #[arg(long)]
    pub allow_glob_domains: bool,
    /// Allow `localhost`.
    #[arg(long)]
    pub allow_localhost: bool,
    /// Allow IP SANs.
    #[arg(long)]
    pub allow_ip_sans: bool,
    /// Allow any name at all.
    #[arg(long)]
    pub allow_any_name: bool,
    /// Allow wildcard names (`*.example.com`).
    #[arg(long)]
    pub allow_wildcards: bool,
    /// Names must be valid host names.
    #[arg(long)]
    pub enforce_hostnames: bool,
    /// Globs that URI SANs must match, e.g. `spiffe://example.org/ns/*/sa/*`.
    #[arg(long, value_delimiter = ',')]
    pub allowed_uri_sans: Vec<String>,
    /// Longest lifetime of a certificate.
    #[arg(long, value_parser = duration)]
    pub max_ttl: Option<Duration>,
    /// Default lifetime.
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Key type of generated keys and required of CSRs (`any` accepts any in CSRs).
    #[arg(long, default_value = "ec", value_parser = ["ec", "rsa", "ed25519", "any"])]
    pub key_type: String,
    /// Key size (RSA: minimum for CSRs).
    #[arg(long, default_value_t = 0)]
    pub key_bits: u32,
    /// Certificates are for servers (extendedKeyUsage serverAuth).
    #[arg(long)]
    pub server: bool,
    /// Certificates are for clients (extendedKeyUsage clientAuth).
    #[arg(long)]
    pub client: bool,
    /// Common name not required.
    #[arg(long)]
    pub no_require_cn: bool,
    /// Subject OU values (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub ou: Vec<String>,
    /// Subject O values (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub organization: Vec<String>,
}

/// `mutual issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Common name.
    pub cn: String,
    /// Role to issue under.
    #[arg(long)]
    pub role: String,
    /// DNS SAN; repeatable.
    #[arg(long = "san")]
    pub san: Vec<String>,
    /// IP SAN; repeatable.
    #[arg(long = "ip")]
    pub ip: Vec<String>,
    /// URI SAN (SPIFFE ID); repeatable.
    #[arg(long = "uri")]
    pub uri: Vec<String>,
    /// Lifetime (capped at the role's max_ttl).
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Do not copy the CN into the DNS SANs.
    #[arg(long)]
    pub exclude_cn_from_sans: bool,
    /// Directory for CN.crt and CN.key.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Also write a PKCS#12 file (key + chain) for Java and browsers.
    #[arg(long)]
    pub p12: Option<PathBuf>,
    /// Password of the PKCS#12 file.
    #[arg(long, env = "MUTUAL_P12_PASSWORD", default_value = "changeit")]
    pub p12_password: String,
}

/// `mutual sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// CSR file (PEM or DER), or - for stdin.
    pub csr: PathBuf,
    /// Role to sign under.
    #[arg(long)]
    pub role: String,
    /// Lifetime.
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Common name (default: the CSR's).
    #[arg(long)]
    pub cn: Option<String>,
    /// Where to write the certificate and chain (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mutual revoke`
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Serial, `3a:9f:…` or `3a9f…`.
    pub serial: String,
    /// Reason: keyCompromise, superseded, cessationOfOperation, …
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
}

/// `mutual crl`
#[derive(Debug, Args)]
pub struct CrlArgs {
    /// CA whose CRL to write.
    #[arg(long, default_value = "root")]
    pub ca: String,
    /// Output file (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// PEM instead of DER.
    #[arg(long)]
    pub pem: bool,
}

/// `mutual certs`
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Only this CA's certificates.
    #[arg(long)]
    pub ca: Option<String>,
    /// Only valid certificates expiring within this duration (e.g. 7d).
    #[arg(long, value_parser = duration)]
    pub expiring: Option<Duration>,
    /// Only revoked certificates.
    #[arg(long)]
    pub revoked: bool,
    /// Only certificates not revoked.
    #[arg(long, conflicts_with = "revoked")]
    pub valid: bool,
    /// Only those whose common name starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub cn: Option<String>,
    /// Only those with this subject alternative name: dns:NAME, ip:ADDR, uri:URI, or a bare name.
    #[arg(long, value_name = "NAME")]
    pub san: Option<String>,
    /// Only those issued under this role.
    #[arg(long)]
    pub role: Option<String>,
    /// Only the certificate with this serial.
    #[arg(long)]
    pub serial: Option<String>,
    /// Only those issued at the request of the token with this accessor.
    #[arg(long, value_name = "ACCESSOR")]
    pub issued_by: Option<String>,
    /// Order: expiry (default), cn, issued, serial.
    #[arg(long)]
    pub sort: Option<String>,
    /// Largest first.
    #[arg(long)]
    pub desc: bool,
}

impl CertsArgs {
    /// True when a filter of the inventory (beyond --ca, --expiring, --revoked) is asked for.
    pub fn uses_inventory(&self) -> bool {
        self.valid
            || self.cn.is_some()
            || self.san.is_some()
            || self.role.is_some()
            || self.serial.is_some()
            || self.issued_by.is_some()
            || self.sort.is_some()
            || self.desc
    }
}

/// `mutual inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Certificate or chain file (PEM or DER), or - for stdin.
    pub target: String,
}

/// `mutual verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Certificate to verify (leaf first; intermediates after it are used as untrusted).
    pub cert: PathBuf,
    /// Trusted CAs (every certificate in the file is a trust anchor).
    #[arg(long)]
    pub ca: PathBuf,
    /// More untrusted intermediates.
    #[arg(long)]
    pub untrusted: Option<PathBuf>,
    /// Required purpose.
    #[arg(long, value_enum)]
    pub purpose: Option<PurposeArg>,
    /// Host name or IP the certificate must be valid for.
    #[arg(long)]
    pub name: Option<String>,
    /// CRL files (PEM or DER); every certificate of the chain must be covered; repeatable.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
}

/// Purposes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// TLS client (clientAuth).
    Client,
    /// TLS server (serverAuth).
    Server,
}

/// `mutual serve …`
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// The hello service over mTLS: answers `Hello <name>` (`?name=`, default `World`).
    Hello(Box<ServeHelloArgs>),
    /// A plain HTTP backend that answers with the request's method, path and headers (JSON).
    Echo(ServeEchoArgs),
}

/// `mutual serve hello`
#[derive(Debug, Args)]
pub struct ServeHelloArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: String,
    /// CAs that client certificates must chain to (every certificate is a trust anchor; with
    /// --enroll, the CA's trust bundle when absent).
    #[arg(long, required_unless_present = "enroll")]
    pub ca: Option<PathBuf>,
    /// The server's certificate chain (leaf first).
    #[arg(long, required_unless_present = "enroll")]
    pub cert: Option<PathBuf>,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[arg(long, required_unless_present = "enroll")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub enroll: EnrollArgs,
    /// CRL files; when given, every certificate of a client's chain must be covered. Repeatable.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Who may call: cn=, cn~REGEX, dns=GLOB, uri=GLOB, issuer=, ou=, serial=, any. Repeatable;
    /// any match allows. Default: any verified client.
    #[arg(long, value_parser = matcher)]
    pub allow: Vec<Matcher>,
    /// Refuse callers that --allow does not match with HTTP 403, or in the handshake.
    #[arg(long, default_value = "http", value_parser = deny_at())]
    pub deny_at: DenyAt,
    /// How long a client may take to finish the handshake.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub handshake_timeout: Duration,
    /// How many handshakes may run at once.
    #[arg(long, default_value_t = 256)]
    pub max_handshakes: usize,
}

/// `mutual serve echo`
#[derive(Debug, Args)]
pub struct ServeEchoArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// `mutual curl`
#[derive(Debug, Args)]
pub struct CurlArgs {
    /// `https://HOST[:PORT][/PATH]`.
    pub url: String,
    /// Our certificate chain (leaf first).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Our private key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// CAs the server's certificate must chain to.
    #[arg(long)]
    pub ca: PathBuf,
    /// HTTP method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    pub method: String,
    /// Request header `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body (`@FILE` reads a file); `-d` as in curl (`--data` is the store's flag).
    #[arg(short = 'd', long = "body")]
    pub body: Option<String>,
    /// Print the TLS details and the response status and headers on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Offer TLS 1.2 only.
    #[arg(long = "tls1.2", conflicts_with = "tls13")]
    pub tls12: bool,
    /// Offer TLS 1.3 only.
    #[arg(long = "tls1.3")]
    pub tls13: bool,
}

/// `mutual doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// `https://HOST[:PORT][/PATH]`.
    pub url: String,
    /// The identity to check against the endpoint: certificate chain.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The identity's private key.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// CAs the server's certificate should chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// `mutual server`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    /// `init`: create the store (if needed) and the root token, shown once.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8200")]
    pub listen: String,
    /// Development mode: a throwaway store that never fsyncs, the root token given by
    /// --dev-root-token-id, ready at once (like `vault server -dev`).
    #[arg(long)]
    pub dev: bool,
    /// The root token of --dev.
    #[arg(long, default_value = "root")]
    pub dev_root_token_id: String,
    /// Also listen on this address over plain HTTP for what TLS stacks fetch from the URLs in a
    /// certificate (RFC 5280 wants `http` there; nginx's OCSP client speaks nothing else): CA
    /// certificates, CRLs, OCSP and certificates by serial, without a token. Nothing else is
    /// served there, and a token sent is ignored.
    #[arg(long, value_name = "ADDR")]
    pub public_listen: Option<String>,
    /// Serve the API over TLS with this certificate chain (leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PKCS#8, PKCS#1 or SEC1 PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Ask TLS callers for a client certificate (optional) and verify it against the CAs in
    /// this PEM file, for `POST /v1/auth/cert/login`; needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// `MATCHER=MOUNT[,MOUNT]` (repeatable): a client certificate that the matcher accepts
    /// (`cn=alice.example.com`, `dns=*.example.com`, ...) logs in at `auth/cert/login` to a
    /// token scoped to these mounts; the mounts of every matching rule are granted.
    #[arg(
        long = "cert-login",
        value_name = "MATCHER=MOUNTS",
        requires = "tls_client_ca"
    )]
    pub cert_login: Vec<String>,
    /// Audit every request and response to FILE, in Vault's JSON format with secrets HMAC'd
    /// (a `file` audit device at `file/`, as `bao audit enable file file_path=FILE`). A
    /// request that cannot be written to it fails with 500.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Port ACME http-01 validation connects to on the validated name (Pebble's -httpPort;
    /// tests use a free port).
    #[arg(
        long,
        env = "MUTUAL_ACME_HTTP_PORT",
        default_value_t = 80,
        value_name = "PORT"
    )]
    pub acme_http_port: u16,
    /// Port ACME tls-alpn-01 validation connects to (Pebble's -tlsPort).
    #[arg(
        long,
        env = "MUTUAL_ACME_TLS_PORT",
        default_value_t = 443,
        value_name = "PORT"
    )]
    pub acme_tls_port: u16,
    /// Addresses ACME validation never connects to, comma-separated CIDR blocks; replaces the
    /// default ("this network", link-local, multicast, broadcast; loopback and private
    /// networks are allowed). A challenge whose name resolves only into them is invalid.
    #[arg(long, env = "MUTUAL_ACME_EXCLUDE", default_value = mutual_server::DEFAULT_EXCLUDE, value_name = "CIDRS")]
    pub acme_exclude: String,
    /// Time one ACME validation attempt may take (`10s`).
    #[arg(long, env = "MUTUAL_ACME_TIMEOUT", default_value = "10s", value_parser = duration, value_name = "D")]
    pub acme_timeout: Duration,
    /// Attempts before a challenge is invalid.
    #[arg(
        long,
        env = "MUTUAL_ACME_ATTEMPTS",
        default_value_t = 3,
        value_name = "N"
    )]
    pub acme_attempts: u32,
    /// Requests each ACME account may make per minute (`rateLimited` with `Retry-After`
    /// beyond); 0: no limit (a benchmark, or clients the operator trusts).
    #[arg(
        long,
        env = "MUTUAL_ACME_RATE_LIMIT",
        default_value_t = 300,
        value_name = "N"
    )]
    pub acme_rate_limit: u32,
}

/// `mutual server …`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Create the store of --data if needed and its root token (printed once, stored hashed).
    Init,
}

/// `mutual token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token that may use the given mounts (printed once, stored hashed); with
    /// --role, a bootstrap (join) token that may only issue under that role, --uses times,
    /// for --ttl. With --addr it is made by the server (root token needed).
    Create {
        /// A mount the token may use (repeatable); `*` for everything, `sys/` included. A
        /// bootstrap token names exactly one.
        #[arg(long = "mount", required = true)]
        mounts: Vec<String>,
        /// A name to recognise the token by.
        #[arg(long)]
        display_name: Option<String>,
        /// Make a bootstrap token for this role of the mount: it may only POST
        /// MOUNT/sign/ROLE or MOUNT/issue/ROLE.
        #[arg(long)]
        role: Option<String>,
        /// How many certificates a bootstrap token may obtain (0: no limit).
        #[arg(long, requires = "role", default_value_t = 1)]
        uses: u32,
        /// How long the token works (e.g. 1h, 30m); forever when absent.
        #[arg(long, value_parser = duration)]
        ttl: Option<Duration>,
    },
    /// Revoke a token, given by its secret or its accessor.
    Revoke {
        /// The token or its accessor.
        token: String,
    },
    /// List tokens (accessors and scopes; never secrets).
    List,
}

/// `mutual proxy`: `--config FILE`, or one listener and one backend from flags.
///
/// SIGHUP (or a change to its files) reloads the configuration and certificates. SIGTERM or
/// Ctrl-C drains: the listeners close, requests under way finish, and it exits within 5 s
/// (docs/operating-the-proxy.md).
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// TOML configuration (listeners, routes, upstreams, admin); excludes the flags below.
    #[arg(long, conflicts_with_all = ["backend", "ca", "cert", "key", "crl", "allow", "enroll"])]
    pub config: Option<PathBuf>,
    /// Address to listen on for mTLS (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8443", value_parser = socket_addr)]
    pub listen: SocketAddr,
    /// The plain HTTP backend, `http://HOST:PORT`.
    #[arg(long, required_unless_present = "config", value_parser = backend)]
    pub backend: Option<String>,
    /// CAs that client certificates must chain to (with --enroll, the CA's trust bundle when
    /// absent).
    #[arg(long, required_unless_present_any = ["config", "enroll"])]
    pub ca: Option<PathBuf>,
    /// The proxy's certificate chain (leaf first).
    #[arg(long, required_unless_present_any = ["config", "enroll"])]
    pub cert: Option<PathBuf>,
    /// The proxy's private key.
    #[arg(long, required_unless_present_any = ["config", "enroll"])]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub enroll: EnrollArgs,
    /// CRL files; when given, every certificate of a client's chain must be covered. Repeatable.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Who may call: cn=, cn~REGEX, dns=GLOB, uri=GLOB, issuer=, ou=, serial=, any. Repeatable;
    /// any match allows. Default: any verified client.
    #[arg(long, value_parser = matcher)]
    pub allow: Vec<Matcher>,
    /// Refuse callers that --allow does not match with HTTP 403, or in the handshake.
    #[arg(long, default_value = "http", value_parser = deny_at())]
    pub deny_at: DenyAt,
    /// Admin listener for /metrics, /ready and /live (plain HTTP; keep it on loopback).
    #[arg(long, value_parser = socket_addr)]
    pub admin: Option<SocketAddr>,
    /// Access-log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Write no line per request.
    #[arg(long)]
    pub no_access_log: bool,
    /// How long a client may take to finish the handshake.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub handshake_timeout: Duration,
    /// How long a keep-alive connection may stay idle.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// How long the backend may take to answer (504 beyond).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Concurrent connections; more are closed at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Request header bytes (431 beyond; at least 8192).
    #[arg(long, default_value_t = 16_384)]
    pub max_header_bytes: usize,
    /// Request body bytes (413 beyond).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Also send RFC 9440 Client-Cert and Client-Cert-Chain to the backend.
    #[arg(long)]
    pub client_cert_headers: bool,
    /// Follow the CA's revocation feed (`https://ca:8200/v1/pki`; comma-separated nodes):
    /// a revoked caller is refused at its next handshake and its next request.
    #[arg(long)]
    pub revocation_feed: Option<String>,
    /// The CA's TLS root when --revocation-feed is https.
    #[arg(long, requires = "revocation_feed")]
    pub revocation_feed_ca: Option<PathBuf>,
    /// When the feed cannot be reached: keep_last (serve with what it told so far) or
    /// fail_closed (refuse every caller after --revocation-feed-max-stale).
    #[arg(long, requires = "revocation_feed", value_parser = ["keep_last", "fail_closed"])]
    pub revocation_feed_stale: Option<String>,
    /// Under fail_closed, how old the feed's last answer may be.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub revocation_feed_max_stale: Duration,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// `mutual tunnel`: plaintext in on a local port, mTLS out to one upstream with our certificate.
///
/// SIGHUP (or a change to its files) reloads the certificate. SIGTERM or Ctrl-C closes the
/// port; connections already open run on until either side closes them, for at most 5 s.
#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// Local plaintext address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The mTLS service, `https://HOST:PORT`.
    #[arg(long)]
    pub upstream: String,
    /// CAs the upstream's certificate must chain to (with --enroll, the CA's trust bundle when
    /// absent).
    #[arg(long, required_unless_present = "enroll")]
    pub ca: Option<PathBuf>,
    /// Our certificate chain (leaf first).
    #[arg(long, required_unless_present = "enroll")]
    pub cert: Option<PathBuf>,
    /// Our private key.
    #[arg(long, required_unless_present = "enroll")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub enroll: EnrollArgs,
}

/// Enrollment instead of `--cert`/`--key`: the certificate comes from a CA at start and renews
/// itself in memory. The bootstrap token is the global `--token` (env `MUTUAL_TOKEN`), an
/// `https://` CA is checked against the global `--cacert`.
#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    /// Enroll at this CA (comma-separated nodes, tried in order) instead of --cert/--key.
    #[arg(long, value_name = "URL", requires_all = ["role", "cn"])]
    pub enroll: Option<String>,
    /// With --enroll: the role to enroll under.
    #[arg(long, requires = "enroll")]
    pub role: Option<String>,
    /// With --enroll: the certificate's common name.
    #[arg(long, requires = "enroll")]
    pub cn: Option<String>,
    /// With --enroll: DNS SAN; repeatable or comma-separated.
    #[arg(long = "san", value_delimiter = ',', requires = "enroll")]
    pub san: Vec<String>,
    /// With --enroll: IP SAN; repeatable or comma-separated.
    #[arg(long = "ip", value_delimiter = ',', requires = "enroll")]
    pub ip: Vec<String>,
    /// With --enroll: URI SAN (SPIFFE ID); repeatable or comma-separated.
    #[arg(long = "uri", value_delimiter = ',', requires = "enroll")]
    pub uri: Vec<String>,
    /// With --enroll: the CA's PKI mount.
    #[arg(long, default_value = "pki")]
    pub mount: String,
    /// With --enroll: requested lifetime (capped by the role's max_ttl).
    #[arg(long, value_parser = duration, requires = "enroll")]
    pub ttl: Option<Duration>,
}

/// `mutual demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the store, certificates and logs in this directory (default: a temporary one,
    /// removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Leave the last services running until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Key type of every CA and certificate of the story.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Ec)]
    pub key_type: KeyTypeArg,
}

// --- mutual agent -------------------------------------------------------------------------

/// `mutual agent`. The CA is the global `--addr` (comma-separated nodes, tried in order),
/// `--cacert` and `--token` (env `MUTUAL_TOKEN`).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// PKI mount of the CA.
    #[arg(long, default_value = "pki")]
    pub mount: String,
    /// Role to enroll under.
    #[arg(long)]
    pub role: String,
    /// Common name of the certificate.
    #[arg(long)]
    pub cn: String,
    /// DNS SAN; repeatable or comma-separated.
    #[arg(long = "san", value_delimiter = ',')]
    pub san: Vec<String>,
    /// IP SAN; repeatable or comma-separated.
    #[arg(long = "ip", value_delimiter = ',')]
    pub ip: Vec<String>,
    /// URI SAN (SPIFFE ID); repeatable or comma-separated.
    #[arg(long = "uri", value_delimiter = ',')]
    pub uri: Vec<String>,
    /// Directory for cert.pem (leaf + chain), key.pem (0600) and ca.pem (trust bundle).
    #[arg(long)]
    pub out: PathBuf,
    /// Requested lifetime (capped by the role's max_ttl; the role's ttl by default).
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Type of the key made on this host (EC P-256, RSA 2048, Ed25519).
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Ec)]
    pub key_type: KeyTypeArg,
    /// Command run with `sh -c` after each new certificate (reload the service).
    #[arg(long)]
    pub exec: Option<String>,
    /// Signal sent after each new certificate, `PID:SIG` (e.g. `1234:HUP`).
    #[arg(long)]
    pub signal: Option<String>,
    /// How long --exec or --signal may run; then it is killed, with every process it started,
    /// and the agent carries on (logged, and counted in mutual_agent_hook_runs_total).
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub hook_timeout: Duration,
    /// Serve Prometheus metrics at /metrics and readiness at /ready on this address.
    #[arg(long)]
    pub admin: Option<String>,
    /// Enroll or renew if due, then exit: 0 when the certificate on disk is good, 1 when not.
    #[arg(long)]
    pub once: bool,
    /// Longest wait between failed attempts.
    #[arg(long, value_parser = duration, default_value = "5m")]
    pub max_retry: Duration,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// mutual-alloc picks a process's allocator from its command line before `main`, skipping
    /// the values of global options to find the command: it must know every one that takes a
    /// value.
    #[test]
    fn the_allocator_knows_the_global_options_that_take_a_value() {
        let cmd = super::Cli::command();
        let mut want: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set() && a.get_action().takes_values())
            .flat_map(|a| {
                let long = a.get_long().map(|l| format!("--{l}"));
                let short = a.get_short().map(|s| format!("-{s}"));
                long.into_iter().chain(short)
            })
            .collect();
        want.sort();
        let mut have: Vec<String> = mutual_alloc::GLOBAL_OPTIONS_WITH_VALUES
            .iter()
            .map(|s| s.to_string())
            .collect();
        have.sort();
        assert_eq!(have, want);
    }
}
