//! Small validators shared by every module; each returns a stable error code.

use serde::{Deserialize, Deserializer};

pub const LOCALES: &[&str] = &["zh-CN", "zh-TW", "en"];

/// Full-width ASCII (`１３５`, `ＡＢＣ`, `＠`, `－`) as ASCII and the ideographic space as a
/// space — what NFKC does to the Halfwidth and Fullwidth Forms block, and nothing else.
/// Chinese input methods and text pasted from WeChat type these. The one place every
/// identifier (phones, emails, codes, ids) and every search and duplicate key passes through;
/// names and notes are stored as typed (their full-width punctuation is Chinese writing).
pub fn fold_width(s: &str) -> std::borrow::Cow<'_, str> {
    let folds = |c: char| ('\u{ff01}'..='\u{ff5e}').contains(&c) || c == '\u{3000}';
    if !s.chars().any(folds) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                c if folds(c) => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                c => c,
            })
            .collect(),
    )
}

/// Lower-cased, trimmed email, or the error code.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let e = fold_width(raw).trim().to_lowercase();
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
/// Free text of at most `max` characters, trimmed; empty becomes `None`.
pub fn text(raw: &str, max: usize) -> Result<Option<String>, &'static str> {
    let t = raw.trim();
    if t.is_empty() {
        Ok(None)
    } else if t.chars().count() > max {
        Err("too_long")
    } else if t
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        Err("invalid")
    } else {
        Ok(Some(t.to_owned()))
    }
}

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

#[cfg(test)]
mod fold_tests {
    use super::fold_width;

    #[test]
    fn full_width_ascii_folds_and_chinese_punctuation_stays() {
        assert_eq!(fold_width("１３５０２４４２１２６"), "13502442126");
        assert_eq!(fold_width("ｌｉ＠ａｃｍｅ．ｃｎ"), "li@acme.cn");
        assert_eq!(fold_width("＋８６\u{3000}１３８"), "+86 138");
        assert_eq!(
            fold_width("北京（总部），上海。"),
            "北京(总部),上海。",
            "keys fold; 。 is not ASCII"
        );
        assert!(matches!(
            fold_width("plain 张三"),
            std::borrow::Cow::Borrowed(_)
        ));
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
