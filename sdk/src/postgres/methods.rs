//! The repository methods every entity has, written once.
//!
//! `#[derive(Entity)]` declares an entity's [`Table`](super::Table) impl and
//! then asks for its methods with one line,
//! `strata_sdk::repository_methods!(key = K, new = N, patch = P, batch = [...])`,
//! inside `impl Entity { … }`. Each method is one call into the generic
//! code of [`repo`](super::repo) or the batch writers, so the methods a user
//! calls (`Order::get`, `Order::upsert_many`, …) keep inherent names and
//! signatures (no trait to import) while their text lives here, once,
//! instead of in every entity's expansion. The entity-specific methods
//! (`key()`, finders, `list_by_<sort>`) are still emitted by the derive.
//!
//! `batch` lists the batch writers the entity has: `insert_many` and
//! `upsert_many` (unless every column is generated), `update_many` (unless
//! nothing can be updated), `delete_many`.

/// The standard repository methods of an entity; see the
/// [module docs](crate::postgres::methods). Used by `#[derive(Entity)]`
/// inside the entity's `impl` block; not meant to be called by hand.
#[macro_export]
#[doc(hidden)]
macro_rules! repository_methods {
    (key = $key:ty, new = $new:ty, patch = $patch:ty, batch = [$($batch:ident),* $(,)?]) => {
        /// How many rows the table holds.
        pub fn count<'a, A: $crate::postgres::Db<'a>>(db: A) -> $crate::postgres::Fut<'a, i64> {
            $crate::postgres::repo::count::<Self, A>(db)
        }
        /// Inserts a row (`None` fields take their default); see
        /// [`strata_sdk::postgres::repo::insert`].
        pub fn insert<'a, A: $crate::postgres::Db<'a>>(db: A, row: &'a $new) -> $crate::postgres::Fut<'a, Self> {
            $crate::postgres::repo::insert(db, row)
        }
        /// Inserts or overwrites the row with its key; see
        /// [`strata_sdk::postgres::repo::upsert`].
        pub fn upsert<'a, A: $crate::postgres::Db<'a>>(db: A, row: &'a $new) -> $crate::postgres::Fut<'a, Self> {
            $crate::postgres::repo::upsert(db, row)
        }
        /// The row with this key, if any.
        pub fn find<'a, A: $crate::postgres::Db<'a>>(db: A, key: &'a $key) -> $crate::postgres::Fut<'a, ::std::option::Option<Self>> {
            $crate::postgres::repo::find(db, key)
        }
        /// The row with this key; `Error::NotFound` if there is none.
        pub fn get<'a, A: $crate::postgres::Db<'a>>(db: A, key: &'a $key) -> $crate::postgres::Fut<'a, Self> {
            $crate::postgres::repo::get(db, key)
        }
        /// The rows with these keys, in one statement (missing keys are skipped).
        pub fn get_many<'a, A: $crate::postgres::Db<'a>>(db: A, keys: &'a [$key]) -> $crate::postgres::Fut<'a, ::std::vec::Vec<Self>> {
            $crate::postgres::repo::get_many(db, keys)
        }
        /// Writes the row's data columns by key, checking its version; see
        /// [`strata_sdk::postgres::repo::update`].
        pub fn update<'a, A: $crate::postgres::Db<'a>>(db: A, row: &'a Self) -> $crate::postgres::Fut<'a, Self> {
            $crate::postgres::repo::update(db, row)
        }
        /// Writes only the fields set in the patch; see
        /// [`strata_sdk::postgres::repo::patch`].
        pub fn patch<'a, A: $crate::postgres::Db<'a>>(db: A, key: &'a $key, patch: &'a $patch) -> $crate::postgres::Fut<'a, Self> {
            $crate::postgres::repo::patch(db, key, patch)
        }
        /// Deletes the row with this key; `false` if there was none.
        pub fn delete<'a, A: $crate::postgres::Db<'a>>(db: A, key: &'a $key) -> $crate::postgres::Fut<'a, bool> {
            $crate::postgres::repo::delete::<Self, A>(db, key)
        }
        /// Whether a row has this key.
        pub fn exists<'a, A: $crate::postgres::Db<'a>>(db: A, key: &'a $key) -> $crate::postgres::Fut<'a, bool> {
            $crate::postgres::repo::exists::<Self, A>(db, key)
        }
        /// One page of rows in key order after the cursor (keyset pagination).
        pub fn list<'a, A: $crate::postgres::Db<'a>>(
            db: A,
            page: &'a $crate::postgres::PageRequest<$key>,
        ) -> $crate::postgres::Fut<'a, $crate::postgres::Page<Self, $key>> {
            $crate::postgres::repo::list(db, page)
        }
        $($crate::repository_methods!(@batch $batch, $key, $new);)*
    };
    (@batch insert_many, $key:ty, $new:ty) => {
        /// Inserts rows, skipping keys that exist; see
        /// [`strata_sdk::postgres::insert_many`].
        pub fn insert_many<'a, A: $crate::postgres::Db<'a>, I: $crate::postgres::Rows<'a, $new>>(db: A, rows: I) -> $crate::postgres::Fut<'a, $crate::BatchCounts> {
            $crate::postgres::insert_many::<Self, A, I>(db, rows)
        }
    };
    (@batch upsert_many, $key:ty, $new:ty) => {
        /// Inserts rows or overwrites those whose key exists; see
        /// [`strata_sdk::postgres::upsert_many`].
        pub fn upsert_many<'a, A: $crate::postgres::Db<'a>, I: $crate::postgres::Rows<'a, $new>>(db: A, rows: I) -> $crate::postgres::Fut<'a, $crate::BatchCounts> {
            $crate::postgres::upsert_many::<Self, A, I>(db, rows)
        }
    };
    (@batch update_many, $key:ty, $new:ty) => {
        /// Writes each row by key, all or nothing; see
        /// [`strata_sdk::postgres::update_many`].
        pub fn update_many<'a, A: $crate::postgres::Db<'a>, I: $crate::postgres::Rows<'a, Self>>(db: A, rows: I) -> $crate::postgres::Fut<'a, $crate::BatchCounts> {
            $crate::postgres::update_many::<Self, A, I>(db, rows)
        }
    };
    (@batch delete_many, $key:ty, $new:ty) => {
        /// Deletes the rows with these keys; see
        /// [`strata_sdk::postgres::delete_many`].
        pub fn delete_many<'a, A: $crate::postgres::Db<'a>, I: $crate::postgres::Rows<'a, $key>>(db: A, rows: I) -> $crate::postgres::Fut<'a, $crate::BatchCounts> {
            $crate::postgres::delete_many::<Self, A, I>(db, rows)
        }
    };
}
