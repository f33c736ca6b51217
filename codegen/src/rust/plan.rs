//! What the repository emitter derives from one entity before writing any
//! tokens: which columns an insert takes, which an update sets, the SQL of
//! each column expression. Shared by the single-row and batch emitters.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::attrs::EntityDef;
use crate::model::{Default as Value, FieldRole};
use crate::names::quote_ident;

pub struct Plan<'a> {
    pub def: &'a EntityDef,
    /// Qualified, quoted table name.
    pub table: String,
    /// Every column, quoted, in field order (the `SELECT` list).
    pub cols: String,
    pub key: Vec<usize>,
    /// Fields an insert takes (data fields except identity columns).
    pub new: Vec<usize>,
    /// Fields an update sets (data fields outside the key).
    pub upd: Vec<usize>,
    pub updated_at: Option<usize>,
    pub version: Option<usize>,
}

impl<'a> Plan<'a> {
    pub fn new(def: &'a EntityDef) -> Self {
        let e = &def.entity;
        let table = match &def.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&e.name.sql)),
            None => quote_ident(&e.name.sql),
        };
        let data = |i: &usize| e.fields[*i].role == FieldRole::Data;
        let all: Vec<usize> = (0..e.fields.len()).collect();
        let plan = Plan {
            def,
            table,
            cols: String::new(),
            key: e.key.clone(),
            new: all
                .iter()
                .copied()
                .filter(data)
                .filter(|&i| e.fields[i].default != Some(Value::Identity))
                .collect(),
            upd: all
                .iter()
                .copied()
                .filter(data)
                .filter(|i| !e.key.contains(i))
                .collect(),
            updated_at: e.fields.iter().position(|f| f.role == FieldRole::UpdatedAt),
            version: e.version,
        };
        let cols = plan.list(&all, |c| c);
        Plan { cols, ..plan }
    }

    pub fn col(&self, i: usize) -> String {
        quote_ident(&self.def.entity.fields[i].name.sql)
    }

    /// `f(col)` of each field, joined with `, `.
    pub fn list(&self, fields: &[usize], f: impl Fn(String) -> String) -> String {
        fields
            .iter()
            .map(|&i| f(self.col(i)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether an insert may leave the field out (`Option` in `New…`): it
    /// has a default and is not nullable.
    pub fn optional_in_new(&self, i: usize) -> bool {
        let f = &self.def.entity.fields[i];
        f.default.is_some() && !f.nullable
    }

    pub fn ident(&self, i: usize) -> &syn::Ident {
        &self.def.idents[i]
    }
    pub fn ty(&self, i: usize) -> &syn::Type {
        &self.def.types[i]
    }

    /// The Rust type of a field in `New…`.
    pub fn new_ty(&self, i: usize) -> TokenStream {
        let t = self.ty(i);
        if self.optional_in_new(i) {
            quote!(::std::option::Option<#t>)
        } else {
            quote!(#t)
        }
    }

    /// The key type: the field's type, or a tuple for a composite key.
    pub fn key_ty(&self) -> TokenStream {
        match self.key.as_slice() {
            [one] => {
                let t = self.ty(*one);
                quote!(#t)
            }
            many => {
                let ts = many.iter().map(|&i| self.ty(i));
                quote!((#(#ts,)*))
            }
        }
    }

    /// Whether a patch can add to the field: an integer, float or decimal
    /// column that is not an array.
    pub fn numeric(&self, i: usize) -> bool {
        use crate::model::ScalarType as S;
        let t = &self.def.entity.fields[i].ty;
        !t.is_array()
            && matches!(
                t.scalar(),
                S::I16 | S::I32 | S::I64 | S::F64 | S::Decimal { .. }
            )
    }

    /// `add_<field>`: a patch's increment of a number field.
    pub fn add_ident(&self, i: usize) -> syn::Ident {
        let f = self.ident(i).to_string();
        format_ident!("add_{}", f.trim_start_matches("r#"))
    }

    pub fn entity_name(&self) -> String {
        self.def.ident.to_string()
    }
    pub fn new_ident(&self) -> syn::Ident {
        format_ident!("New{}", self.def.ident)
    }
    pub fn patch_ident(&self) -> syn::Ident {
        format_ident!("{}Patch", self.def.ident)
    }
    pub fn key_ident(&self) -> syn::Ident {
        format_ident!("{}Key", self.def.ident)
    }
}
