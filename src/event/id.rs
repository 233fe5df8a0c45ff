//! [`EventId`]: sortable unique ids (ULIDs).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A sortable unique event id (a ULID: 48 bits of milliseconds since the Unix
/// epoch, then 80 bits that are unique per process and increase within it).
///
/// Displayed as 26 Crockford base-32 characters; ids made later sort later
/// (within one process strictly, across processes by millisecond).
///
/// ```
/// let a = errsnap::EventId::generate(1_700_000_000_000);
/// let b = errsnap::EventId::generate(1_700_000_000_000);
/// assert!(a < b);
/// assert_eq!(a.to_string().len(), 26);
/// assert_eq!(a.to_string().parse::<errsnap::EventId>().unwrap(), a);
/// assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u128);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl EventId {
    /// Makes a new id for an event that happened at `timestamp_ms`.
    pub fn generate(timestamp_ms: i64) -> EventId {
        static PROCESS_BITS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS_BITS.get_or_init(|| random_u64() & 0xFF_FFFF_FFFF);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFF_FFFF_FFFF;
        let ms = (timestamp_ms.max(0) as u128) & 0xFFFF_FFFF_FFFF;
        EventId((ms << 80) | ((process as u128) << 40) | n as u128)
    }

    /// The millisecond timestamp encoded in the id.
    pub fn timestamp_ms(self) -> i64 {
        (self.0 >> 80) as i64
    }

    /// The id as a 128-bit integer.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id of a 128-bit integer (as [`EventId::as_u128`] gave it).
    pub(crate) fn from_u128(v: u128) -> EventId {
        EventId(v)
    }
}

/// 64 bits that differ from process to process (std's randomly keyed hasher,
/// fed with the pid and the time): no `rand` dependency needed.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as i32;
            let v = if shift >= 0 {
                (self.0 >> shift) & 0x1F
            } else {
                (self.0 << (-shift)) & 0x1F
            };
            *slot = CROCKFORD[v as usize];
        }
        // All bytes come from the ASCII alphabet above.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// The error returned when a string is not a 26-character event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEventIdError {
    input: String,
}

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid event id {:?}: expected 26 Crockford base-32 characters",
            self.input
        )
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseEventIdError {
            input: s.chars().take(64).collect(),
        };
        if s.len() != 26 {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let c = c.to_ascii_uppercase();
            let d = CROCKFORD.iter().position(|&x| x == c).ok_or_else(err)? as u128;
            if i == 0 && d > 7 {
                return Err(err());
            }
            v = (v << 5) | d;
        }
        Ok(EventId(v))
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
