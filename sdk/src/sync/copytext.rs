//! Rows of PostgreSQL's `COPY … TO STDOUT` text format, decoded into
//! cells without a `String` per value: one row is one line (`\n` inside
//! a value is escaped), fields are split on tabs, `\N` is NULL, and a
//! field is unescaped only when it holds a backslash.

use super::cell::{self, Cell};
use super::error::SyncError;
use super::spec::TableSpec;

/// Reads the rows of one table's `COPY` text, reusing its cells (and the
/// text buffers inside them) from row to row.
pub struct RowReader {
    cells: Vec<Cell>,
    /// Decode only the key columns (the others hold zeros): the targets
    /// take only keys.
    keys_only: bool,
    /// The start of a row whose end has not arrived yet.
    partial: Vec<u8>,
    /// Scratch space for a field that needs unescaping.
    unescaped: Vec<u8>,
}

impl RowReader {
    /// A reader of rows with `t`'s columns, in order.
    pub fn new(t: &TableSpec) -> RowReader {
        RowReader {
            cells: t.columns.iter().map(|_| Cell::Null).collect(),
            keys_only: false,
            partial: Vec::new(),
            unescaped: Vec::new(),
        }
    }

    /// Decodes only the key columns when `on` (a table whose targets take
    /// only keys, such as a cache's invalidation): a value no copy could
    /// hold in another column then refuses nothing.
    pub fn keys_only(mut self, on: bool) -> RowReader {
        self.keys_only = on;
        self
    }

    /// Decodes every whole row in `data` (a piece of the COPY stream, cut
    /// anywhere) and hands its cells to `row`; keeps the cut-off end for
    /// the next piece. A row that does not decode (a value its column
    /// cannot hold, the wrong number of fields, text that is not UTF-8) or
    /// that `row` refuses goes to `refused` with its key columns' text
    /// (`None` for NULL); `refused` returns the error to stop on, or `Ok`
    /// to go on with the next row.
    pub fn feed(
        &mut self,
        t: &TableSpec,
        data: &[u8],
        mut row: impl FnMut(&[Cell]) -> Result<(), SyncError>,
        mut refused: impl FnMut(SyncError, Vec<Option<String>>) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let mut rest = data;
        if !self.partial.is_empty() {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            self.one(t, &line, &mut row, &mut refused)?;
            line.clear();
            self.partial = line;
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.one(t, &rest[..end], &mut row, &mut refused)?;
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn one(
        &mut self,
        t: &TableSpec,
        line: &[u8],
        row: &mut impl FnMut(&[Cell]) -> Result<(), SyncError>,
        refused: &mut impl FnMut(SyncError, Vec<Option<String>>) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        match self.decode(t, line).and_then(|()| row(&self.cells)) {
            Ok(()) => Ok(()),
            Err(e) => refused(e, key_of(t, line)),
        }
    }

    /// Whether a row was cut off (the stream ended inside it).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    fn decode(&mut self, t: &TableSpec, line: &[u8]) -> Result<(), SyncError> {
        // One UTF-8 check per row; a tab never splits a character.
        let Ok(line) = std::str::from_utf8(line) else {
            let column = line
                .split(|b| *b == b'\t')
                .zip(&t.columns)
                .find(|(f, _)| std::str::from_utf8(f).is_err())
                .map(|(_, c)| c.name.clone())
                .unwrap_or_default();
            return Err(SyncError::Value {
                table: t.source_table.clone(),
                column,
                reason: "not UTF-8".into(),
            });
        };
        // Cut at tab bytes (a tab never splits a character).
        let mut start = 0;
        let mut fields = std::iter::from_fn(|| {
            let rest = line.as_bytes().get(start..)?;
            let end = start + rest.iter().position(|b| *b == b'\t').unwrap_or(rest.len());
            let field = &line[start..end];
            start = end + 1;
            Some(field)
        });
        for (i, col) in t.columns.iter().enumerate() {
            let bad = |reason: String| SyncError::Value {
                table: t.source_table.clone(),
                column: col.name.clone(),
                reason,
            };
            let field = fields
                .next()
                .ok_or_else(|| bad("the COPY row has fewer fields than columns".into()))?;
            let slot = &mut self.cells[i];
            if self.keys_only && !col.key {
                *slot = cell::zero(col);
                continue;
            }
            if field == "\\N" {
                *slot = Cell::Null;
                continue;
            }
            let text = if field.contains('\\') {
                self.unescaped.clear();
                cell::copy_unescape_into(field.as_bytes(), &mut self.unescaped);
                std::str::from_utf8(&self.unescaped).map_err(|_| bad("not UTF-8".into()))?
            } else {
                field
            };
            cell::parse_pg_into(slot, col, text).map_err(bad)?;
        }
        if fields.next().is_some() {
            return Err(SyncError::Value {
                table: t.source_table.clone(),
                column: String::new(),
                reason: "the COPY row has more fields than columns".into(),
            });
        }
        Ok(())
    }
}

/// The key columns' text of one COPY line, unescaped (`None` for `\\N`).
fn key_of(t: &TableSpec, line: &[u8]) -> Vec<Option<String>> {
    (line.split(|b| *b == b'\t'))
        .zip(&t.columns)
        .filter(|(_, c)| c.key)
        .map(|(f, _)| match f {
            b"\\N" => None,
            f => {
                let mut out = Vec::new();
                cell::copy_unescape_into(f, &mut out);
                Some(String::from_utf8_lossy(&out).into_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::spec::{ColumnSpec, ColumnType};

    fn table() -> TableSpec {
        let col = |name: &str, ty| ColumnSpec {
            name: name.into(),
            ty,
            nullable: true,
            array: false,
            key: false,
        };
        TableSpec {
            entity: "T".into(),
            source_schema: "public".into(),
            source_table: "t".into(),
            columns: vec![
                col("id", ColumnType::I64),
                col("note", ColumnType::Text),
                col("at", ColumnType::Timestamptz),
            ],
        }
    }

    fn read(pieces: &[&[u8]]) -> Result<Vec<Vec<Cell>>, SyncError> {
        let t = table();
        let mut r = RowReader::new(&t);
        let mut rows = Vec::new();
        for p in pieces {
            r.feed(
                &t,
                p,
                |cells| {
                    rows.push(cells.to_vec());
                    Ok(())
                },
                |e, _| Err(e),
            )?;
        }
        assert!(!r.has_partial());
        Ok(rows)
    }

    #[test]
    fn rows_cut_anywhere_decode_the_same() {
        let text: &[u8] =
            b"1\ta\\tb\\\\c\\nd\t2024-01-02 03:04:05.5+00\n2\t\\N\t\\N\n3\t\t1970-01-01 00:00:00+00\n";
        let whole = read(&[text]).unwrap();
        assert_eq!(
            whole,
            vec![
                vec![
                    Cell::Int(1),
                    Cell::Text("a\tb\\c\nd".into()),
                    Cell::Micros(1_704_164_645_500_000)
                ],
                vec![Cell::Int(2), Cell::Null, Cell::Null],
                vec![Cell::Int(3), Cell::Text(String::new()), Cell::Micros(0)],
            ]
        );
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(read(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_row_of_the_wrong_shape_or_bytes_is_refused() {
        for bad in [
            &b"1\ta\n"[..],
            b"1\ta\t\\N\textra\n",
            b"x\ta\t\\N\n",
            b"1\t\xff\t\\N\n",
        ] {
            assert!(read(&[bad]).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let Err(SyncError::Value { column, .. }) = read(&[b"1\t\xff\t\\N\n"]) else {
            panic!("not a value error");
        };
        assert_eq!(column, "note");
    }

    #[test]
    fn a_refused_row_is_handed_over_with_its_key_and_the_next_rows_go_on() {
        let mut t = table();
        t.columns[1].key = true;
        let mut r = RowReader::new(&t);
        let (mut rows, mut refused) = (Vec::new(), Vec::new());
        let text: &[u8] = b"1\ta\\tb\tinfinity\n2\tok\t1970-01-01 00:00:00+00\n";
        r.feed(
            &t,
            text,
            |cells| {
                rows.push(cells[0].clone());
                Ok(())
            },
            |e, key| {
                refused.push((e.to_string(), key));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(rows, vec![Cell::Int(2)]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].1, vec![Some("a\tb".to_string())]);
        assert!(refused[0].0.contains("`t.at`"), "{}", refused[0].0);
    }
}
