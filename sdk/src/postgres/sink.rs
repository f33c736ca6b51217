//! The [`Sink`]s a row's values go to: bound parameters ([`Args`]) and
//! `UNNEST` column arrays ([`Columns`]); binary `COPY` rows are the third,
//! [`super::CopyWriter`].

use std::any::Any;

use sqlx::postgres::PgArguments;
use sqlx::Arguments;

use super::table::{ArrayValue, Sink, Value};
use crate::error::{Error, Result};

fn encode_error(e: sqlx::error::BoxDynError) -> Error {
    Error::Database(sqlx::Error::Encode(e))
}

/// Bound parameters `$1, $2, …` of one statement.
#[derive(Default)]
pub struct Args(pub PgArguments);

impl Sink for Args {
    fn value<T: Value>(&mut self, v: &T) -> Result<()> {
        self.0.add(v).map_err(encode_error)
    }
    fn array<T: ArrayValue>(&mut self, v: &T) -> Result<()> {
        self.0.add(v).map_err(encode_error)
    }
}

impl Args {
    /// Adds one parameter of any bindable type (finder parameters, limits).
    pub fn add<'q, T>(&mut self, v: T) -> Result<()>
    where
        T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
    {
        self.0.add(v).map_err(encode_error)
    }
}

/// One column of [`Columns`], its element type erased until it is bound.
trait Column: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    fn bind(self: Box<Self>, args: &mut PgArguments) -> Result<()>;
}

struct Typed<T>(Vec<T>);

impl<T: Value> Column for Typed<T> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn bind(self: Box<Self>, args: &mut PgArguments) -> Result<()> {
        args.add(self.0).map_err(encode_error)
    }
}

/// Rows turned into one array per column, bound as `UNNEST($1, $2, …)`:
/// one statement, one round trip, and a statement text that never changes
/// with the row count (prepared once per connection). Row by row, each
/// value goes to the next column ([`Columns::end_row`] starts over); the
/// first row fixes each column's type.
pub struct Columns {
    cols: Vec<Box<dyn Column>>,
    at: usize,
    rows: usize,
    capacity: usize,
}

impl Columns {
    /// Columns for about `capacity` rows.
    pub fn with_capacity(capacity: usize) -> Self {
        Columns {
            cols: Vec::new(),
            at: 0,
            rows: 0,
            capacity,
        }
    }

    /// Ends a row: the next value goes to the first column.
    pub fn end_row(&mut self) {
        self.at = 0;
        self.rows += 1;
    }

    /// Rows ended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns as bound array parameters, in column order.
    pub fn into_args(self) -> Result<Args> {
        let mut args = PgArguments::default();
        for c in self.cols {
            c.bind(&mut args)?;
        }
        Ok(Args(args))
    }
}

impl Sink for Columns {
    fn value<T: Value>(&mut self, v: &T) -> Result<()> {
        if self.at == self.cols.len() {
            self.cols
                .push(Box::new(Typed::<T>(Vec::with_capacity(self.capacity))));
        }
        let col = self.cols[self.at].as_any().downcast_mut::<Typed<T>>();
        // A binder writes the same types in the same order for every row.
        let col = col.ok_or_else(|| {
            Error::Config(format!("column {} changed type between rows", self.at))
        })?;
        col.0.push(v.clone());
        self.at += 1;
        Ok(())
    }
    fn array<T: ArrayValue>(&mut self, _: &T) -> Result<()> {
        Err(Error::Config(
            "array columns cannot travel through UNNEST; the batch writers use VALUES for them"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_collect_each_column_and_refuse_a_changed_type() {
        let mut c = Columns::with_capacity(2);
        for (a, b) in [(1i64, "x"), (2, "y")] {
            c.value(&a).unwrap();
            c.value(&b.to_string()).unwrap();
            c.end_row();
        }
        assert_eq!(c.rows(), 2);
        assert_eq!(c.cols.len(), 2);
        assert!(c.value(&"not an i64".to_string()).is_err());
        assert!(c.array(&vec![1i32]).is_err());
    }
}
