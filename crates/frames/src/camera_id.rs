//! Camera ids become directory names, so only a safe alphabet is accepted.

use crate::error::FramesError;

/// Longest accepted camera id, in bytes.
pub const MAX_CAMERA_ID_LEN: usize = 64;

/// Accepts `[a-z0-9_-]{1,64}`. Anything else (dots, slashes, upper case, empty) is refused,
/// so an id can never name a path outside the export root.
pub fn validate_camera_id(id: &str) -> Result<(), FramesError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if (1..=MAX_CAMERA_ID_LEN).contains(&id.len()) && id.bytes().all(allowed) {
        Ok(())
    } else {
        Err(FramesError::InvalidCameraId { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_id_table() {
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        let table: &[(&str, bool)] = &[
            ("front", true),
            ("cam_01-north", true),
            ("0", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("Front", false),
            ("..", false),
            ("a/b", false),
            ("a.b", false),
            ("caf\u{e9}", false),
            ("a b", false),
        ];
        for (id, ok) in table {
            assert_eq!(validate_camera_id(id).is_ok(), *ok, "{id:?}");
        }
    }
}
