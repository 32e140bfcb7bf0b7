//! Record lists, for every entity that implements [`Listed`]: filters on any field (custom ones
//! included), sorting, column choice, saved views (personal and shared), cursor pages, bulk
//! actions (assign, tag, untag, trash) and editing one cell in place. Everything goes through
//! the entity's own service functions and the `views` functions, as the API does; one template
//! (`records/list.html`) draws every list.

use std::collections::BTreeMap;
use std::future::Future;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_platform::db::Db;
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::views::{self, SavedViewFilter, SavedViewInput};
use guanxi_platform::{Ctx, Error};
use guanxi_records::bulk::{self, BulkAction, BulkInput, Editable};
use guanxi_records::custom_fields::{self, CustomFilters, FieldKind};
use guanxi_records::record::{self, Record};
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::layout::{self, Layout, Section};
use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

/// Built-in columns a list can show, and the default ones.
pub struct Columns {
    pub all: &'static [&'static str],
    pub default: &'static [&'static str],
}

/// What a list page needs to know of its entity beyond the record machinery.
pub struct ListSpec {
    /// Singular, as in messages (`customers.new_<kind>`) and element ids: `contact`, `lead`.
    pub kind: &'static str,
    /// The list's path; a record's page is `{base}/{id}`, its form `{base}/new`.
    pub base: &'static str,
    /// The side navigation entry the page belongs to (`customers`, `leads`).
    pub nav: &'static str,
    /// The tabs above the list (a template), if the module has several lists.
    pub tabs: Option<&'static str>,
    pub columns: Columns,
    /// Built-in fields a cell edit may change (plain values; links and owners have forms).
    pub editable: &'static [&'static str],
    /// The message naming the list's order when no sort is chosen.
    pub auto_sort: &'static str,
    /// Built-in sorts offered (`name`, `-updated_at`, …).
    pub sorts: &'static [&'static str],
    /// Built-in text filters offered besides the search box (`province`, `industry`, …).
    pub filters: &'static [&'static str],
    /// Choice filters: (parameter, choices; each shown as `<parameter>.<choice>`).
    pub choices: &'static [(&'static str, &'static [&'static str])],
    /// Whether the API has `{module}/export.csv` and `.xlsx` for this list.
    pub exports: bool,
    /// Where its code words' messages are: `""` (`status.open`) or a prefix (`ticket.` →
    /// `ticket.status.open`) when its codes read differently from others of the same name.
    pub codes: &'static str,
    /// The record's built-in profile groups.
    pub sections: &'static [Section],
}

/// A record type with a list page.
pub trait Listed: Record + Editable + Serialize + Send + Sync + 'static {
    type Filter: DeserializeOwned + CustomFilters + Send + Sync;
    type Input: DeserializeOwned + Send;
    const SPEC: &'static ListSpec;
    fn id(&self) -> Uuid;
    fn list(
        db: &Db,
        ctx: &Ctx,
        f: &Self::Filter,
    ) -> impl Future<Output = Result<Page<Self>, Error>> + Send;
    fn update(
        db: &Db,
        ctx: &Ctx,
        id: Uuid,
        input: Self::Input,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// The filter's values as the template's `f` (`q`, `sort`, `deleted`, `custom` and the
    /// spec's filters).
    fn filter_values(f: &Self::Filter) -> Value;
    /// Anything else the entity's list shows (the template's `extras`); `chips` — shortcuts
    /// (`href`, `label`, optional `id`) — are drawn above the list, the one matching the page
    /// marked.
    fn extras(_db: &Db, _ctx: &Ctx) -> impl Future<Output = Result<Value, Error>> + Send {
        async { Ok(Value::from(())) }
    }
}

/// The layout of `R`'s records, its built-in fields named as its list names them.
pub async fn layout_of<R: Listed>(s: &AppState, p: &Signed) -> Result<Layout, Error> {
    let mut l = layout::layout(s, p, R::ENTITY, R::SPEC.sections).await?;
    for f in l.sections.iter_mut().flat_map(|s| &mut s.fields) {
        if !f.custom {
            f.label = own_label(p, R::SPEC, &f.name);
        }
    }
    Ok(l)
}

/// A list whose codes read apart names its own fields apart too, where it has words of its
/// own (a ticket's number is not an order's, an article's title is not a job title).
fn own_label(p: &Signed, spec: &ListSpec, field: &str) -> Option<String> {
    if spec.codes.is_empty() {
        return None;
    }
    let own = format!("{}field.{field}", spec.codes);
    Some(crate::i18n::t(&p.ctx.locale, &own)).filter(|w| *w != own)
}

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

fn columns(p: &Signed, layout: &Layout, spec: &ListSpec, chosen: &[String]) -> Vec<Column> {
    let builtin = &spec.columns;
    let mut all: Vec<Column> = builtin
        .all
        .iter()
        .map(|k| Column {
            key: (*k).to_owned(),
            label: match *k {
                "updated_at" | "created_at" | "tags" => {
                    crate::i18n::t(&p.ctx.locale, &format!("common.{k}"))
                }
                _ => own_label(p, spec, k)
                    .unwrap_or_else(|| crate::i18n::t(&p.ctx.locale, &format!("field.{k}"))),
            },
            kind: "text",
            options: vec![],
            editable: spec.editable.contains(k),
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
    module: &str,
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
            entity: Some(module.to_owned()),
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

/// `GET {base}`: the list.
pub async fn page<R: Listed>(
    State(s): State<AppState>,
    p: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    match list_view::<R>(&s, &p, raw.as_deref()).await {
        Ok(r) => r,
        Err(e) => p.error(&s, e),
    }
}

async fn list_view<R: Listed>(
    s: &AppState,
    p: &Signed,
    raw: Option<&str>,
) -> Result<Response, Error> {
    let spec = R::SPEC;
    let module = R::TABLE;
    let layout = layout_of::<R>(s, p).await?;
    let (f, lp) = split::<R::Filter>(raw)?;
    let page = R::list(&s.db, &p.ctx, &f).await?;
    let names = layout.user_names(s, p).await;
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let custom = r.custom().cloned().unwrap_or_default();
            context! { r => r, shown => layout.shown_with(p, &custom, &names),
            editable => can_change(p, module, r.owner(), r.team()) }
        })
        .collect();
    let fv = R::filter_values(&f);
    let cols = columns(p, &layout, spec, &lp.cols);
    let next = page.next_cursor.map(|c| {
        let sep = if lp.query.is_empty() { "" } else { "&" };
        format!(
            "?{}{sep}{}",
            lp.query,
            serde_urlencoded::to_string([("cursor", c)]).unwrap_or_default()
        )
    });
    let (filters, sorts, saved, people) = common(s, p, module, &layout).await?;
    let extras = R::extras(&s.db, &p.ctx).await?;
    // The cell being edited, with the value its input starts from.
    let edit = match &lp.edit {
        Some((id, field)) => {
            let id = Uuid::parse_str(id).map_err(|_| Error::field("edit", "invalid"))?;
            let r: R = record::get(&s.db, &p.ctx, id).await?;
            let values = layout.form_values(&r, p.time_zone);
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
        "records/list.html",
        spec.nav,
        context! {
            kind => spec.kind, module => module, title => R::ENTITY.title(), base => Value::from_safe_string(spec.base.to_owned()), tabs => spec.tabs,
            sort_choices => spec.sorts, codes => spec.codes, auto_sort => spec.auto_sort, text_filters => spec.filters,
            choice_filters => spec.choices.iter().map(|(k, v)| context! { name => k, options => v }).collect::<Vec<_>>(),
            exports => spec.exports, extras => extras,
            rows => rows, next => next, cols => cols, f => fv,
            query => lp.query, filter_query => lp.filter_query, edit => edit, cell_error => p.refusal_from_url(lp.error.as_deref()),
            bulk => lp.bulk.map(|(d, f)| context! { done => d, failed => f }),
            custom_filters => filters, custom_sorts => sorts, views => saved, users => people,
            can_create => p.ctx.can(module, Action::Create).is_some(),
            can_share => p.ctx.can("saved_views", Action::Create) == Some(guanxi_platform::perms::Scope::All),
            can_bulk => p.ctx.can(module, Action::Update).is_some(),
        },
    ))
}

fn can_change(p: &Signed, module: &str, owner: Option<Uuid>, team: Option<Uuid>) -> bool {
    p.ctx
        .can(module, Action::Update)
        .is_some_and(|scope| p.ctx.covers(scope, owner, team))
}

/// The base path of the list of `module` (a saved view's entity), among `lists`.
fn base_of(module: &str) -> Option<&'static str> {
    crate::LISTS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, b)| *b)
}

/// Where to go back to after a list action: the list's own path only (never another site).
/// The query is re-encoded pair by pair, so nothing in it can leave the list's path or break
/// the `Location` header.
fn back_to(base: &str, query: Option<&String>) -> String {
    let q = query.map(|q| q.trim_start_matches('?')).unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}?{q}")
}

fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let sep = if url.ends_with('?') { "" } else { "&" };
    format!(
        "{url}{sep}{}",
        serde_urlencoded::to_string(params).unwrap_or_default()
    )
}

/// `POST {base}/{id}/cell`: one field of one record, from the list.
pub async fn edit_cell<R: Listed>(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let back = back_to(R::SPEC.base, form.get("back"));
    let field = form.get("field").cloned().unwrap_or_default();
    let value = form
        .get("value")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let result = async {
        let layout = layout_of::<R>(&s, &p).await?;
        let mut obj = serde_json::Map::new();
        if field.starts_with("custom.") {
            let one = BTreeMap::from([(field.clone(), value.clone())]);
            let custom = layout
                .custom_input(&one, p.time_zone)
                .ok_or_else(|| Error::field(&field, "unknown_field"))?;
            obj.insert("custom".into(), serde_json::Value::Object(custom));
        } else if R::SPEC.editable.contains(&field.as_str()) {
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
        let input: R::Input = serde_json::from_value(body).map_err(bad)?;
        R::update(&s.db, &p.ctx, id, input).await
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

/// `POST {base}/bulk`: the ticked records, one action.
pub async fn bulk_action<R: Listed>(
    State(s): State<AppState>,
    p: Signed,
    body: String,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let back = back_to(R::SPEC.base, get("back").as_ref());
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
    match bulk::run::<R>(&s.db, &p.ctx, input).await {
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

/// `POST /views`: saves the list's current query under a name.
pub async fn save_view(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let entity = form.get("entity").cloned().unwrap_or_default();
    let base = base_of(&entity).unwrap_or("/");
    let input = SavedViewInput {
        version: None,
        entity: Some(entity),
        name: form.get("name").cloned(),
        query: form.get("query").cloned(),
        shared: Some(form.contains_key("shared")),
    };
    match views::create(&s.db, &p.ctx, input).await {
        Ok(v) => Redirect::to(&back_to(base, Some(&v.query))).into_response(),
        Err(e @ Error::Validation(_)) => {
            let back = back_to(base, form.get("query"));
            let msg = p.refusal_keys(e, Some("views.field."));
            Redirect::to(&with_params(&back, &[("error", &msg)])).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /views/{id}/delete`.
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
        Ok(()) => Redirect::to(base_of(&v.entity).unwrap_or("/")).into_response(),
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
            let to = back_to("/customers/contacts", Some(&evil.to_owned()));
            assert!(to.starts_with("/customers/contacts?"), "{to}");
            assert!(!to.contains('\r') && !to.contains('\n'), "{to}");
            assert!(axum::http::HeaderValue::from_str(&to).is_ok(), "{to}");
        }
        assert_eq!(
            back_to(
                "/customers/accounts",
                Some(&"?q=%E5%BC%A0&col=phone".to_owned())
            ),
            "/customers/accounts?q=%E5%BC%A0&col=phone"
        );
    }
}
