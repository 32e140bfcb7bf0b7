//! The session cookie: HttpOnly, SameSite=Lax, Secure when served over https.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use guanxi_platform::auth::SESSION_DAYS;
use guanxi_platform::config::Config;

use crate::extract::SESSION_COOKIE;

pub fn set_cookie(r: &mut Response, config: &Config, value: &str) {
    let secure = if config.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
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
