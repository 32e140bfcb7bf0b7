//! Importing contacts from CSV as Chinese offices have them: UTF-8 (with or without BOM) or
//! GBK/GB18030 (what Excel saves in China), detected from the bytes; a file that is neither is
//! refused. Columns are mapped by guessing from Chinese and English headers; rows are streamed
//! (bounded memory), each validated by the same service function as a form, and saved in its
//! own transaction, so a crash loses at most the row in flight. Bad rows are reported (row,
//! column, reason) and skipped while good rows go in; nothing is silently altered. Likely
//! duplicates (same phone, email, or same name at the same company) follow the chosen policy,
//! which with `skip` (the default) makes re-running the same file double nothing.

use std::io::Read;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{args, Ctx, Error};

use crate::accounts::{self, AccountInput};
use crate::contacts::{self, ContactInput};
use crate::custom_fields::{self, CustomField, Entity, FieldKind};
use crate::duplicates::{self, DuplicateProbe};
use crate::normalize;

/// What to do with a row that matches an existing contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Leave the existing contact alone (re-running a file doubles nothing).
    #[default]
    Skip,
    /// Fill the existing contact with the row's non-empty values.
    Update,
    /// Create a new contact anyway.
    Create,
}

/// The fields a column can feed, with the headers that name them (besides the API name).
const ALIASES: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "姓名",
            "名字",
            "联系人",
            "联系人姓名",
            "客户姓名",
            "full name",
            "contact",
        ],
    ),
    (
        "phone",
        &[
            "手机",
            "手机号",
            "手机号码",
            "电话",
            "联系电话",
            "mobile",
            "telephone",
            "tel",
            "phone number",
        ],
    ),
    (
        "email",
        &["邮箱", "电子邮件", "电子邮箱", "邮件", "e-mail", "mail"],
    ),
    ("wechat", &["微信", "微信号", "weixin"]),
    ("title", &["职位", "职务", "job title", "position"]),
    ("department", &["部门", "dept"]),
    (
        "account",
        &[
            "公司",
            "公司名称",
            "单位",
            "客户",
            "所属客户",
            "company",
            "account",
            "organization",
            "organisation",
        ],
    ),
    ("province", &["省", "省份", "state"]),
    ("city", &["市", "城市"]),
    ("district", &["区", "区县", "区/县", "county"]),
    ("address", &["地址", "详细地址", "street", "street address"]),
    ("gender", &["性别", "sex"]),
    (
        "birthday",
        &["生日", "出生日期", "birth date", "date of birth"],
    ),
    ("notes", &["备注", "说明", "note", "comments"]),
    ("tags", &["标签", "标记", "tag"]),
    ("family_name", &["姓", "last name", "surname"]),
    ("given_name", &["名", "first name"]),
];

/// The field a header names, if any: the API name, a known alias, or a label the caller adds
/// (the UI's translated labels, so an exported file imports back).
pub fn guess(header: &str, labels: &[(String, String)]) -> Option<&'static str> {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    let h = h.trim_end_matches(['*', ':', '：']).trim();
    for (field, names) in ALIASES {
        if h == *field || names.iter().any(|n| n.to_lowercase() == h) {
            return Some(field);
        }
    }
    labels
        .iter()
        .find(|(label, _)| label.to_lowercase() == h)
        .and_then(|(_, field)| ALIASES.iter().find(|(f, _)| f == field).map(|(f, _)| *f))
}

/// The custom field a header names: its key, `custom.<key>`, or its label in any language.
fn guess_custom(header: &str, defs: &[CustomField]) -> Option<String> {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    let h = h.trim_end_matches(['*', ':', '：']).trim();
    defs.iter()
        .find(|d| {
            h == d.key
                || h.strip_prefix("custom.") == Some(d.key.as_str())
                || h == d.label.to_lowercase()
                || d.labels.values().any(|l| l.to_lowercase() == h)
        })
        .map(|d| format!("custom.{}", d.key))
}

/// A row's custom values as the API takes them; money is typed in yuan in files.
fn custom_values(
    defs: &[CustomField],
    value: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for d in defs {
        let Some(v) = value(&format!("custom.{}", d.key)) else {
            continue;
        };
        let v = match d.kind {
            FieldKind::Money => normalize::money(&v)
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::String(v)),
            _ => serde_json::Value::String(v),
        };
        m.insert(d.key.clone(), v);
    }
    (!m.is_empty()).then_some(m)
}

/// How the file's text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Utf8,
    Gb18030,
}

/// Decides the encoding from the file's first bytes (`whole`: they are the whole file): UTF-8
/// when they are valid UTF-8 (a character cut at the end of a partial sample is allowed),
/// GB18030 (a superset of GBK) when they decode without error, otherwise refused.
pub fn detect(sample: &[u8], whole: bool) -> std::result::Result<Encoding, Error> {
    match std::str::from_utf8(sample) {
        Ok(_) => return Ok(Encoding::Utf8),
        Err(e) if e.error_len().is_none() && !whole => return Ok(Encoding::Utf8),
        Err(_) => {}
    }
    let (_, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(sample);
    if had_errors {
        Err(Error::field("file", "unknown_encoding"))
    } else {
        Ok(Encoding::Gb18030)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// 1-based line in the file, the header being line 1.
    pub row: u64,
    /// The file's column header (or the field).
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ColumnMap {
    pub header: String,
    /// The field it feeds, or none (ignored).
    pub field: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub encoding: Option<Encoding>,
    pub columns: Vec<ColumnMap>,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Row-level problems (the first 1,000).
    pub errors: Vec<RowError>,
}

pub struct ImportOptions {
    pub dry_run: bool,
    pub duplicates: DuplicatePolicy,
    /// Translated field labels → field, so exported files import back.
    pub labels: Vec<(String, String)>,
}

const MAX_ERRORS: usize = 1000;

/// Imports contacts from `input`. `progress` is told the number of rows done every 100 rows.
pub async fn contacts<R: Read + Send>(
    db: &Db,
    ctx: &Ctx,
    mut input: R,
    opts: &ImportOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ImportReport> {
    ctx.require("contacts", Action::Create)?;
    // Read a sample to decide the encoding, then stream the rest through the decoder.
    let mut sample = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while filled < sample.len() {
        let n = input
            .read(&mut sample[filled..])
            .map_err(|e| Error::BadRequest(format!("reading the file: {e}")))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let whole = filled < sample.len();
    sample.truncate(filled);
    let encoding = detect(&sample, whole)?;
    let chained = std::io::Cursor::new(sample).chain(input);
    let decoded: Box<dyn Read + Send> = match encoding {
        Encoding::Utf8 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::UTF_8))
                .bom_override(true)
                .build(chained),
        ),
        Encoding::Gb18030 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .build(chained),
        ),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(decoded);
    let headers = reader
        .headers()
        .map_err(|e| Error::field("file", &csv_reason(&e)))?
        .clone();
    // Built-in fields by name, alias or label; then custom fields by key or label.
    let defs = custom_fields::active_in(db, ctx.tenant_id, Entity::Contacts).await?;
    let fields: Vec<Option<String>> = headers
        .iter()
        .map(|h| {
            guess(h, &opts.labels)
                .map(str::to_owned)
                .or_else(|| guess_custom(h, &defs))
        })
        .collect();
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        encoding: Some(encoding),
        columns: headers
            .iter()
            .zip(&fields)
            .map(|(h, f)| ColumnMap {
                header: h.trim_start_matches('\u{feff}').to_owned(),
                field: f.clone(),
            })
            .collect(),
        ..Default::default()
    };
    if !fields.iter().any(|f| f.as_deref() == Some("name")) {
        return Err(Error::field("file", "no_name_column"));
    }
    let header_of = |field: &str| {
        fields
            .iter()
            .position(|f| f.as_deref() == Some(field))
            .and_then(|i| headers.get(i))
            .unwrap_or(field)
            .to_owned()
    };
    let mut record = csv::StringRecord::new();
    loop {
        // Where the next record starts (1-based, the header is line 1).
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.failed += 1;
                push_error(&mut report, line, "file".into(), csv_reason(&e));
                continue;
            }
        }
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        report.rows += 1;
        let value = |field: &str| {
            fields
                .iter()
                .position(|f| f.as_deref() == Some(field))
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match import_row(db, ctx, opts, &defs, &value).await {
            Ok(Outcome::Created) => report.created += 1,
            Ok(Outcome::Updated) => report.updated += 1,
            Ok(Outcome::Skipped) => report.skipped += 1,
            Err(Error::Validation(errs)) => {
                report.failed += 1;
                for e in errs {
                    let field = if e.field == "account_id" {
                        "account"
                    } else {
                        e.field.as_str()
                    };
                    push_error(&mut report, line, header_of(field), e.code);
                }
            }
            Err(e) => return Err(e),
        }
        if report.rows.is_multiple_of(100) {
            progress(report.rows);
        }
    }
    progress(report.rows);
    Ok(report)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "unknown_encoding".into(),
        _ => "unreadable_row".into(),
    }
}

fn push_error(report: &mut ImportReport, row: u64, column: String, reason: String) {
    if report.errors.len() < MAX_ERRORS {
        report.errors.push(RowError {
            row,
            column,
            reason,
        });
    }
}

enum Outcome {
    Created,
    Updated,
    Skipped,
}

async fn import_row(
    db: &Db,
    ctx: &Ctx,
    opts: &ImportOptions,
    defs: &[CustomField],
    value: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Outcome> {
    // The company, by exact name; created when missing (not in a dry run).
    let account_id = match value("account") {
        None => None,
        Some(name) => {
            let found: Option<(Uuid,)> = db
                .fetch_optional(
                    "SELECT id FROM accounts WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL ORDER BY created_at LIMIT 1",
                    args![ctx.tenant_id, name.as_str()],
                )
                .await?;
            match (found, opts.dry_run) {
                (Some((id,)), _) => Some(id),
                (None, true) => None,
                (None, false) => Some(
                    accounts::create(
                        db,
                        ctx,
                        AccountInput {
                            name: Some(name),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| match e {
                        Error::Validation(mut v) => {
                            for f in &mut v {
                                f.field = "account".into();
                            }
                            Error::Validation(v)
                        }
                        e => e,
                    })?
                    .id,
                ),
            }
        }
    };
    let set = |field: &str| value(field).map(Some);
    let input = ContactInput {
        name: Some(value("name").unwrap_or_default()),
        account_id: account_id.map(Some),
        phone: set("phone"),
        email: set("email"),
        wechat: set("wechat"),
        title: set("title"),
        department: set("department"),
        province: set("province"),
        city: set("city"),
        district: set("district"),
        address: set("address"),
        gender: set("gender"),
        birthday: set("birthday"),
        notes: set("notes"),
        family_name: set("family_name"),
        given_name: set("given_name"),
        tags: value("tags").map(|t| {
            t.split([',', '，', '、', ';', '；'])
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        }),
        custom: custom_values(defs, value),
        ..Default::default()
    };
    // Validate first, exactly as the form does: a bad row changes nothing.
    contacts::check(db, ctx, &input).await?;
    let existing = if opts.duplicates == DuplicatePolicy::Create {
        None
    } else {
        let found = duplicates::find(
            db,
            ctx,
            &DuplicateProbe {
                kind: Some("contact".into()),
                name: value("name"),
                phone: value("phone"),
                email: value("email"),
                account_id,
                ..Default::default()
            },
        )
        .await?;
        found.items.into_iter().find(|c| c.score >= 70)
    };
    if opts.dry_run {
        return Ok(match (existing, opts.duplicates) {
            (Some(_), DuplicatePolicy::Skip) => Outcome::Skipped,
            (Some(_), _) => Outcome::Updated,
            (None, _) => Outcome::Created,
        });
    }
    match (existing, opts.duplicates) {
        (Some(_), DuplicatePolicy::Skip) => Ok(Outcome::Skipped),
        (Some(c), _) => {
            let current = contacts::get(db, ctx, c.id).await?;
            let patch = ContactInput {
                version: Some(current.version),
                name: None,
                ..input
            };
            contacts::update(db, ctx, c.id, None, patch).await?;
            Ok(Outcome::Updated)
        }
        (None, _) => {
            contacts::create(db, ctx, input).await?;
            Ok(Outcome::Created)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headers_are_guessed_in_both_languages() {
        for (h, f) in [
            ("姓名", "name"),
            ("手机号码", "phone"),
            ("E-mail", "email"),
            ("公司名称", "account"),
            ("Company", "account"),
            ("name", "name"),
            ("\u{feff}姓名", "name"),
            ("职位：", "title"),
        ] {
            assert_eq!(guess(h, &[]), Some(f), "{h}");
        }
        assert_eq!(guess("备用字段", &[]), None);
        let labels = vec![("所属客户".to_owned(), "account".to_owned())];
        assert_eq!(guess("所属客户", &labels), Some("account"));
    }

    #[test]
    fn encodings_are_told_apart() {
        let text = "姓名,手机\n张三,13800138000\n";
        assert_eq!(detect(text.as_bytes(), true).ok(), Some(Encoding::Utf8));
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(detect(&gbk, true).ok(), Some(Encoding::Gb18030));
        // A UTF-8 sample cut inside a character is still UTF-8.
        let bytes = text.as_bytes();
        assert_eq!(
            detect(&bytes[..bytes.len() - 20], false).ok(),
            Some(Encoding::Utf8)
        );
        // Neither: bytes that are not valid in either encoding.
        assert!(detect(&[0xFF, 0xFF, 0xFF, 0x80, 0xFF], true).is_err());
    }

    proptest! {
        /// Any text that is valid UTF-8 is read as UTF-8; the same text saved as GBK is read
        /// back identically through the GB18030 decoder.
        #[test]
        fn gbk_round_trips(s in "[\\u4e00-\\u9fa5a-zA-Z0-9,]{1,40}") {
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(&s);
            prop_assume!(!unmappable);
            match detect(&gbk, true) {
                Ok(Encoding::Utf8) => prop_assert!(std::str::from_utf8(&gbk).is_ok()),
                Ok(Encoding::Gb18030) => {
                    let (back, _) = encoding_rs::GB18030.decode_without_bom_handling(&gbk);
                    prop_assert_eq!(back.as_ref(), s.as_str());
                }
                Err(_) => prop_assert!(false, "GBK text refused"),
            }
        }

        /// The parser never panics on arbitrary bytes: it answers with an encoding or refuses.
        #[test]
        fn detect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = detect(&bytes, true);
            let _ = detect(&bytes, false);
        }
    }
}
