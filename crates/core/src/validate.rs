//! Request validation in protoc-gen-validate's wording, as ZITADEL answers it (400, no details).

use crate::error::Error;

/// `value` must have between `min` and `max` characters (Unicode scalar values, "runes").
pub fn runes_between(msg: &str, field: &str, value: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::validation(format!(
            "invalid {msg}.{field}: value length must be between {min} and {max} runes, inclusive"
        )));
    }
    Ok(())
}

/// `value` must have at most `max` characters.
pub fn runes_at_most(msg: &str, field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        return Err(Error::validation(format!(
            "invalid {msg}.{field}: value length must be at most {max} runes"
        )));
    }
    Ok(())
}

/// Wrap a nested message's validation error the way protoc-gen-validate does.
pub fn embedded(msg: &str, field: &str, inner: Error) -> Error {
    Error::validation(format!(
        "invalid {msg}.{field}: embedded message failed validation | caused by: {}",
        inner.key
    ))
}

/// A required field or message is missing.
pub fn required(msg: &str, field: &str) -> Error {
    Error::validation(format!("invalid {msg}.{field}: value is required"))
}

/// A plausible email address: something@something, no spaces, at most 200 characters.
pub fn email(msg: &str, field: &str, value: &str) -> Result<(), Error> {
    runes_between(msg, field, value, 1, 200)?;
    let ok = value.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !value.chars().any(char::is_whitespace);
    if !ok {
        return Err(Error::validation(format!("invalid {msg}.{field}: value must be a valid email address")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runes_not_bytes() {
        assert!(runes_between("M", "F", &"ä".repeat(200), 1, 200).is_ok());
        let e = runes_between("M", "F", &"a".repeat(201), 1, 200).err().map(|e| e.message());
        assert_eq!(
            e.as_deref(),
            Some("invalid M.F: value length must be between 1 and 200 runes, inclusive")
        );
        assert!(runes_between("M", "F", "", 1, 200).is_err());
    }

    #[test]
    fn emails() {
        assert!(email("M", "E", "a@b.c").is_ok());
        assert!(email("M", "E", "ab.c").is_err());
        assert!(email("M", "E", "a b@c").is_err());
    }
}
