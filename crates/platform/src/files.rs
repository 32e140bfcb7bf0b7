//! Files kept for a tenant: a ticket's attachments, those of a mail that opened it. The bytes
//! live in the database (one backup holds everything; every node of a cluster serves them),
//! bounded per file so no upload or download can take more than [`MAX_BYTES`] of memory.
//!
//! The type is the server's decision, never the client's: the name's extension must be on an
//! allow-list, and where the format has a signature the bytes must carry it (a `.pdf` that is
//! an executable is refused). The web layer serves a file as a download (images inline) with
//! `nosniff` and a sandboxing CSP, so nothing uploaded runs in a colleague's browser.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::db::{Conn, Tx};
use crate::error::{Error, Result};
use crate::time::{new_id, now};

/// The largest file kept (8 MiB: under the request limit with a form around it).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// A file as listed (its bytes read separately).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct FileMeta {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// A file with its bytes (what a mail carries).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub meta: FileMeta,
    pub data: Vec<u8>,
}

/// How a kind of file is recognised.
#[derive(Clone, Copy)]
enum Sig {
    /// The bytes begin with one of these.
    Starts(&'static [&'static [u8]]),
    /// `RIFF` then, at byte 8, this form (WebP, WAV).
    Riff(&'static [u8]),
    /// An ISO media box: `ftyp` at byte 4 (MP4, MOV, HEIC).
    Ftyp,
    /// Text: no NUL byte in the first 8 KiB.
    Text,
}

const ZIP: Sig = Sig::Starts(&[b"PK\x03\x04", b"PK\x05\x06"]);
const OLE: Sig = Sig::Starts(&[b"\xD0\xCF\x11\xE0"]);

/// The extensions kept, with the type they are served as and their signature.
const TYPES: &[(&str, &str, Sig)] = &[
    ("png", "image/png", Sig::Starts(&[b"\x89PNG"])),
    ("jpg", "image/jpeg", Sig::Starts(&[b"\xFF\xD8\xFF"])),
    ("jpeg", "image/jpeg", Sig::Starts(&[b"\xFF\xD8\xFF"])),
    ("gif", "image/gif", Sig::Starts(&[b"GIF87a", b"GIF89a"])),
    ("webp", "image/webp", Sig::Riff(b"WEBP")),
    ("bmp", "image/bmp", Sig::Starts(&[b"BM"])),
    ("heic", "image/heic", Sig::Ftyp),
    ("pdf", "application/pdf", Sig::Starts(&[b"%PDF-"])),
    ("txt", "text/plain; charset=utf-8", Sig::Text),
    ("log", "text/plain; charset=utf-8", Sig::Text),
    ("csv", "text/csv; charset=utf-8", Sig::Text),
    ("json", "application/json", Sig::Text),
    ("xml", "application/xml", Sig::Text),
    ("eml", "message/rfc822", Sig::Text),
    ("doc", "application/msword", OLE),
    ("xls", "application/vnd.ms-excel", OLE),
    ("ppt", "application/vnd.ms-powerpoint", OLE),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ZIP,
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ZIP,
    ),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ZIP,
    ),
    ("odt", "application/vnd.oasis.opendocument.text", ZIP),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet", ZIP),
    ("zip", "application/zip", ZIP),
    ("gz", "application/gzip", Sig::Starts(&[b"\x1F\x8B"])),
    (
        "7z",
        "application/x-7z-compressed",
        Sig::Starts(&[b"7z\xBC\xAF\x27\x1C"]),
    ),
    (
        "rar",
        "application/vnd.rar",
        Sig::Starts(&[b"Rar!\x1A\x07"]),
    ),
    ("mp4", "video/mp4", Sig::Ftyp),
    ("mov", "video/quicktime", Sig::Ftyp),
    (
        "mp3",
        "audio/mpeg",
        Sig::Starts(&[b"ID3", b"\xFF\xFB", b"\xFF\xF3", b"\xFF\xF2"]),
    ),
    ("wav", "audio/wav", Sig::Riff(b"WAVE")),
    ("amr", "audio/amr", Sig::Starts(&[b"#!AMR"])),
];

/// The extensions kept, for the message that refuses another.
pub fn allowed_extensions() -> Vec<&'static str> {
    TYPES.iter().map(|(e, _, _)| *e).collect()
}

fn signed(sig: Sig, b: &[u8]) -> bool {
    match sig {
        Sig::Starts(heads) => heads.iter().any(|h| b.starts_with(h)),
        Sig::Riff(form) => b.starts_with(b"RIFF") && b.get(8..12) == Some(form),
        Sig::Ftyp => b.get(4..8) == Some(b"ftyp"),
        Sig::Text => !b[..b.len().min(8192)].contains(&0),
    }
}

/// A name as kept: the last path segment, control characters dropped, at most 200 characters
/// (the extension kept); `file` when nothing is left.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    let base = base.trim().trim_start_matches('.').to_owned();
    if base.is_empty() {
        return "file".to_owned();
    }
    if base.chars().count() <= 200 {
        return base;
    }
    let ext = extension(&base)
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let head: String = base.chars().take(200 - ext.chars().count()).collect();
    format!("{head}{ext}")
}

fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

/// The type a file is kept and served as, or the code refusing it: `empty`, `too_large`,
/// `type_not_allowed` (an extension off the list), `type_mismatch` (bytes that are not what
/// the name says).
pub fn content_type(name: &str, bytes: &[u8]) -> std::result::Result<&'static str, &'static str> {
    if bytes.is_empty() {
        return Err("empty");
    }
    if bytes.len() > MAX_BYTES {
        return Err("too_large");
    }
    let ext = extension(name).ok_or("type_not_allowed")?;
    let (_, ty, sig) = TYPES
        .iter()
        .find(|(e, _, _)| *e == ext)
        .ok_or("type_not_allowed")?;
    if signed(*sig, bytes) {
        Ok(ty)
    } else {
        Err("type_mismatch")
    }
}

/// Whether a type may be shown in the page (an image) rather than only downloaded.
pub fn inline(content_type: &str) -> bool {
    content_type.starts_with("image/") || content_type == "application/pdf"
}

/// Keeps a file for the tenant; a refusal names `field`.
pub async fn store(
    tx: &mut Tx,
    tenant: Uuid,
    user: Option<Uuid>,
    field: &str,
    name: &str,
    bytes: &[u8],
) -> Result<FileMeta> {
    let name = clean_name(name);
    let ty = content_type(&name, bytes).map_err(|code| Error::field(field, code))?;
    let meta = FileMeta {
        id: new_id(),
        name,
        content_type: ty.to_owned(),
        size: bytes.len() as i64,
        sha256: hex::encode(Sha256::digest(bytes)),
        created_at: now(),
    };
    tx.execute(
        "INSERT INTO files (tenant_id, id, name, content_type, size, sha256, data, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            tenant,
            meta.id,
            meta.name.as_str(),
            meta.content_type.as_str(),
            meta.size,
            meta.sha256.as_str(),
            bytes.to_vec(),
            meta.created_at,
            user
        ],
    )
    .await?;
    Ok(meta)
}

/// A file of the tenant with its bytes.
pub async fn load<'a>(
    conn: impl Into<Conn<'a>>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<(FileMeta, Vec<u8>)>> {
    let mut conn = conn.into();
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        name: String,
        content_type: String,
        size: i64,
        sha256: String,
        created_at: DateTime<Utc>,
        data: Vec<u8>,
    }
    let row: Option<Row> = conn
        .fetch_optional(
            "SELECT id, name, content_type, size, sha256, created_at, data FROM files
             WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?;
    Ok(row.map(|r| {
        (
            FileMeta {
                id: r.id,
                name: r.name,
                content_type: r.content_type,
                size: r.size,
                sha256: r.sha256,
                created_at: r.created_at,
            },
            r.data,
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_decided_by_name_and_bytes() {
        assert_eq!(content_type("a.PNG", b"\x89PNG\r\n"), Ok("image/png"));
        assert_eq!(
            content_type("报价.pdf", b"%PDF-1.7 ..."),
            Ok("application/pdf")
        );
        assert_eq!(content_type("x.pdf", b"MZ\x90\x00"), Err("type_mismatch"));
        assert_eq!(
            content_type("x.exe", b"MZ\x90\x00"),
            Err("type_not_allowed")
        );
        assert_eq!(content_type("x.svg", b"<svg/>"), Err("type_not_allowed"));
        assert_eq!(content_type("x.html", b"<p>"), Err("type_not_allowed"));
        assert_eq!(content_type("noext", b"abc"), Err("type_not_allowed"));
        assert_eq!(content_type("x.txt", b""), Err("empty"));
        assert_eq!(content_type("x.txt", b"a\0b"), Err("type_mismatch"));
        assert_eq!(
            content_type("x.txt", &vec![b'a'; MAX_BYTES + 1]),
            Err("too_large")
        );
        assert_eq!(
            content_type("v.webp", b"RIFF\0\0\0\0WEBPVP8 "),
            Ok("image/webp")
        );
        assert_eq!(
            content_type("m.mp4", b"\0\0\0\x18ftypmp42"),
            Ok("video/mp4")
        );
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("C:\\Users\\王\\报价单.xlsx"), "报价单.xlsx");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\"b\n.txt"), "ab.txt");
        assert_eq!(clean_name("  "), "file");
        assert_eq!(clean_name(".bashrc"), "bashrc");
        let long = format!("{}.pdf", "长".repeat(300));
        let c = clean_name(&long);
        assert_eq!(c.chars().count(), 200);
        assert!(c.ends_with(".pdf"));
    }
}
