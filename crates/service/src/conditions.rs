//! What SLA policies and queues share: lists of codes a ticket is matched against (empty
//! matches anything), checked one way, and a name unique per tenant.

use guanxi_platform::error::Errors;
use guanxi_platform::Error;

/// Whether `value` is in `list`; an empty list matches anything (also no value).
pub fn any_or(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
}

/// A list of codes, each one of `allowed` (or, without it, any short text), trimmed and kept
/// once each; each refusal named `<field>.<index>`.
pub fn codes(
    errs: &mut Errors,
    field: &str,
    raw: &[String],
    allowed: Option<&[&str]>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if raw.len() > 50 {
        errs.add(field, "too_many");
        return out;
    }
    for (i, v) in raw.iter().enumerate() {
        let v = v.trim();
        let ok = match allowed {
            Some(list) => list.contains(&v),
            None => !v.is_empty() && v.chars().count() <= 50,
        };
        if !ok {
            errs.add(&format!("{field}.{i}"), "invalid");
        } else if !out.iter().any(|x| x == v) {
            out.push(v.to_owned());
        }
    }
    out
}

/// A unique-name violation as the `name` field's refusal.
pub fn unique_name(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::field("name", "taken"),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_matches_anything_and_codes_are_checked() {
        assert!(any_or(&[], None));
        assert!(!any_or(&["A".into()], None));
        assert!(any_or(&["A".into()], Some("A")));
        let mut errs = Errors::default();
        let got = codes(
            &mut errs,
            "grades",
            &[" A ".into(), "A".into(), "Z".into()],
            Some(&["A", "B"]),
        );
        assert_eq!(got, vec!["A".to_owned()]);
        assert!(errs.finish().is_err());
    }
}
