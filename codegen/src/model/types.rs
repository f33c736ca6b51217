//! Field types and their textual form in schemas.

use std::fmt;

/// A scalar type of the schema language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScalarType {
    Uuid,
    /// `string` or `string(N)`: text with an optional maximum length in characters.
    String {
        max: Option<u32>,
    },
    /// Unbounded text.
    Text,
    Bool,
    I16,
    I32,
    I64,
    F64,
    /// `decimal(p,s)`: exact numbers, for money.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Timestamptz,
    Date,
    Json,
    Bytes,
    /// Text that is redacted in `Debug`, never cached, synced or indexed.
    Secret,
    /// A named enum (schema name).
    Enum(String),
}

/// A field type: a scalar or an array of scalars (`T[]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Scalar(ScalarType),
    Array(ScalarType),
}

impl Type {
    pub fn scalar(&self) -> &ScalarType {
        match self {
            Type::Scalar(s) | Type::Array(s) => s,
        }
    }
    pub fn is_array(&self) -> bool {
        matches!(self, Type::Array(_))
    }
}

/// Built-in type names, for "did you mean" and the JSON Schema.
pub const BUILTIN_TYPES: &[&str] = &[
    "uuid",
    "string",
    "text",
    "bool",
    "i16",
    "i32",
    "i64",
    "f64",
    "decimal",
    "timestamptz",
    "date",
    "json",
    "bytes",
    "secret",
];

/// Type names from SQL and Rust, and what to write instead in a schema.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("varchar", "string(n)"),
    ("char", "string(n)"),
    ("character varying", "string(n)"),
    ("str", "string"),
    ("int", "i32"),
    ("integer", "i32"),
    ("int4", "i32"),
    ("smallint", "i16"),
    ("int2", "i16"),
    ("bigint", "i64"),
    ("int8", "i64"),
    ("i8", "i16"),
    ("u8", "i16"),
    ("u16", "i32"),
    ("u32", "i64"),
    ("u64", "decimal(20,0)"),
    ("serial", "i32` with `default: generated"),
    ("bigserial", "i64` with `default: generated"),
    ("boolean", "bool"),
    ("float", "f64"),
    ("double", "f64"),
    ("f32", "f64"),
    ("real", "f64"),
    ("float8", "f64"),
    ("numeric", "decimal(p,s)"),
    ("money", "decimal(p,s)"),
    ("timestamp", "timestamptz"),
    ("datetime", "timestamptz"),
    ("jsonb", "json"),
    ("bytea", "bytes"),
    ("blob", "bytes"),
    ("binary", "bytes"),
    ("password", "secret"),
    ("guid", "uuid"),
];

/// The schema spelling of a type written the SQL or Rust way (`varchar`, `bigint`, `String`).
pub fn type_alias(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    TYPE_ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map(|(_, t)| *t)
        .or_else(|| BUILTIN_TYPES.iter().copied().find(|b| *b == lower))
}

/// Largest precision PostgreSQL and ClickHouse both accept for `decimal`.
pub const MAX_DECIMAL_PRECISION: u32 = 76;

/// Why a type text did not parse. The resolver turns this into a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// Not a built-in type; may be an enum name the resolver knows.
    Unknown(String),
    Malformed(TypeProblem),
}

/// Why a type's text is malformed; [`TypeProblem::reason`] is the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeProblem {
    /// `i64[][]`.
    NestedArray,
    /// `string(20`.
    UnclosedParen,
    /// `string(x)`.
    NonNumericArgument,
    /// `string(0)`, `string(10485761)`.
    StringLength,
    /// `string(1,2)`.
    StringArity,
    /// `decimal(0,0)`, `decimal(77,2)`, `decimal(2,5)`.
    DecimalRange,
    /// `decimal(20)`.
    DecimalArity,
    /// `decimal`.
    DecimalBare,
    /// `i64(3)`.
    TakesNoArguments,
    /// `secret[]`, `json[]`.
    ArrayOfSecretOrJson,
}

impl TypeProblem {
    /// The reason, as the diagnostic's help gives it.
    pub fn reason(self) -> &'static str {
        match self {
            TypeProblem::NestedArray => {
                "arrays of arrays are not supported; use `json` for nested data"
            }
            TypeProblem::UnclosedParen => "unclosed `(` in the type",
            TypeProblem::NonNumericArgument => "type arguments must be whole numbers",
            TypeProblem::StringLength => "a string length must be between 1 and 10485760",
            TypeProblem::StringArity => "`string` takes one length: `string(20)`",
            TypeProblem::DecimalRange => {
                "decimal precision must be 1 to 76 and the scale at most the precision"
            }
            TypeProblem::DecimalArity => "`decimal` takes a precision and a scale: `decimal(20,8)`",
            TypeProblem::DecimalBare => "`decimal` needs a precision and a scale: `decimal(20,8)`",
            TypeProblem::TakesNoArguments => "this type takes no arguments",
            TypeProblem::ArrayOfSecretOrJson => "arrays of `secret` or `json` are not supported",
        }
    }
}

/// Parses `decimal(20,8)`, `string(20)`, `i64[]`, `DecisionType`, ... An
/// unknown name is returned as `ScalarType::Enum` only when `is_enum` says so.
pub fn parse_type(text: &str, is_enum: impl Fn(&str) -> bool) -> Result<Type, TypeError> {
    let t = text.trim();
    let (inner, array) = match t.strip_suffix("[]") {
        Some(inner) => (inner.trim_end(), true),
        None => (t, false),
    };
    if inner.ends_with("[]") {
        return Err(TypeError::Malformed(TypeProblem::NestedArray));
    }
    let (base, args) = match inner.find('(') {
        Some(open) => {
            let Some(args) = inner[open + 1..].strip_suffix(')') else {
                return Err(TypeError::Malformed(TypeProblem::UnclosedParen));
            };
            (inner[..open].trim(), Some(args))
        }
        None => (inner, None),
    };
    let nums = |args: &str| -> Result<Vec<u32>, TypeError> {
        args.split(',')
            .map(|a| {
                a.trim()
                    .parse::<u32>()
                    .map_err(|_| TypeError::Malformed(TypeProblem::NonNumericArgument))
            })
            .collect()
    };
    let scalar = match (base, args) {
        ("uuid", None) => ScalarType::Uuid,
        ("string", None) => ScalarType::String { max: None },
        ("string", Some(a)) => match nums(a)?.as_slice() {
            [n] if *n >= 1 && *n <= 10_485_760 => ScalarType::String { max: Some(*n) },
            [_] => return Err(TypeError::Malformed(TypeProblem::StringLength)),
            _ => return Err(TypeError::Malformed(TypeProblem::StringArity)),
        },
        ("text", None) => ScalarType::Text,
        ("bool", None) => ScalarType::Bool,
        ("i16", None) => ScalarType::I16,
        ("i32", None) => ScalarType::I32,
        ("i64", None) => ScalarType::I64,
        ("f64", None) => ScalarType::F64,
        ("decimal", Some(a)) => match nums(a)?.as_slice() {
            [p, s] if *p >= 1 && *p <= MAX_DECIMAL_PRECISION && s <= p => ScalarType::Decimal {
                precision: *p as u8,
                scale: *s as u8,
            },
            [_, _] => return Err(TypeError::Malformed(TypeProblem::DecimalRange)),
            _ => return Err(TypeError::Malformed(TypeProblem::DecimalArity)),
        },
        ("decimal", None) => return Err(TypeError::Malformed(TypeProblem::DecimalBare)),
        ("timestamptz", None) => ScalarType::Timestamptz,
        ("date", None) => ScalarType::Date,
        ("json", None) => ScalarType::Json,
        ("bytes", None) => ScalarType::Bytes,
        ("secret", None) => ScalarType::Secret,
        (b, Some(_)) if BUILTIN_TYPES.contains(&b) => {
            return Err(TypeError::Malformed(TypeProblem::TakesNoArguments))
        }
        (b, None) if is_enum(b) => ScalarType::Enum(b.to_string()),
        (b, _) => return Err(TypeError::Unknown(b.to_string())),
    };
    if array && matches!(scalar, ScalarType::Secret | ScalarType::Json) {
        return Err(TypeError::Malformed(TypeProblem::ArrayOfSecretOrJson));
    }
    Ok(if array {
        Type::Array(scalar)
    } else {
        Type::Scalar(scalar)
    })
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarType::Uuid => f.write_str("uuid"),
            ScalarType::String { max: None } => f.write_str("string"),
            ScalarType::String { max: Some(n) } => write!(f, "string({n})"),
            ScalarType::Text => f.write_str("text"),
            ScalarType::Bool => f.write_str("bool"),
            ScalarType::I16 => f.write_str("i16"),
            ScalarType::I32 => f.write_str("i32"),
            ScalarType::I64 => f.write_str("i64"),
            ScalarType::F64 => f.write_str("f64"),
            ScalarType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ScalarType::Timestamptz => f.write_str("timestamptz"),
            ScalarType::Date => f.write_str("date"),
            ScalarType::Json => f.write_str("json"),
            ScalarType::Bytes => f.write_str("bytes"),
            ScalarType::Secret => f.write_str("secret"),
            ScalarType::Enum(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(s) => s.fmt(f),
            Type::Array(s) => write!(f, "{s}[]"),
        }
    }
}
