//! Fields: types, defaults and lookups by name.

use super::*;

/// The literals a `default:` reads as generated values, when unquoted.
const KEYWORDS: [&str; 3] = ["now", "generated", "empty"];

impl Resolver<'_> {
    pub(super) fn field(
        &mut self,
        f: &ast::FieldDecl,
        enums: &HashMap<&str, &Enum>,
    ) -> Option<Field> {
        if !is_snake_ident(&f.name) || f.name.value == "_" {
            self.bad_name("field", &f.name, NameStyle::SnakeCase);
        } else if PG_SYSTEM_COLUMNS.contains(&f.name.as_str()) {
            self.err(ResolveError::SystemColumn {
                at: f.name.span,
                name: f.name.value.clone(),
                columns: PG_SYSTEM_COLUMNS,
            });
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
                self.err(ResolveError::BadType {
                    at: f.ty.span,
                    written: f.ty.value.clone(),
                    why,
                });
                return None;
            }
        };
        if let Some(max) = f
            .max
            .as_ref()
            .filter(|m| m.value == 0 || m.value > 10_485_760)
        {
            self.err(ResolveError::MaxOutOfRange {
                at: max.span,
                max: max.value,
            });
        } else if let Some(max) = &f.max {
            match &mut ty {
                Type::Scalar(ScalarType::String { max: m @ None })
                | Type::Array(ScalarType::String { max: m @ None })
                    if max.value >= 1 =>
                {
                    *m = Some(max.value)
                }
                _ => self.err(ResolveError::MaxNotApplicable { at: max.span }),
            }
        }
        let nullable = f.nullable.as_ref().is_some_and(|n| n.value);
        let default = f
            .default
            .as_ref()
            .and_then(|d| self.default(d, &ty, enums, ValueUse::Default));
        if nullable && default == Some(Default::Identity) {
            // PostgreSQL makes an identity column NOT NULL whatever the schema says.
            let at = f.default.as_ref().map_or(f.span, |d| d.span);
            self.err(ResolveError::NullableIdentity { at });
        }
        let mut renamed_from = None;
        if let Some(r) = &f.renamed_from {
            if !is_snake_ident(r) {
                self.bad_name("field", r, NameStyle::SnakeCase);
            }
            renamed_from = Some(r.value.clone());
        }
        if f.on_delete.is_some() && f.references.is_none() {
            let s = f.on_delete.as_ref().map(|o| o.span).unwrap_or(f.span);
            self.err(ResolveError::OnDeleteWithoutReference { at: s });
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

    /// Checks a literal against a type, as used in `used`: the keywords
    /// `now`, `generated` and `empty` are read as such only unquoted and in
    /// a `default:`; unquoted on a text field they are refused, as a likely
    /// mistake, whatever the use (quoted, they are the text).
    pub(super) fn default(
        &mut self,
        d: &Spanned<DefaultLit>,
        ty: &Type,
        enums: &HashMap<&str, &Enum>,
        used: ValueUse,
    ) -> Option<Default> {
        let (text, quoted) = match &d.value {
            DefaultLit::Plain(s) => (s.as_str(), false),
            DefaultLit::Quoted(s) => (s.as_str(), true),
        };
        let keyword = KEYWORDS.iter().copied().find(|k| *k == text && !quoted);
        // A keyword read as a generated value: a `default:` only.
        let is = |k: &str| keyword == Some(k) && used.takes_keywords();
        let bad = |r: &mut Self, takes: DefaultRule| {
            r.err(ResolveError::BadDefault {
                at: d.span,
                text: text.to_string(),
                ty: ty.clone(),
                takes,
                used,
            });
            None
        };
        if ty.is_array() {
            return if is("empty") {
                Some(Default::EmptyArray)
            } else {
                bad(self, DefaultRule::EmptyArray)
            };
        }
        match ty.scalar() {
            ScalarType::Timestamptz | ScalarType::Date if is("now") => Some(Default::Now),
            ScalarType::Timestamptz | ScalarType::Date => bad(self, DefaultRule::Now),
            ScalarType::Uuid if is("generated") => Some(Default::GeneratedUuid),
            ScalarType::Uuid => bad(self, DefaultRule::GeneratedUuid),
            ScalarType::Bool => match (text, quoted) {
                ("true", false) => Some(Default::Bool(true)),
                ("false", false) => Some(Default::Bool(false)),
                _ => bad(self, DefaultRule::Bool),
            },
            ScalarType::I32 | ScalarType::I64 if is("generated") => Some(Default::Identity),
            ScalarType::I16 | ScalarType::I32 | ScalarType::I64 => {
                let (lo, hi) = match ty.scalar() {
                    ScalarType::I16 => (i16::MIN as i64, i16::MAX as i64),
                    ScalarType::I32 => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                match text.parse::<i64>() {
                    Ok(n) if !quoted && n >= lo && n <= hi => Some(Default::Int(n.to_string())),
                    _ => bad(self, DefaultRule::Integer { lo, hi }),
                }
            }
            ScalarType::F64 => match text.parse::<f64>() {
                Ok(v) if !quoted && v.is_finite() => Some(Default::Number(text.to_string())),
                _ => bad(self, DefaultRule::FiniteNumber),
            },
            ScalarType::Decimal { precision, scale } => {
                let (p, s) = (*precision as usize, *scale as usize);
                if quoted || !is_decimal_literal(text, p, s) {
                    let (before, after) = (p - s, s);
                    return bad(self, DefaultRule::Decimal { before, after });
                }
                Some(Default::Number(text.to_string()))
            }
            ScalarType::String { .. } | ScalarType::Text if keyword.is_some() => {
                let word = keyword.unwrap_or_default();
                bad(self, DefaultRule::Keyword { word })
            }
            ScalarType::String { max } => {
                if let Some(m) = max {
                    if text.chars().count() > *m as usize {
                        return bad(self, DefaultRule::MaxChars { max: *m });
                    }
                }
                Some(Default::String(text.to_string()))
            }
            ScalarType::Text => Some(Default::String(text.to_string())),
            ScalarType::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(_) => Some(Default::String(text.to_string())),
                Err(_) => bad(self, DefaultRule::Json),
            },
            ScalarType::Enum(name) => {
                let e = enums.get(name.as_str())?;
                if e.variants.iter().any(|v| v.name.schema == text) {
                    Some(Default::EnumMember(text.to_string()))
                } else {
                    let values = e.variants.iter().map(|v| v.name.schema.as_str());
                    let suggestion = self.suggest(text, values);
                    self.err(ResolveError::UnknownEnumValue {
                        at: d.span,
                        value: text.to_string(),
                        enum_name: name.clone(),
                        suggestion,
                        values: e.variants.iter().map(|v| v.name.schema.clone()).collect(),
                    });
                    None
                }
            }
            ScalarType::Bytes | ScalarType::Secret => bad(self, DefaultRule::None),
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
        let suggestion = self.suggest(name, e.fields.iter().map(|f| f.name.schema.as_str()));
        self.err(ResolveError::UnknownField {
            at: name.span,
            entity: e.name.schema.clone(),
            field: name.value.clone(),
            suggestion,
            fields: e.fields.iter().map(|f| f.name.schema.clone()).collect(),
        });
        None
    }

    fn unknown_type(&mut self, at: &Spanned<String>, name: &str, enums: &HashMap<&str, &Enum>) {
        let is_entity = self.entity_names.contains(name);
        let suggestion = if is_entity || name.eq_ignore_ascii_case("enum") {
            None // the help says what to write instead
        } else if let Some(instead) = type_alias(name) {
            Some(instead.to_string())
        } else {
            let candidates = BUILTIN_TYPES.iter().copied().chain(enums.keys().copied());
            self.suggest(name, candidates)
        };
        self.err(ResolveError::UnknownType {
            at: at.span,
            name: name.to_string(),
            is_entity,
            suggestion,
        });
    }
}

/// Hidden columns of every PostgreSQL table: a column of one of these names
/// cannot be created (`column name "xmin" conflicts with a system column name`).
const PG_SYSTEM_COLUMNS: &[&str] = &["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"];
