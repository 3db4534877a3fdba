//! Certificate serial numbers: positive, 20 bytes, time-ordered in their first 8 and random in
//! the other 12, shown as Vault shows them (`3a:9f:…`).

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
    /// A fresh serial: the time of issue, then 96 random bits (see [`Serial::ordered`]).
    pub fn random() -> Serial {
        let mut random = [0u8; 12];
        aws_lc_rs::rand::fill(&mut random).expect("the system random generator failed");
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        Serial::ordered(u64::try_from(nanos).unwrap_or(0), random)
    }

    /// A serial of 20 bytes: nanoseconds since 1970 (big-endian, 8 bytes), then `random`.
    ///
    /// The time comes first so that serials issued together sort together: every index the
    /// store keeps on the serial (and on a role, a name or a token followed by it) then takes a
    /// batch of new certificates into its last page or two instead of one random page each,
    /// which is what a commit writes to the WAL. Unpredictability comes from the 96 random bits,
    /// above the 64 the CA/Browser Forum asks of a serial. The first byte is never zero, so the
    /// length is stable, and never has its top bit set, so the INTEGER is positive.
    pub fn ordered(nanos: u64, random: [u8; 12]) -> Serial {
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&random);
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

    /// Later times sort later, in bytes and in the store's hex key, whatever the random part;
    /// the same time still gives distinct serials.
    #[test]
    fn ordered_serials_sort_by_time() {
        let t = 1_796_000_000_000_000_000u64; // 2026-11
        let cases = [
            ((t, [0xff; 12]), (t + 1, [0u8; 12]), true),
            ((t, [0u8; 12]), (t, [1u8; 12]), true),
            ((t + 1_000, [0u8; 12]), (t, [0xff; 12]), false),
            ((0, [0u8; 12]), (1, [0u8; 12]), true),
        ];
        for ((ta, ra), (tb, rb), a_first) in cases {
            let (a, b) = (Serial::ordered(ta, ra), Serial::ordered(tb, rb));
            assert_eq!(a.as_bytes().len(), 20);
            assert!(a.as_bytes()[0] != 0 && a.as_bytes()[0] & 0x80 == 0);
            assert_eq!(a < b, a_first, "{a} vs {b}");
            assert_eq!(a.to_hex() < b.to_hex(), a_first, "{a} vs {b}");
        }
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
