//! Small validators shared by every module; each returns a stable error code.

use serde::{Deserialize, Deserializer};

pub const LOCALES: &[&str] = &["zh-CN", "zh-TW", "en"];

/// Lower-cased, trimmed email, or the error code.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_lowercase();
    if e.len() > 254 {
        return Err("too_long");
    }
    let mut parts = e.splitn(2, '@');
    let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';');
    if ok {
        Ok(e)
    } else {
        Err("invalid_email")
    }
}

/// A trimmed display name of 1–200 characters.
pub fn name(raw: &str) -> Result<String, &'static str> {
    let n = raw.trim();
    if n.is_empty() {
        Err("required")
    } else if n.chars().count() > 200 {
        Err("too_long")
    } else if n.chars().any(char::is_control) {
        Err("invalid")
    } else {
        Ok(n.to_owned())
    }
}

pub fn locale(raw: &str) -> Result<String, &'static str> {
    LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(raw))
        .map(|l| (*l).to_owned())
        .ok_or("unknown_locale")
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Li.Lei@Example.COM ").unwrap(), "li.lei@example.com");
        for bad in [
            "", "a", "a@b", "@b.cn", "a@.cn", "a@b.", "a b@c.cn", "a@b@c.cn",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email("张三@例子.中国").is_ok());
    }

    #[test]
    fn names_and_locales() {
        assert_eq!(name("  张三丰 ").unwrap(), "张三丰");
        assert_eq!(name(" ").unwrap_err(), "required");
        assert_eq!(name(&"x".repeat(201)).unwrap_err(), "too_long");
        assert_eq!(locale("zh-cn").unwrap(), "zh-CN");
        assert!(locale("fr").is_err());
    }
}
