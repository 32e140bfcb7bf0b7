//! Customer pages: account and contact lists, the 360 pages, create/edit forms and the search
//! page. Forms are described once ([`ACCOUNT_SECTIONS`], [`CONTACT_SECTIONS`]): the profile
//! groups of the record (basic, contact, address, personal, management, evaluation) render the
//! form, the detail page and the field labels of error messages alike. Every page calls the
//! same `guanxi-customers` functions as the API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_customers::accounts::{self, AccountFilter, AccountInput};
use guanxi_customers::activities::{
    self, Activity, ActivityInput, Subject, TaskFilter, TimelineFilter,
};
use guanxi_customers::assets::{self, AssetFilter, AssetInput};
use guanxi_customers::contacts::{self, ContactFilter, ContactInput};
use guanxi_customers::duplicates::{self, Candidate, DuplicateProbe};
use guanxi_customers::import::{DuplicatePolicy, ImportOptions, Target};
use guanxi_customers::orders::{self, LineInput, OrderFilter, OrderInput};
use guanxi_customers::products::{self, ProductFilter, ProductInput};
use guanxi_customers::search::SearchQuery;
use guanxi_customers::transfer::{self, TransferInput, TransferResult};
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::Error;
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::fields_page;
use super::merge_page;
use crate::pages::{forbidden_csrf, opt_uuid, Signed};
use crate::records::layout::{self, f, form_input, req, Layout, Section};
use crate::records::lists;
use crate::state::AppState;
use guanxi_customers::accounts::Account;
use guanxi_customers::contacts::Contact;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/customers",
            get(|| async { Redirect::to("/customers/accounts") }),
        )
        .route(
            "/customers/accounts",
            get(lists::page::<Account>).post(create_account),
        )
        .route("/customers/accounts/new", get(new_account))
        .route("/customers/accounts/{id}", get(account_page))
        .route(
            "/customers/accounts/{id}/edit",
            get(edit_account).post(update_account),
        )
        .route("/customers/accounts/{id}/delete", post(delete_account))
        .route("/customers/accounts/{id}/restore", post(restore_account))
        .route(
            "/customers/contacts",
            get(lists::page::<Contact>).post(create_contact),
        )
        .route(
            "/customers/accounts/bulk",
            post(lists::bulk_action::<Account>),
        )
        .route(
            "/customers/contacts/bulk",
            post(lists::bulk_action::<Contact>),
        )
        .route(
            "/customers/accounts/{id}/cell",
            post(lists::edit_cell::<Account>),
        )
        .route(
            "/customers/contacts/{id}/cell",
            post(lists::edit_cell::<Contact>),
        )
        .route("/views", post(lists::save_view))
        .route("/views/{id}/delete", post(lists::delete_view))
        .route("/customers/contacts/new", get(new_contact))
        .route("/customers/contacts/{id}", get(contact_page))
        .route(
            "/customers/contacts/{id}/edit",
            get(edit_contact).post(update_contact),
        )
        .route("/customers/contacts/{id}/delete", post(delete_contact))
        .route("/customers/contacts/{id}/restore", post(restore_contact))
        .route("/search", get(search_page))
        .route("/customers/activities", post(log_activity))
        .route("/customers/activities/{id}/done", post(complete_task))
        .route(
            "/customers/activities/{id}/edit",
            get(edit_activity_page).post(edit_activity),
        )
        .route("/customers/activities/{id}/delete", post(delete_activity))
        .route("/tasks", get(tasks_page))
        .route("/customers/orders", get(orders_page).post(create_order))
        .route("/customers/orders/new", get(new_order))
        .route("/customers/orders/{id}", get(order_page))
        .route("/customers/assets", post(create_asset))
        .route(
            "/customers/products",
            get(products_page).post(create_product),
        )
        .route("/customers/transfer", get(transfer_page).post(do_transfer))
        .route("/customers/import", get(import_page).post(do_import))
        .route("/customers/imports/{id}", get(super::imports::page))
        .route("/customers/imports/{id}/rerun", post(super::imports::rerun))
        .route(
            "/customers/imports/{id}/errors.csv",
            get(super::imports::error_rows),
        )
        .route(
            "/customers/contacts/{id}/merge",
            get(merge_page::contact_page).post(merge_page::merge_contact),
        )
        .route(
            "/customers/accounts/{id}/merge",
            get(merge_page::account_page).post(merge_page::merge_account),
        )
        .route("/customers/accounts/{id}/unmerge", post(unmerge_account))
        .route("/customers/duplicates", get(duplicates_page))
        .route("/customers/contacts/{id}/unmerge", post(unmerge_contact))
        .route(
            "/admin/custom-fields",
            get(fields_page::page).post(fields_page::create),
        )
        .route("/admin/custom-fields/{id}", post(fields_page::update))
}

/// The layout of an `account` or a `contact` (as in page paths).
pub async fn customer_layout(s: &AppState, p: &Signed, kind: &str) -> Result<Layout, Error> {
    if kind == "account" {
        layout::layout(s, p, guanxi_customers::accounts::ENTITY, ACCOUNT_SECTIONS).await
    } else {
        layout::layout(s, p, guanxi_customers::contacts::ENTITY, CONTACT_SECTIONS).await
    }
}

/// The account's profile groups.
pub const ACCOUNT_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[
            req("name", "text"),
            f("parent_id", "account"),
            f("credit_code", "text"),
            f("industry", "text"),
            f("source", "text"),
        ],
    },
    Section {
        key: "contact",
        fields: &[
            f("phone", "tel"),
            f("email", "email"),
            f("wechat", "text"),
            f("website", "text"),
        ],
    },
    Section {
        key: "address",
        fields: &[
            f("country", "country"),
            f("province", "text"),
            f("city", "text"),
            f("district", "text"),
            f("address", "text"),
            f("postal_code", "text"),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "owner"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[f("grade", "grade"), f("description", "textarea")],
    },
];

/// The contact's profile groups.
pub const CONTACT_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[
            req("name", "text"),
            f("account_id", "account"),
            f("title", "text"),
            f("department", "text"),
            f("family_name", "text"),
            f("given_name", "text"),
        ],
    },
    Section {
        key: "contact",
        fields: &[f("phone", "tel"), f("email", "email"), f("wechat", "text")],
    },
    Section {
        key: "personal",
        fields: &[
            f("gender", "gender"),
            f("birthday", "date"),
            f("country", "country"),
            f("province", "text"),
            f("city", "text"),
            f("district", "text"),
            f("address", "text"),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "owner"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[f("notes", "textarea")],
    },
];

fn csrf_of(form: &BTreeMap<String, String>) -> Option<String> {
    form.get("_csrf").cloned()
}

/// Choices for the form's selects: users who can own records, accounts to link to.
pub(crate) async fn options(s: &AppState, p: &Signed) -> Result<Value, Error> {
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
    let accounts = accounts::list(
        &s.db,
        &p.ctx,
        &AccountFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await?;
    let users: Vec<Value> = people
        .items
        .iter()
        .map(|u| context! { id => u.id, name => u.name })
        .collect();
    let accounts: Vec<Value> = accounts
        .items
        .iter()
        .map(|a| context! { id => a.id, name => a.name })
        .collect();
    Ok(context! { users => users, accounts => accounts })
}

/// Shows the create/edit form with the values to fill in and any errors.
#[allow(clippy::too_many_arguments)]
async fn form_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    kind: &str,
    action: String,
    title: String,
    values: Value,
    errors: Vec<FieldError>,
    error: Option<String>,
    dupes: &[Candidate],
) -> Response {
    let (opts, layout) = match (options(s, p).await, customer_layout(s, p, kind).await) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    let sections = layout.sections;
    p.page_status(
        s,
        status,
        "records/form.html",
        "customers",
        context! { sections => sections, values => values, errors => errors, error => error,
        action => action, title => title, opts => opts, kind => kind, dupes => dupes },
    )
}

fn t(p: &Signed, key: &str) -> String {
    crate::i18n::t(&p.ctx.locale, key)
}

/// What a failed save shows: the form again with the errors (422), the newer version (412),
/// or an error page.
#[allow(clippy::too_many_arguments)]
async fn refused(
    s: &AppState,
    p: &Signed,
    e: Error,
    kind: &str,
    action: String,
    title: String,
    form: BTreeMap<String, String>,
    current: Option<Value>,
) -> Response {
    match e {
        Error::PreconditionFailed { .. } => {
            let msg = crate::problem::problem(e, &p.ctx.locale).title;
            let values = current.unwrap_or_else(|| Value::from_serialize(&form));
            form_view(
                s,
                p,
                StatusCode::PRECONDITION_FAILED,
                kind,
                action,
                title,
                values,
                vec![],
                Some(msg),
                &[],
            )
            .await
        }
        e => match p.field_errors(e) {
            Ok(errors) => {
                form_view(
                    s,
                    p,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    kind,
                    action,
                    title,
                    Value::from_serialize(&form),
                    errors,
                    None,
                    &[],
                )
                .await
            }
            Err(e) => p.error(s, e),
        },
    }
}

// ---- accounts ------------------------------------------------------------------------------

/// `?k=v&…` of the non-empty values.
pub(crate) fn next_link(pairs: &[(&str, Option<&str>)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    format!("?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

#[derive(Deserialize)]
struct Prefill {
    parent_id: Option<String>,
    account_id: Option<String>,
    contact_id: Option<Uuid>,
}

async fn new_account(State(s): State<AppState>, p: Signed, Query(q): Query<Prefill>) -> Response {
    let values = context! { country => "CN", owner_id => p.ctx.user_id, parent_id => q.parent_id };
    let title = t(&p, "customers.new_account");
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "account",
        "/customers/accounts".into(),
        title,
        values,
        vec![],
        None,
        &[],
    )
    .await
}

async fn create_account(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save(&s, &p, "account", None, form).await
}

#[derive(Deserialize, Default)]
struct RecordQuery {
    #[serde(flatten)]
    timeline: TimelineQuery,
    error: Option<String>,
    /// A notice by key (`merged`, `unmerged`), never text.
    notice: Option<String>,
    /// After a merge: the merged record, for an undo button.
    undo: Option<Uuid>,
}

impl RecordQuery {
    /// The notice's words, for the keys this page knows.
    fn notice(&self, p: &Signed) -> Option<String> {
        match self.notice.as_deref() {
            Some(k @ ("merged" | "unmerged")) => Some(t(p, &format!("merge.notice.{k}"))),
            _ => None,
        }
    }
}

async fn account_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<RecordQuery>,
) -> Response {
    let a = match accounts::get(&s.db, &p.ctx, id).await {
        Ok(a) => a,
        Err(e) => return p.error(&s, e),
    };
    let children = accounts::list(
        &s.db,
        &p.ctx,
        &AccountFilter {
            parent_id: Some(id),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await;
    let people = contacts::list(
        &s.db,
        &p.ctx,
        &ContactFilter {
            account_id: Some(id),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await;
    let (children, people) = match (children, people) {
        (Ok(c), Ok(pp)) => (c.items, pp.items),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    let timeline = match timeline_panel(
        &s,
        &p,
        Subject::Account(id),
        &q.timeline,
        a.deleted_at.is_none(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return p.error(&s, e),
    };
    let purchases = match purchases_panel(&s, &p, Subject::Account(id)).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    let owned = match assets_panel(&s, &p, Subject::Account(id)).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    // A visit is noted for the home page; failing to note it never fails the page.
    if let Err(e) = guanxi_platform::recent::viewed(&s.db, &p.ctx, "accounts", id, &a.name).await {
        tracing::warn!(error = %e, "noting a recent view");
    }
    let facts = match activities::facts(&s.db, &p.ctx, Subject::Account(id)).await {
        Ok(f) => f,
        Err(e) => return p.error(&s, e),
    };
    // Likely duplicates of this account, to merge here.
    let dupes = if a.deleted_at.is_none() {
        merge_candidates(
            &s,
            &p,
            DuplicateProbe {
                kind: Some("account".into()),
                name: Some(a.name.clone()),
                phone: a.phone.clone(),
                email: a.email.clone(),
                credit_code: a.credit_code.clone(),
                country: Some(a.country.clone()),
                exclude_id: Some(id),
                ..Default::default()
            },
        )
        .await
    } else {
        vec![]
    };
    let layout = match customer_layout(&s, &p, "account").await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let shown = layout.shown(&s, &p, &a.custom.0).await;
    let place = match crate::sales::pages::account_pool_place(&s, &p, &a).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    // The customer's deals, open ones first (those who may read deals).
    let deals = if p.ctx.can("opportunities", Action::Read).is_some() {
        let f = guanxi_sales::opportunities::OpportunityFilter {
            account_id: Some(id),
            status: Some("open".into()),
            limit: Some(20),
            ..Default::default()
        };
        match guanxi_sales::opportunities::list(&s.db, &p.ctx, &f).await {
            Ok(page) => Some(page.items),
            Err(e) => return p.error(&s, e),
        }
    } else {
        None
    };
    // What the customer was offered, by whom: every quote, the latest first (a manager sees
    // each rep's promises on one page).
    let quotes = if p.ctx.can("quotes", Action::Read).is_some() {
        let f = guanxi_sales::quotes::QuoteFilter {
            account_id: Some(id),
            limit: Some(20),
            ..Default::default()
        };
        match guanxi_sales::quotes::list(&s.db, &p.ctx, &f).await {
            Ok(page) => Some(page.items),
            Err(e) => return p.error(&s, e),
        }
    } else {
        None
    };
    let pressing = crate::service::pages::pressing(&s, &p, Some(id)).await;
    let tickets = crate::service::pages::of_customer(&s, &p, Some(id), None).await;
    let satisfaction = crate::service::pages::satisfaction(&s, &p, Some(id), None).await;
    p.page(&s, "customers/account.html", "customers", context! {
        quotes => quotes, pressing => pressing, tickets => tickets, satisfaction => satisfaction,
        can_add_ticket => p.ctx.can("tickets", Action::Create).is_some(),
        pool => place.pool, waiting_in => place.waiting_in, returns_in_days => place.returns_in_days,
        deals => deals, can_add_deal => p.ctx.can("opportunities", Action::Create).is_some(),
        a => a, sections => layout.sections, shown => shown, children => children, contacts => people,
        timeline => timeline, error => p.refusal_from_url(q.error.as_deref()), notice => q.notice(&p), undo => q.undo, facts => facts, subject => context! { field => "account_id", id => id },
        purchases => purchases, assets => owned, dupes => dupes,
        can_edit => can_change(&p, "accounts", Action::Update, a.owner_id, a.team_id),
        can_delete => can_change(&p, "accounts", Action::Delete, a.owner_id, a.team_id),
        can_add_contact => p.ctx.can("contacts", Action::Create).is_some(),
    })
}

/// Likely duplicates of a record, strong enough (score ≥ 70) and visible enough to merge here.
async fn merge_candidates(s: &AppState, p: &Signed, probe: DuplicateProbe) -> Vec<Candidate> {
    duplicates::find(&s.db, &p.ctx, &probe)
        .await
        .map(|d| {
            d.items
                .into_iter()
                .filter(|x| x.visible && x.score >= 70)
                .collect()
        })
        .unwrap_or_default()
}

fn can_change(
    p: &Signed,
    module: &str,
    action: Action,
    owner: Option<Uuid>,
    team: Option<Uuid>,
) -> bool {
    p.ctx
        .can(module, action)
        .is_some_and(|scope| p.ctx.covers(scope, owner, team))
}

async fn edit_account(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let a = match accounts::get(&s.db, &p.ctx, id).await {
        Ok(a) => a,
        Err(e) => return p.error(&s, e),
    };
    let layout = match customer_layout(&s, &p, "account").await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let action = format!("/customers/accounts/{id}/edit");
    let title = format!("{} · {}", t(&p, "common.edit"), a.name);
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "account",
        action,
        title,
        layout.form_values(&a, p.time_zone),
        vec![],
        None,
        &[],
    )
    .await
}

async fn update_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save(&s, &p, "account", Some(id), form).await
}

async fn delete_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        accounts::set_deleted(&s.db, &p.ctx, id, true).await,
        "/customers/accounts".into(),
    )
}

async fn restore_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        accounts::set_deleted(&s.db, &p.ctx, id, false).await,
        format!("/customers/accounts/{id}"),
    )
}

/// After a one-click change (trash, restore): on to `to`, or the error page.
fn done<T>(s: &AppState, p: &Signed, result: Result<T, Error>, to: String) -> Response {
    match result {
        Ok(_) => Redirect::to(&to).into_response(),
        Err(e) => p.error(s, e),
    }
}

// ---- contacts ------------------------------------------------------------------------------

async fn new_contact(State(s): State<AppState>, p: Signed, Query(q): Query<Prefill>) -> Response {
    let values =
        context! { country => "CN", owner_id => p.ctx.user_id, account_id => q.account_id };
    let title = t(&p, "customers.new_contact");
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "contact",
        "/customers/contacts".into(),
        title,
        values,
        vec![],
        None,
        &[],
    )
    .await
}

async fn create_contact(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save(&s, &p, "contact", None, form).await
}

async fn contact_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<RecordQuery>,
) -> Response {
    let c = match contacts::get(&s.db, &p.ctx, id).await {
        Ok(c) => c,
        Err(e) => return p.error(&s, e),
    };
    let timeline = match timeline_panel(
        &s,
        &p,
        Subject::Contact(id),
        &q.timeline,
        c.deleted_at.is_none(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return p.error(&s, e),
    };
    if let Err(e) = guanxi_platform::recent::viewed(&s.db, &p.ctx, "contacts", id, &c.name).await {
        tracing::warn!(error = %e, "noting a recent view");
    }
    let facts = match activities::facts(&s.db, &p.ctx, Subject::Contact(id)).await {
        Ok(f) => f,
        Err(e) => return p.error(&s, e),
    };
    // Likely duplicates of this contact, to merge here.
    let dupes = if c.deleted_at.is_none() {
        merge_candidates(
            &s,
            &p,
            DuplicateProbe {
                kind: Some("contact".into()),
                name: Some(c.name.clone()),
                phone: c.phone.clone(),
                email: c.email.clone(),
                account_id: c.account_id,
                country: Some(c.country.clone()),
                exclude_id: Some(id),
                ..Default::default()
            },
        )
        .await
    } else {
        vec![]
    };
    let layout = match customer_layout(&s, &p, "contact").await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let shown = layout.shown(&s, &p, &c.custom.0).await;
    let purchases = match purchases_panel(&s, &p, Subject::Contact(id)).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    let owned = match assets_panel(&s, &p, Subject::Contact(id)).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    let tickets = crate::service::pages::of_customer(&s, &p, None, Some(id)).await;
    let satisfaction = crate::service::pages::satisfaction(&s, &p, None, Some(id)).await;
    let portal = crate::service::portal_pages::card(&s, &p, id).await;
    p.page(
        &s,
        "customers/contact.html",
        "customers",
        context! {
            c => c, sections => layout.sections, shown => shown, purchases => purchases, assets => owned, timeline => timeline, error => p.refusal_from_url(q.error.as_deref()), notice => q.notice(&p), undo => q.undo, facts => facts, dupes => dupes,
            subject => context! { field => "contact_id", id => id },
            can_add_ticket => p.ctx.can("tickets", Action::Create).is_some(), tickets => tickets, satisfaction => satisfaction, portal => portal,
            can_edit => can_change(&p, "contacts", Action::Update, Some(c.owner_id), c.team_id),
            can_delete => can_change(&p, "contacts", Action::Delete, Some(c.owner_id), c.team_id),
        },
    )
}

async fn edit_contact(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let c = match contacts::get(&s.db, &p.ctx, id).await {
        Ok(c) => c,
        Err(e) => return p.error(&s, e),
    };
    let layout = match customer_layout(&s, &p, "contact").await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let action = format!("/customers/contacts/{id}/edit");
    let title = format!("{} · {}", t(&p, "common.edit"), c.name);
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "contact",
        action,
        title,
        layout.form_values(&c, p.time_zone),
        vec![],
        None,
        &[],
    )
    .await
}

async fn update_contact(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save(&s, &p, "contact", Some(id), form).await
}

/// Saves a posted account or contact form (a new record when `id` is `None`): on to the
/// record, or the form again with what was refused — on a version conflict, filled with what
/// is stored now, to redo the edit on.
async fn save(
    s: &AppState,
    p: &Signed,
    kind: &'static str,
    id: Option<Uuid>,
    mut form: BTreeMap<String, String>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    let layout = match customer_layout(s, p, kind).await {
        Ok(l) => l,
        Err(e) => return p.error(s, e),
    };
    layout.fold_choices(&mut form);
    let list = format!("/customers/{kind}s");
    let (action, mut title) = match id {
        None => (list.clone(), t(p, &format!("customers.new_{kind}"))),
        Some(id) => (format!("{list}/{id}/edit"), String::new()),
    };
    if let Some(r) = duplicates_first(s, p, kind, id, &action, &title, &form).await {
        return r;
    }
    let (db, ctx) = (&s.db, &p.ctx);
    let result = match (kind, id) {
        ("account", None) => match form_input::<AccountInput>(&layout, p, &form) {
            Ok(i) => accounts::create(db, ctx, i).await.map(|a| a.id),
            Err(e) => Err(e),
        },
        ("account", Some(id)) => match form_input::<AccountInput>(&layout, p, &form) {
            Ok(i) => accounts::update(db, ctx, id, None, i).await.map(|a| a.id),
            Err(e) => Err(e),
        },
        (_, None) => match form_input::<ContactInput>(&layout, p, &form) {
            Ok(i) => contacts::create(db, ctx, i).await.map(|c| c.id),
            Err(e) => Err(e),
        },
        (_, Some(id)) => match form_input::<ContactInput>(&layout, p, &form) {
            Ok(i) => contacts::update(db, ctx, id, None, i).await.map(|c| c.id),
            Err(e) => Err(e),
        },
    };
    let e = match result {
        Ok(id) => return Redirect::to(&format!("{list}/{id}")).into_response(),
        Err(e) => e,
    };
    let current = match (kind, id) {
        (_, None) => None,
        ("account", Some(id)) => accounts::get(db, ctx, id)
            .await
            .ok()
            .map(|a| (a.name.clone(), layout.form_values(&a, p.time_zone))),
        (_, Some(id)) => contacts::get(db, ctx, id)
            .await
            .ok()
            .map(|c| (c.name.clone(), layout.form_values(&c, p.time_zone))),
    };
    if let Some((name, _)) = &current {
        title = name.clone();
    }
    refused(s, p, e, kind, action, title, form, current.map(|c| c.1)).await
}

async fn delete_contact(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        contacts::set_deleted(&s.db, &p.ctx, id, true).await,
        "/customers/contacts".into(),
    )
}

async fn restore_contact(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        contacts::set_deleted(&s.db, &p.ctx, id, false).await,
        format!("/customers/contacts/{id}"),
    )
}

// ---- search --------------------------------------------------------------------------------

async fn search_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<SearchQuery>,
) -> Response {
    let typed = q.q.clone().unwrap_or_default();
    if typed.trim().is_empty() {
        return p.page(
            &s,
            "customers/search.html",
            "customers",
            context! { q => typed, hits => Vec::<Value>::new(), searched => false },
        );
    }
    let found = crate::sales::api::search_everything(
        &s.db,
        &p.ctx,
        &SearchQuery {
            q: q.q,
            limit: Some(20),
        },
    )
    .await;
    match found {
        Ok(r) => p.page(
            &s,
            "customers/search.html",
            "customers",
            context! { q => typed, hits => r.items, searched => true },
        ),
        Err(e) => p.error(&s, e),
    }
}

// ---- timeline and tasks --------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(crate) struct TimelineQuery {
    types: Option<String>,
    cursor: Option<String>,
}

/// The timeline panel of a record's page (`customers/timeline.html`): entries, the "more" link
/// and the log form's choices.
pub(crate) async fn timeline_panel(
    s: &AppState,
    p: &Signed,
    who: Subject,
    q: &TimelineQuery,
    live: bool,
) -> Result<Value, Error> {
    let types = q.types.clone().filter(|t| !t.is_empty());
    let page = activities::timeline(
        &s.db,
        &p.ctx,
        who,
        &TimelineFilter {
            types: types.clone(),
            limit: Some(30),
            cursor: q.cursor.clone(),
        },
    )
    .await?;
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| next_link(&[("types", types.as_deref()), ("cursor", Some(c))]));
    // Nothing is logged against a record in the trash.
    let can_log = live && p.ctx.can("activities", Action::Create).is_some();
    let users = if can_log {
        options(s, p).await?.get_attr("users").unwrap_or_default()
    } else {
        Value::from(())
    };
    let filters: &[&str] = match who {
        Subject::Record(..) => &["call", "email", "meeting", "visit", "note", "task", "touch"],
        _ => &[
            "call", "email", "meeting", "visit", "note", "task", "order", "transfer",
        ],
    };
    // Custom fields an update changed are named by their labels.
    let mut custom_labels = std::collections::BTreeMap::new();
    if let (Subject::Record(entity, _), true) = (
        who,
        page.items
            .iter()
            .any(|e| e.changed.iter().any(|k| k.starts_with("custom."))),
    ) {
        for d in guanxi_records::custom_fields::active_in(&s.db, p.ctx.tenant_id, entity).await? {
            custom_labels.insert(
                format!("custom.{}", d.key),
                d.label_in(&p.ctx.locale).to_owned(),
            );
        }
    }
    Ok(context! {
        entries => page.items, next => next, types => types, can_log => can_log, users => users,
        kinds => activities::KINDS, filters => filters, custom_labels => custom_labels,
    })
}

#[derive(Deserialize)]
pub(crate) struct LogForm {
    pub(crate) _csrf: Option<String>,
    kind: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    account_id: Option<String>,
    contact_id: Option<String>,
    /// `YYYY-MM-DDTHH:MM` in the tenant's time zone.
    due_at: Option<String>,
    remind_at: Option<String>,
    assignee_id: Option<String>,
}

/// A `datetime-local` value read in the tenant's time zone.
fn local_time(
    p: &Signed,
    field: &str,
    raw: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    use chrono::TimeZone;
    let Some(raw) = raw.as_deref().map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let naive = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .map_err(|_| Error::field(field, "invalid_date"))?;
    p.time_zone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .ok_or_else(|| Error::field(field, "invalid_date"))
}

/// What the timeline's log form asks for, read as an [`ActivityInput`] (times in the tenant's
/// time zone; the task fields only for a task).
pub(crate) fn log_input(p: &Signed, f: &LogForm) -> Result<ActivityInput, Error> {
    let account_id = opt_uuid(&f.account_id);
    let contact_id = opt_uuid(&f.contact_id);
    let task = f.kind.as_deref() == Some("task");
    let due_at = local_time(p, "due_at", &f.due_at)?;
    let remind_at = local_time(p, "remind_at", &f.remind_at)?;
    Ok(ActivityInput {
        kind: f.kind.clone(),
        subject: f.subject.clone(),
        body: f.body.clone().map(Some),
        // A contact's page logs against the contact (and so its account).
        account_id: if contact_id.is_some() {
            None
        } else {
            account_id
        },
        contact_id,
        due_at: task.then_some(due_at),
        remind_at: task.then_some(remind_at),
        assignee_id: if task { opt_uuid(&f.assignee_id) } else { None },
        ..Default::default()
    })
}

async fn log_activity(State(s): State<AppState>, p: Signed, Form(f): Form<LogForm>) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let back = customer_page(opt_uuid(&f.contact_id), opt_uuid(&f.account_id));
    let result = match log_input(&p, &f) {
        Ok(input) => activities::create(&s.db, &p.ctx, input).await,
        Err(e) => Err(e),
    };
    logged(&s, &p, result, &back)
}

/// Back to the record's page once an activity is logged, or there with what was wrong.
pub(crate) fn logged(
    s: &AppState,
    p: &Signed,
    result: Result<Activity, Error>,
    back: &str,
) -> Response {
    match result {
        Ok(_) => {
            s.jobs_wake.notify_one();
            Redirect::to(back).into_response()
        }
        Err(e) => match p.field_errors(e) {
            // The form sits on the 360 page: say what is wrong there, in the visitor's language.
            Ok(errors) => {
                let msg = p.refusal_keys(Error::Validation(errors), Some("activity."));
                let query = serde_urlencoded::to_string([("error", msg)]).unwrap_or_default();
                Redirect::to(&format!("{back}?{query}")).into_response()
            }
            Err(e) => p.error(s, e),
        },
    }
}

#[derive(Deserialize)]
struct DoneForm {
    _csrf: Option<String>,
    version: Option<i64>,
    back: Option<String>,
}

async fn complete_task(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<DoneForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let input = ActivityInput {
        version: f.version,
        done: Some(true),
        ..Default::default()
    };
    // Only go back to one of our own pages.
    let back = f
        .back
        .as_deref()
        .and_then(crate::extract::local_path)
        .unwrap_or_else(|| "/tasks".into());
    done(
        &s,
        &p,
        activities::update(&s.db, &p.ctx, id, None, input).await,
        back,
    )
}

/// An instant as a `datetime-local` value in the tenant's time zone.
fn local_value(p: &Signed, t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| {
        t.with_timezone(&p.time_zone)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    })
    .unwrap_or_default()
}

/// The page of a contact, else of an account (where an activity is logged and shown).
fn customer_page(contact: Option<Uuid>, account: Option<Uuid>) -> String {
    match (contact, account) {
        (Some(c), _) => format!("/customers/contacts/{c}"),
        (None, Some(a)) => format!("/customers/accounts/{a}"),
        (None, None) => "/customers/accounts".to_owned(),
    }
}

/// Where an activity is shown: the page of the record it was logged on.
fn activity_home(a: &Activity) -> String {
    let record = a
        .record_type
        .as_deref()
        .and_then(|t| guanxi_records::Entity::parse(crate::ENTITIES, t))
        .zip(a.record_id);
    match record {
        Some((entity, id)) => entity.link(id),
        None => customer_page(a.contact_id, a.account_id),
    }
}

async fn activity_form(
    s: &AppState,
    p: &Signed,
    a: &Activity,
    status: StatusCode,
    errors: Vec<FieldError>,
    values: Option<&EditActivityForm>,
) -> Response {
    let users = match options(s, p).await {
        Ok(o) => o.get_attr("users").unwrap_or_default(),
        Err(e) => return p.error(s, e),
    };
    let v = |field: &str, stored: String| match values {
        Some(f) => f.get(field).unwrap_or_default(),
        None => stored,
    };
    p.page_status(s, status, "customers/activity.html", "tasks", context! {
        a => a, users => users, errors => errors, back => activity_home(a),
        can_edit => activities::may_edit(&p.ctx, a), can_delete => activities::may_delete(&p.ctx, a),
        subject => v("subject", a.subject.clone()), body => v("body", a.body.clone().unwrap_or_default()),
        occurred_at => v("occurred_at", local_value(p, Some(a.occurred_at))),
        due_at => v("due_at", local_value(p, a.due_at)), remind_at => v("remind_at", local_value(p, a.remind_at)),
        assignee_id => v("assignee_id", a.assignee_id.map(|u| u.to_string()).unwrap_or_default()),
    })
}

async fn edit_activity_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
) -> Response {
    match activities::get(&s.db, &p.ctx, id).await {
        Ok(a) => activity_form(&s, &p, &a, StatusCode::OK, vec![], None).await,
        Err(e) => p.error(&s, e),
    }
}

#[derive(Deserialize, Default)]
struct EditActivityForm {
    _csrf: Option<String>,
    version: Option<i64>,
    subject: Option<String>,
    body: Option<String>,
    occurred_at: Option<String>,
    due_at: Option<String>,
    remind_at: Option<String>,
    assignee_id: Option<String>,
    done: Option<String>,
}

impl EditActivityForm {
    fn get(&self, field: &str) -> Option<String> {
        match field {
            "subject" => self.subject.clone(),
            "body" => self.body.clone(),
            "occurred_at" => self.occurred_at.clone(),
            "due_at" => self.due_at.clone(),
            "remind_at" => self.remind_at.clone(),
            "assignee_id" => self.assignee_id.clone(),
            _ => None,
        }
    }
}

/// `POST /customers/activities/{id}/edit`: change, reschedule, reassign, complete or reopen.
async fn edit_activity(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<EditActivityForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let before = match activities::get(&s.db, &p.ctx, id).await {
        Ok(a) => a,
        Err(e) => return p.error(&s, e),
    };
    let task = before.kind == "task";
    let result = async {
        let mut input = ActivityInput {
            version: f.version,
            done: task.then_some(f.done.is_some()),
            ..Default::default()
        };
        if activities::may_edit(&p.ctx, &before) {
            input.subject = f.subject.clone();
            input.body = f
                .body
                .clone()
                .map(|b| Some(b).filter(|b| !b.trim().is_empty()));
            if task {
                input.due_at = Some(local_time(&p, "due_at", &f.due_at)?);
                input.remind_at = Some(local_time(&p, "remind_at", &f.remind_at)?);
                input.assignee_id = opt_uuid(&f.assignee_id);
            } else {
                input.occurred_at = local_time(&p, "occurred_at", &f.occurred_at)?;
            }
        }
        activities::update(&s.db, &p.ctx, id, None, input).await
    }
    .await;
    match result {
        Ok(a) => {
            s.jobs_wake.notify_one();
            Redirect::to(&activity_home(&a)).into_response()
        }
        Err(e @ Error::PreconditionFailed { .. }) => {
            let msg = crate::problem::problem(e, &p.ctx.locale).title;
            let errors = vec![FieldError {
                field: "version".into(),
                code: "stale".into(),
                message: msg,
            }];
            match activities::get(&s.db, &p.ctx, id).await {
                Ok(now) => {
                    activity_form(&s, &p, &now, StatusCode::PRECONDITION_FAILED, errors, None).await
                }
                Err(e) => p.error(&s, e),
            }
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                activity_form(
                    &s,
                    &p,
                    &before,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    Some(&f),
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

async fn delete_activity(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<crate::pages::CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let back = match activities::get(&s.db, &p.ctx, id).await {
        Ok(a) => activity_home(&a),
        Err(e) => return p.error(&s, e),
    };
    done(&s, &p, activities::delete(&s.db, &p.ctx, id).await, back)
}

#[derive(Deserialize)]
struct TasksQuery {
    status: Option<String>,
}

/// The customers module's part of the home page — the user's day: open tasks (overdue, due
/// today, later), reminders that are due, the records they opened and changed last.
pub(crate) async fn home_panels(s: &AppState, p: &Signed) -> Result<Value, Error> {
    use chrono::TimeZone;
    let now = chrono::Utc::now();
    let can_tasks = p.ctx.can("activities", Action::Read).is_some();
    let open = if can_tasks {
        activities::tasks(
            &s.db,
            &p.ctx,
            crate::ENTITIES,
            &TaskFilter {
                status: Some("open".into()),
                limit: Some(200),
                ..Default::default()
            },
        )
        .await?
        .items
    } else {
        vec![]
    };
    // The end of today in the company's time zone.
    let local = now.with_timezone(&p.time_zone).date_naive();
    let end_of_today = local
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| p.time_zone.from_local_datetime(&d).earliest())
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or(now);
    let reminders: Vec<&Activity> = open
        .iter()
        .filter(|k| k.remind_at.is_some_and(|r| r <= now))
        .collect();
    let overdue: Vec<&Activity> = open
        .iter()
        .filter(|k| k.due_at.is_some_and(|d| d < now))
        .collect();
    let today: Vec<&Activity> = open
        .iter()
        .filter(|k| k.due_at.is_some_and(|d| d >= now && d < end_of_today))
        .collect();
    let later: Vec<&Activity> = open
        .iter()
        .filter(|k| k.due_at.is_none_or(|d| d >= end_of_today))
        .take(10)
        .collect();
    let viewed = guanxi_platform::recent::list(&s.db, &p.ctx, 8).await?;
    let changed = guanxi_platform::audit::changed_by_me(
        &s.db,
        &p.ctx,
        &["accounts", "contacts", "leads", "opportunities"],
        8,
    )
    .await?;
    let changed: Vec<Value> = changed
        .into_iter()
        .map(|(entity, id, name, at)| context! { entity => entity, entity_id => id, label => name, at => at })
        .collect();
    // My open deals, the nearest expected close first.
    let deals = match (p.ctx.can("opportunities", Action::Read), p.ctx.user_id) {
        (Some(_), Some(me)) => {
            let f = guanxi_sales::opportunities::OpportunityFilter {
                owner_id: Some(me),
                status: Some("open".into()),
                sort: Some("expected_close".into()),
                limit: Some(8),
                ..Default::default()
            };
            Some(
                guanxi_sales::opportunities::list(&s.db, &p.ctx, &f)
                    .await?
                    .items,
            )
        }
        _ => None,
    };
    Ok(context! {
        can_tasks => can_tasks, reminders => reminders, overdue => overdue, today => today, later => later,
        open_count => open.len(), viewed => viewed, changed => changed, now => now, deals => deals,
        today_date => now.format("%Y-%m-%d").to_string(),
    })
}

async fn tasks_page(State(s): State<AppState>, p: Signed, Query(q): Query<TasksQuery>) -> Response {
    let status = q.status.unwrap_or_else(|| "open".into());
    match activities::tasks(
        &s.db,
        &p.ctx,
        crate::ENTITIES,
        &TaskFilter {
            status: Some(status.clone()),
            ..Default::default()
        },
    )
    .await
    {
        Ok(list) => {
            let now = chrono::Utc::now();
            p.page(
                &s,
                "customers/tasks.html",
                "tasks",
                context! { tasks => list.items, status => status, now => now },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

// ---- orders and products -------------------------------------------------------------------

async fn orders_page(
    State(s): State<AppState>,
    p: Signed,
    Query(f): Query<OrderFilter>,
) -> Response {
    let page = match orders::list(&s.db, &p.ctx, &f).await {
        Ok(pg) => pg,
        Err(e) => return p.error(&s, e),
    };
    let next = page.next_cursor.as_ref().map(|c| {
        next_link(&[
            ("channel", f.channel.as_deref()),
            ("status", f.status.as_deref()),
            ("cursor", Some(c)),
        ])
    });
    p.page(&s, "customers/orders.html", "customers", context! {
        orders => page.items, next => next, channels => orders::CHANNELS, statuses => orders::STATUSES,
        f => context! { channel => f.channel, status => f.status },
        can_create => p.ctx.can("orders", Action::Create).is_some(),
    })
}

async fn order_page(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match orders::get(&s.db, &p.ctx, id).await {
        Ok(o) => p.page(&s, "customers/order.html", "customers", context! { o => o }),
        Err(e) => p.error(&s, e),
    }
}

/// Empty line rows the order form offers.
const ORDER_FORM_LINES: usize = 5;

async fn order_form(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    values: Value,
    errors: Vec<FieldError>,
) -> Response {
    let opts = match options(s, p).await {
        Ok(o) => o,
        Err(e) => return p.error(s, e),
    };
    let catalogue = match products::list(
        &s.db,
        &p.ctx,
        &ProductFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    {
        Ok(pg) => pg.items,
        Err(e) => return p.error(s, e),
    };
    p.page_status(s, status, "customers/order_form.html", "customers", context! {
        values => values, errors => errors, opts => opts, products => catalogue,
        channels => orders::CHANNELS, statuses => orders::STATUSES, rows => (0..ORDER_FORM_LINES).collect::<Vec<_>>(),
    })
}

async fn new_order(State(s): State<AppState>, p: Signed, Query(q): Query<Prefill>) -> Response {
    let now = chrono::Utc::now()
        .with_timezone(&p.time_zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    // From a contact's page: the order is the contact's (and their account's, if any).
    let contact = match q.contact_id {
        Some(id) => match contacts::get(&s.db, &p.ctx, id).await {
            Ok(c) => Some(c),
            Err(e) => return p.error(&s, e),
        },
        None => None,
    };
    let account = contact
        .as_ref()
        .and_then(|c| c.account_id.map(|a| a.to_string()))
        .or(q.account_id);
    let values = context! { account_id => account, channel => "sales", status => "confirmed", ordered_at => now,
    contact_id => contact.as_ref().map(|c| c.id), contact_name => contact.as_ref().map(|c| c.name.clone()) };
    order_form(&s, &p, StatusCode::OK, values, vec![]).await
}

/// The order form as API input: amounts typed in yuan become fen; blank rows are skipped.
fn order_input(p: &Signed, form: &BTreeMap<String, String>) -> Result<OrderInput, Error> {
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let money = |k: &str| -> Result<Option<i64>, Error> {
        match get(k) {
            None => Ok(None),
            Some(v) => crate::money::parse(v)
                .map(Some)
                .ok_or_else(|| Error::field(k, "invalid")),
        }
    };
    let mut lines = Vec::new();
    for i in 0..ORDER_FORM_LINES {
        let product = get(&format!("line{i}_product"));
        let name = get(&format!("line{i}_name"));
        if product.is_none() && name.is_none() {
            continue;
        }
        let quantity = match get(&format!("line{i}_quantity")) {
            None => None,
            Some(q) => Some(q.parse::<i64>().map_err(|_| {
                Error::field(&format!("lines[{}].quantity", lines.len()), "invalid")
            })?),
        };
        lines.push(LineInput {
            product_id: product.and_then(|v| Uuid::parse_str(v).ok()),
            name: name.map(str::to_owned),
            quantity,
            unit_price: money(&format!("line{i}_unit_price"))?,
            discount: money(&format!("line{i}_discount"))?,
            ..Default::default()
        });
    }
    Ok(OrderInput {
        account_id: get("account_id").and_then(|v| Uuid::parse_str(v).ok()),
        contact_id: get("contact_id").and_then(|v| Uuid::parse_str(v).ok()),
        channel: get("channel").map(str::to_owned),
        status: get("status").map(str::to_owned),
        ordered_at: local_time(p, "ordered_at", &get("ordered_at").map(str::to_owned))?,
        notes: get("notes").map(|n| Some(n.to_owned())),
        lines: Some(lines),
        ..Default::default()
    })
}

async fn create_order(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    let result = match order_input(&p, &form) {
        Ok(input) => orders::create(&s.db, &p.ctx, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(o) => Redirect::to(&format!("/customers/orders/{}", o.id)).into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                order_form(
                    &s,
                    &p,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Value::from_serialize(&form),
                    errors,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

async fn products_page(
    State(s): State<AppState>,
    p: Signed,
    Query(f): Query<ProductFilter>,
) -> Response {
    products_view(&s, &p, f, StatusCode::OK, vec![], BTreeMap::new()).await
}

async fn products_view(
    s: &AppState,
    p: &Signed,
    f: ProductFilter,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: BTreeMap<String, String>,
) -> Response {
    let page = match products::list(&s.db, &p.ctx, &f).await {
        Ok(pg) => pg,
        Err(e) => return p.error(s, e),
    };
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| next_link(&[("q", f.q.as_deref()), ("cursor", Some(c))]));
    p.page_status(
        s,
        status,
        "customers/products.html",
        "customers",
        context! {
            products => page.items, next => next, q => f.q, errors => errors, form => form,
            can_create => p.ctx.can("products", Action::Create).is_some(),
        },
    )
}

async fn create_product(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    // Money and a percentage, typed as people write them (`13` or `13.5` % → basis points).
    let read = |k: &str| get(k).map(|v| crate::money::parse(v.trim_end_matches('%')));
    let result = match (read("list_price"), read("tax_rate"), read("cost")) {
        (Some(None), ..) => Err(Error::field("list_price", "invalid")),
        (_, Some(None), _) => Err(Error::field("tax_rate", "invalid")),
        (.., Some(None)) => Err(Error::field("cost", "invalid")),
        (price, tax, cost) => {
            let input = ProductInput {
                sku: Some(get("sku").unwrap_or_default()),
                name: Some(get("name").unwrap_or_default()),
                category: Some(get("category")),
                unit: Some(get("unit")),
                list_price: price.flatten(),
                tax_rate: tax.flatten(),
                cost: Some(cost.flatten()),
                ..Default::default()
            };
            products::create(&s.db, &p.ctx, input).await
        }
    };
    match result {
        Ok(_) => Redirect::to("/customers/products").into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                products_view(
                    &s,
                    &p,
                    ProductFilter::default(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    form,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

/// The account's purchase history panel: totals per currency and the latest orders.
/// A customer's assets panel.
async fn assets_panel(s: &AppState, p: &Signed, of: Subject) -> Result<Value, Error> {
    if p.ctx.can("assets", Action::Read).is_none() {
        return Ok(Value::from(()));
    }
    let (account_id, contact_id) = match of {
        Subject::Account(id) => (Some(id), None),
        Subject::Contact(id) => (None, Some(id)),
        Subject::Record(..) => return Ok(Value::from(())),
    };
    let page = assets::list(
        &s.db,
        &p.ctx,
        &AssetFilter {
            account_id,
            contact_id,
            limit: Some(50),
            ..Default::default()
        },
    )
    .await?;
    Ok(
        context! { items => page.items, more => page.next_cursor.is_some(),
        can_create => p.ctx.can("assets", Action::Create).is_some() },
    )
}

/// `POST /customers/assets`: an asset added from a 360 page.
async fn create_asset(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&form)) {
        return forbidden_csrf();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let id = |k: &str| get(k).and_then(|v| Uuid::parse_str(v).ok());
    let text = |k: &str| get(k).map(|v| Some(v.to_owned()));
    let back = match (id("account_id"), id("contact_id")) {
        (Some(a), _) => format!("/customers/accounts/{a}"),
        (None, Some(c)) => format!("/customers/contacts/{c}"),
        (None, None) => "/customers/accounts".into(),
    };
    let input = AssetInput {
        account_id: id("account_id").map(Some),
        contact_id: id("contact_id").map(Some),
        name: get("name").map(str::to_owned),
        serial: text("serial"),
        kind: get("kind").map(str::to_owned),
        started_on: text("started_on"),
        ends_on: text("ends_on"),
        warranty_until: text("warranty_until"),
        ..Default::default()
    };
    match assets::create(&s.db, &p.ctx, input).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e @ Error::Validation(_)) => {
            let msg = p.refusal_keys(e, Some("assets."));
            let q = serde_urlencoded::to_string([("error", msg)]).unwrap_or_default();
            Redirect::to(&format!("{back}?{q}")).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// A customer's orders panel: totals per currency and the latest orders.
async fn purchases_panel(s: &AppState, p: &Signed, of: Subject) -> Result<Value, Error> {
    if p.ctx.can("orders", Action::Read).is_none() {
        return Ok(Value::from(()));
    }
    let (account, contact) = match of {
        Subject::Account(id) => (Some(id), None),
        Subject::Contact(id) => (None, Some(id)),
        Subject::Record(..) => return Ok(Value::from(())),
    };
    let totals = orders::totals(&s.db, &p.ctx, account, contact).await?;
    let recent = orders::list(
        &s.db,
        &p.ctx,
        &OrderFilter {
            account_id: account,
            contact_id: contact,
            limit: Some(5),
            ..Default::default()
        },
    )
    .await?;
    // What the customer is worth and might buy next (those who see analyses).
    let (value, suggestions, rfm, grades) = if p.ctx.can("analytics", Action::Read).is_some() {
        let (party, id) = match (account, contact) {
            (Some(a), _) => (guanxi_analytics::facts::Party::Accounts, a),
            (_, Some(c)) => (guanxi_analytics::facts::Party::Contacts, c),
            _ => return Ok(Value::from(())),
        };
        let value = guanxi_analytics::clv::latest_for(&s.db, &p.ctx, party, id).await?;
        let q = guanxi_analytics::cross_sell::RecommendationQuery {
            account_id: account,
            contact_id: if account.is_some() { None } else { contact },
            ..Default::default()
        };
        let suggestions = guanxi_analytics::cross_sell::recommend(&s.db, &p.ctx, &q).await?;
        let rfm = guanxi_analytics::rfm::latest_for(&s.db, &p.ctx, party, id).await?;
        let grades = guanxi_analytics::grading_runs::history_for(&s.db, &p.ctx, party, id).await?;
        (value, suggestions.items, rfm, grades)
    } else {
        (None, vec![], None, vec![])
    };
    Ok(
        context! { totals => totals, recent => recent.items, more => recent.next_cursor.is_some(),
        can_create => p.ctx.can("orders", Action::Create).is_some(),
        value => value.map(|(m, v)| context! { model => m, p => v }), suggestions, rfm, grades,
        currency => totals.first().map(|t| t.currency.clone()) },
    )
}

// ---- transfer ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TransferQuery {
    from: Option<String>,
}

async fn transfer_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<TransferQuery>,
) -> Response {
    transfer_view(&s, &p, StatusCode::OK, q.from, vec![], None, vec![]).await
}

async fn transfer_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    from: Option<String>,
    to: Vec<String>,
    result: Option<TransferResult>,
    errors: Vec<FieldError>,
) -> Response {
    let opts = match options(s, p).await {
        Ok(o) => o,
        Err(e) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "customers/transfer.html",
        "customers",
        context! {
            opts => opts, from => from, to => to, result => result, errors => errors,
        },
    )
}

async fn do_transfer(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let from = get("from_user_id");
    let to: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "to_user_ids")
        .map(|(_, v)| v.clone())
        .collect();
    let input = TransferInput {
        from_user_id: opt_uuid(&from),
        to_user_ids: Some(to.iter().filter_map(|v| Uuid::parse_str(v).ok()).collect()),
        dry_run: get("dry_run").is_some(),
    };
    match transfer::transfer(&s.db, &p.ctx, input).await {
        Ok(r) => {
            s.jobs_wake.notify_one();
            transfer_view(&s, &p, StatusCode::OK, from, to, Some(r), vec![]).await
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                transfer_view(
                    &s,
                    &p,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    from,
                    to,
                    None,
                    errors,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

/// Before creating a customer: when likely duplicates exist and the visitor has not yet said
/// "save anyway", the form comes back listing them.
async fn duplicates_first(
    s: &AppState,
    p: &Signed,
    kind: &str,
    id: Option<Uuid>,
    action: &str,
    title: &str,
    form: &BTreeMap<String, String>,
) -> Option<Response> {
    if form.contains_key("confirm_duplicates") {
        return None;
    }
    // An edit is checked on the keys it changes (a new phone or email another record has);
    // keys it leaves as they were are not asked about again.
    let stored: Option<Value> = match (kind, id) {
        (_, None) => None,
        ("account", Some(id)) => accounts::get(&s.db, &p.ctx, id)
            .await
            .ok()
            .map(|a| Value::from_serialize(&a)),
        (_, Some(id)) => contacts::get(&s.db, &p.ctx, id)
            .await
            .ok()
            .map(|c| Value::from_serialize(&c)),
    };
    let get = |k: &str| {
        let v = form.get(k).cloned().filter(|v| !v.trim().is_empty())?;
        match &stored {
            Some(before)
                if before
                    .get_attr(k)
                    .ok()
                    .and_then(|b| b.as_str().map(|b| b.trim() == v.trim()))
                    .unwrap_or(false) =>
            {
                None
            }
            _ => Some(v),
        }
    };
    let probe = DuplicateProbe {
        kind: Some(kind.to_owned()),
        name: get("name"),
        phone: get("phone"),
        email: get("email"),
        credit_code: get("credit_code"),
        account_id: form.get("account_id").and_then(|v| Uuid::parse_str(v).ok()),
        country: form.get("country").cloned(),
        exclude_id: id,
    };
    if probe.name.is_none()
        && probe.phone.is_none()
        && probe.email.is_none()
        && probe.credit_code.is_none()
    {
        return None;
    }
    let found = duplicates::find(&s.db, &p.ctx, &probe).await.ok()?;
    if found.items.is_empty() {
        return None;
    }
    let action = action.to_owned();
    let title = stored
        .as_ref()
        .and_then(|v| v.get_attr("name").ok())
        .and_then(|n| n.as_str().map(str::to_owned))
        .unwrap_or_else(|| title.to_owned());
    Some(
        form_view(
            s,
            p,
            StatusCode::CONFLICT,
            kind,
            action,
            title,
            Value::from_serialize(form),
            vec![],
            None,
            &found.items,
        )
        .await,
    )
}

// ---- import --------------------------------------------------------------------------------

async fn import_page(State(s): State<AppState>, p: Signed) -> Response {
    let runs = guanxi_customers::import_runs::mine(&s.db, &p.ctx)
        .await
        .unwrap_or_default();
    p.page(
        &s,
        "customers/import.html",
        "customers",
        context! { report => (), dry_run => true, policy => "skip", runs => runs },
    )
}

/// The upload: a CSV file, dry run or not, and the duplicate policy. The file's bytes are read
/// into memory (the request size limit bounds them); bigger files go through the CLI.
async fn do_import(
    State(s): State<AppState>,
    p: Signed,
    form: axum::extract::Multipart,
) -> Response {
    // A file over the limit is said so on the page, with what to do instead (it once said
    // only "Error parsing multipart").
    let (fields, mut file) = match crate::extract::Upload::read(form).await {
        Ok(u) => (u.fields, u.file),
        Err((status, code)) => {
            let errors =
                crate::problem::localize(vec![FieldError::new("file", code)], &p.ctx.locale);
            return p.page_status(&s, status, "customers/import.html", "customers",
                context! { report => (), errors => errors, dry_run => true, policy => "skip", target => "contacts" });
        }
    };
    if !p.csrf_ok(&fields.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    // After a dry run the file stays on the server (a `checked` import) and the page refers to
    // it by id, with the mapping the user may change: the real import needs no second upload.
    let mut upload_id: Option<Uuid> = None;
    if file.is_none() {
        if let Some(id) = fields.get("upload_id").and_then(|v| v.parse().ok()) {
            match guanxi_customers::import_runs::checked_file(&s.db, &p.ctx, id).await {
                Ok(stored) => {
                    file = Some((stored.file_name, stored.data));
                    upload_id = Some(id);
                }
                // Imported already (a second click): its page says how far it got.
                Err(Error::NotFound) => {
                    if guanxi_customers::import_runs::get(&s.db, &p.ctx, id)
                        .await
                        .is_ok()
                    {
                        return Redirect::to(&format!("/customers/imports/{id}")).into_response();
                    }
                }
                Err(e) => return p.error(&s, e),
            }
        }
    }
    let target = match fields.get("target").map(String::as_str) {
        Some("accounts") => Target::Accounts,
        Some("orders") => Target::Orders,
        _ => Target::Contacts,
    };
    let target_name = match target {
        Target::Accounts => "accounts",
        Target::Orders => "orders",
        Target::Contacts => "contacts",
    };
    let policy = match fields.get("duplicates").map(String::as_str) {
        Some("update") => DuplicatePolicy::Update,
        Some("create") => DuplicatePolicy::Create,
        _ => DuplicatePolicy::Skip,
    };
    let policy_name = fields
        .get("duplicates")
        .cloned()
        .unwrap_or_else(|| "skip".into());
    let dry_run = fields.contains_key("dry_run");
    let mapping: BTreeMap<String, String> = fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("map.").map(|h| (h.to_owned(), v.clone())))
        .collect();
    let opts = ImportOptions {
        dry_run,
        duplicates: policy,
        labels: crate::customers::api::import_labels(),
        mapping,
    };
    let Some((file_name, bytes)) = file else {
        return p.page_status(&s, StatusCode::UNPROCESSABLE_ENTITY, "customers/import.html", "customers",
            context! { report => (), errors => p.field_errors(Error::field("file", "required")).unwrap_or_default(),
            dry_run => dry_run, policy => policy_name, target => target_name });
    };
    // The fields a column may feed, for the mapping's selects.
    let mut choices: Vec<String> = target.fields().iter().map(|f| (*f).to_owned()).collect();
    // Custom fields by their labels in the reader's language (never `custom.tier`).
    let mut custom_labels: BTreeMap<String, String> = BTreeMap::new();
    if let Some(entity) = match target {
        Target::Contacts => Some(guanxi_customers::contacts::ENTITY),
        Target::Accounts => Some(guanxi_customers::accounts::ENTITY),
        Target::Orders => None,
    } {
        if let Ok(defs) =
            guanxi_records::custom_fields::active_in(&s.db, p.ctx.tenant_id, entity).await
        {
            choices.extend(defs.iter().map(|d| format!("custom.{}", d.key)));
            for d in &defs {
                custom_labels.insert(
                    format!("custom.{}", d.key),
                    d.label_in(&p.ctx.locale).to_owned(),
                );
            }
        }
    }
    // A real import runs in the background; its page shows how far it got.
    if !dry_run {
        let options = super::imports::options_json(&opts);
        let started = match upload_id {
            Some(id) => {
                match guanxi_customers::import_runs::start_checked(
                    &s.db,
                    &p.ctx,
                    id,
                    target,
                    options.clone(),
                )
                .await
                {
                    // Started already (a second submit): its page says how far it got.
                    Err(Error::Conflict(_)) => {
                        return Redirect::to(&format!("/customers/imports/{id}")).into_response()
                    }
                    r => r.map(|()| id),
                }
            }
            None => {
                guanxi_customers::import_runs::start(
                    &s.db,
                    &p.ctx,
                    target,
                    &file_name,
                    options.clone(),
                    bytes.clone(),
                )
                .await
            }
        };
        return match started {
            Ok(id) => {
                let stored = guanxi_customers::import_runs::Stored {
                    target: target_name.to_owned(),
                    file_name,
                    options,
                    data: bytes,
                };
                super::imports::spawn(s.clone(), p.ctx.clone(), id, stored);
                Redirect::to(&format!("/customers/imports/{id}")).into_response()
            }
            Err(e) => p.error(&s, e),
        };
    }
    let format = guanxi_records::tables::Format::of_name(&file_name);
    let result = match guanxi_records::tables::open(format, std::io::Cursor::new(bytes.clone())) {
        Ok(table) => {
            guanxi_customers::import::run(&s.db, &p.ctx, target, table, &opts, |_| {}).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(report) => {
            // Kept for the import that follows (the bytes stay on the server, not in the page).
            let kept = match upload_id {
                Some(id) => Some(id),
                None => guanxi_customers::import_runs::keep_checked(
                    &s.db, &p.ctx, target, &file_name, bytes,
                )
                .await
                .ok(),
            };
            p.page(&s, "customers/import.html", "customers", context! {
                report => report, dry_run => dry_run, policy => policy_name, target => target_name,
                choices => choices, custom_labels => custom_labels, file_name => file_name, upload_id => kept })
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => p.page_status(&s, StatusCode::UNPROCESSABLE_ENTITY, "customers/import.html", "customers",
                context! { report => (), errors => errors, dry_run => dry_run, policy => policy_name, target => target_name }),
            Err(e) => p.error(&s, e),
        },
    }
}

async fn unmerge_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&f)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        guanxi_customers::merge::unmerge_account(&s.db, &p.ctx, id).await,
        format!("/customers/accounts/{id}?notice=unmerged"),
    )
}

async fn unmerge_contact(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&csrf_of(&f)) {
        return forbidden_csrf();
    }
    done(
        &s,
        &p,
        guanxi_customers::merge::unmerge_contact(&s.db, &p.ctx, id).await,
        format!("/customers/contacts/{id}?notice=unmerged"),
    )
}

async fn duplicates_page(State(s): State<AppState>, p: Signed) -> Response {
    match duplicates::contact_pairs(&s.db, &p.ctx).await {
        Ok(pairs) => p.page(
            &s,
            "customers/duplicates.html",
            "customers",
            context! { pairs => pairs.items },
        ),
        Err(e) => p.error(&s, e),
    }
}
