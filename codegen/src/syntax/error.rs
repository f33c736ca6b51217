//! The problems of the front end, typed: files that cannot be read, YAML the
//! schema language refuses, and values or mappings of the wrong shape.
//!
//! Sites build a variant with the places, names and numbers involved; the
//! `From<SyntaxError> for Problem` below is the one place their code,
//! message, labels and help are written.

use crate::diagnostics::{did_you_mean_help, stage_codes, Problem};
use crate::source::Span;

/// One problem found while reading a schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// A file above [`crate::MAX_FILE_BYTES`].
    TooLarge {
        at: Span,
        max: usize,
    },
    /// A file that is not UTF-8; `at` is the first invalid byte.
    NotUtf8 {
        at: Span,
    },
    /// Files that declare no store, enum or entity.
    EmptySchema {
        at: Span,
    },
    /// YAML the parser refused; `hint` is the likely cause.
    InvalidYaml {
        at: Span,
        info: String,
        hint: YamlHint,
    },
    /// A `{` or `[` that YAML gave up on later (`stopped_line`).
    UnclosedBracket {
        at: Span,
        open: char,
        stopped_line: usize,
        info: String,
    },
    /// A `word word` line without `:` above a YAML error.
    MissingColon {
        at: Span,
    },
    SecondDocument {
        at: Span,
    },
    Alias {
        at: Span,
    },
    Anchor {
        at: Span,
    },
    Tag {
        at: Span,
    },
    TooDeep {
        at: Span,
        max: usize,
    },
    Unbalanced {
        at: Span,
    },
    ComplexKey {
        at: Span,
    },
    MergeKey {
        at: Span,
    },
    DuplicateKey {
        at: Span,
        key: String,
        first: Span,
    },
    Version {
        at: Span,
    },
    /// `what` is not a mapping; `known` are the keys it takes.
    ExpectedMapping {
        at: Span,
        what: String,
        found: &'static str,
        known: Vec<&'static str>,
    },
    /// `what` (`stores:`, `fields:`) is not a mapping of names.
    ExpectedNamedMapping {
        at: Span,
        what: String,
        found: &'static str,
    },
    ExpectedList {
        at: Span,
        what: String,
        found: &'static str,
    },
    ExpectedName {
        at: Span,
        what: String,
        found: &'static str,
    },
    /// `found` is the value as written (quoted) or its shape; `quoted`:
    /// it was a quoted string (`"true"`).
    ExpectedBool {
        at: Span,
        what: String,
        found: String,
        quoted: bool,
    },
    ExpectedNumber {
        at: Span,
        what: String,
        found: String,
    },
    NegativeNumber {
        at: Span,
        what: String,
        found: String,
    },
    NumberOutOfRange {
        at: Span,
        what: String,
        found: String,
        min: u32,
        max: u32,
    },
    ExpectedDuration {
        at: Span,
        what: String,
        found: String,
    },
    DurationOutOfRange {
        at: Span,
        what: String,
        found: String,
    },
    ExpectedLiteral {
        at: Span,
        what: String,
        found: &'static str,
    },
    /// A key `what` does not have. The help is, in this order: where the
    /// key belongs (`moved`), the suggestion, the flow-comma hint, the
    /// known keys.
    UnknownKey {
        at: Span,
        key: String,
        what: String,
        known: Vec<&'static str>,
        moved: Option<MovedKey>,
        suggestion: Option<String>,
        flow_comma: bool,
    },
    /// A key of an entity that looks like a field, beside its `fields:`.
    FieldOutsideFields {
        at: Span,
        key: String,
        what: String,
    },
    /// Fields written under an entity that has no `fields:`.
    FieldsNotUnderFields {
        at: Span,
        what: String,
    },
    /// A top-level section or a declaration's key used as a name.
    MisplacedKey {
        at: Span,
        name: String,
        what: String,
        top_level: bool,
    },
    MissingKey {
        at: Span,
        what: String,
        missing: Missing,
    },
    SyncToNothing {
        at: Span,
    },
    UniqueIsMapping {
        at: Span,
    },
    NullableConflict {
        at: Span,
    },
    /// `doc:` text holding `char`.
    BadDoc {
        at: Span,
        char: char,
    },
    BadOrder {
        at: Span,
        word: String,
        field: String,
    },
    ExtraAfterOrder {
        at: Span,
        extra: String,
        field: String,
    },
    NullInFilter {
        at: Span,
        field: String,
    },
    BadFilter {
        at: Span,
        found: &'static str,
    },
}

stage_codes!(SyntaxError {
    TooLarge => TooLarge,
    NotUtf8 => NotUtf8,
    EmptySchema => EmptySchema,
    InvalidYaml => Yaml,
    UnclosedBracket => Yaml,
    MissingColon => Yaml,
    SecondDocument => Yaml,
    Alias => YamlAlias,
    Anchor => YamlAlias,
    Tag => YamlTag,
    TooDeep => YamlDepth,
    Unbalanced => Yaml,
    ComplexKey => YamlKey,
    MergeKey => YamlKey,
    DuplicateKey => DuplicateKey,
    Version => Version,
    ExpectedMapping => ExpectedMapping,
    ExpectedNamedMapping => ExpectedMapping,
    ExpectedList => ExpectedList,
    ExpectedName => ExpectedName,
    ExpectedBool => ExpectedBool,
    ExpectedNumber => ExpectedNumber,
    NegativeNumber => ExpectedNumber,
    NumberOutOfRange => OutOfRange,
    ExpectedDuration => ExpectedDuration,
    DurationOutOfRange => OutOfRange,
    ExpectedLiteral => ExpectedLiteral,
    UnknownKey => UnknownKey,
    FieldOutsideFields => UnknownKey,
    FieldsNotUnderFields => ExpectedMapping,
    MisplacedKey => MisplacedKey,
    MissingKey => MissingKey,
    SyncToNothing => MissingKey,
    UniqueIsMapping => ExpectedList,
    NullableConflict => Conflict,
    BadDoc => BadDoc,
    BadOrder => BadOrder,
    ExtraAfterOrder => BadOrder,
    NullInFilter => ExpectedLiteral,
    BadFilter => ExpectedName,
});

/// What most likely caused a YAML syntax error, for its help line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlHint {
    Tabs,
    /// The `{` or `[` at `line`, `col` is not closed.
    Unclosed {
        open: char,
        line: usize,
        col: usize,
    },
    ValueWithColon,
    Indentation,
    BadStart,
    Quote,
    TooDeep,
    Other,
}

/// A field setting written on the field that belongs elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovedKey {
    PrimaryKey,
    Index,
    EnumValues,
}

/// Which required key is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    StoreKind,
    SyncFrom,
    SyncTo,
    CacheStore,
    SearchStore,
    EventsStore,
    /// `name:` with nothing after the colon.
    FieldType,
    /// A field mapping without `type:`.
    FieldTypeKey,
    IndexFields,
}

impl Missing {
    fn key(self) -> &'static str {
        match self {
            Missing::StoreKind => "kind",
            Missing::SyncFrom => "from",
            Missing::SyncTo => "to",
            Missing::CacheStore | Missing::SearchStore | Missing::EventsStore => "store",
            Missing::FieldType | Missing::FieldTypeKey => "type",
            Missing::IndexFields => "fields",
        }
    }
    fn help(self) -> &'static str {
        match self {
            Missing::StoreKind => {
                "add `kind: postgres` (or redis, clickhouse, elasticsearch, influxdb)"
            }
            Missing::SyncFrom => "add `from: Entity`",
            Missing::SyncTo => "add `to: store` or `to: [store, store]`",
            Missing::CacheStore => "add `store: cache` naming a redis store",
            Missing::SearchStore => "add `store: search` naming an elasticsearch store",
            Missing::EventsStore => {
                "add `store: cache` naming a redis store (or write `events: cache`)"
            }
            Missing::FieldType => "write its type after the colon, as in `symbol: string(20)`",
            Missing::FieldTypeKey => "add `type: string` (or another type)",
            Missing::IndexFields => "add `fields: [a, b]`",
        }
    }
}

impl YamlHint {
    fn help(self) -> String {
        match self {
            YamlHint::Tabs => "indent with spaces: YAML does not allow tabs in indentation".into(),
            YamlHint::Unclosed { open, line, col } => format!(
                "the `{open}` at line {line}, column {col} is not closed: add `{}`, or separate its entries with `,`",
                closing(open)
            ),
            YamlHint::ValueWithColon => "a value holding `: ` must be quoted, and a key starts its own line".into(),
            YamlHint::Indentation => "keys of one mapping start in the same column; check the indentation".into(),
            YamlHint::BadStart => "quote the value: `@`, `%` and backticks cannot start a plain YAML value".into(),
            YamlHint::Quote => "close the quote on the same value".into(),
            YamlHint::TooDeep => "nesting is limited to 64 levels: flatten this value".into(),
            YamlHint::Other => "check indentation and quoting around this point".into(),
        }
    }
}

impl MovedKey {
    fn help(self) -> &'static str {
        match self {
            MovedKey::PrimaryKey => "the primary key is declared on the entity: `key: <field>` (a field named `id` is the key by default)",
            MovedKey::Index => "indexes are declared on the entity: `indexes: [[<field>]]`",
            MovedKey::EnumValues => "declare an enum under `enums:` (e.g. `Status: [ACTIVE, CLOSED]`) and use its name as the type",
        }
    }
}

/// The bracket that closes `open`.
fn closing(open: char) -> char {
    if open == '{' {
        '}'
    } else {
        ']'
    }
}

const ANCHORS_REFUSED: &str =
    "write the value out; anchors and aliases are refused to keep schemas explicit";

impl From<SyntaxError> for Problem {
    fn from(e: SyntaxError) -> Problem {
        let typed = e.clone();
        let p = |at: Span, message: String| Problem::typed(typed, at, message);
        use SyntaxError as E;
        match e {
            E::TooLarge { at, max } => p(at, format!("this file is larger than {max} bytes"))
                .label("not read")
                .help("split the schema into several files in one folder"),
            E::NotUtf8 { at } => p(at, "this file is not UTF-8 text".into())
                .label("invalid byte")
                .help("save the schema as UTF-8 (it may be Latin-1 or UTF-16)"),
            E::EmptySchema { at } => p(at, "the schema declares nothing".into())
                .label("no stores, enums or entities")
                .help("declare at least a store and an entity, as in `stores: { main: { kind: postgres, url: \"${DATABASE_URL}\" } }`"),
            E::InvalidYaml { at, info, hint } => p(at, format!("invalid YAML: {info}"))
                .label("here")
                .help(hint.help()),
            E::UnclosedBracket { at, open, stopped_line, info } => {
                let close = closing(open);
                p(at, format!("invalid YAML: this `{open}` is never closed"))
                    .label(format!("needs a matching `{close}`"))
                    .help(format!("add `{close}` at the end of the entries (YAML stopped at line {stopped_line}: {info})"))
            }
            E::MissingColon { at } => p(at, "invalid YAML: this line has no `:`".into())
                .label("expected `key: value`")
                .help("write a colon and a space after the key, as in `id: uuid`"),
            E::SecondDocument { at } => p(at, "a schema file holds one YAML document".into())
                .label("second document starts here")
                .help("split the documents into separate files in the schema directory"),
            E::Alias { at } => p(at, "YAML aliases are not supported in schemas".into())
                .label("alias")
                .help(ANCHORS_REFUSED),
            E::Anchor { at } => p(at, "YAML anchors are not supported in schemas".into())
                .label("anchor")
                .help(ANCHORS_REFUSED),
            E::Tag { at } => p(at, "YAML tags are not supported in schemas".into())
                .label("tag")
                .help("remove the tag (such as `!!binary` or `!!str`): every value is read as plain text; quote it if it must stay a string"),
            E::TooDeep { at, max } => p(at, format!("nesting deeper than {max} levels"))
                .label("too deep")
                .help("a schema never needs this much nesting; check for a runaway structure"),
            E::Unbalanced { at } => p(at, "invalid YAML: unbalanced collection".into())
                .label("here")
                .help("check the brackets and indentation around this point"),
            E::ComplexKey { at } => p(at, "mapping keys must be plain names".into())
                .label("complex key")
                .help("use a plain scalar such as `name:` as the key"),
            E::MergeKey { at } => p(at, "YAML merge keys (`<<`) are not supported in schemas".into())
                .label("merge key")
                .help("write the keys out in full; merges, anchors and aliases are refused to keep schemas explicit"),
            E::DuplicateKey { at, key, first } => p(at, format!("duplicate key `{key}`"))
                .label("written again here")
                .also(first, "first written here")
                .help("each key may appear once in a mapping; merge the two entries"),
            E::Version { at } => p(at, "unsupported schema language version".into())
                .label("expected 1")
                .help("this compiler reads version 1 of the schema language"),

        E::ExpectedMapping { at, what, found, known } => p(at, format!("{what} must be a mapping"))
            .label(format!("found {found}"))
            .help(format!("write `key: value` pairs; known keys: {}", known.join(", "))),
        E::ExpectedNamedMapping { at, what, found } => p(at, format!("{what} must be a mapping of names"))
            .label(format!("found {found}"))
            .help("write one `Name: ...` entry per line"),
        E::ExpectedList { at, what, found } => p(at, format!("{what} must be a list"))
            .label(format!("found {found}"))
            .help("write `[a, b]` or one `- item` per line"),
        E::ExpectedName { at, what, found } => p(at, format!("{what} must be a name"))
            .label(format!("found {found}"))
            .help("write a plain name such as `symbol`"),
        E::ExpectedBool { at, what, found, quoted } => p(at, format!("{what} must be true or false"))
            .label(format!("found {found}"))
            .help(match quoted {
                true => "write `true` or `false` without quotes",
                false => "write `true` or `false` (`yes`, `on` and `1` are not booleans in the schema)",
            }),
        E::ExpectedNumber { at, what, found } => p(at, format!("{what} must be a whole number"))
            .label(format!("found {found}"))
            .help("write a number such as `100`"),
        E::NegativeNumber { at, what, found } => p(at, format!("{what} cannot be negative"))
            .label(format!("found {found}"))
            .help("write a positive whole number such as `100`"),
        E::NumberOutOfRange { at, what, found, min, max } => p(at, format!("{what} is out of range"))
            .label(format!("found {found}"))
            .help(format!("write a whole number from {min} to {max}")),
        E::ExpectedDuration { at, what, found } => p(at, format!("{what} must be a duration"))
            .label(format!("found {found}"))
            .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
        E::DurationOutOfRange { at, what, found } => p(at, format!("{what} is out of range"))
            .label(format!("found {found}"))
            .help(super::DURATION_RANGE),
        E::ExpectedLiteral { at, what, found } => p(at, format!("{what} must be a single value"))
            .label(format!("found {found}"))
            .help("write a literal such as `0`, `true`, `'text'`, an enum member, `now` or `generated`"),
        E::UnknownKey { at, key, what, known, moved, suggestion, flow_comma } => {
            let help = match (moved, suggestion) {
                (Some(m), _) => m.help().to_string(),
                (None, Some(s)) => did_you_mean_help(&s),
                (None, None) if flow_comma => "inside `{ }` a comma separates entries: quote the type, as in `type: \"decimal(20,8)\"`".into(),
                (None, None) => format!("known keys: {}", known.join(", ")),
            };
            p(at, format!("unknown key `{key}` in {what}")).label("unknown key").help(help)
        }
        E::FieldOutsideFields { at, key, what } => p(at, format!("unknown key `{key}` in {what}"))
            .label("unknown key")
            .help("this looks like a field: indent it under `fields:`"),
        E::FieldsNotUnderFields { at, what } => p(at, format!("the fields of {what} are not under `fields:`"))
            .label("a field, outside `fields:`")
            .help("write `fields:` under the entity and indent its fields below it, as in `fields: { id: uuid, name: text }`"),
        E::MisplacedKey { at, name, what, top_level } => {
            let help = match top_level {
                true => format!("`{name}:` is a top-level section: start it at the beginning of the line"),
                false => format!("`{name}:` belongs inside {what}: indent it under the one it belongs to"),
            };
            p(at, format!("`{name}` is not the name of {what}"))
                .label("wrong indentation?")
                .help(help)
        }
        E::MissingKey { at, what, missing } => {
            let key = missing.key();
            p(at, format!("{what} has no `{key}`"))
                .label(format!("needs `{key}:`"))
                .help(missing.help())
        }
        E::SyncToNothing { at } => p(at, "this sync rule copies to no store".into())
            .label("empty list")
            .help("name the stores to copy to: `to: analytics` or `to: [analytics, search]`"),
        E::UniqueIsMapping { at } => p(at, "a unique constraint is a field or a list of fields".into())
            .label("found a mapping")
            .help("write `- [a, b]` for a composite constraint; for options (`where`, `name`) declare a unique index under `indexes:`"),
        E::NullableConflict { at } => p(at, "`nullable: false` contradicts the `?` of the type".into())
            .label("not nullable")
            .help("drop the `?` or the `nullable: false`"),
        E::BadDoc { at, char } => p(at, format!("this `doc` holds the character {}", char.escape_unicode()))
            .label("cannot stand in a Rust doc comment")
            .help("a doc is text: letters, punctuation, spaces, tabs and line breaks; remove control and text-direction characters"),
        E::BadOrder { at, word, field } => p(at, format!("`{word}` is not an order"))
            .label("expected `desc` or `asc`")
            .help(format!("write `{field} desc` (or `{field} asc`, the default)")),
        E::ExtraAfterOrder { at, extra, field } => p(at, format!("unexpected `{extra}` after the order"))
            .label("one field and its order")
            .help(format!("write `{field} desc`; list several fields as separate items")),
        E::NullInFilter { at, field } => p(at, "an index's `where` compares with values, not null".into())
            .label("null")
            .help(format!("for rows where `{field}` is null write the predicate as SQL: `where: \"{field} IS NULL\"`")),
        E::BadFilter { at, found } => p(at, "an index's `where` is a mapping of equalities or a SQL predicate".into())
            .label(format!("found {found}"))
            .help("write `where: { status: OPEN }` or `where: \"price > 0\"`"),
        }
    }
}
