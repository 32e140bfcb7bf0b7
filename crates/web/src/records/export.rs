//! Export of any record list (the record machinery's kit): CSV streamed page by page
//! (bounded memory at any size) with a UTF-8 byte-order mark and headers in the reader's
//! language so Excel opens Chinese text correctly, every cell neutralised against formulas;
//! XLSX through temporary files; and an audit event (who exported what), since a list of
//! customers or leads leaving the company is worth knowing about. [`export_csv`] and
//! [`export_xlsx_of`] serve any [`Listed`] entity.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::{audit, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomField, FieldKind};
use guanxi_records::Entity;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::records::layout::Section;
use crate::records::lists::Listed;
use crate::state::AppState;

/// Rows fetched per page while streaming.
pub(crate) const PAGE: i64 = 200;

/// What a CSV export writes: the record's id, then every field of its profile groups (the
/// phone also in E.164), then the live custom fields; references are written by name (owner,
/// parent account, account, user fields), money in yuan, yes/no in the reader's language — so
/// the file reads well and imports back.
pub(crate) struct Sheet {
    cols: Vec<String>,
    header: Vec<String>,
    defs: Vec<CustomField>,
    yes_no: (String, String),
    users: BTreeMap<String, String>,
}

impl Sheet {
    pub(crate) async fn new(
        s: &AppState,
        ctx: &Ctx,
        sections: &[Section],
        entity: Entity,
    ) -> Result<Sheet, Error> {
        let mut cols = vec!["id".to_owned()];
        for f in sections.iter().flat_map(|s| s.fields) {
            cols.push(f.name.to_owned());
            if f.name == "phone" {
                cols.push("phone_e164".to_owned());
            }
        }
        let defs = custom_fields::active_in(&s.db, ctx.tenant_id, entity).await?;
        cols.extend(defs.iter().map(|d| format!("custom.{}", d.key)));
        let mut header: Vec<String> = cols
            .iter()
            .map(|c| match c.as_str() {
                "id" => "ID".to_owned(),
                "phone_e164" => "E.164".to_owned(),
                c => match c.strip_prefix("custom.") {
                    Some(k) => defs
                        .iter()
                        .find(|d| d.key == k)
                        .map(|d| d.label_in(&ctx.locale).to_owned())
                        .unwrap_or_else(|| c.to_owned()),
                    None => crate::i18n::t(&ctx.locale, &format!("field.{c}")),
                },
            })
            .collect();
        // A custom label that repeats another column's is written as `custom.<key>`, so the
        // file still imports back unambiguously.
        for i in 0..cols.len() {
            let taken = header
                .iter()
                .enumerate()
                .any(|(j, h)| j != i && *h == header[i]);
            if taken && cols[i].starts_with("custom.") {
                header[i] = cols[i].clone();
            }
        }
        let users = if defs.iter().any(|d| d.kind == FieldKind::User) {
            let f = UserFilter {
                limit: Some(200),
                ..Default::default()
            };
            users::list(&s.db, ctx, &f)
                .await?
                .items
                .into_iter()
                .map(|u| (u.id.to_string(), u.email))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(Sheet {
            cols,
            header,
            defs,
            yes_no: (
                crate::i18n::t(&ctx.locale, "common.yes"),
                crate::i18n::t(&ctx.locale, "common.no"),
            ),
            users,
        })
    }

    fn cell(&self, record: &serde_json::Value, col: &str) -> String {
        if let Some(key) = col.strip_prefix("custom.") {
            let Some(def) = self.defs.iter().find(|d| d.key == key) else {
                return String::new();
            };
            let yes_no = (self.yes_no.0.as_str(), self.yes_no.1.as_str());
            return custom_fields::display(def, record["custom"].get(key), yes_no, |id| {
                self.users.get(id).cloned()
            })
            .into_owned();
        }
        let key = match col {
            "owner_id" => "owner_name",
            "parent_id" => "parent_name",
            "account_id" => "account_name",
            other => other,
        };
        match &record[key] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        }
    }

    /// The first bytes of the file: a UTF-8 byte-order mark (Excel needs it for Chinese) and
    /// the header row in the reader's language.
    fn head(&self) -> Vec<u8> {
        let mut head = vec![0xEF, 0xBB, 0xBF];
        head.extend(csv_bytes([self.header.clone()]));
        head
    }

    /// One row per record.
    fn rows<T: Serialize>(&self, items: &[T]) -> Vec<u8> {
        csv_bytes(items.iter().map(|item| {
            let v = serde_json::to_value(item).unwrap_or_default();
            self.cols
                .iter()
                .map(|c| self.cell(&v, c))
                .collect::<Vec<_>>()
        }))
    }
}

/// Every CSV the product writes goes through here: each cell neutralised
/// ([`guanxi_records::tables::csv_safe`]) so a spreadsheet never runs it as a formula.
pub fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        // Writing to memory cannot fail.
        let _ = w.write_record(
            r.iter()
                .map(|c| guanxi_records::tables::csv_safe(c).into_owned()),
        );
    }
    w.into_inner().unwrap_or_default()
}

/// Records the export in the audit log.
pub(crate) async fn audit_export<F: Serialize>(
    s: &AppState,
    ctx: &Ctx,
    entity: &str,
    filter: &F,
) -> Result<(), Error> {
    let mut tx = s.db.begin().await?;
    audit::record::<F>(&mut tx, ctx, "export", entity, None, None, Some(filter)).await?;
    tx.commit().await
}

pub(crate) fn download(name: &str, content_type: &'static str, body: Body) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Streams every page of a list as one body: `fetch(cursor)` returns a page, `render` turns
/// its items into bytes; `head` goes first. Memory stays one page, whatever the list's size.
///
/// The first page is read before the response starts, so a filter or sort the list refuses is
/// an ordinary error response (it once dropped the connection from inside the body). A page
/// that fails later ends the body with an error: the client sees an incomplete chunked
/// transfer, never a clean end of a truncated file.
pub(crate) async fn stream_pages<T, F, Fut, R>(
    head: Vec<u8>,
    fetch: F,
    render: R,
) -> Result<Body, Error>
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>, Error>> + Send,
    R: Fn(&[T]) -> Vec<u8> + Send + Sync + 'static,
{
    let first = fetch(None).await?;
    let mut chunk = head;
    chunk.extend(render(&first.items));
    let (fetch, render) = (Arc::new(fetch), Arc::new(render));
    let rest = futures_util::stream::unfold(first.next_cursor, move |cursor| {
        let (fetch, render) = (fetch.clone(), render.clone());
        async move {
            let page = match fetch(Some(cursor?)).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export failed mid-stream; the body ends incomplete");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            };
            Some((
                Ok::<_, std::io::Error>(render(&page.items)),
                page.next_cursor,
            ))
        }
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(chunk) }),
        rest,
    );
    Ok(Body::from_stream(stream))
}

/// Every matching record into one XLSX sheet (header row in the reader's language, then the
/// same cells as the CSV). Rows go to the workbook's temporary files as pages arrive
/// (constant-memory mode); the finished file is compressed off the async runtime.
pub(crate) async fn xlsx<T, F, Fut>(sheet: Sheet, fetch: F) -> Result<Vec<u8>, Error>
where
    T: Serialize,
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    let bad = |e: rust_xlsxwriter::XlsxError| Error::Internal(anyhow::anyhow!("xlsx: {e}"));
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet_with_constant_memory().map_err(bad)?;
    for (c, h) in sheet.header.iter().enumerate() {
        ws.write_string(0, c as u16, h).map_err(bad)?;
    }
    let mut row: u32 = 1;
    let mut cursor = None;
    loop {
        let page = fetch(cursor).await?;
        for item in &page.items {
            let v = serde_json::to_value(item).unwrap_or_default();
            for (c, col) in sheet.cols.iter().enumerate() {
                let text = sheet.cell(&v, col);
                if !text.is_empty() {
                    ws.write_string(row, c as u16, &text).map_err(bad)?;
                }
            }
            row += 1;
            if row >= 1_048_576 {
                return Err(Error::field("limit", "too_many"));
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    tokio::task::spawn_blocking(move || book.save_to_buffer())
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("xlsx: {e}")))?
        .map_err(bad)
}

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// An XLSX export of one entity's list: permission, audit event, sheet, file.
pub(crate) async fn export_xlsx<T, F, Fut, W>(
    s: &AppState,
    ctx: &Ctx,
    (entity, sections): (Entity, &'static [Section]),
    what: W,
    fetch: F,
) -> Result<Response, Error>
where
    T: Serialize,
    W: Serialize,
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    let table = entity.table();
    ctx.require(table, Action::Read)?;
    audit_export(s, ctx, table, &what).await?;
    let sheet = Sheet::new(s, ctx, sections, entity).await?;
    let bytes = xlsx(sheet, fetch).await?;
    Ok(download(&format!("{table}.xlsx"), XLSX, Body::from(bytes)))
}

/// A [`Listed`] entity's list as CSV: `with_page(filter, cursor)` sets the page on a copy of
/// the filter; `what` is the filter as recorded in the audit event.
pub(crate) async fn export_csv<R: Listed + Clone>(
    s: &AppState,
    ctx: &Ctx,
    f: R::Filter,
    with_page: fn(&R::Filter, Option<String>, i64) -> R::Filter,
    what: serde_json::Value,
) -> Result<Response, Error>
where
    R::Filter: Clone + 'static,
{
    let table = R::TABLE;
    ctx.require(table, Action::Read)?;
    let sheet = Sheet::new(s, ctx, R::SPEC.sections, R::ENTITY).await?;
    let head = sheet.head();
    let (s2, ctx2) = (s.clone(), ctx.clone());
    let fetch = move |cursor| {
        let (s, ctx) = (s2.clone(), ctx2.clone());
        let f = with_page(&f, cursor, PAGE);
        async move { R::list(&s.db, &ctx, &f).await }
    };
    let body = stream_pages(head, fetch, move |items| sheet.rows(items)).await?;
    audit_export(s, ctx, table, &what).await?;
    Ok(download(
        &format!("{table}.csv"),
        "text/csv; charset=utf-8",
        body,
    ))
}

/// A [`Listed`] entity's list as XLSX (see [`export_csv`]).
pub(crate) async fn export_xlsx_of<R: Listed + Clone>(
    s: &AppState,
    ctx: &Ctx,
    f: R::Filter,
    with_page: fn(&R::Filter, Option<String>, i64) -> R::Filter,
    what: serde_json::Value,
) -> Result<Response, Error>
where
    R::Filter: Clone + 'static,
{
    let fetch = |cursor| {
        let (s, ctx) = (s.clone(), ctx.clone());
        let f = with_page(&f, cursor, PAGE);
        async move { R::list(&s.db, &ctx, &f).await }
    };
    export_xlsx(s, ctx, (R::ENTITY, R::SPEC.sections), what, fetch).await
}
