//! The registry of diagnostic codes: every problem Strata reports has one of
//! these, a stable name (`strata::unknown_key`) that editors, scripts and
//! the README's table use. A new kind of problem is a new variant here, with
//! the sentence the README shows (a test keeps the two in step).

macro_rules! codes {
    ($($variant:ident => $code:literal : $meaning:literal,)*) => {
        /// A diagnostic code. `Display` and [`Code::as_str`] give its stable
        /// name, [`Code::meaning`] one sentence on what it reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $meaning] $variant,)*
        }

        impl Code {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable name, e.g. `strata::unknown_key`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// What a problem of this code means, in one sentence.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

codes! {
    // Files and YAML.
    Io => "strata::io": "A schema path cannot be read (exit code 2).",
    NoSchema => "strata::no_schema": "A schema folder holds no `*.yaml` or `*.yml` file (exit code 2).",
    TooLarge => "strata::too_large": "A schema file is larger than 8 MiB.",
    NotUtf8 => "strata::not_utf8": "A schema file is not UTF-8 text.",
    Yaml => "strata::yaml": "The text is not valid YAML, or holds more than one document.",
    YamlAlias => "strata::yaml_alias": "YAML anchors and aliases (`&a`, `*a`) are not supported.",
    YamlTag => "strata::yaml_tag": "YAML tags (`!!binary`, `!custom`) are not supported: a value is read as plain text.",
    YamlDepth => "strata::yaml_depth": "Mappings and lists are nested more than 64 levels deep.",
    YamlKey => "strata::yaml_key": "A mapping key is not a plain name.",
    DuplicateKey => "strata::duplicate_key": "A key appears twice in one mapping.",
    EmptySchema => "strata::empty_schema": "The schema declares no store, enum or entity.",
    Version => "strata::version": "`version:` names a schema language version this compiler does not know.",
    // Shapes.
    UnknownKey => "strata::unknown_key": "A key the language does not have at this place (with a did-you-mean).",
    MisplacedKey => "strata::misplaced_key": "A key that belongs elsewhere, such as a field written outside `fields:`.",
    MissingKey => "strata::missing_key": "A required key is missing (an entity's `key`, a store's `kind`, a series' `time`).",
    ExpectedMapping => "strata::expected_mapping": "A mapping was expected.",
    ExpectedList => "strata::expected_list": "A list was expected.",
    ExpectedName => "strata::expected_name": "A plain name was expected.",
    ExpectedBool => "strata::expected_bool": "`true` or `false` was expected.",
    ExpectedNumber => "strata::expected_number": "A whole number was expected.",
    ExpectedDuration => "strata::expected_duration": "A duration such as `30s` or `5m` was expected.",
    OutOfRange => "strata::out_of_range": "A number or duration outside the range its setting allows (the message gives the range).",
    ExpectedLiteral => "strata::expected_literal": "A single value was expected, not a list or mapping.",
    Conflict => "strata::conflict": "Two settings contradict each other (`nullable: false` on a `T?` type).",
    // Names.
    BadIdentifier => "strata::bad_identifier": "A name is not a safe identifier, or is reserved (by SQL, PostgreSQL or the generated Rust).",
    DuplicateName => "strata::duplicate_name": "A name is declared twice, or two items get the same SQL name.",
    RustNameClash => "strata::rust_name_clash": "Two names become the same item of the generated Rust.",
    BadDoc => "strata::bad_doc": "A `doc:` holds a character that cannot stand in a Rust doc comment.",
    // Stores.
    UnknownStore => "strata::unknown_store": "No store of this name is declared.",
    UnknownStoreKind => "strata::unknown_store_kind": "A store's `kind` is not one of postgres, redis, clickhouse, elasticsearch, influxdb.",
    WrongStoreKind => "strata::wrong_store_kind": "A store of this kind cannot play this role (an entity cannot live in redis).",
    SettingNotForKind => "strata::setting_not_for_kind": "A store setting that applies to another kind of store.",
    BadSetting => "strata::bad_setting": "A store setting has the wrong shape or value.",
    BadTemplate => "strata::bad_template": "A `${VAR}` template in a setting is malformed.",
    // Types, fields and defaults.
    UnknownType => "strata::unknown_type": "A type that is neither built in nor a declared enum.",
    BadType => "strata::bad_type": "A malformed type, such as `decimal(2,5)`.",
    BadMax => "strata::bad_max": "`max:` is out of range or applies to a type without a length.",
    BadDefault => "strata::bad_default": "A default, or a fixed value of a `where:`, that the field's type cannot hold; an unquoted keyword (`now`, `generated`, `empty`) on a text field.",
    UnknownEnumValue => "strata::unknown_enum_value": "A value that is not a member of the enum.",
    EmptyEnum => "strata::empty_enum": "An enum without values.",
    ReservedField => "strata::reserved_field": "A field clashes with a maintained column (`created_at`, `updated_at`, `version`).",
    DecimalPrecision => "strata::decimal_precision": "A decimal wider than the Rust SDK's `Decimal` can carry without loss.",
    EnumSchemas => "strata::enum_schemas": "One enum is used by postgres stores with different `schema:`.",
    // Entities, keys and constraints.
    UnknownEntity => "strata::unknown_entity": "No entity of this name is declared.",
    UnknownField => "strata::unknown_field": "The entity has no field of this name.",
    BadKey => "strata::bad_key": "A field that cannot be part of a primary key (nullable, json, secret, f64, array).",
    BadUnique => "strata::bad_unique": "A unique constraint without fields, or on a field that cannot be compared.",
    BadReference => "strata::bad_reference": "A reference to a field of another type, store or kind of entity.",
    OnDeleteWithoutReference => "strata::on_delete_without_reference": "`on_delete` on a field that references nothing.",
    BadRename => "strata::bad_rename": "A `renamed_from` that names itself, a name still in use, or one name twice.",
    BadPartition => "strata::bad_partition": "`partition_by` names a field that is not a time.",
    // Indexes and queries.
    EmptyIndex => "strata::empty_index": "An index without fields.",
    BadIndex => "strata::bad_index": "An index method or option that does not fit its fields.",
    BadPredicate => "strata::bad_predicate": "A partial-index predicate holds `;` or a comment, or is malformed.",
    BadOrder => "strata::bad_order": "An order that is not a field optionally followed by `asc` or `desc`.",
    BadQuery => "strata::bad_query": "A finder query that cannot run as written (`limit: 0`).",
    UnboundedQuery => "strata::unbounded_query": "A finder without `where` and without `limit` would read the whole table.",
    SecretQuery => "strata::secret_query": "A finder that looks rows up by a secret (a parameter or a fixed value).",
    SecretKey => "strata::secret_key": "A secret field used as a key: in an index or its `where:`, a unique constraint or a reference.",
    UnboundedIndex => "strata::unbounded_index": "Warning: a B-tree index, unique constraint or key whose entries can exceed PostgreSQL's 2704 bytes.",
    // Time series.
    SeriesOnly => "strata::series_only": "A setting for time-series entities on a record, or the reverse.",
    SeriesKey => "strata::series_key": "A time-series entity with a `key`.",
    BadSeries => "strata::bad_series": "A series' time or tag field of the wrong type.",
    SecretInSeries => "strata::secret_in_series": "A time-series entity holding a secret.",
    InfluxType => "strata::influx_type": "A field type the line protocol cannot carry without loss.",
    // Copies: sync, search, ClickHouse.
    BadSync => "strata::bad_sync": "A sync rule to a store that cannot take the entity (its own store, a redis store, twice).",
    SearchType => "strata::search_type": "A field type that the search store cannot index without loss.",
    BadSearchField => "strata::bad_search_field": "A `search: { text: [...] }` field that is not text.",
    SecretInSearch => "strata::secret_in_search": "A secret field listed as searchable.",
    SecretInCache => "strata::secret_in_cache": "`cache:` on an entity with a secret field (secrets are never cached).",
    BadEvents => "strata::bad_events": "`events:` with a partition count or length out of range, or on an entity change capture does not read.",
    ClickhouseType => "strata::clickhouse_type": "A field type the ClickHouse store cannot hold without loss.",
    ClickhousePartition => "strata::clickhouse_partition": "A ClickHouse partition that the server version or the field cannot carry.",
    // Limits.
    TooManyFields => "strata::too_many_fields": "An entity with more than 1,000 fields.",
    TooManyTargets => "strata::too_many_targets": "An entity synced to more than 32 stores.",
    TooLargeOutput => "strata::too_large_output": "The schema's artifacts would hold more than 40,000 columns (fields × (1 + sync targets)).",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
