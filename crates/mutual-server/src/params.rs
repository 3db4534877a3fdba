//! Request parameters the way Vault reads them: a JSON object (or the query string) whose
//! values may come as strings whatever their type — `"true"`, `"2048"`, Go's `"2160h0m0s"`,
//! `"a,b"` for a list — because the `vault`/`bao` CLI sends every `k=v` as a string and
//! cert-manager sends durations in Go's form.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The parameters of one request.
#[derive(Debug, Default, Clone)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Every parameter, for the ACL's parameter rules.
    pub(crate) fn to_map(&self) -> std::collections::BTreeMap<String, Value> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Parses a JSON body (empty means no parameters) and adds the query string's pairs that
    /// the body does not set.
    pub fn parse(body: &[u8], query: Option<&str>) -> Result<Params, ApiError> {
        let mut map = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                // `bao write -f` sends `null` for "no parameters", which Vault accepts.
                Ok(Value::Null) => Map::new(),
                Ok(_) => return Err(ApiError::bad("failed to decode JSON input: not an object")),
                Err(e) => return Err(ApiError::bad(format!("failed to decode JSON input: {e}"))),
            }
        };
        for (k, v) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
        {
            map.entry(percent_decode(k, true))
                .or_insert_with(|| Value::String(percent_decode(v, true)));
        }
        Ok(Params(map))
    }

    /// The names of the parameters given.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// True when the parameter is present (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_null())
    }

    /// A string parameter; numbers and booleans are given as their text.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A string parameter or `default`.
    pub fn str_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_string())
    }

    /// A boolean: JSON `true`, or Go's `strconv.ParseBool` forms as a string.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let invalid = || ApiError::bad(format!("invalid value for \"{key}\": expected a boolean"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => Ok(Some(n.as_f64().ok_or_else(invalid)? != 0.0)),
            Some(Value::String(s)) => match s.trim() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// A non-negative integer, as a JSON number or a string.
    pub fn u32(&self, key: &str) -> Result<Option<u32>, ApiError> {
        let invalid = || ApiError::bad(format!("invalid value for \"{key}\": expected an integer"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(invalid),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
            Some(_) => Err(invalid()),
        }
    }

    /// A duration: seconds as a number, or text Vault accepts (`720h`, `2160h0m0s`, `30d`,
    /// `3600`). Empty text means absent.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|s| Some(Duration::from_secs(s)))
                .ok_or_else(|| ApiError::bad(format!("invalid value for \"{key}\": {n}"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => mutual_pki::duration::parse(s.trim())
                .map(Some)
                .map_err(|e| ApiError::bad(format!("invalid value for \"{key}\": {e}"))),
            Some(_) => Err(ApiError::bad(format!(
                "invalid value for \"{key}\": expected a duration"
            ))),
        }
    }

    /// A list: a JSON array, or comma-separated text. Empty items are dropped.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let items: Vec<String> = match self.0.get(key) {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_string()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ApiError::bad(format!(
                        "invalid value for \"{key}\": expected a list of strings"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ApiError::bad(format!(
                    "invalid value for \"{key}\": expected a list"
                )))
            }
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }

    /// The object under `key` (Vault's `config` of a mount).
    pub fn object(&self, key: &str) -> Params {
        match self.0.get(key) {
            Some(Value::Object(m)) => Params(m.clone()),
            _ => Params::default(),
        }
    }
}

/// Decodes the `%XX` escapes of a URL path, or with `query` also `+` as a space.
pub(crate) fn percent_decode(s: &str, query: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) if query => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(json: &str) -> Params {
        Params::parse(json.as_bytes(), None).unwrap()
    }

    #[test]
    fn strings_stand_for_every_type_as_the_cli_sends_them() {
        let q =
            p(r#"{"b":"true","f":"0","n":"2048","d":"2160h0m0s","l":"a, b,,c","j":[" x ","y"]}"#);
        assert_eq!(q.bool("b").unwrap(), Some(true));
        assert_eq!(q.bool("f").unwrap(), Some(false));
        assert_eq!(q.u32("n").unwrap(), Some(2048));
        assert_eq!(
            q.duration("d").unwrap(),
            Some(Duration::from_secs(2160 * 3600))
        );
        assert_eq!(q.list("l").unwrap(), ["a", "b", "c"]);
        assert_eq!(q.list("j").unwrap(), ["x", "y"]);
        assert_eq!(q.bool("missing").unwrap(), None);
    }

    #[test]
    fn native_json_types_work_too() {
        let q = p(r#"{"b":true,"n":256,"d":3600,"s":7}"#);
        assert_eq!(q.bool("b").unwrap(), Some(true));
        assert_eq!(q.u32("n").unwrap(), Some(256));
        assert_eq!(q.duration("d").unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(q.string("s").as_deref(), Some("7"));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let q = p(r#"{"b":"maybe","n":"x","d":"soon"}"#);
        assert!(q.bool("b").unwrap_err().to_string().contains("\"b\""));
        assert!(q.u32("n").unwrap_err().to_string().contains("\"n\""));
        assert!(q.duration("d").unwrap_err().to_string().contains("\"d\""));
    }

    #[test]
    fn malformed_json_is_a_400_that_says_so() {
        let err = Params::parse(b"{\"a\":", None).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().starts_with("failed to decode JSON input"));
        assert!(Params::parse(b"[1]", None).is_err());
    }

    #[test]
    fn query_fills_what_the_body_does_not_set() {
        let q = Params::parse(b"", Some("list=true&after=a%3Ab&limit=2")).unwrap();
        assert_eq!(q.bool("list").unwrap(), Some(true));
        assert_eq!(q.string("after").as_deref(), Some("a:b"));
        assert_eq!(q.u32("limit").unwrap(), Some(2));
    }
}
