//! What the cache stores: keys and entries.
//!
//! Key: `<key_prefix>:<Entity>:{<key>}`, where `<key>` is the
//! hex of each key column's PostgreSQL binary encoding (the same bytes a
//! bound parameter carries, so every key type the repository binds has
//! one, exact and unambiguous), joined by `.`. The braces are a Cluster
//! hash tag: a row's value and its lease (`…:{<key>}:lease`) share a slot,
//! so the fill script may touch both, while rows spread over all slots.
//!
//! Entry (a Redis string), byte 0 its kind and version:
//!
//! | kind | layout |
//! | --- | --- |
//! | `2` value, format 2 | token (8) · expiry, Unix ms (u64 LE) · load time, ms (u32 LE) · shape fingerprint (8 ASCII bytes) · MessagePack row |
//! | `0` tombstone | token (8) |
//!
//! The shape's fingerprint is in the entry, not the key: two versions of a
//! program whose entity shapes differ (a rolling deploy) share each row's
//! key, so a write by either tombstones the entry both read; an entry of
//! the other shape reads as a miss (and is replaced by the next fill).
//! Entries of format 1 (fingerprint in the key) are never read.
//!
//! The token is random per fill and per invalidation: a fill is accepted
//! only while the token the reader saw before reading PostgreSQL is still
//! there (a lease in the memcache sense; see [`super`]).

use sqlx::Encode;

use crate::error::{Error, Result};
use crate::postgres::{KeyText, Table};

/// The kind byte of a value entry in format 2.
pub(crate) const VALUE: u8 = 2;
/// The kind byte of a value entry (format 2), for tools reading entries.
pub const VALUE_BYTE: u8 = VALUE;
/// Bytes before the row in a value entry (format 2).
pub const VALUE_HEADER: usize = HEADER;
/// The kind byte of a tombstone.
pub(crate) const TOMBSTONE: u8 = 0;
const HEADER: usize = 1 + 8 + 8 + 4 + FP;
/// Bytes of the shape fingerprint in a value entry.
const FP: usize = 8;

/// A fingerprint as its 8 entry bytes (the derive writes 8 hex digits;
/// anything else is cut or padded with zeros).
fn fp_bytes(fingerprint: &str) -> [u8; FP] {
    let mut out = [0u8; FP];
    for (o, b) in out.iter_mut().zip(fingerprint.bytes()) {
        *o = b;
    }
    out
}

/// The fingerprint of `T`'s cached shape (empty when it is not cached).
pub(crate) fn fingerprint_of<T: Table>() -> &'static str {
    T::CACHE.map_or("", |d| d.fingerprint)
}

/// An entry read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry<'b> {
    Value {
        expiry_ms: u64,
        load_ms: u32,
        row: &'b [u8],
    },
    /// A tombstone, or an entry of a format this SDK does not read.
    Other,
}

/// An entry of `T`'s shape ([`parse`] with its fingerprint).
pub(crate) fn parse_for<T: Table>(b: &[u8]) -> Entry<'_> {
    parse(b, fingerprint_of::<T>())
}

/// A value entry of the shape `fingerprint`; anything else (a tombstone,
/// another shape, another format) is [`Entry::Other`].
pub(crate) fn parse<'b>(b: &'b [u8], fingerprint: &str) -> Entry<'b> {
    if b.len() >= HEADER && b[0] == VALUE && b[21..HEADER] == fp_bytes(fingerprint) {
        let expiry_ms = u64::from_le_bytes(b[9..17].try_into().unwrap_or_default());
        let load_ms = u32::from_le_bytes(b[17..21].try_into().unwrap_or_default());
        return Entry::Value {
            expiry_ms,
            load_ms,
            row: &b[HEADER..],
        };
    }
    Entry::Other
}

/// What the fill script compares: `""` for no entry, else `x` and the
/// entry's bytes 2..=9 (its token), exactly as the Lua `string.sub` reads.
pub(crate) fn seen(entry: Option<&[u8]>) -> Vec<u8> {
    match entry {
        None => Vec::new(),
        Some(b) => {
            let mut v = vec![b'x'];
            v.extend_from_slice(&b[1.min(b.len())..9.min(b.len())]);
            v
        }
    }
}

pub(crate) fn value(
    token: u64,
    expiry_ms: u64,
    load_ms: u32,
    fingerprint: &str,
    row: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + row.len());
    v.push(VALUE);
    v.extend_from_slice(&token.to_le_bytes());
    v.extend_from_slice(&expiry_ms.to_le_bytes());
    v.extend_from_slice(&load_ms.to_le_bytes());
    v.extend_from_slice(&fp_bytes(fingerprint));
    v.extend_from_slice(row);
    v
}

pub(crate) fn tombstone(token: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.push(TOMBSTONE);
    v.extend_from_slice(&token.to_le_bytes());
    v
}

/// A row as MessagePack (arrays, not maps: the fingerprint in the entry
/// pins the field order).
pub(crate) fn encode<T: serde::Serialize>(row: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(row).map_err(|e| Error::InvalidValue {
        code: "cache".into(),
        message: format!("cannot encode a cached row: {e}"),
    })
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<T> {
    rmp_serde::from_slice(b).ok()
}

/// The row of a value entry (the bytes after [`VALUE_HEADER`]), for
/// tools that compare the cache with the database.
pub fn decode_row<T: serde::de::DeserializeOwned>(row: &[u8]) -> Option<T> {
    decode(row)
}

/// The Redis key of a row of `T` (see the [module docs](self)).
pub fn key<T: Table>(prefix: &str, key: &T::Key) -> Result<String> {
    let mut s = KeyText::after(format!("{prefix}:{}:{{", T::DEF.entity));
    T::bind_key(key, &mut s)?;
    let empty = s.is_empty();
    let mut s = s.into_string();
    if empty {
        s.push('-');
    }
    s.push('}');
    Ok(s)
}

/// The lease key of a row key.
pub(crate) fn lease(key: &str) -> String {
    format!("{key}:lease")
}

/// A cached finder's parameters as a key part (see [`crate::finder_key!`]).
pub struct FinderKey(KeyText);

impl Default for FinderKey {
    fn default() -> Self {
        FinderKey(KeyText::after("{".into()))
    }
}

impl FinderKey {
    /// Adds one parameter. Errors: [`Error::InvalidValue`] if it cannot be
    /// encoded.
    pub fn push<V: for<'q> Encode<'q, sqlx::Postgres>>(&mut self, v: &V) -> Result<()> {
        self.0.push(v)
    }

    /// `{…}`, or `{-}` without parameters.
    pub fn finish(self) -> String {
        let empty = self.0.is_empty();
        let mut s = self.0.into_string();
        if empty {
            s.push('-');
        }
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_tokens_read_as_lua_reads_them() {
        let v = value(7, 1_000, 12, "1a2b3c4d", b"row");
        assert_eq!(
            parse(&v, "1a2b3c4d"),
            Entry::Value {
                expiry_ms: 1_000,
                load_ms: 12,
                row: b"row"
            }
        );
        // Another shape's entry is a miss.
        assert_eq!(parse(&v, "99999999"), Entry::Other);
        let t = tombstone(7);
        assert_eq!(parse(&t, "1a2b3c4d"), Entry::Other);
        // Same token, same `seen`, whatever the kind; none is "".
        assert_eq!(seen(Some(&v)), seen(Some(&t)));
        assert_ne!(seen(Some(&tombstone(8))), seen(Some(&t)));
        assert_eq!(seen(None), Vec::<u8>::new());
        assert_eq!(seen(Some(&[9])), vec![b'x']);
        assert_eq!(parse(&[1, 2, 3], ""), Entry::Other);
    }
}
