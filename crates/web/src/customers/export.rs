//! Export of account and contact lists (CSV, XLSX, and contacts as vCard) through the record
//! kit's export ([`crate::records::export`]).

use axum::extract::State;
use axum::response::Response;
use guanxi_customers::accounts::{Account, AccountFilter};
use guanxi_customers::contacts::{self, Contact, ContactFilter};
use guanxi_platform::perms::Action;
use serde::Serialize;

use crate::api::{ApiResult, Localize};
use crate::extract::{Auth, ListQuery};
use crate::records::export::{
    audit_export, download, export_csv, export_xlsx_of, stream_pages, PAGE,
};
use crate::state::AppState;

#[derive(Serialize)]
struct ExportedFilter<'a> {
    q: &'a Option<String>,
    owner_id: Option<uuid::Uuid>,
    province: &'a Option<String>,
    city: &'a Option<String>,
    deleted: Option<bool>,
}

fn what_was_exported<'a>(
    q: &'a Option<String>,
    owner_id: Option<uuid::Uuid>,
    province: &'a Option<String>,
    city: &'a Option<String>,
    deleted: Option<bool>,
) -> ExportedFilter<'a> {
    ExportedFilter {
        q,
        owner_id,
        province,
        city,
        deleted,
    }
}

fn account_page(f: &AccountFilter, cursor: Option<String>, limit: i64) -> AccountFilter {
    AccountFilter {
        cursor,
        limit: Some(limit),
        ..f.clone()
    }
}

fn contact_page(f: &ContactFilter, cursor: Option<String>, limit: i64) -> ContactFilter {
    ContactFilter {
        cursor,
        limit: Some(limit),
        ..f.clone()
    }
}

#[utoipa::path(get, path = "/api/v1/accounts/export.csv", tag = "accounts", params(AccountFilter), responses(
    (status = 200, description = "CSV (UTF-8 with BOM), every matching account", content_type = "text/csv")))]
pub async fn export_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<AccountFilter>,
) -> ApiResult<Response> {
    let what = serde_json::to_value(what_was_exported(
        &f.q,
        f.owner_id,
        &f.province,
        &f.city,
        f.deleted,
    ))
    .unwrap_or_default();
    export_csv::<Account>(&s, &ctx, f, account_page, what)
        .await
        .l(&ctx)
}

#[utoipa::path(get, path = "/api/v1/contacts/export.csv", tag = "contacts", params(ContactFilter), responses(
    (status = 200, description = "CSV (UTF-8 with BOM), every matching contact", content_type = "text/csv")))]
pub async fn export_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<ContactFilter>,
) -> ApiResult<Response> {
    let what = serde_json::to_value(what_was_exported(
        &f.q,
        f.owner_id,
        &f.province,
        &f.city,
        f.deleted,
    ))
    .unwrap_or_default();
    export_csv::<Contact>(&s, &ctx, f, contact_page, what)
        .await
        .l(&ctx)
}

#[utoipa::path(get, path = "/api/v1/accounts/export.xlsx", tag = "accounts", params(AccountFilter), responses(
    (status = 200, description = "XLSX, every matching account", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn export_accounts_xlsx(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<AccountFilter>,
) -> ApiResult<Response> {
    let what = serde_json::to_value(what_was_exported(
        &f.q,
        f.owner_id,
        &f.province,
        &f.city,
        f.deleted,
    ))
    .unwrap_or_default();
    export_xlsx_of::<Account>(&s, &ctx, f, account_page, what)
        .await
        .l(&ctx)
}

#[utoipa::path(get, path = "/api/v1/contacts/export.xlsx", tag = "contacts", params(ContactFilter), responses(
    (status = 200, description = "XLSX, every matching contact", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn export_contacts_xlsx(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<ContactFilter>,
) -> ApiResult<Response> {
    let what = serde_json::to_value(what_was_exported(
        &f.q,
        f.owner_id,
        &f.province,
        &f.city,
        f.deleted,
    ))
    .unwrap_or_default();
    export_xlsx_of::<Contact>(&s, &ctx, f, contact_page, what)
        .await
        .l(&ctx)
}

/// vCard 3.0 text value: backslash, comma, semicolon and newlines escaped.
fn vtext(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(';', "\\;")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// One contact as a vCard 3.0 (what phones and mail programs import).
pub fn vcard(c: &Contact) -> String {
    let mut v = String::from("BEGIN:VCARD\r\nVERSION:3.0\r\n");
    v.push_str(&format!("FN:{}\r\n", vtext(&c.name)));
    v.push_str(&format!(
        "N:{};{};;;\r\n",
        vtext(c.family_name.as_deref().unwrap_or(&c.name)),
        vtext(c.given_name.as_deref().unwrap_or(""))
    ));
    if let Some(org) = &c.account_name {
        v.push_str(&format!("ORG:{}\r\n", vtext(org)));
    }
    if let Some(t) = &c.title {
        v.push_str(&format!("TITLE:{}\r\n", vtext(t)));
    }
    if let Some(p) = c.phone_e164.as_ref().or(c.phone.as_ref()) {
        v.push_str(&format!("TEL;TYPE=CELL:{}\r\n", vtext(p)));
    }
    if let Some(e) = &c.email {
        v.push_str(&format!("EMAIL;TYPE=INTERNET:{}\r\n", vtext(e)));
    }
    if c.province.is_some() || c.city.is_some() || c.address.is_some() {
        v.push_str(&format!(
            "ADR:;;{};{};{};;{}\r\n",
            vtext(c.address.as_deref().unwrap_or("")),
            vtext(c.city.as_deref().unwrap_or("")),
            vtext(c.province.as_deref().unwrap_or("")),
            vtext(&c.country)
        ));
    }
    if let Some(n) = &c.notes {
        v.push_str(&format!("NOTE:{}\r\n", vtext(n)));
    }
    v.push_str(&format!("UID:urn:uuid:{}\r\nEND:VCARD\r\n", c.id));
    v
}

#[utoipa::path(get, path = "/api/v1/contacts/export.vcf", tag = "contacts", params(ContactFilter), responses(
    (status = 200, description = "vCard 3.0, every matching contact", content_type = "text/vcard")))]
pub async fn export_contacts_vcard(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<ContactFilter>,
) -> ApiResult<Response> {
    ctx.require("contacts", Action::Read).l(&ctx)?;
    // What was exported, recorded once the export is known to start (after its first page).
    let what = serde_json::to_value(what_was_exported(
        &f.q,
        f.owner_id,
        &f.province,
        &f.city,
        f.deleted,
    ))
    .unwrap_or_default();
    let (s_out, ctx_out) = (s.clone(), ctx.clone());
    let fetch = move |cursor| {
        let (s, ctx, f) = (s.clone(), ctx.clone(), f.clone());
        async move {
            contacts::list(
                &s.db,
                &ctx,
                &ContactFilter {
                    cursor,
                    limit: Some(PAGE),
                    ..f
                },
            )
            .await
        }
    };
    let body = stream_pages(Vec::new(), fetch, |items: &[Contact]| {
        items.iter().map(vcard).collect::<String>().into_bytes()
    })
    .await
    .l(&ctx_out)?;
    audit_export(&s_out, &ctx_out, "contacts", &what)
        .await
        .l(&ctx_out)?;
    Ok(download("contacts.vcf", "text/vcard; charset=utf-8", body))
}
