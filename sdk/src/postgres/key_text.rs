//! [`KeyText`]: a key's values as text, exact and unambiguous — the hex
//! of each value's PostgreSQL binary encoding (the bytes a bound
//! parameter carries), joined by `.`, NULL as `~`. The cache's Redis keys
//! are built from it, and `get_many` matches rows to the keys asked.

use sqlx::encode::IsNull;
use sqlx::postgres::PgArgumentBuffer;
use sqlx::Encode;

use super::{ArrayValue, Sink, Table, Value};
use crate::error::{Error, Result};

/// A [`Sink`] that renders key values as text after a prefix (see the
/// [module docs](self)).
#[derive(Debug, Clone, Default)]
pub struct KeyText {
    text: String,
    start: usize,
}

impl KeyText {
    /// Renders after `prefix` (which stays as given).
    pub fn after(prefix: String) -> Self {
        KeyText {
            start: prefix.len(),
            text: prefix,
        }
    }
    /// The text of `T`'s key alone.
    pub fn of<T: Table>(key: &T::Key) -> Result<String> {
        let mut k = KeyText::default();
        T::bind_key(key, &mut k)?;
        Ok(k.text)
    }
    /// Whether no value was rendered yet.
    pub fn is_empty(&self) -> bool {
        self.text.len() == self.start
    }
    /// The prefix and the values.
    pub fn into_string(self) -> String {
        self.text
    }
    /// Adds one value. Errors: [`Error::InvalidValue`] if it cannot be
    /// encoded.
    pub fn push<V: for<'q> Encode<'q, sqlx::Postgres>>(&mut self, v: &V) -> Result<()> {
        let mut buf = PgArgumentBuffer::default();
        let null = v.encode_by_ref(&mut buf).map_err(|e| Error::InvalidValue {
            code: "key".into(),
            message: format!("cannot render a key: {e}"),
        })?;
        if !self.is_empty() {
            self.text.push('.');
        }
        match null {
            IsNull::Yes => self.text.push('~'),
            IsNull::No => {
                use std::fmt::Write;
                for b in buf.iter() {
                    let _ = write!(self.text, "{b:02x}");
                }
            }
        }
        Ok(())
    }
}

impl Sink for KeyText {
    fn value<V: Value>(&mut self, v: &V) -> Result<()> {
        self.push(v)
    }
    fn array<V: ArrayValue>(&mut self, v: &V) -> Result<()> {
        self.push(v)
    }
}
