//! Which store a migrations folder belongs to. Its catalogs record the store
//! and the PostgreSQL schema they describe; `diff`, `apply` and `status`
//! given a schema and a store refuse a folder whose latest catalog is
//! another store's, instead of diffing against it, applying its files into
//! the wrong record, or calling its applied files "changed".

use std::path::Path;

use super::catalog::{postgres_stores, Catalog};
use super::migration::{latest_catalog_path, read_catalog, MigrationError};
use crate::model::{Model, Store, StoreId, StoreKindTag};

/// One postgres store: its name and PostgreSQL schema (`None`: the search path).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    store: Option<String>,
    schema: Option<String>,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schema = match &self.schema {
            Some(s) => format!("PostgreSQL schema `{s}`"),
            None => "no PostgreSQL schema (the search path, `public`)".to_string(),
        };
        match &self.store {
            Some(s) => write!(f, "store `{s}` ({schema})"),
            None => f.write_str(&schema),
        }
    }
}

/// Refuses `dir` when its latest catalog belongs to another store than the
/// postgres store `store` of `model`: another store's name, or another
/// PostgreSQL schema (catalogs written before they carried the store name
/// record only that).
pub fn check_folder(dir: &Path, model: &Model, store: StoreId) -> Result<(), MigrationError> {
    if model[store].kind.tag() != StoreKindTag::Postgres {
        return Ok(());
    }
    let owner = |s: &Store| Owner {
        store: Some(s.name.clone()),
        schema: s.pg_schema().map(str::to_string),
    };
    let owners: Vec<Owner> = (postgres_stores(model).into_iter())
        .map(|id| owner(&model[id]))
        .collect();
    let wanted = owner(&model[store]);
    let store = &model[store].name;
    let Some(path) = latest_catalog_path(dir)? else {
        return Ok(());
    };
    let cat = read_catalog(&path)?;
    let Some(found) = foreign(&cat, &wanted, &owners) else {
        return Ok(());
    };
    let advice = match &found.store {
        Some(s) if owners.iter().any(|o| o.store == found.store) => {
            format!("pass the folder of store `{store}`, or `--store {s}` for this one")
        }
        Some(_) => format!("pass the folder of store `{store}`"),
        None => format!(
            "pass the folder of store `{store}`; if this is its folder, its `schema:` changed, and moving a store to another PostgreSQL schema is not supported"
        ),
    };
    Err(MigrationError::OtherStore {
        dir: dir.display().to_string(),
        file: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        found: found.to_string(),
        wanted: wanted.to_string(),
        advice,
    })
}

/// The owner `cat` records when it is not `wanted`.
fn foreign(cat: &Catalog, wanted: &Owner, owners: &[Owner]) -> Option<Owner> {
    if cat.tables.is_empty() && cat.enums.is_empty() {
        return None;
    }
    let recorded = Owner {
        store: cat.store.clone(),
        schema: cat.schema.clone(),
    };
    let other_name = recorded.store.is_some() && recorded.store != wanted.store;
    // A name no store of the schema has, in the right PostgreSQL schema: a
    // renamed store.
    let known = owners.iter().any(|o| o.store == recorded.store);
    if other_name && (known || recorded.schema != wanted.schema) {
        return Some(recorded);
    }
    if recorded.schema == wanted.schema {
        return None;
    }
    // An older catalog: the store whose PostgreSQL schema it records.
    let by_schema = owners
        .iter()
        .find(|o| o.store != wanted.store && o.schema == recorded.schema);
    Some(by_schema.cloned().unwrap_or(recorded))
}

#[cfg(test)]
mod tests {
    use super::{foreign, Owner};
    use crate::postgres::catalog::{Catalog, PgEnum};

    fn owner(store: Option<&str>, schema: Option<&str>) -> Owner {
        Owner {
            store: store.map(String::from),
            schema: schema.map(String::from),
        }
    }

    fn cat(store: Option<&str>, schema: Option<&str>) -> Catalog {
        Catalog {
            store: store.map(String::from),
            schema: schema.map(String::from),
            enums: vec![PgEnum {
                name: "e".into(),
                values: vec!["A".into()],
            }],
            tables: vec![],
        }
    }

    #[test]
    fn a_folder_of_another_store_is_told_apart_from_a_renamed_store() {
        let billing = owner(Some("billing"), Some("billing"));
        let dispatch = owner(Some("dispatch"), Some("dispatch"));
        let owners = [billing.clone(), dispatch.clone()];
        let f = |c: &Catalog| foreign(c, &dispatch, &owners);
        assert_eq!(f(&cat(Some("dispatch"), Some("dispatch"))), None);
        assert_eq!(
            f(&cat(Some("billing"), Some("billing"))),
            Some(billing.clone())
        );
        // Catalogs without a store name: by their PostgreSQL schema.
        assert_eq!(f(&cat(None, Some("dispatch"))), None);
        assert_eq!(f(&cat(None, Some("billing"))), Some(billing.clone()));
        assert_eq!(f(&cat(None, Some("old"))), Some(owner(None, Some("old"))));
        // A store renamed from `disp`: same schema, a name no store has.
        assert_eq!(f(&cat(Some("disp"), Some("dispatch"))), None);
        // Two stores in the search path of two databases: by name.
        let a = owner(Some("a"), None);
        let owners = [a.clone(), owner(Some("b"), None)];
        assert_eq!(
            foreign(&cat(Some("b"), None), &a, &owners),
            Some(owner(Some("b"), None))
        );
    }
}
