//! [`Position`]: where a change sits in the commit order, and where a
//! subscriber resumes.

use std::fmt;
use std::str::FromStr;

/// A change's place in commit order: the commit LSN of its transaction and
/// its index within that transaction. Positions grow in commit order
/// across every partition of an entity, so one position resumes all of
/// them. Written like PostgreSQL writes an LSN, with the index after a
/// dash: `0/16B3748-3`; the stream entry ID is `<lsn as u64>-<seq>`.
///
/// ```
/// use strata_sdk::events::Position;
/// let p: Position = "0/16B3748-3".parse().unwrap();
/// assert_eq!((p.lsn, p.seq), (0x16B3748, 3));
/// assert_eq!(p.to_string(), "0/16B3748-3");
/// assert_eq!(p.stream_id(), "23803720-3");
/// assert!(Position::START < p);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// The commit LSN of the change's transaction (a WAL byte position).
    pub lsn: u64,
    /// The change's index within its transaction, from 0.
    pub seq: u64,
}

impl Position {
    /// Before every change: a subscription from here reads every change
    /// the streams still hold.
    pub const START: Position = Position { lsn: 0, seq: 0 };

    /// A position from its parts.
    pub const fn new(lsn: u64, seq: u64) -> Self {
        Position { lsn, seq }
    }

    /// Just before the first change of a commit at `lsn` (and after every
    /// commit before it): a subscription from here yields change 0 of
    /// that commit first. This is what a bare WAL position means, such as
    /// `pg_current_wal_lsn()` or a causality token: WAL up to `lsn` is
    /// seen, a commit whose record starts at `lsn` or later is not.
    /// Written `<lsn - 1>-18446744073709551615`; [`Position::START`] for 0.
    pub const fn before_commit(lsn: u64) -> Self {
        match lsn.checked_sub(1) {
            Some(prev) => Position {
                lsn: prev,
                seq: u64::MAX,
            },
            None => Position::START,
        }
    }

    /// The Redis stream entry ID: `<lsn>-<seq>` in decimal.
    pub fn stream_id(&self) -> String {
        format!("{}-{}", self.lsn, self.seq)
    }

    /// Reads a stream entry ID (`<ms>-<seq>`).
    pub fn from_stream_id(id: &str) -> Option<Self> {
        let (l, s) = id.split_once('-')?;
        Some(Position {
            lsn: l.parse().ok()?,
            seq: s.parse().ok()?,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}-{}", self.lsn >> 32, self.lsn as u32, self.seq)
    }
}

/// A text that is not `<hex>/<hex>-<decimal>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a change position (expected an LSN and an index, as in `0/16B3748-3`)")]
pub struct BadPosition(pub String);

impl FromStr for Position {
    type Err = BadPosition;

    /// `0/16B3748-3`: change 3 of the commit at `0/16B3748`. A bare LSN
    /// (`0/16B3748`, as PostgreSQL prints one) is
    /// [`Position::before_commit`]: a subscription from it starts with
    /// change 0 of a commit at that LSN, never after it.
    fn from_str(s: &str) -> Result<Self, BadPosition> {
        let bad = || BadPosition(s.chars().take(80).collect());
        let (lsn, seq) = match s.trim().split_once('-') {
            Some((l, q)) => (l, Some(q.parse::<u64>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let (hi, lo) = lsn.split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        let lsn = (u64::from(hi) << 32) | u64::from(lo);
        Ok(match seq {
            Some(seq) => Position { lsn, seq },
            None => Position::before_commit(lsn),
        })
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn positions_round_trip_and_order() {
        for p in [
            Position::START,
            Position::new(1, 0),
            Position::new(u64::MAX, u64::MAX),
            Position::new(0x1_0000_0000, 7),
        ] {
            assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
            assert_eq!(Position::from_stream_id(&p.stream_id()), Some(p));
        }
        assert_eq!(
            "1/0-2".parse::<Position>().unwrap(),
            Position::new(1 << 32, 2)
        );
        // A bare LSN: just before change 0 of a commit there.
        let bare = "0/10".parse::<Position>().unwrap();
        assert_eq!(bare, Position::new(15, u64::MAX));
        assert!(bare < Position::new(16, 0) && bare > Position::new(15, 9));
        assert_eq!(bare.to_string().parse::<Position>().unwrap(), bare);
        assert_eq!("0/0".parse::<Position>().unwrap(), Position::START);
        assert!(Position::new(1, 9) < Position::new(2, 0));
        for bad in ["", "x/1-1", "1-1", "0/1-x", "0/1/2-0", "100000000/0-0"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Position::new(16, 1)).unwrap();
        assert_eq!(json, "\"0/10-1\"");
        assert_eq!(
            serde_json::from_str::<Position>(&json).unwrap(),
            Position::new(16, 1)
        );
    }
}
