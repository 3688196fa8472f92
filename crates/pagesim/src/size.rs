//! Byte sizes as people write them: `1G`, `400M`, `40MiB`, `4K`, `4096`,
//! `0x100000000`.
//!
//! Every multiple is binary (1K = 1024 bytes), as memory sizes are; a bare
//! number is bytes. Used by the command line (`--mem 2G`) and by scenario
//! files (`memory = "1G"`), where a bad size is reported with its line.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A size in bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ByteSize(pub u64);

/// Why a size string was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid size `{text}`: {why} (write e.g. 4096, 4K, 400M, 1G or 0x40000000)")]
pub struct SizeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Binary multiples by suffix letter.
const SUFFIXES: [(char, u32); 5] = [('K', 10), ('M', 20), ('G', 30), ('T', 40), ('P', 50)];

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<ByteSize, SizeError> {
        let err = |why| SizeError {
            text: text.to_owned(),
            why,
        };
        let t = text.trim();
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u64::from_str_radix(hex, 16)
                .map(ByteSize)
                .map_err(|_| err("not a hexadecimal number"));
        }
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits_end == 0 {
            return Err(err("it does not start with a number"));
        }
        let value: u64 = t[..digits_end]
            .parse()
            .map_err(|_| err("the number is too large"))?;
        let suffix = t[digits_end..].trim();
        let upper = suffix.to_ascii_uppercase();
        let unit = upper
            .strip_suffix("IB")
            .or_else(|| upper.strip_suffix('B'))
            .unwrap_or(&upper);
        let shift = match unit {
            "" => 0,
            _ => {
                let mut chars = unit.chars();
                let (Some(c), None) = (chars.next(), chars.next()) else {
                    return Err(err("unknown unit"));
                };
                SUFFIXES
                    .iter()
                    .find(|(s, _)| *s == c)
                    .map(|(_, shift)| *shift)
                    .ok_or_else(|| err("unknown unit"))?
            }
        };
        value
            .checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| err("the size overflows 64 bits"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`1G`, `40M`),
    /// else bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(c, shift) in SUFFIXES.iter().rev() {
            let unit = 1u64 << shift;
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{c}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 4096, \"4K\", \"400M\" or \"1G\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units() {
        let p = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(p("4096"), Ok(4096));
        assert_eq!(p("4K"), Ok(4096));
        assert_eq!(p("4k"), Ok(4096));
        assert_eq!(p("40MiB"), Ok(40 << 20));
        assert_eq!(p("1 GB"), Ok(1 << 30));
        assert_eq!(p("2G"), Ok(2 << 30));
        assert_eq!(p("0x100000"), Ok(1 << 20));
        assert!(p("").is_err());
        assert!(p("G").is_err());
        assert!(p("12Q").is_err());
        assert!(p("1KK").is_err());
        assert!(p("99999999999999999999").is_err());
        assert!(p("16777216T").is_err());
    }

    #[test]
    fn displays_the_largest_exact_unit() {
        assert_eq!(ByteSize(1 << 30).to_string(), "1G");
        assert_eq!(ByteSize(40 << 20).to_string(), "40M");
        assert_eq!(ByteSize(4097).to_string(), "4097");
    }
}
