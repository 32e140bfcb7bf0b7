//! Cookies: the session cookie (HttpOnly, SameSite=Lax), and `Secure` plus HSTS on every
//! response when served over https.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use guanxi_platform::auth::SESSION_DAYS;

use crate::extract::SESSION_COOKIE;

/// The session cookie (`Secure` is added for https by [`https_only`], as for every cookie).
pub fn set_cookie(r: &mut Response, value: &str) {
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        SESSION_DAYS * 86400
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear_cookie(r: &mut Response) {
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("gx_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
}

/// Served over https (the configured base URL), every cookie the app sets is `Secure` and
/// browsers are told to use https only (HSTS) — one place, so no cookie can forget it.
pub async fn https_only(
    axum::extract::State(s): axum::extract::State<crate::state::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut r = next.run(req).await;
    if s.config.base_url.starts_with("https://") {
        secure_cookies(r.headers_mut());
    }
    r
}

pub fn secure_cookies(h: &mut axum::http::HeaderMap) {
    let cookies: Vec<HeaderValue> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| match v.to_str() {
            Ok(c) if !c.to_ascii_lowercase().contains("; secure") => {
                HeaderValue::from_str(&format!("{c}; Secure")).unwrap_or_else(|_| v.clone())
            }
            _ => v.clone(),
        })
        .collect();
    h.remove(header::SET_COOKIE);
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_becomes_secure() {
        let mut h = axum::http::HeaderMap::new();
        for c in [
            "gx_csrf=abc; Path=/; HttpOnly; SameSite=Strict",
            "gx_lang=en; Path=/",
            "gx_session=x; Path=/; Secure",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        secure_cookies(&mut h);
        let all: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all.len(), 3);
        assert!(
            all.iter().all(|c| c.matches("Secure").count() == 1),
            "{all:?}"
        );
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
