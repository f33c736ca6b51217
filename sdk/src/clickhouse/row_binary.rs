//! A RowBinary encoder for `serde::Serialize` rows: the bytes the
//! `clickhouse` crate (0.15) writes for a `Row + Serialize` type without
//! validation, so the writer can keep a batch as bytes and replay it.
//!
//! The crate's own serializer is private; this one follows the same serde
//! data model mapping, which `tests/tests/clickhouse_row_binary.rs` pins by
//! comparing our bytes with what the crate's `Insert` puts on the wire:
//!
//! * integers, floats and `bool` (one byte) little-endian, `i128`/`u128` too;
//! * strings and byte strings: LEB128 length, then the bytes;
//! * `Option`: `1` for `None`, `0` then the value for `Some` (`Nullable`);
//! * sequences (`Array`) and maps (`Map`): LEB128 length, then the items;
//! * structs and tuples: their fields in order, nothing else;
//! * newtype structs: their value, except the crate's own `Int256`,
//!   `UInt256` and `BFloat16`, written as their raw little-endian bytes;
//! * newtype enum variants (`Variant`): the variant index as one byte, then the value.
//!
//! What the crate cannot encode either (`char`, `()`, unit and tuple
//! variants, tuple structs, sequences of unknown length) is an
//! [`EncodeError`], never a panic.
//!
//! ```
//! # use strata_sdk::clickhouse::row_binary;
//! let mut out = bytes::BytesMut::new();
//! row_binary::encode(&("ab", 7u16, Some(1u8)), &mut out).unwrap();
//! assert_eq!(&out[..], &[2, b'a', b'b', 7, 0, 0, 1]);
//! ```

use bytes::{BufMut, BytesMut};
use serde::ser::{self, Impossible, Serialize};

/// Why a value has no RowBinary encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A serde shape RowBinary has no form for.
    #[error("RowBinary has no encoding for {0}")]
    Unsupported(String),
    /// A sequence or map whose length is not known up front.
    #[error("RowBinary needs the length of a sequence or map before its items")]
    UnknownLength,
    /// A `Serialize` impl refused the value (a decimal that does not fit, …).
    #[error("{0}")]
    Custom(String),
    /// The row's own check refused a value its column cannot hold exactly
    /// (`Table::check`), naming the field and the row's key.
    #[error(transparent)]
    Value(crate::ValueError),
}

impl ser::Error for EncodeError {
    #[inline]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError::Custom(msg.to_string())
    }
}

/// Appends the RowBinary encoding of `value` to `out` and returns how many
/// bytes it took. On an error `out` is left as it was: a batch never holds
/// half a row.
pub fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<usize, EncodeError> {
    let start = out.len();
    match value.serialize(&mut Encoder { out: &mut *out }) {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The name prefixes of the crate's fixed-width types, which go out as their
/// raw bytes (`clickhouse::types::{Int256, UInt256, BFloat16}`).
const RAW_BYTES: [&str; 2] = ["clickhouse::types::int256", "clickhouse::types::bf16"];

struct Encoder<'a> {
    out: &'a mut BytesMut,
}

#[inline]
fn put_leb128(out: &mut BytesMut, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

#[cold]
fn unsupported<T>(what: String) -> Result<T, EncodeError> {
    Err(EncodeError::Unsupported(what))
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), EncodeError>;
    type SerializeTupleVariant = Impossible<(), EncodeError>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), EncodeError>;

    #[inline]
    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.put_u8(v as u8);
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.out.put_i8(v);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.out.put_i16_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.out.put_i32_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.out.put_i64_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.out.put_i128_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.out.put_u8(v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.out.put_u16_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.out.put_u32_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.out.put_u64_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        self.out.put_u128_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.out.put_f32_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.out.put_f64_le(v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, _: char) -> Result<(), EncodeError> {
        unsupported("`char` (use a String)".into())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.serialize_bytes(v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        put_leb128(self.out, v.len() as u64);
        self.out.put_slice(v);
        Ok(())
    }
    #[inline]
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.out.put_u8(1);
        Ok(())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        self.out.put_u8(0);
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), EncodeError> {
        unsupported("`()`".into())
    }
    #[inline]
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), EncodeError> {
        unsupported(format!("the unit struct `{name}`"))
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        unsupported(format!(
            "the unit variant `{name}::{variant}` (store an enum as its name)"
        ))
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        if RAW_BYTES.iter().any(|p| name.starts_with(p)) {
            value.serialize(Raw { out: self.out })
        } else {
            value.serialize(self)
        }
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        // A `Variant` column holds at most 255 types.
        let Ok(index) = u8::try_from(index) else {
            return unsupported(format!(
                "the variant `{name}::{variant}`: index {index} is over 255"
            ));
        };
        self.out.put_u8(index);
        value.serialize(self)
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, EncodeError> {
        let len = len.ok_or(EncodeError::UnknownLength)?;
        put_leb128(self.out, len as u64);
        Ok(self)
    }
    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        unsupported(format!("the tuple struct `{name}`"))
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        unsupported(format!("the tuple variant `{name}::{variant}`"))
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self, EncodeError> {
        let len = len.ok_or(EncodeError::UnknownLength)?;
        put_leb128(self.out, len as u64);
        Ok(self)
    }
    #[inline]
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        unsupported(format!("the struct variant `{name}::{variant}`"))
    }
}

impl ser::SerializeSeq for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        v.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        v.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), EncodeError> {
        k.serialize(&mut **self)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        v.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        v.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// The value of a fixed-width newtype: its bytes, without a length.
struct Raw<'a> {
    out: &'a mut BytesMut,
}

macro_rules! raw_refuses {
    ($($method:ident($($arg:ty),*);)*) => {$(
        #[inline]
        fn $method(self, $(_: $arg),*) -> Result<(), EncodeError> {
            unsupported("a fixed-width value that is not bytes".into())
        }
    )*};
}

impl ser::Serializer for Raw<'_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Impossible<(), EncodeError>;
    type SerializeTuple = Impossible<(), EncodeError>;
    type SerializeTupleStruct = Impossible<(), EncodeError>;
    type SerializeTupleVariant = Impossible<(), EncodeError>;
    type SerializeMap = Impossible<(), EncodeError>;
    type SerializeStruct = Impossible<(), EncodeError>;
    type SerializeStructVariant = Impossible<(), EncodeError>;

    #[inline]
    fn is_human_readable(&self) -> bool {
        false
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.out.put_slice(v);
        Ok(())
    }
    raw_refuses! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        unsupported("a fixed-width value that is not bytes".into())
    }
}
