//! Enums: names, SQL type names and values.

use super::*;

impl Resolver<'_> {
    // ---- enums --------------------------------------------------------------------------

    pub(super) fn enums(&mut self, files: &[ast::SchemaFile]) -> Vec<Enum> {
        let mut out: Vec<Enum> = Vec::new();
        for d in files.iter().flat_map(|f| &f.enums) {
            if let Some(prev) = out.iter().find(|e| e.name.schema == d.name.value) {
                let first = prev.span;
                self.duplicate("enum", &d.name, first);
                continue;
            }
            if BUILTIN_TYPES.contains(&d.name.as_str()) || !is_type_ident(&d.name) {
                self.bad_name("enum", &d.name, "UpperCamelCase");
            }
            let sql = match &d.sql_name {
                Some(n) => {
                    if !is_snake_ident(n) {
                        self.bad_name("SQL type", n, "snake_case");
                    }
                    n.value.clone()
                }
                None => d.name.value.to_snake_case(),
            };
            if d.values.is_empty() {
                self.err(
                    Problem::new(
                        "strata::empty_enum",
                        d.name.span,
                        format!("enum `{}` has no values", d.name.value),
                    )
                    .label("no values")
                    .help("list its values: `Side: [BUY, SELL]`"),
                );
            }
            let mut variants: Vec<EnumVariant> = Vec::new();
            for v in &d.values {
                if !is_enum_value(v) {
                    self.bad_name("enum value", v, "letter-first ASCII");
                    continue;
                }
                let rust = v.value.to_lowercase().to_upper_camel_case();
                if let Some(prev) = variants
                    .iter()
                    .find(|p| p.name.schema == v.value || p.name.rust == rust)
                {
                    let first = prev.span;
                    self.duplicate("enum value", v, first);
                    continue;
                }
                variants.push(EnumVariant {
                    name: Ident {
                        schema: v.value.clone(),
                        sql: v.value.clone(),
                        rust,
                    },
                    span: v.span,
                });
            }
            out.push(Enum {
                name: Ident {
                    schema: d.name.value.clone(),
                    sql,
                    rust: d.name.value.clone(),
                },
                variants,
                doc: d.doc.clone(),
                span: d.span,
            });
        }
        out
    }
}
