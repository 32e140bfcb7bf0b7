//! What every request's input must be before any handler sees it — one edge for the API's JSON,
//! query strings and posted forms:
//! - **No control characters** in text (NUL broke PostgreSQL in 19 places; the others corrupt
//!   exports and logs): C0 controls other than tab, line feed and carriage return, DEL and the
//!   C1 controls are refused with a 422 naming the field.
//! - **Bounded lists**: no JSON array longer than [`MAX_ITEMS`] (100,000 tags in one body burned
//!   seconds of CPU under SQLite's write lock); each field states its own, smaller maximum
//!   where it has one (tags 30, bulk ids 500, order lines 1,000).

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guanxi_platform::error::{Error, FieldError};
use serde_json::Value;

use crate::extract::request_locale;
use crate::problem::ApiError;

/// The longest array any JSON body may hold.
pub const MAX_ITEMS: usize = 1000;

/// A character no text field may hold.
pub fn forbidden_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Walks a JSON body: strings (and object keys) without control characters, arrays of at most
/// [`MAX_ITEMS`]. Field names are dotted paths (`lines.0.sku`).
pub fn check_json(v: &Value) -> Result<(), Error> {
    let mut errs = vec![];
    walk(v, &mut String::new(), &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errs))
    }
}

fn walk(v: &Value, path: &mut String, errs: &mut Vec<FieldError>) {
    if errs.len() >= 20 {
        return;
    }
    let field = |p: &str| {
        if p.is_empty() {
            "body".to_owned()
        } else {
            p.to_owned()
        }
    };
    match v {
        Value::String(s) if s.chars().any(forbidden_char) => {
            errs.push(FieldError::new(&field(path), "control_characters"));
        }
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                errs.push(FieldError::new(&field(path), "too_many"));
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&i.to_string());
                walk(item, path, errs);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if k.chars().any(forbidden_char) {
                    errs.push(FieldError::new(&field(path), "control_characters"));
                } else {
                    walk(item, path, errs);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The first `name=value` pair of a query string or form body with a control character.
fn bad_pair(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, v)| k.chars().any(forbidden_char) || v.chars().any(forbidden_char))
        .map(|(k, _)| {
            let k: String = k.chars().filter(|c| !forbidden_char(*c)).collect();
            if k.is_empty() {
                "query".to_owned()
            } else {
                k
            }
        })
}

/// Middleware: refuses a query string or an urlencoded form body holding a control character
/// (422 naming the parameter), before any handler runs. JSON bodies are checked by
/// [`crate::extract::ApiJson`]; multipart uploads by the importers, cell by cell.
pub async fn refuse_control_chars(req: Request, next: Next) -> Response {
    let locale = request_locale(req.headers(), "en");
    let refuse = |field: String| {
        ApiError::new(
            Error::Validation(vec![FieldError::new(&field, "control_characters")]),
            &locale,
        )
        .into_response()
    };
    if let Some(field) = req.uri().query().and_then(|q| bad_pair(q.as_bytes())) {
        return refuse(field);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, crate::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::new(Error::field("body", "too_large"), &locale).into_response(),
    };
    if let Some(field) = bad_pair(&bytes) {
        return refuse(field);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_named_by_path() {
        let body =
            json!({"name": "ok", "lines": [{"sku": "A"}, {"sku": "B\u{0}"}], "notes": "a\nb\tc"});
        match check_json(&body) {
            Err(Error::Validation(e)) => {
                assert_eq!(e.len(), 1);
                assert_eq!(e[0].field, "lines.1.sku");
                assert_eq!(e[0].code, "control_characters");
            }
            other => panic!("{other:?}"),
        }
        for c in ['\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{8}'] {
            assert!(
                check_json(&json!({ "q": format!("a{c}") })).is_err(),
                "{c:?}"
            );
        }
        assert!(check_json(&json!({"q": "北京\r\n上海\t"})).is_ok());
    }

    #[test]
    fn long_arrays_are_refused() {
        let tags: Vec<String> = (0..=MAX_ITEMS).map(|i| i.to_string()).collect();
        match check_json(&json!({ "tags": tags })) {
            Err(Error::Validation(e)) => assert_eq!(
                (e[0].field.as_str(), e[0].code.as_str()),
                ("tags", "too_many")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forms_and_queries_name_the_parameter() {
        assert_eq!(bad_pair(b"q=a%00b&x=1"), Some("q".into()));
        assert_eq!(bad_pair(b"q=%E5%8C%97%E4%BA%AC&notes=a%0Ab"), None);
        assert_eq!(bad_pair(b"a%01=1"), Some("a".into()));
    }
}
