//! Sizes in settings: a bare number in the key's unit (KiB or MiB), or a
//! number with its own unit.

/// `512`, `512KiB`, `2 GiB`, `4096B`: bytes, a bare number counting `unit`s.
pub(crate) fn parse_size(v: &str, unit: u64) -> Option<u64> {
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let scale = match v[digits..].trim().to_ascii_lowercase().as_str() {
        "" => unit,
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_in_the_keys_unit_or_with_their_own() {
        assert_eq!(parse_size("32", 1 << 20), Some(32 << 20));
        assert_eq!(parse_size("512KiB", 1 << 20), Some(512 << 10));
        assert_eq!(parse_size("2 GiB", 1024), Some(2 << 30));
        assert_eq!(parse_size("4096B", 1 << 20), Some(4096));
        assert_eq!(parse_size("1.5MiB", 1 << 20), None);
        assert_eq!(parse_size("12 parsecs", 1), None);
        assert_eq!(parse_size("99999999999999999999", 1), None);
    }
}
