//! Export of any filtered account or contact list as CSV: streamed page by page (bounded
//! memory at any size), a UTF-8 byte-order mark and headers in the reader's language so Excel
//! opens Chinese text correctly, and an audit event (who exported what), since a customer list
//! leaving the company is worth knowing about.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use guanxi_customers::accounts::{self, AccountFilter};
use guanxi_customers::contacts::{self, ContactFilter};
use guanxi_platform::perms::Action;
use guanxi_platform::{audit, Ctx, Error};
use serde::Serialize;

use crate::api::{ApiResult, Localize};
use crate::customers::pages::{Section, ACCOUNT_SECTIONS, CONTACT_SECTIONS};
use crate::extract::Auth;
use crate::state::AppState;

/// Rows fetched per page while streaming.
const PAGE: i64 = 200;

/// The exported columns: the record's id, then every field of its profile groups; references
/// are exported by name (owner, parent account, account) and the phone also in E.164.
fn columns(sections: &[Section]) -> Vec<&'static str> {
    let mut cols = vec!["id"];
    for f in sections.iter().flat_map(|s| s.fields) {
        cols.push(f.name);
        if f.name == "phone" {
            cols.push("phone_e164");
        }
    }
    cols
}

fn cell(record: &serde_json::Value, col: &str) -> String {
    let key = match col {
        "owner_id" => "owner_name",
        "parent_id" => "parent_name",
        "account_id" => "account_name",
        other => other,
    };
    match &record[key] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn header_row(locale: &str, cols: &[&str]) -> Vec<String> {
    cols.iter()
        .map(|c| match *c {
            "id" => "ID".to_owned(),
            "phone_e164" => "E.164".to_owned(),
            c => crate::i18n::t(locale, &format!("field.{c}")),
        })
        .collect()
}

fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        // Writing to memory cannot fail.
        let _ = w.write_record(&r);
    }
    w.into_inner().unwrap_or_default()
}

/// Records the export in the audit log.
async fn audit_export<F: Serialize>(
    s: &AppState,
    ctx: &Ctx,
    entity: &str,
    filter: &F,
) -> Result<(), Error> {
    let mut tx = s.db.begin().await?;
    audit::record::<F>(&mut tx, ctx, "export", entity, None, None, Some(filter)).await?;
    tx.commit().await
}

fn csv_response(name: &str, body: Body) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[derive(Serialize)]
struct ExportedFilter<'a> {
    q: &'a Option<String>,
    owner_id: Option<uuid::Uuid>,
    province: &'a Option<String>,
    city: &'a Option<String>,
    deleted: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/accounts/export.csv", tag = "accounts", params(AccountFilter), responses(
    (status = 200, description = "CSV (UTF-8 with BOM), every matching account", content_type = "text/csv")))]
pub async fn export_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<AccountFilter>,
) -> ApiResult<Response> {
    ctx.require("accounts", Action::Read).l(&ctx)?;
    let filter = ExportedFilter {
        q: &f.q,
        owner_id: f.owner_id,
        province: &f.province,
        city: &f.city,
        deleted: f.deleted,
    };
    audit_export(&s, &ctx, "accounts", &filter).await.l(&ctx)?;
    let cols = columns(ACCOUNT_SECTIONS);
    let mut head = vec![0xEF, 0xBB, 0xBF];
    head.extend(csv_bytes([header_row(&ctx.locale, &cols)]));
    let start = AccountFilter {
        limit: Some(PAGE),
        cursor: None,
        ..f
    };
    let stream = futures_util::stream::unfold(Some((start, Some(head))), move |state| {
        let (s, ctx, cols) = (s.clone(), ctx.clone(), cols.clone());
        async move {
            let (filter, head) = state?;
            let page = match accounts::list(&s.db, &ctx, &filter).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
            };
            let rows = page.items.iter().map(|a| {
                let v = serde_json::to_value(a).unwrap_or_default();
                cols.iter().map(|c| cell(&v, c)).collect::<Vec<_>>()
            });
            let mut chunk = head.unwrap_or_default();
            chunk.extend(csv_bytes(rows));
            let next = page.next_cursor.map(|c| {
                (
                    AccountFilter {
                        cursor: Some(c),
                        ..filter
                    },
                    None,
                )
            });
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    Ok(csv_response("accounts.csv", Body::from_stream(stream)))
}

#[utoipa::path(get, path = "/api/v1/contacts/export.csv", tag = "contacts", params(ContactFilter), responses(
    (status = 200, description = "CSV (UTF-8 with BOM), every matching contact", content_type = "text/csv")))]
pub async fn export_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<ContactFilter>,
) -> ApiResult<Response> {
    ctx.require("contacts", Action::Read).l(&ctx)?;
    let filter = ExportedFilter {
        q: &f.q,
        owner_id: f.owner_id,
        province: &f.province,
        city: &f.city,
        deleted: f.deleted,
    };
    audit_export(&s, &ctx, "contacts", &filter).await.l(&ctx)?;
    let cols = columns(CONTACT_SECTIONS);
    let mut head = vec![0xEF, 0xBB, 0xBF];
    head.extend(csv_bytes([header_row(&ctx.locale, &cols)]));
    let start = ContactFilter {
        limit: Some(PAGE),
        cursor: None,
        ..f
    };
    let stream = futures_util::stream::unfold(Some((start, Some(head))), move |state| {
        let (s, ctx, cols) = (s.clone(), ctx.clone(), cols.clone());
        async move {
            let (filter, head) = state?;
            let page = match contacts::list(&s.db, &ctx, &filter).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
            };
            let rows = page.items.iter().map(|c| {
                let v = serde_json::to_value(c).unwrap_or_default();
                cols.iter().map(|col| cell(&v, col)).collect::<Vec<_>>()
            });
            let mut chunk = head.unwrap_or_default();
            chunk.extend(csv_bytes(rows));
            let next = page.next_cursor.map(|c| {
                (
                    ContactFilter {
                        cursor: Some(c),
                        ..filter
                    },
                    None,
                )
            });
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    Ok(csv_response("contacts.csv", Body::from_stream(stream)))
}
