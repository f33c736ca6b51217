//! A decoder of the `pgoutput` logical decoding protocol, version 1
//! (PostgreSQL docs, "Logical Replication Message Formats"): Begin, Commit,
//! Origin, Relation, Type, Insert, Update, Delete, Truncate. Values arrive
//! as the text output of their type; `'u'` marks an unchanged TOASTed
//! value that the server did not send.

use bytes::{Buf, Bytes};

use super::error::SyncError;
use super::lsn::Lsn;

/// One column of a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    /// An unchanged TOASTed value the server did not repeat.
    Unchanged,
    /// The type's text output.
    Text(Bytes),
}

/// A column of a [`Message::Relation`].
#[derive(Debug, Clone, PartialEq)]
pub struct RelColumn {
    pub name: String,
    pub key: bool,
    pub type_oid: u32,
}

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts; `final_lsn` is the position of its commit record.
    Begin {
        final_lsn: Lsn,
        /// The commit time, microseconds since 2000-01-01 (PostgreSQL's epoch).
        commit_time_us: i64,
        xid: u32,
    },
    /// The transaction ended at `end_lsn`.
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time_us: i64,
    },
    /// The shape of a table (sent before its first change, and again after
    /// it changes): only the published columns.
    Relation {
        id: u32,
        namespace: String,
        name: String,
        columns: Vec<RelColumn>,
    },
    Insert {
        rel: u32,
        new: Vec<Datum>,
    },
    /// `old` is the key (`'K'`) or the whole old row (`'O'`, REPLICA
    /// IDENTITY FULL) when the server sent one.
    Update {
        rel: u32,
        old: Option<Vec<Datum>>,
        new: Vec<Datum>,
    },
    Delete {
        rel: u32,
        old: Vec<Datum>,
    },
    Truncate {
        rels: Vec<u32>,
    },
    /// Origin, Type, and messages this engine does not use.
    Other(u8),
}

fn short(what: &str) -> SyncError {
    SyncError::Decode(format!("pgoutput message ends inside {what}"))
}

fn need(b: &Bytes, n: usize, what: &str) -> Result<(), SyncError> {
    if b.remaining() < n {
        Err(short(what))
    } else {
        Ok(())
    }
}

fn cstr(b: &mut Bytes) -> Result<String, SyncError> {
    let end = b
        .iter()
        .position(|c| *c == 0)
        .ok_or_else(|| short("a name"))?;
    let s = String::from_utf8_lossy(&b[..end]).into_owned();
    b.advance(end + 1);
    Ok(s)
}

fn tuple(b: &mut Bytes) -> Result<Vec<Datum>, SyncError> {
    need(b, 2, "a tuple")?;
    let n = b.get_i16();
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        need(b, 1, "a tuple")?;
        match b.get_u8() {
            b'n' => out.push(Datum::Null),
            b'u' => out.push(Datum::Unchanged),
            b't' => {
                need(b, 4, "a value")?;
                let l = b.get_i32();
                if l < 0 {
                    return Err(SyncError::Decode(format!("negative value length {l}")));
                }
                need(b, l as usize, "a value")?;
                out.push(Datum::Text(b.split_to(l as usize)));
            }
            k => {
                return Err(SyncError::Decode(format!(
                    "unknown tuple column kind {k:#x}"
                )))
            }
        }
    }
    Ok(out)
}

/// Decodes one message (the payload of one XLogData).
pub fn decode(mut b: Bytes) -> Result<Message, SyncError> {
    need(&b, 1, "the tag")?;
    let tag = b.get_u8();
    Ok(match tag {
        b'B' => {
            need(&b, 20, "Begin")?;
            let final_lsn = Lsn(b.get_u64());
            let commit_time_us = b.get_i64();
            Message::Begin {
                final_lsn,
                commit_time_us,
                xid: b.get_u32(),
            }
        }
        b'C' => {
            need(&b, 25, "Commit")?;
            let _flags = b.get_u8();
            Message::Commit {
                commit_lsn: Lsn(b.get_u64()),
                end_lsn: Lsn(b.get_u64()),
                commit_time_us: b.get_i64(),
            }
        }
        b'R' => {
            need(&b, 4, "Relation")?;
            let id = b.get_u32();
            let namespace = cstr(&mut b)?;
            let name = cstr(&mut b)?;
            need(&b, 3, "Relation")?;
            let _identity = b.get_u8();
            let n = b.get_i16();
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                need(&b, 1, "Relation")?;
                let flags = b.get_u8();
                let cname = cstr(&mut b)?;
                need(&b, 8, "Relation")?;
                let type_oid = b.get_u32();
                let _typmod = b.get_i32();
                columns.push(RelColumn {
                    name: cname,
                    key: flags & 1 == 1,
                    type_oid,
                });
            }
            Message::Relation {
                id,
                namespace,
                name,
                columns,
            }
        }
        b'I' => {
            need(&b, 5, "Insert")?;
            let rel = b.get_u32();
            let _n = b.get_u8();
            Message::Insert {
                rel,
                new: tuple(&mut b)?,
            }
        }
        b'U' => {
            need(&b, 5, "Update")?;
            let rel = b.get_u32();
            let mut kind = b.get_u8();
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some(tuple(&mut b)?);
                need(&b, 1, "Update")?;
                kind = b.get_u8();
            }
            if kind != b'N' {
                return Err(SyncError::Decode(format!(
                    "Update without a new tuple ({kind:#x})"
                )));
            }
            Message::Update {
                rel,
                old,
                new: tuple(&mut b)?,
            }
        }
        b'D' => {
            need(&b, 5, "Delete")?;
            let rel = b.get_u32();
            let _k = b.get_u8();
            Message::Delete {
                rel,
                old: tuple(&mut b)?,
            }
        }
        b'T' => {
            need(&b, 5, "Truncate")?;
            let n = b.get_u32();
            let _opts = b.get_u8();
            need(&b, 4 * n as usize, "Truncate")?;
            Message::Truncate {
                rels: (0..n).map(|_| b.get_u32()).collect(),
            }
        }
        other => Message::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    #[test]
    fn insert_and_update_with_unchanged_toast() {
        let mut m = BytesMut::new();
        m.put_u8(b'U');
        m.put_u32(7);
        m.put_u8(b'N');
        m.put_i16(3);
        m.put_u8(b't');
        m.put_i32(2);
        m.put_slice(b"42");
        m.put_u8(b'u');
        m.put_u8(b'n');
        let got = decode(m.freeze()).unwrap();
        assert_eq!(
            got,
            Message::Update {
                rel: 7,
                old: None,
                new: vec![
                    Datum::Text(Bytes::from_static(b"42")),
                    Datum::Unchanged,
                    Datum::Null
                ]
            }
        );
    }

    #[test]
    fn truncated_message_is_an_error() {
        let mut m = BytesMut::new();
        m.put_u8(b'I');
        m.put_u32(7);
        m.put_u8(b'N');
        m.put_i16(1);
        m.put_u8(b't');
        m.put_i32(10);
        m.put_slice(b"abc");
        assert!(decode(m.freeze()).is_err());
    }
}
