//! A durable task's record, and its byte encoding (shared by backends that
//! keep records as blobs).
//!
//! Encoding, version 1, little-endian: `1u8`, then `name`, `handler`,
//! `schedule` (each `u32` length + UTF-8), misfire (`u8` tag + `u32`),
//! overlap (`u8` tag + `u8` has-max + `u32`), jitter (`i64`), until
//! (`u8` + `i64`), times (`u8` + `u64`), delivery (`u8`), paused (`u8`),
//! cursor (`i64`), payload (`u8` kind: 0 none, 1 clear, 2 sealed; then
//! `u32` length + bytes). Decoding checks every tag and length and that
//! nothing is left over.

use crate::policy::{Misfire, Overlap};
use crate::store::Delivery;
use std::fmt;

const VERSION: u8 = 1;

/// A durable task as a store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task's stable name (its identity across restarts).
    pub name: String,
    /// The handler its fires call.
    pub handler: String,
    /// The schedule as text: `cron <dialect> <zone> <expression>`,
    /// `every <period ns> from <anchor ns>`, or `once <instant ns>`.
    pub schedule: String,
    /// Misfire policy.
    pub misfire: Misfire,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Jitter, nanoseconds (0: none).
    pub jitter: i64,
    /// No instant after this one (nanoseconds since the epoch).
    pub until: Option<i64>,
    /// At most this many runs (counted per process; see the README).
    pub times: Option<u64>,
    /// Delivery policy.
    pub delivery: Delivery,
    /// Paused (it does not fire until resumed).
    pub paused: bool,
    /// Every instant at or before this one is done (fired, claimed or
    /// planned past): nanoseconds since the epoch. A new task's cursor is
    /// just before its first instant.
    pub cursor: i64,
    /// The payload, sealed in production mode.
    pub payload: Option<PayloadRecord>,
}

/// A record's payload.
#[derive(Clone, PartialEq, Eq)]
pub enum PayloadRecord {
    /// Kept in the clear (written by a test-mode scheduler).
    Clear(Vec<u8>),
    /// An XChaCha20-Poly1305 record bound to the task's name.
    Sealed(Vec<u8>),
}

impl fmt::Debug for PayloadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print payload bytes.
        match self {
            PayloadRecord::Clear(b) => write!(f, "Clear({} bytes)", b.len()),
            PayloadRecord::Sealed(b) => write!(f, "Sealed({} bytes)", b.len()),
        }
    }
}

impl fmt::Debug for TaskRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRecord")
            .field("name", &self.name)
            .field("handler", &self.handler)
            .field("schedule", &self.schedule)
            .field("misfire", &self.misfire)
            .field("overlap", &self.overlap)
            .field("delivery", &self.delivery)
            .field("paused", &self.paused)
            .field("cursor", &self.cursor)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

/// Why a record's bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes end early.
    #[error("record ends early (at byte {0})")]
    Truncated(usize),
    /// A version this build does not read.
    #[error("record version {0} is not supported")]
    Version(u8),
    /// A tag byte with no meaning.
    #[error("bad {what} tag {tag} at byte {at}")]
    Tag {
        /// Which field.
        what: &'static str,
        /// The byte found.
        tag: u8,
        /// Its position.
        at: usize,
    },
    /// A string that is not UTF-8.
    #[error("field {0} is not UTF-8")]
    Utf8(&'static str),
    /// Bytes after the end of the record.
    #[error("{0} unexpected bytes after the record")]
    Trailing(usize),
}

impl TaskRecord {
    /// The record's bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.name.len() + self.handler.len() + self.schedule.len() + self.payload_len(),
        );
        self.encode_into(&mut out);
        out
    }

    /// Appends the record's bytes to `out` (a backend reuses one buffer
    /// for many records).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        put_str(out, &self.name);
        put_str(out, &self.handler);
        put_str(out, &self.schedule);
        match self.misfire {
            Misfire::FireOnce => put_tag(out, 0, 0),
            Misfire::Skip => put_tag(out, 1, 0),
            Misfire::CatchUp { max } => put_tag(out, 2, max),
        }
        match self.overlap {
            Overlap::Skip => {
                out.push(0);
                put_tag(out, 0, 0);
            }
            Overlap::Queue => {
                out.push(1);
                put_tag(out, 0, 0);
            }
            Overlap::Allow { max } => {
                out.push(2);
                put_tag(out, u8::from(max.is_some()), max.unwrap_or(0));
            }
        }
        out.extend_from_slice(&self.jitter.to_le_bytes());
        out.push(u8::from(self.until.is_some()));
        out.extend_from_slice(&self.until.unwrap_or(0).to_le_bytes());
        out.push(u8::from(self.times.is_some()));
        out.extend_from_slice(&self.times.unwrap_or(0).to_le_bytes());
        out.push(match self.delivery {
            Delivery::AtMostOnce => 0,
            Delivery::AtLeastOnce => 1,
        });
        out.push(u8::from(self.paused));
        out.extend_from_slice(&self.cursor.to_le_bytes());
        match &self.payload {
            None => out.push(0),
            Some(PayloadRecord::Clear(b)) => {
                out.push(1);
                put_bytes(out, b);
            }
            Some(PayloadRecord::Sealed(b)) => {
                out.push(2);
                put_bytes(out, b);
            }
        }
    }

    fn payload_len(&self) -> usize {
        match &self.payload {
            None => 0,
            Some(PayloadRecord::Clear(b) | PayloadRecord::Sealed(b)) => b.len(),
        }
    }

    /// Decodes a record's bytes; every malformation is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<TaskRecord, RecordError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(RecordError::Version(version));
        }
        let name = r.string("name")?;
        let handler = r.string("handler")?;
        let schedule = r.string("schedule")?;
        let at = r.at;
        let misfire = match (r.u8()?, r.u32()?) {
            (0, _) => Misfire::FireOnce,
            (1, _) => Misfire::Skip,
            (2, max) => Misfire::CatchUp { max },
            (tag, _) => {
                return Err(RecordError::Tag {
                    what: "misfire",
                    tag,
                    at,
                })
            }
        };
        let at = r.at;
        let overlap = match (r.u8()?, r.u8()?, r.u32()?) {
            (0, _, _) => Overlap::Skip,
            (1, _, _) => Overlap::Queue,
            (2, has, max) => Overlap::Allow {
                max: (has != 0).then_some(max),
            },
            (tag, _, _) => {
                return Err(RecordError::Tag {
                    what: "overlap",
                    tag,
                    at,
                })
            }
        };
        let jitter = r.i64()?;
        let until = (r.flag("until")?).then_some(r.i64()?);
        let has_times = r.flag("times")?;
        let times = r.u64()?;
        let times = has_times.then_some(times);
        let at = r.at;
        let delivery = match r.u8()? {
            0 => Delivery::AtMostOnce,
            1 => Delivery::AtLeastOnce,
            tag => {
                return Err(RecordError::Tag {
                    what: "delivery",
                    tag,
                    at,
                })
            }
        };
        let paused = r.flag("paused")?;
        let cursor = r.i64()?;
        let at = r.at;
        let payload = match r.u8()? {
            0 => None,
            1 => Some(PayloadRecord::Clear(r.bytes()?.to_vec())),
            2 => Some(PayloadRecord::Sealed(r.bytes()?.to_vec())),
            tag => {
                return Err(RecordError::Tag {
                    what: "payload",
                    tag,
                    at,
                })
            }
        };
        if r.at != bytes.len() {
            return Err(RecordError::Trailing(bytes.len() - r.at));
        }
        Ok(TaskRecord {
            name,
            handler,
            schedule,
            misfire,
            overlap,
            jitter,
            until,
            times,
            delivery,
            paused,
            cursor,
            payload,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Lengths past u32 cannot be registered (names, schedules and payloads
    // are far smaller); saturate rather than wrap, and decoding rejects it.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

fn put_tag(out: &mut Vec<u8>, tag: u8, v: u32) {
    out.push(tag);
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordError::Truncated(self.bytes.len()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn flag(&mut self, what: &'static str) -> Result<bool, RecordError> {
        let at = self.at;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(RecordError::Tag { what, tag, at }),
        }
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| RecordError::Utf8(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskRecord {
        TaskRecord {
            name: "daily-report".into(),
            handler: "send-report".into(),
            schedule: "cron vixie Europe/Berlin 0 9 * * MON-FRI".into(),
            misfire: Misfire::CatchUp { max: 7 },
            overlap: Overlap::Allow { max: Some(3) },
            jitter: 5,
            until: Some(99),
            times: None,
            delivery: Delivery::AtMostOnce,
            paused: true,
            cursor: -12,
            payload: Some(PayloadRecord::Sealed(vec![1, 2, 3])),
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(TaskRecord::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn every_truncation_and_most_corruptions_are_errors_not_panics() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(TaskRecord::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(TaskRecord::decode(&longer), Err(RecordError::Trailing(1)));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = TaskRecord::decode(&b); // must not panic
        }
    }
}
