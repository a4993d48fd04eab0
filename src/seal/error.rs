//! The sealing layer's error types. Plain data, compiled with or without
//! the `seal` feature, so code that matches on them builds either way.

/// Why a payload could not be sealed or opened. Never carries payload or key
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The scheduler has no key ring to seal or open with.
    #[error("no key ring is set")]
    NoKey,
    /// The record names a key id that is not in the ring (retired too early,
    /// or the record was altered).
    #[error("the payload is sealed with key id {key_id}, which is not in the key ring")]
    UnknownKey {
        /// The id the record names.
        key_id: u32,
    },
    /// The record failed authentication: its bytes were altered, it was
    /// sealed for another task, or the key under its id is not the one that
    /// sealed it.
    #[error("the payload failed authentication with key id {key_id} (altered, sealed for another task, or a different key under that id)")]
    Rejected {
        /// The id the record names.
        key_id: u32,
    },
    /// The record is shorter than a header and a tag.
    #[error("the sealed payload is malformed ({len} bytes)")]
    Malformed {
        /// Its length.
        len: usize,
    },
    /// The record's layout version is not one this build reads.
    #[error("the sealed payload has unknown layout version {version}")]
    UnknownVersion {
        /// The version byte found.
        version: u8,
    },
    /// The payload is too large for the cipher.
    #[error("the payload is too large to seal")]
    TooLarge,
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
}

/// Why a key or key ring could not be built. Names entries by position and
/// id; never shows key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The environment variable is not set.
    #[error("environment variable `{var}` is not set")]
    Missing {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is not valid Unicode.
    #[error("environment variable `{var}` is not valid Unicode")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
    /// An entry (0-based) is empty.
    #[error("key entry {index} is empty (expected `id:hex`)")]
    EmptyEntry {
        /// 0-based entry position.
        index: usize,
    },
    /// An entry has no `:` between id and key.
    #[error("key entry {index} has no `:` (expected `id:hex`)")]
    MissingColon {
        /// 0-based entry position.
        index: usize,
    },
    /// An entry's id is not a decimal `u32`.
    #[error("key entry {index}: the id is not a decimal number below 2^32")]
    BadId {
        /// 0-based entry position.
        index: usize,
    },
    /// An entry's key is not 64 hex digits long.
    #[error("key entry {index}: expected 64 hex digits, found {digits} characters")]
    BadLength {
        /// 0-based entry position.
        index: usize,
        /// How many characters it had.
        digits: usize,
    },
    /// An entry's key has a character that is not a hex digit.
    #[error("key entry {index}: the key has a character that is not a hex digit")]
    BadHex {
        /// 0-based entry position.
        index: usize,
    },
    /// Two keys in one ring share an id.
    #[error("key id {id} appears twice in the ring")]
    DuplicateId {
        /// The repeated id.
        id: u32,
    },
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
}
