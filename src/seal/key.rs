//! Keys and key rings: what a payload is sealed with.
//!
//! A [`Key`] is a 256-bit XChaCha20-Poly1305 key with a numeric id; the id is
//! written in every record sealed with it, so the record names the key that
//! opens it. A [`KeyRing`] holds the *current* key (used for every new seal)
//! and any number of *previous* keys (used only to open older records).
//!
//! Key bytes live only inside the cipher state, which wipes them on drop
//! (`chacha20poly1305`'s `zeroize` feature). Nothing here prints them: the
//! `Debug` impls show key ids, and [`KeyError`] names an entry by position and
//! id, never by its text.

use super::error::KeyError;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// The environment variable [`KeyRing::from_env`] is usually given.
pub const DEFAULT_KEYS_VAR: &str = "CRONLANE_KEYS";

/// A 256-bit sealing key and its id. Wiped from memory when dropped; its
/// `Debug` output shows the id only.
///
/// ```
/// use cronlane::{Key, KeyRing};
///
/// let key = Key::generate(3)?;                // random, from the OS
/// let fixed = Key::from_bytes(2, [7u8; 32]);  // from bytes you keep safe
/// assert_eq!(format!("{key:?}"), "Key { id: 3, .. }"); // never the bytes
/// let ring = KeyRing::new(key).with_previous(fixed)?;
/// assert_eq!(ring.ids(), [3, 2]);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    id: u32,
    cipher: XChaCha20Poly1305,
}

impl Key {
    /// A key from its 32 bytes. The array is taken by value and the copy
    /// this function receives is wiped; wipe your own copy too (or build the
    /// array in place, e.g. from [`KeyRing::decode`]).
    pub fn from_bytes(id: u32, mut bytes: [u8; 32]) -> Key {
        let key = chacha20poly1305::Key::from(bytes);
        let cipher = XChaCha20Poly1305::new(&key);
        // `key` is a plain array copy: wipe it and ours.
        let mut key = key;
        key.as_mut_slice().zeroize();
        bytes.zeroize();
        Key { id, cipher }
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate(id: u32) -> Result<Key, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| KeyError::Random)?;
        Ok(Key::from_bytes(id, *bytes))
    }

    /// The key's id, as written in the records it seals.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn cipher(&self) -> &XChaCha20Poly1305 {
        &self.cipher
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The current key plus older keys, by id.
///
/// New payloads are sealed with the current key; a record is opened with the
/// key its header names, current or previous. Give a scheduler its ring with
/// [`SchedulerBuilder::keys`](crate::SchedulerBuilder::keys) and replace it
/// with [`Scheduler::rotate_keys`](crate::Scheduler::rotate_keys).
///
/// # Encoding (for [`KeyRing::from_env`] and [`KeyRing::decode`])
///
/// A comma-separated list of `id:hex` entries, current key first:
///
/// ```text
/// CRONLANE_KEYS="3:<64 hex digits>,2:<64 hex digits>"
/// ```
///
/// `id` is a decimal `u32`; `hex` is the key's 32 bytes as 64 hex digits
/// (either case). Spaces around entries are ignored. Ids must be distinct.
///
/// # Example
///
/// ```
/// use cronlane::{Key, KeyRing, Scheduler};
///
/// let hex = "ab".repeat(32);
/// let ring = KeyRing::decode(&format!("3:{hex}, 2:{}", "cd".repeat(32)))?;
/// assert_eq!((ring.current_id(), ring.ids()), (3, vec![3, 2]));
///
/// let s = Scheduler::builder().keys(ring).build();
/// // Later: a new current key, keeping 3 to open what it sealed.
/// s.rotate_keys(KeyRing::new(Key::generate(4)?).with_previous(Key::from_bytes(3, [0xab; 32]))?);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyRing {
    current: Key,
    previous: Vec<Key>,
}

impl KeyRing {
    /// A ring with one key, the current one.
    pub fn new(current: Key) -> KeyRing {
        KeyRing {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an older key, kept to open records sealed with it.
    pub fn with_previous(mut self, key: Key) -> Result<KeyRing, KeyError> {
        if self.get(key.id).is_some() {
            return Err(KeyError::DuplicateId { id: key.id });
        }
        self.previous.push(key);
        Ok(self)
    }

    /// Reads a ring from the environment variable `var` (usually
    /// [`DEFAULT_KEYS_VAR`]), in the encoding described on [`KeyRing`].
    pub fn from_env(var: &str) -> Result<KeyRing, KeyError> {
        let value = match std::env::var(var) {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => {
                return Err(KeyError::Missing {
                    var: var.to_owned(),
                })
            }
            Err(std::env::VarError::NotUnicode(mut raw)) => {
                raw.zeroize_os();
                return Err(KeyError::NotUnicode {
                    var: var.to_owned(),
                });
            }
        };
        KeyRing::decode(&value)
    }

    /// Decodes a ring from text in the encoding described on [`KeyRing`].
    pub fn decode(text: &str) -> Result<KeyRing, KeyError> {
        let mut ring: Option<KeyRing> = None;
        for (index, entry) in text.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(KeyError::EmptyEntry { index });
            }
            let (id, hex) = entry
                .split_once(':')
                .ok_or(KeyError::MissingColon { index })?;
            let id: u32 = id.trim().parse().map_err(|_| KeyError::BadId { index })?;
            let bytes = decode_hex(hex.trim(), index)?;
            let key = Key::from_bytes(id, *bytes);
            ring = Some(match ring {
                None => KeyRing::new(key),
                Some(r) => r.with_previous(key)?,
            });
        }
        ring.ok_or(KeyError::EmptyEntry { index: 0 })
    }

    /// The current key's id: new seals use it.
    pub fn current_id(&self) -> u32 {
        self.current.id
    }

    /// Every key id in the ring, current first.
    pub fn ids(&self) -> Vec<u32> {
        std::iter::once(self.current.id)
            .chain(self.previous.iter().map(|k| k.id))
            .collect()
    }

    pub(crate) fn current(&self) -> &Key {
        &self.current
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Key> {
        if self.current.id == id {
            return Some(&self.current);
        }
        self.previous.iter().find(|k| k.id == id)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn decode_hex(hex: &str, index: usize) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return Err(KeyError::BadLength {
            index,
            digits: digits.len(),
        });
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = nibble(pair[0]).ok_or(KeyError::BadHex { index })?;
        let lo = nibble(pair[1]).ok_or(KeyError::BadHex { index })?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Wipes an `OsString` we are about to drop (best effort: through its bytes).
trait ZeroizeOs {
    fn zeroize_os(&mut self);
}

impl ZeroizeOs for std::ffi::OsString {
    fn zeroize_os(&mut self) {
        let mut bytes = std::mem::take(self).into_encoded_bytes();
        bytes.zeroize();
    }
}
