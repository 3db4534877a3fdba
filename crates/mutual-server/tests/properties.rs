//! Property tests: request bodies and query strings, as bytes and as JSON with every type in
//! every field, are read the way Vault reads them or refused with a 4xx and a message, never a
//! panic; the whole server (a real store in a temporary directory, the real router) answers
//! random bodies on the endpoints a client can write to.
//!
//! Cases per property: `MUTUAL_PROPTEST_CASES` (default 256, a few seconds in debug). The long
//! run: `MUTUAL_PROPTEST_CASES=100000 cargo test --release -p mutual-server --test properties`.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mutual_server::{App, Params};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tower::ServiceExt as _;

fn config() -> ProptestConfig {
    let cases = std::env::var("MUTUAL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are kept as named regression tests below, not as files beside the source.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parameter names the API reads, and one it does not.
const KEYS: &[&str] = &[
    "common_name",
    "alt_names",
    "ip_sans",
    "uri_sans",
    "ttl",
    "max_ttl",
    "not_before_duration",
    "key_type",
    "key_bits",
    "allow_any_name",
    "allowed_domains",
    "allow_subdomains",
    "exclude_cn_from_sans",
    "csr",
    "serial_number",
    "safety_buffer",
    "tidy_cert_store",
    "tidy_revoked_certs",
    "max_lease_ttl",
    "default_lease_ttl",
    "issuing_certificates",
    "crl_distribution_points",
    "max_path_length",
    "format",
    "list",
    "no_such_field",
];

fn intermediate_csr() -> &'static str {
    static CSR: OnceLock<String> = OnceLock::new();
    CSR.get_or_init(|| {
        mutual_pki::ca::generate_intermediate_csr(&mutual_pki::ca::RootRequest {
            common_name: "Alice Intermediate Authority".into(),
            ..Default::default()
        })
        .unwrap()
        .0
    })
}

/// JSON values of every type, with the strings and numbers that sit on the edges.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(
            &[
                "true",
                "t",
                "0",
                "",
                " ",
                "720h",
                "2160h0m0s",
                "100000000h",
                "1e308h",
                "18446744073709551615",
                "-1",
                "system",
                "ec",
                "rsa",
                "ed25519",
                "4096",
                "a,b,,c",
                "alice.example.com",
                "127.0.0.1",
                "spiffe://x/y",
                "3a:9f",
                "*",
                "pem",
                "der",
                "pem_bundle",
            ][..]
        )
        .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        Just(Value::from(intermediate_csr())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..3).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..6)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Every accessor on every key: none may panic, each error is a 400 naming something.
fn read_everything(p: &Params) {
    for k in KEYS {
        let _ = p.has(k);
        let _ = p.string(k);
        let _ = p.str_or(k, "d");
        let errors = [
            p.bool(k).err(),
            p.bool_or(k, true).err(),
            p.u32(k).err(),
            p.duration(k).err(),
            p.list(k).err(),
        ];
        for e in errors.into_iter().flatten() {
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
            assert!(e.to_string().contains(k), "{e} names {k}");
        }
        read_shallow(&p.object(k));
    }
}

fn read_shallow(p: &Params) {
    for k in KEYS {
        let _ = (p.string(k), p.bool(k), p.u32(k), p.duration(k), p.list(k));
    }
}

/// `%XX` for every byte outside the unreserved set, as a client encodes a query.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real server: a store in a temporary directory, a root token, a `pki` mount with a root
/// CA and a role `web`.
struct Server {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn call(&self, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("/v1/{path}"))
            .header("x-vault-token", &self.token)
            .body(Body::from(body))
            .unwrap();
        self.rt.block_on(async {
            let res = self.router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A static is never dropped, so its directory outlives the run: under the build's
        // own temporary directory, not /tmp (where each run left one).
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (router, token) = rt.block_on(async {
            let store = mutual_store::Store::create_ephemeral(dir.path())
                .await
                .unwrap();
            let (token, _) = store
                .create_token("root", &[mutual_store::ALL_MOUNTS.to_string()])
                .await
                .unwrap();
            let app = App::load(store).await.unwrap();
            (mutual_server::router(Arc::new(app)), token)
        });
        let s = Server {
            rt,
            router,
            token,
            _dir: dir,
        };
        for (path, body) in [
            ("sys/mounts/pki", json!({"type": "pki"})),
            (
                "pki/root/generate/internal",
                json!({"common_name": "Local Root CA", "key_type": "ec"}),
            ),
            (
                "pki/roles/web",
                json!({"allow_any_name": true, "key_type": "ec", "max_ttl": "720h"}),
            ),
        ] {
            let (status, reply) = s.call("POST", path, body.to_string().into_bytes());
            assert!(status.is_success(), "{path}: {status} {reply}");
        }
        s
    })
}

/// What a client may write to, and the method.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "pki/roles/r1"),
    ("POST", "pki/roles/web"),
    ("POST", "pki/issue/web"),
    ("POST", "pki/issue/r1"),
    ("POST", "pki/sign/web"),
    ("POST", "pki/sign-verbatim/web"),
    ("POST", "pki/root/sign-intermediate"),
    ("POST", "pki/revoke"),
    ("POST", "pki/tidy"),
    ("POST", "pki/config/urls"),
    ("POST", "sys/mounts/pki/tune"),
    ("GET", "pki/cert/ca"),
    ("LIST", "pki/certs"),
];

fn assert_answered(path: &str, status: StatusCode, reply: &Value) {
    assert!(
        !status.is_server_error(),
        "{path}: {status} {reply}: a request is answered or refused, not a 5xx"
    );
    if status.is_client_error() && status != StatusCode::NOT_FOUND {
        let errors = reply["errors"].as_array().map(Vec::len).unwrap_or(0);
        assert!(errors > 0, "{path}: {status} says why: {reply}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bodies_and_queries_as_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..128),
        query in prop::option::of("\\PC{0,40}|[a-z_=&%+0-9A-F]{0,40}"),
    ) {
        match Params::parse(&body, query.as_deref()) {
            Ok(p) => read_everything(&p),
            Err(e) => {
                prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                prop_assert!(e.to_string().starts_with("failed to decode JSON input"));
            }
        }
    }

    #[test]
    fn json_of_wrong_types_never_panics(obj in object(), query in "[a-z_]{0,8}=[a-z0-9%+]{0,8}") {
        let body = serde_json::to_vec(&Value::Object(obj.clone())).unwrap();
        let p = Params::parse(&body, Some(&query)).unwrap();
        read_everything(&p);
        // Strings come back as sent; the body wins over the query.
        for (k, v) in &obj {
            if let Value::String(s) = v {
                prop_assert_eq!(p.string(k), Some(s.clone()));
            }
        }
    }

    #[test]
    fn query_strings_round_trip(
        pairs in prop::collection::vec((prop::sample::select(KEYS), "\\PC{0,12}"), 0..5),
    ) {
        let q = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let p = Params::parse(b"", Some(&q)).unwrap();
        for (k, _) in &pairs {
            // The first of a repeated key wins, as the body's does over the query.
            let first = pairs.iter().find(|(k2, _)| k2 == k).unwrap();
            prop_assert_eq!(p.string(k), Some(first.1.clone()), "{}", q);
        }
    }

    #[test]
    fn the_api_answers_random_bodies(
        endpoint in prop::sample::select(ENDPOINTS),
        obj in object(),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        let (method, path) = endpoint;
        let body = raw.unwrap_or_else(|| serde_json::to_vec(&Value::Object(obj)).unwrap());
        let (status, reply) = server().call(method, path, body);
        assert_answered(path, status, &reply);
    }
}

#[test]
fn a_tidy_safety_buffer_past_year_one_is_refused_not_a_panic() {
    // Regression: `now - safety_buffer` overflowed the clock and panicked the handler.
    for buffer in [json!(u64::MAX), json!("18446744073709551615")] {
        let (status, reply) = server().call(
            "POST",
            "pki/tidy",
            json!({"safety_buffer": buffer, "tidy_cert_store": true})
                .to_string()
                .into_bytes(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert_eq!(
            reply["errors"][0],
            "invalid value for \"safety_buffer\": too large"
        );
    }
}

#[test]
fn a_ca_ttl_past_year_9999_ends_there_not_in_a_panic() {
    // Regression: with the mount's max raised, `now + ttl` overflowed the clock in the CA
    // code and panicked the handler; X.509 says "no expiration" with 9999-12-31 instead.
    let s = server();
    let (status, reply) = s.call("POST", "sys/mounts/big", br#"{"type":"pki"}"#.to_vec());
    assert!(status.is_success(), "{status} {reply}");
    let (status, reply) = s.call(
        "POST",
        "sys/mounts/big/tune",
        br#"{"max_lease_ttl":"100000000h"}"#.to_vec(),
    );
    assert!(status.is_success(), "{status} {reply}");
    let (status, reply) = s.call(
        "POST",
        "big/root/generate/internal",
        br#"{"common_name":"Forever Root","key_type":"ec","ttl":"100000000h"}"#.to_vec(),
    );
    assert!(status.is_success(), "{status} {reply}");
    let pem = reply["data"]["certificate"].as_str().unwrap();
    let der = mutual_pki::cert::pem_certs(pem.as_bytes())
        .unwrap()
        .remove(0);
    let facts = mutual_pki::cert::facts(&der).unwrap();
    assert_eq!(facts.not_after.year(), 9999);
}
