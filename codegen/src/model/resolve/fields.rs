//! Fields: types, defaults and lookups by name.

use super::*;

impl Resolver<'_> {
    pub(super) fn field(
        &mut self,
        f: &ast::FieldDecl,
        enums: &HashMap<&str, &Enum>,
    ) -> Option<Field> {
        if !is_snake_ident(&f.name) || f.name.value == "_" {
            self.bad_name("field", &f.name, "snake_case");
        } else if PG_SYSTEM_COLUMNS.contains(&f.name.as_str()) {
            self.err(
                Problem::new(
                    Code::BadIdentifier,
                    f.name.span,
                    format!("`{}` is the name of a PostgreSQL system column", f.name.value),
                )
                .label("reserved by PostgreSQL")
                .help(format!(
                    "every PostgreSQL table has the hidden columns {}: name the field otherwise, e.g. `{}_value`",
                    PG_SYSTEM_COLUMNS.join(", "),
                    f.name.value
                )),
            );
        }
        let mut ty = match parse_type(&f.ty, |n| enums.contains_key(n)) {
            Ok(t) => t,
            Err(TypeError::Unknown(name)) => {
                if !self.quiet(&name) {
                    self.unknown_type(&f.ty, &name, enums);
                }
                return None;
            }
            Err(TypeError::Malformed(why)) => {
                self.err(
                    Problem::new(
                        Code::BadType,
                        f.ty.span,
                        format!("invalid type `{}`", f.ty.value),
                    )
                    .label("malformed type")
                    .help(why),
                );
                return None;
            }
        };
        if let Some(max) = f
            .max
            .as_ref()
            .filter(|m| m.value == 0 || m.value > 10_485_760)
        {
            self.err(
                Problem::new(
                    Code::BadMax,
                    max.span,
                    format!("`max: {}` is not a string length", max.value),
                )
                .label("out of range")
                .help("a string length is between 1 and 10485760; use `text` for unbounded text"),
            );
        } else if let Some(max) = &f.max {
            match &mut ty {
                Type::Scalar(ScalarType::String { max: m @ None }) | Type::Array(ScalarType::String { max: m @ None })
                    if max.value >= 1 =>
                {
                    *m = Some(max.value)
                }
                _ => self.err(
                    Problem::new(Code::BadMax, max.span, "`max` applies to a `string` field without a length")
                        .label("not applicable")
                        .help("write `type: string, max: 20` or `string(20)`, not both; other types take no `max`"),
                ),
            }
        }
        let nullable = f.nullable.as_ref().is_some_and(|n| n.value);
        let default = f.default.as_ref().and_then(|d| self.default(d, &ty, enums));
        if nullable && default == Some(Default::Identity) {
            // PostgreSQL makes an identity column NOT NULL whatever the schema says.
            let at = f.default.as_ref().map_or(f.span, |d| d.span);
            self.err(
                Problem::new(Code::BadDefault, at, "an identity column cannot be nullable")
                    .label("identity")
                    .help("PostgreSQL keeps identity columns NOT NULL: drop the `?` (or `nullable: true`), or the `default: generated`"),
            );
        }
        let mut renamed_from = None;
        if let Some(r) = &f.renamed_from {
            if !is_snake_ident(r) {
                self.bad_name("field", r, "snake_case");
            }
            renamed_from = Some(r.value.clone());
        }
        if f.on_delete.is_some() && f.references.is_none() {
            let s = f.on_delete.as_ref().map(|o| o.span).unwrap_or(f.span);
            self.err(
                Problem::new(
                    Code::OnDeleteWithoutReference,
                    s,
                    "`on_delete` needs `references`",
                )
                .label("no reference")
                .help("add `references: Entity` to this field, or remove `on_delete`"),
            );
        }
        Some(Field {
            name: Ident {
                schema: f.name.value.clone(),
                sql: f.name.value.clone(),
                rust: f.name.value.clone(),
            },
            ty,
            nullable,
            default,
            role: FieldRole::Data,
            references: None, // filled by `references` once every entity is known
            renamed_from,
            doc: f.doc.clone(),
            span: f.span,
        })
    }

    /// Checks a literal against a type.
    pub(super) fn default(
        &mut self,
        d: &Spanned<DefaultLit>,
        ty: &Type,
        enums: &HashMap<&str, &Enum>,
    ) -> Option<Default> {
        let (text, quoted) = match &d.value {
            DefaultLit::Plain(s) => (s.as_str(), false),
            DefaultLit::Quoted(s) => (s.as_str(), true),
        };
        let bad = |r: &mut Self, help: String| {
            r.err(
                Problem::new(
                    Code::BadDefault,
                    d.span,
                    format!("`{text}` is not a valid value for a field of type `{ty}`"),
                )
                .label("wrong value")
                .help(help),
            );
            None
        };
        if ty.is_array() {
            return if text == "empty" && !quoted {
                Some(Default::EmptyArray)
            } else {
                bad(self, "an array field's only default is `empty`".into())
            };
        }
        match ty.scalar() {
            ScalarType::Timestamptz | ScalarType::Date if text == "now" && !quoted => {
                Some(Default::Now)
            }
            ScalarType::Timestamptz | ScalarType::Date => {
                bad(self, "time fields take `now` as a default".into())
            }
            ScalarType::Uuid if text == "generated" && !quoted => Some(Default::GeneratedUuid),
            ScalarType::Uuid => bad(
                self,
                "uuid fields take `generated` (a random v4 UUID) as a default".into(),
            ),
            ScalarType::Bool => match (text, quoted) {
                ("true", false) => Some(Default::Bool(true)),
                ("false", false) => Some(Default::Bool(false)),
                _ => bad(self, "write `true` or `false` without quotes".into()),
            },
            ScalarType::I32 | ScalarType::I64 if text == "generated" && !quoted => {
                Some(Default::Identity)
            }
            ScalarType::I16 | ScalarType::I32 | ScalarType::I64 => {
                let (lo, hi) = match ty.scalar() {
                    ScalarType::I16 => (i16::MIN as i64, i16::MAX as i64),
                    ScalarType::I32 => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                match text.parse::<i64>() {
                    Ok(n) if !quoted && n >= lo && n <= hi => Some(Default::Int(n.to_string())),
                    _ => bad(self, format!("write a whole number from {lo} to {hi}, or `generated` for an identity column")),
                }
            }
            ScalarType::F64 => match text.parse::<f64>() {
                Ok(v) if !quoted && v.is_finite() => Some(Default::Number(text.to_string())),
                _ => bad(self, "write a finite number such as `0.5`".into()),
            },
            ScalarType::Decimal { precision, scale } => {
                let (p, s) = (*precision as usize, *scale as usize);
                if quoted || !is_decimal_literal(text, p, s) {
                    return bad(
                        self,
                        format!(
                            "write a number with at most {} digits before and {s} after the point",
                            p - s
                        ),
                    );
                }
                Some(Default::Number(text.to_string()))
            }
            ScalarType::String { max } => {
                if let Some(m) = max {
                    if text.chars().count() > *m as usize {
                        return bad(
                            self,
                            format!("the default is longer than the field's {m} characters"),
                        );
                    }
                }
                Some(Default::String(text.to_string()))
            }
            ScalarType::Text => Some(Default::String(text.to_string())),
            ScalarType::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(_) => Some(Default::String(text.to_string())),
                Err(_) => bad(
                    self,
                    "write the JSON as a quoted string, e.g. `default: '{}'`".into(),
                ),
            },
            ScalarType::Enum(name) => {
                let e = enums.get(name.as_str())?;
                if e.variants.iter().any(|v| v.name.schema == text) {
                    Some(Default::EnumMember(text.to_string()))
                } else {
                    self.err(
                        Problem::new(
                            Code::UnknownEnumValue,
                            d.span,
                            format!("`{text}` is not a value of enum `{name}`"),
                        )
                        .label("not a member")
                        .suggest_when(
                            self.probs,
                            text,
                            e.variants.iter().map(|v| v.name.schema.as_str()),
                        )
                        .help_or(format!(
                            "values: {}",
                            list(e.variants.iter().map(|v| &v.name.schema))
                        )),
                    );
                    None
                }
            }
            ScalarType::Bytes | ScalarType::Secret => {
                bad(self, format!("`{ty}` fields take no default"))
            }
        }
    }

    /// Looks a field up by schema name, reporting a miss with a suggestion.
    pub(super) fn field_ref(&mut self, e: &Entity, name: &Spanned<String>) -> Option<usize> {
        let hit = self.field_index.get(&name.value).copied();
        if let Some(i) =
            hit.filter(|&i| e.fields.get(i).is_some_and(|f| f.name.schema == name.value))
        {
            return Some(i);
        }
        if self.fields_unknown
            || (self.broken_fields).contains(&(e.name.schema.clone(), name.value.clone()))
        {
            return None;
        }
        let help = if e.fields.is_empty() {
            format!("`{}` declares no fields yet", e.name.schema)
        } else {
            format!("fields: {}", list(e.fields.iter().map(|f| &f.name.schema)))
        };
        self.err(
            Problem::new(
                Code::UnknownField,
                name.span,
                format!("entity `{}` has no field `{}`", e.name.schema, name.value),
            )
            .label("unknown field")
            .suggest_when(
                self.probs,
                name,
                e.fields.iter().map(|f| f.name.schema.as_str()),
            )
            .help_or(help),
        );
        None
    }

    fn unknown_type(&mut self, at: &Spanned<String>, name: &str, enums: &HashMap<&str, &Enum>) {
        let mut p = Problem::new(Code::UnknownType, at.span, format!("unknown type `{name}`"))
            .label("not a type");
        if self.entity_names.contains(name) {
            p = p.help(format!(
                "`{name}` is an entity; a field that points at it is written `{{ type: uuid, references: {name} }}` (the type of its key)"
            ));
        } else if name.eq_ignore_ascii_case("enum") {
            p = p.help("declare the enum under `enums:` (e.g. `Status: [ACTIVE, CLOSED]`) and write its name as the type: `type: Status`");
        } else if let Some(instead) = type_alias(name) {
            p = p.help(format!("did you mean `{instead}`?"));
        } else {
            let candidates = BUILTIN_TYPES.iter().copied().chain(enums.keys().copied());
            p = p.suggest_when(self.probs, name, candidates);
        }
        self.err(p.help_or(format!(
            "types are {}, decimal(p,s), string(n), `T[]` arrays and enum names",
            BUILTIN_TYPES.join(", ")
        )));
    }
}

/// Hidden columns of every PostgreSQL table: a column of one of these names
/// cannot be created (`column name "xmin" conflicts with a system column name`).
const PG_SYSTEM_COLUMNS: &[&str] = &["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"];
