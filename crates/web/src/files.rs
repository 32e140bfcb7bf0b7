//! Serving a kept file ([`guanxi_platform::files`]) to a browser or a client: as the type the
//! server decided, shown inline only when it is an image or a PDF, never sniffed into
//! something else and sandboxed (nothing in it runs with the viewer's session); its name in
//! both the plain and the UTF-8 form of `Content-Disposition` (RFC 6266), so 报价单.pdf keeps
//! its name.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use guanxi_platform::files::{inline, FileMeta};

pub fn download(meta: &FileMeta, data: Vec<u8>) -> Response {
    let how = if inline(&meta.content_type) {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = meta
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{how}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encoded(&meta.name)
    );
    (
        [
            (header::CONTENT_TYPE, meta.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        data,
    )
        .into_response()
}

/// RFC 5987 `value-chars`: unreserved ASCII as is, every other byte `%XX`.
fn encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_encoded_for_the_header() {
        assert_eq!(super::encoded("报价 1.pdf"), "%E6%8A%A5%E4%BB%B7%201.pdf");
    }
}
