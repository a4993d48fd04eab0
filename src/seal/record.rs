//! The sealed record: its byte layout, sealing and opening.
//!
//! ```text
//!  0        1            5                    29                 len-16   len
//!  | version | key id LE  | nonce (24 bytes)    | ciphertext        | tag    |
//! ```
//!
//! XChaCha20-Poly1305 with a fresh random 24-byte nonce per seal (random
//! nonces of that size are safe at any realistic volume). The associated data
//! is built once per task by [`binding`]: a domain label, the task id and the
//! task name, so a record opens only for the task it was sealed for. The
//! version byte and key id are not in the associated data; changing either
//! one makes the record unopenable anyway (another key or layout fails the
//! tag check).
//!
//! A [`Record`] holds no plaintext: sealing encrypts in place in the record's
//! own buffer (wiped if encryption fails); opening decrypts into a fresh
//! [`Zeroizing`] buffer.

use super::error::SealError;
use super::key::{Key, KeyRing};
use crate::id::TaskId;
use chacha20poly1305::{AeadInOut, Tag, XNonce};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;
const HEADER: usize = 1 + 4 + NONCE;
const LABEL: &[u8] = b"cronlane/seal/v1";

/// The associated data for a task's payload: label, task id, name.
pub(crate) fn binding(id: TaskId, name: Option<&str>) -> Box<[u8]> {
    let name = name.unwrap_or("");
    let mut aad = Vec::with_capacity(LABEL.len() + 8 + 1 + 8 + name.len());
    aad.extend_from_slice(LABEL);
    aad.extend_from_slice(&id.as_u64().to_le_bytes());
    // Anonymous and named tasks never share a binding (names are non-empty,
    // but say so explicitly rather than rely on it).
    aad.push(u8::from(!name.is_empty()));
    aad.extend_from_slice(&(name.len() as u64).to_le_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.into_boxed_slice()
}

/// The associated data for a durable task's payload: its own label and the
/// task's name (ids change across restarts; the name is its identity).
pub(crate) fn durable_binding(name: &str) -> Box<[u8]> {
    const DURABLE: &[u8] = b"cronlane/seal/durable/v1";
    let mut aad = Vec::with_capacity(DURABLE.len() + 8 + name.len());
    aad.extend_from_slice(DURABLE);
    aad.extend_from_slice(&(name.len() as u64).to_le_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.into_boxed_slice()
}

/// A sealed payload, as kept in memory (and, later, in a store).
pub(crate) struct Record {
    bytes: Box<[u8]>,
}

impl Record {
    /// Seals `plaintext` with `key` for the task whose binding is `aad`.
    pub(crate) fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Result<Record, SealError> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&key.id().to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = key.cipher().encrypt_inout_detached(
            &XNonce::from(nonce),
            aad,
            out[HEADER..].as_mut().into(),
        );
        match tag {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(Record {
                    bytes: out.into_boxed_slice(),
                })
            }
            Err(_) => {
                out.zeroize();
                Err(SealError::TooLarge)
            }
        }
    }

    /// A record from stored bytes (checked only when opened).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Record {
        Record {
            bytes: bytes.into_boxed_slice(),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The id of the key the record names, if it is long enough to name one.
    pub(crate) fn key_id(&self) -> Option<u32> {
        let id = self.bytes.get(1..5)?;
        Some(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
    }

    /// Opens the record with the key it names, for the task whose binding is
    /// `aad`.
    pub(crate) fn open(&self, ring: &KeyRing, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let b = &self.bytes;
        if b.len() < HEADER + TAG {
            return Err(SealError::Malformed { len: b.len() });
        }
        if b[0] != VERSION {
            return Err(SealError::UnknownVersion { version: b[0] });
        }
        let key_id = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        let key = ring.get(key_id).ok_or(SealError::UnknownKey { key_id })?;
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&b[5..HEADER]);
        let (body, tag) = b[HEADER..].split_at(b.len() - HEADER - TAG);
        let mut tag_bytes = [0u8; TAG];
        tag_bytes.copy_from_slice(tag);
        let mut plain = Zeroizing::new(body.to_vec());
        key.cipher()
            .decrypt_inout_detached(
                &XNonce::from(nonce),
                aad,
                plain.as_mut_slice().into(),
                &Tag::from(tag_bytes),
            )
            .map_err(|_| SealError::Rejected { key_id })?;
        Ok(plain)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key_id", &self.key_id())
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(Key::from_bytes(7, [0x42; 32]))
    }

    #[test]
    fn round_trip() {
        let aad = binding(TaskId::new(1, 0), Some("a"));
        let r = Record::seal(ring().current(), &aad, b"hello").unwrap();
        assert_eq!(r.as_bytes().len(), HEADER + 5 + TAG);
        assert_eq!(r.key_id(), Some(7));
        assert_eq!(&r.open(&ring(), &aad).unwrap()[..], b"hello");
    }

    #[test]
    fn every_byte_is_authenticated() {
        let aad = binding(TaskId::new(1, 0), Some("a"));
        let r = Record::seal(ring().current(), &aad, &[9u8; 64]).unwrap();
        for i in 0..r.as_bytes().len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = r.as_bytes().to_vec();
                b[i] ^= flip;
                assert!(
                    Record::from_bytes(b).open(&ring(), &aad).is_err(),
                    "byte {i}"
                );
            }
        }
        // Truncation too.
        for len in 0..r.as_bytes().len() {
            let b = r.as_bytes()[..len].to_vec();
            assert!(Record::from_bytes(b).open(&ring(), &aad).is_err());
        }
    }

    #[test]
    fn bound_to_task_id_and_name() {
        let aad = binding(TaskId::new(1, 0), Some("a"));
        let r = Record::seal(ring().current(), &aad, b"x").unwrap();
        for other in [
            binding(TaskId::new(2, 0), Some("a")),
            binding(TaskId::new(1, 0), Some("b")),
            binding(TaskId::new(1, 0), None),
        ] {
            assert_eq!(
                r.open(&ring(), &other).unwrap_err(),
                SealError::Rejected { key_id: 7 }
            );
        }
    }

    #[test]
    fn nonces_differ() {
        let aad = binding(TaskId::new(1, 0), None);
        let a = Record::seal(ring().current(), &aad, b"same").unwrap();
        let b = Record::seal(ring().current(), &aad, b"same").unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn debug_shows_no_bytes() {
        let aad = binding(TaskId::new(1, 0), None);
        let r = Record::seal(ring().current(), &aad, b"SECRET").unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("SECRET") && d.contains("key_id"));
    }
}
