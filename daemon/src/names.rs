//! Names from clients, checked before they touch anything, and their mapping to files.
//!
//! Worker names are a small alphabet and become directory names as they are. Object names are
//! arbitrary UTF-8 (1-256 bytes, no NUL); on disk an object is the SHA-256 of its name in hex,
//! so no name can escape the state directory or collide with another.

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Longest object name, bytes.
pub const MAX_OBJECT_NAME: usize = 256;

/// Check a worker name: 1-63 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn check_worker(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_name(format!(
            "worker name {name:?} is invalid: use 1-63 characters of a-z, 0-9, '-', '_', starting with a letter or digit"
        )))
    }
}

/// Check an object name: UTF-8 (already decoded), 1-256 bytes, no NUL.
pub fn check_object(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_OBJECT_NAME || name.contains('\0') {
        return Err(ApiError::bad_name(format!(
            "object name must be 1-{MAX_OBJECT_NAME} bytes of UTF-8 without NUL (got {} bytes)",
            name.len()
        )));
    }
    Ok(())
}

/// The file stem of an object's database: hex SHA-256 of its name.
pub fn object_file_stem(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of bytes (content addresses of programs).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names() {
        for ok in ["counter", "a", "todo-app_2", "9lives"] {
            check_worker(ok).unwrap();
        }
        for bad in [
            "",
            "-x",
            "_x",
            "Counter",
            "a/b",
            "..",
            "a b",
            &"x".repeat(64),
            "é",
        ] {
            assert!(check_worker(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names_map_to_fixed_hex_files() {
        check_object("chat/room 1").unwrap();
        check_object("../../etc/passwd").unwrap();
        check_object("名前").unwrap();
        assert!(check_object("").is_err());
        assert!(check_object("a\0b").is_err());
        assert!(check_object(&"x".repeat(257)).is_err());
        let a = object_file_stem("../../etc/passwd");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(object_file_stem("a"), object_file_stem("A"));
    }
}
