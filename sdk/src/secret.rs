//! A string that never shows itself: `Debug` and `Display` print
//! `[redacted]`, and serde writes `"[redacted]"`, so a secret that reaches a
//! log, a cache, a search index or an analytics copy carries nothing. Only the
//! database sees the value (it encodes as PostgreSQL `text`).

use std::fmt;

#[cfg(feature = "postgres")]
use sqlx::encode::IsNull;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
#[cfg(feature = "postgres")]
use sqlx::{Decode, Encode, Postgres, Type};

/// What `Debug`, `Display` and serde show instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// A redacted string.
///
/// ```
/// let s = strata_sdk::Secret::new("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself; call sites that read it are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The marker is what a secret serialises to: reading it back would
        // make a later save overwrite the real value with it.
        let s = String::deserialize(d)?;
        match s == REDACTED {
            true => Err(serde::de::Error::custom(format!(
                "a secret cannot be `{REDACTED}`: that is the redaction marker a secret serialises to, not its value"
            ))),
            false => Ok(Secret(s)),
        }
    }
}

#[cfg(feature = "postgres")]
impl Type<Postgres> for Secret {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}

#[cfg(feature = "postgres")]
impl PgHasArrayType for Secret {
    fn array_type_info() -> PgTypeInfo {
        <String as PgHasArrayType>::array_type_info()
    }
}

#[cfg(feature = "postgres")]
impl Encode<'_, Postgres> for Secret {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> Result<IsNull, sqlx::error::BoxDynError> {
        if self.0 == REDACTED {
            return Err(
                format!("refusing to store the redaction marker `{REDACTED}` as a secret").into(),
            );
        }
        <String as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(feature = "postgres")]
impl<'r> Decode<'r, Postgres> for Secret {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <String as Decode<Postgres>>::decode(value).map(Secret)
    }
}
