//! Certificate serial numbers: random, positive, 20 bytes, shown as Vault shows them
//! (`3a:9f:…`).

use std::fmt;

use thiserror::Error;

/// A certificate serial number as unsigned big-endian bytes without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// Why a serial string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid serial \"{0}\": expected hex, with or without colons (3a:9f:... or 3a9f...)")]
pub struct SerialError(pub String);

impl Serial {
    /// A fresh random serial: 20 bytes, positive, first byte never zero so the length is stable.
    pub fn random() -> Serial {
        let mut bytes = [0u8; 20];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        bytes[0] = (bytes[0] & 0x7f).max(1);
        Serial(bytes.to_vec())
    }

    /// Builds a serial from big-endian bytes (a DER INTEGER's content); leading zeros dropped.
    pub fn from_bytes(bytes: &[u8]) -> Serial {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let mut v = bytes[start..].to_vec();
        if v.is_empty() {
            v.push(0);
        }
        Serial(v)
    }

    /// Parses `3a:9f:…`, `3a-9f-…` or `3a9f…` (case-insensitive).
    pub fn parse(input: &str) -> Result<Serial, SerialError> {
        let cleaned: String = input
            .trim()
            .chars()
            .filter(|c| *c != ':' && *c != '-')
            .collect();
        let cleaned = cleaned.strip_prefix("0x").unwrap_or(&cleaned);
        if cleaned.is_empty() || cleaned.len() > 42 {
            return Err(SerialError(input.to_string()));
        }
        let padded = if cleaned.len() % 2 == 1 {
            format!("0{cleaned}")
        } else {
            cleaned.to_string()
        };
        let bytes = hex::decode(padded).map_err(|_| SerialError(input.to_string()))?;
        Ok(Serial::from_bytes(&bytes))
    }

    /// Big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex without separators: the store's key.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Serial {
    /// Colon-separated lowercase hex, as Vault prints `serial_number`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_20_bytes_and_distinct() {
        let a = Serial::random();
        let b = Serial::random();
        assert_eq!(a.as_bytes().len(), 20);
        assert!(a.as_bytes()[0] & 0x80 == 0 && a.as_bytes()[0] != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn both_forms_parse_to_the_same_serial() {
        let cases = [
            ("3a:9f:01", "3a:9f:01"),
            ("3A9F01", "3a:9f:01"),
            ("3a-9f-01", "3a:9f:01"),
            ("00:3a", "3a"),
            ("abc", "0a:bc"),
        ];
        for (input, shown) in cases {
            assert_eq!(Serial::parse(input).unwrap().to_string(), shown, "{input}");
        }
        for bad in ["", "zz", "3a:9g", &"ab".repeat(30)] {
            assert!(Serial::parse(bad).is_err(), "{bad}");
        }
    }
}
