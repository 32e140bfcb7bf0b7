//! The account and contact lists: filters on any field (custom ones included), sorting, column
//! choice, saved views (personal and shared), cursor pages, bulk actions (assign, tag, untag,
//! trash) and editing one cell in place. Everything goes through the same `guanxi-customers`
//! and `views` functions as the API; one template draws both lists.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_customers::accounts::{self, AccountFilter, AccountInput};
use guanxi_customers::contacts::{self, ContactFilter, ContactInput};
use guanxi_platform::perms::Action;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::views::{self, SavedViewFilter, SavedViewInput};
use guanxi_platform::Error;
use guanxi_records::bulk::{self, BulkAction, BulkInput};
use guanxi_records::custom_fields::{self, FieldKind};
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::layout::{self, Layout};
use crate::extract::CustomFilters;
use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

/// Built-in columns a list can show, the default ones, and those editable in place.
struct Columns {
    all: &'static [&'static str],
    default: &'static [&'static str],
}

const CONTACT_COLUMNS: Columns = Columns {
    all: &[
        "account_id",
        "title",
        "department",
        "phone",
        "email",
        "wechat",
        "province",
        "city",
        "owner_id",
        "tags",
        "updated_at",
        "created_at",
    ],
    default: &["account_id", "title", "phone", "email", "owner_id"],
};

const ACCOUNT_COLUMNS: Columns = Columns {
    all: &[
        "parent_id",
        "industry",
        "credit_code",
        "phone",
        "email",
        "website",
        "province",
        "city",
        "owner_id",
        "tags",
        "updated_at",
        "created_at",
    ],
    default: &["industry", "city", "phone", "owner_id", "updated_at"],
};

/// Built-in fields a cell edit may change (plain values; links and owners have their forms).
const EDITABLE: &[&str] = &[
    "title",
    "department",
    "phone",
    "email",
    "wechat",
    "province",
    "city",
    "industry",
    "website",
    "credit_code",
];

/// Custom kinds a cell edit may change (one input, no multi-value).
fn cell_editable(k: FieldKind) -> bool {
    !matches!(
        k,
        FieldKind::MultiSelect | FieldKind::LongText | FieldKind::User
    )
}

/// Parameters of the page itself, not of the list's filter.
const PAGE_PARAMS: &[&str] = &["col", "edit", "field", "error", "bulk_done", "bulk_failed"];

/// A list page's query string, split: the filter, the page's own parameters, and the query
/// that reproduces this list (for next-page links, exports and saved views).
struct PageState {
    cols: Vec<String>,
    edit: Option<(String, String)>,
    error: Option<String>,
    bulk: Option<(String, String)>,
    /// The filter and columns, without cursor or page state.
    query: String,
    /// The filter alone (what the API's export takes).
    filter_query: String,
}

fn split<T: DeserializeOwned + CustomFilters>(raw: Option<&str>) -> Result<(T, PageState), Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let cols: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "col")
        .map(|(_, v)| v.clone())
        .collect();
    let (custom, rest): (Vec<_>, Vec<_>) = pairs
        .iter()
        .filter(|(k, v)| !PAGE_PARAMS.contains(&k.as_str()) && !v.is_empty())
        .cloned()
        .partition(|(k, _)| k.starts_with("custom."));
    let rest_q = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let mut filter: T = serde_urlencoded::from_str(&rest_q)
        .map_err(|e| Error::BadRequest(format!("Failed to deserialize query string: {e}")))?;
    filter.set_custom(custom_fields::filters_of(&custom));
    let keep = |with_cols: bool| {
        let kept: Vec<&(String, String)> = pairs
            .iter()
            .filter(|(k, v)| {
                !v.is_empty()
                    && k != "cursor"
                    && (!PAGE_PARAMS.contains(&k.as_str()) || (with_cols && k == "col"))
            })
            .collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    };
    Ok((
        filter,
        PageState {
            cols,
            edit: get("edit").zip(get("field")),
            error: get("error"),
            bulk: get("bulk_done").zip(get("bulk_failed")),
            query: keep(true),
            filter_query: keep(false),
        },
    ))
}

#[derive(Serialize)]
struct Column {
    key: String,
    label: String,
    /// For custom fields: how the cell's input is drawn, and its choices.
    kind: &'static str,
    options: Vec<String>,
    editable: bool,
    custom: bool,
}

fn columns(p: &Signed, layout: &Layout, builtin: &Columns, chosen: &[String]) -> Vec<Column> {
    let mut all: Vec<Column> = builtin
        .all
        .iter()
        .map(|k| Column {
            key: (*k).to_owned(),
            label: match *k {
                "updated_at" | "created_at" | "tags" => {
                    crate::i18n::t(&p.ctx.locale, &format!("common.{k}"))
                }
                _ => crate::i18n::t(&p.ctx.locale, &format!("field.{k}")),
            },
            kind: "text",
            options: vec![],
            editable: EDITABLE.contains(k),
            custom: false,
        })
        .collect();
    all.extend(layout.defs.iter().map(|d| Column {
        key: format!("custom.{}", d.key),
        label: d.label_in(&p.ctx.locale).to_owned(),
        kind: match d.kind {
            FieldKind::Select => "choice",
            FieldKind::Boolean => "yesno",
            FieldKind::Date => "date",
            FieldKind::Datetime => "datetime",
            _ => "text",
        },
        options: d.options.clone(),
        editable: cell_editable(d.kind),
        custom: true,
    }));
    let wanted: Vec<String> = if chosen.is_empty() {
        builtin.default.iter().map(|s| (*s).to_owned()).collect()
    } else {
        chosen.to_vec()
    };
    // The chosen ones in the order chosen, unknown names dropped.
    let mut out = Vec::new();
    for w in wanted {
        if let Some(i) = all.iter().position(|c| c.key == w) {
            out.push(all.remove(i));
        }
    }
    // The rest follow, unshown, for the column chooser.
    out.extend(all.into_iter().map(|mut c| {
        c.key = format!("-{}", c.key);
        c
    }));
    out
}

/// Lists' shared context: filters for custom fields, sortable custom fields, saved views, users
/// to assign to.
async fn common(
    s: &AppState,
    p: &Signed,
    kind: &str,
    layout: &Layout,
) -> Result<(Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>), Error> {
    let filters: Vec<Value> = layout
        .defs
        .iter()
        .filter(|d| {
            !matches!(
                d.kind,
                FieldKind::Number | FieldKind::Money | FieldKind::Date | FieldKind::Datetime
            )
        })
        .map(|d| {
            context! { name => format!("custom.{}", d.key), label => d.label_in(&p.ctx.locale),
            kind => d.kind.as_str(), options => d.options }
        })
        .collect();
    let sorts: Vec<Value> = layout
        .defs
        .iter()
        .filter(|d| {
            custom_fields::sort_column(
                guanxi_platform::db::Backend::Sqlite,
                "x",
                std::slice::from_ref(*d),
                &format!("custom.{}", d.key),
            )
            .is_some()
        })
        .map(
            |d| context! { key => format!("custom.{}", d.key), label => d.label_in(&p.ctx.locale) },
        )
        .collect();
    let saved = views::list(
        &s.db,
        &p.ctx,
        &SavedViewFilter {
            entity: Some(format!("{kind}s")),
        },
    )
    .await?;
    let saved: Vec<Value> = saved
        .into_iter()
        .map(|v| {
            let mine = Some(v.owner_id) == p.ctx.user_id;
            context! { id => v.id, name => v.name, query => v.query, shared => v.shared, mine => mine }
        })
        .collect();
    let people = users::list(
        &s.db,
        &p.ctx,
        &UserFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        },
    )
    .await?;
    let people: Vec<Value> = people
        .items
        .iter()
        .map(|u| context! { id => u.id, name => u.name })
        .collect();
    Ok((filters, sorts, saved, people))
}

pub async fn contacts_page(
    State(s): State<AppState>,
    p: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    list_page(&s, &p, "contact", raw.as_deref()).await
}

pub async fn accounts_page(
    State(s): State<AppState>,
    p: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    list_page(&s, &p, "account", raw.as_deref()).await
}

async fn list_page(s: &AppState, p: &Signed, kind: &'static str, raw: Option<&str>) -> Response {
    match list_view(s, p, kind, raw).await {
        Ok(r) => r,
        Err(e) => p.error(s, e),
    }
}

async fn list_view(
    s: &AppState,
    p: &Signed,
    kind: &'static str,
    raw: Option<&str>,
) -> Result<Response, Error> {
    let layout = layout::layout(s, p, kind).await?;
    let (rows, next, cols, f, module) = if kind == "account" {
        let (f, lp) = split::<AccountFilter>(raw)?;
        let page = accounts::list(&s.db, &p.ctx, &f).await?;
        let names = layout.user_names(s, p).await;
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|a| {
                context! { r => a, shown => layout.shown_with(p, &a.custom.0, &names),
                editable => can_change(p, "accounts", a.owner_id, a.team_id) }
            })
            .collect();
        let fv = context! { q => f.q, province => f.province, city => f.city, sort => f.sort,
        deleted => f.deleted.unwrap_or(false), tag => f.tag, industry => f.industry,
        custom => f.custom.iter().map(|c| (c.param.clone(), c.value.clone())).collect::<BTreeMap<_, _>>() };
        let cols = columns(p, &layout, &ACCOUNT_COLUMNS, &lp.cols);
        (rows, page.next_cursor, cols, (fv, lp), "accounts")
    } else {
        let (f, lp) = split::<ContactFilter>(raw)?;
        let page = contacts::list(&s.db, &p.ctx, &f).await?;
        let names = layout.user_names(s, p).await;
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|c| {
                context! { r => c, shown => layout.shown_with(p, &c.custom.0, &names),
                editable => can_change(p, "contacts", c.owner_id, c.team_id) }
            })
            .collect();
        let fv = context! { q => f.q, province => f.province, city => f.city, sort => f.sort,
        deleted => f.deleted.unwrap_or(false), tag => f.tag,
        custom => f.custom.iter().map(|c| (c.param.clone(), c.value.clone())).collect::<BTreeMap<_, _>>() };
        let cols = columns(p, &layout, &CONTACT_COLUMNS, &lp.cols);
        (rows, page.next_cursor, cols, (fv, lp), "contacts")
    };
    let (fv, lp) = f;
    let next = next.map(|c| {
        let sep = if lp.query.is_empty() { "" } else { "&" };
        format!(
            "?{}{sep}{}",
            lp.query,
            serde_urlencoded::to_string([("cursor", c)]).unwrap_or_default()
        )
    });
    let (filters, sorts, saved, people) = common(s, p, kind, &layout).await?;
    // The cell being edited, with the value its input starts from.
    let edit = match &lp.edit {
        Some((id, field)) => {
            let id = Uuid::parse_str(id).map_err(|_| Error::field("edit", "invalid"))?;
            let values = if kind == "account" {
                layout.form_values(&accounts::get(&s.db, &p.ctx, id).await?, p.time_zone)
            } else {
                layout.form_values(&contacts::get(&s.db, &p.ctx, id).await?, p.time_zone)
            };
            let value = values
                .get_attr(field)
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_none())
                .map(|v| v.to_string())
                .unwrap_or_default();
            let version = values.get_attr("version").map(|v| v.to_string()).ok();
            Some(context! { id => id, field => field, value => value, version => version })
        }
        None => None,
    };
    Ok(p.page(
        s,
        "customers/list.html",
        "customers",
        context! {
            kind => kind, module => module, rows => rows, next => next, cols => cols, f => fv,
            query => lp.query, filter_query => lp.filter_query, edit => edit, cell_error => p.refusal_from_url(lp.error.as_deref()),
            bulk => lp.bulk.map(|(d, f)| context! { done => d, failed => f }),
            custom_filters => filters, custom_sorts => sorts, views => saved, users => people,
            can_create => p.ctx.can(module, Action::Create).is_some(),
            can_share => p.ctx.can("saved_views", Action::Create) == Some(guanxi_platform::perms::Scope::All),
            can_bulk => p.ctx.can(module, Action::Update).is_some(),
        },
    ))
}

fn can_change(p: &Signed, module: &str, owner: Uuid, team: Option<Uuid>) -> bool {
    p.ctx
        .can(module, Action::Update)
        .is_some_and(|scope| p.ctx.covers(scope, Some(owner), team))
}

/// Where to go back to after a list action: a customers list only (never another site).
/// The query is re-encoded pair by pair, so nothing in it can leave the list's path or break
/// the `Location` header.
fn back_to(kind: &str, query: Option<&String>) -> String {
    let q = query.map(|q| q.trim_start_matches('?')).unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("/customers/{kind}s?{q}")
}

fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let sep = if url.ends_with('?') { "" } else { "&" };
    format!(
        "{url}{sep}{}",
        serde_urlencoded::to_string(params).unwrap_or_default()
    )
}

pub async fn edit_account_cell(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    edit_cell(s, p, "account", id, form).await
}

pub async fn edit_contact_cell(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    edit_cell(s, p, "contact", id, form).await
}

/// `POST /customers/{kind}s/{id}/cell`: one field of one record, from the list.
async fn edit_cell(
    s: AppState,
    p: Signed,
    kind: &'static str,
    id: Uuid,
    form: BTreeMap<String, String>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let back = back_to(kind, form.get("back"));
    let field = form.get("field").cloned().unwrap_or_default();
    let value = form
        .get("value")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let result = async {
        let layout = layout::layout(&s, &p, kind).await?;
        let mut obj = serde_json::Map::new();
        if field.starts_with("custom.") {
            let one = BTreeMap::from([(field.clone(), value.clone())]);
            let custom = layout
                .custom_input(&one, p.time_zone)
                .ok_or_else(|| Error::field(&field, "unknown_field"))?;
            obj.insert("custom".into(), serde_json::Value::Object(custom));
        } else if EDITABLE.contains(&field.as_str()) {
            let v = if value.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(value.clone())
            };
            obj.insert(field.clone(), v);
        } else {
            return Err(Error::field(&field, "read_only"));
        }
        if let Some(v) = form.get("version").and_then(|v| v.parse::<i64>().ok()) {
            obj.insert("version".into(), v.into());
        }
        let body = serde_json::Value::Object(obj);
        let bad = |e: serde_json::Error| Error::BadRequest(e.to_string());
        if kind == "account" {
            let input: AccountInput = serde_json::from_value(body).map_err(bad)?;
            accounts::update(&s.db, &p.ctx, id, None, input)
                .await
                .map(|_| ())
        } else {
            let input: ContactInput = serde_json::from_value(body).map_err(bad)?;
            contacts::update(&s.db, &p.ctx, id, None, input)
                .await
                .map(|_| ())
        }
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(e @ (Error::Validation(_) | Error::PreconditionFailed { .. })) => {
            let msg = p.refusal_keys(e, None);
            let id = id.to_string();
            Redirect::to(&with_params(
                &back,
                &[("edit", &id), ("field", &field), ("error", &msg)],
            ))
            .into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

pub async fn bulk_accounts(State(s): State<AppState>, p: Signed, body: String) -> Response {
    bulk_action(s, p, "accounts", body).await
}

pub async fn bulk_contacts(State(s): State<AppState>, p: Signed, body: String) -> Response {
    bulk_action(s, p, "contacts", body).await
}

/// `POST /customers/{kind}s/bulk`: the ticked records, one action.
async fn bulk_action(s: AppState, p: Signed, kind: &str, body: String) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let accounts = kind == "accounts";
    let kind = if accounts { "account" } else { "contact" };
    let back = back_to(kind, get("back").as_ref());
    let ids: Vec<Uuid> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    let action = match get("action").as_deref() {
        Some("assign") => BulkAction::Assign,
        Some("tag") => BulkAction::Tag,
        Some("untag") => BulkAction::Untag,
        Some("delete") => BulkAction::Delete,
        _ => return p.error(&s, Error::field("action", "required")),
    };
    let input = BulkInput {
        ids,
        action,
        owner_id: get("owner_id").and_then(|v| Uuid::parse_str(&v).ok()),
        tag: get("tag"),
    };
    let done = if accounts {
        bulk::run::<guanxi_customers::accounts::Account>(&s.db, &p.ctx, input).await
    } else {
        bulk::run::<guanxi_customers::contacts::Contact>(&s.db, &p.ctx, input).await
    };
    match done {
        Ok(r) => Redirect::to(&with_params(
            &back,
            &[
                ("bulk_done", &r.done.len().to_string()),
                ("bulk_failed", &r.failed.len().to_string()),
            ],
        ))
        .into_response(),
        Err(e @ Error::Validation(_)) => {
            let msg = p.refusal_keys(e, Some("field."));
            Redirect::to(&with_params(&back, &[("error", &msg)])).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /customers/views`: saves the list's current query under a name.
pub async fn save_view(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let entity = form.get("entity").cloned().unwrap_or_default();
    let kind = if entity == "accounts" {
        "account"
    } else {
        "contact"
    };
    let input = SavedViewInput {
        version: None,
        entity: Some(entity),
        name: form.get("name").cloned(),
        query: form.get("query").cloned(),
        shared: Some(form.contains_key("shared")),
    };
    match views::create(&s.db, &p.ctx, input).await {
        Ok(v) => Redirect::to(&back_to(kind, Some(&v.query))).into_response(),
        Err(e @ Error::Validation(_)) => {
            let back = back_to(kind, form.get("query"));
            let msg = p.refusal_keys(e, Some("views.field."));
            Redirect::to(&with_params(&back, &[("error", &msg)])).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /customers/views/{id}/delete`.
pub async fn delete_view(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let v = match views::get(&s.db, &p.ctx, id).await {
        Ok(v) => v,
        Err(e) => return p.error(&s, e),
    };
    match views::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to(&format!("/customers/{}", v.entity)).into_response(),
        Err(e) => p.error(&s, e),
    }
}

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn back_links_stay_on_the_list() {
        for evil in [
            "//evil.example/x",
            "a=1\r\nSet-Cookie: x=1",
            "http://evil.example",
        ] {
            let to = back_to("contact", Some(&evil.to_owned()));
            assert!(to.starts_with("/customers/contacts?"), "{to}");
            assert!(!to.contains('\r') && !to.contains('\n'), "{to}");
            assert!(axum::http::HeaderValue::from_str(&to).is_ok(), "{to}");
        }
        assert_eq!(
            back_to("account", Some(&"?q=%E5%BC%A0&col=phone".to_owned())),
            "/customers/accounts?q=%E5%BC%A0&col=phone"
        );
    }
}
