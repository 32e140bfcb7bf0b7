//! A declared entity's form pages — new, create, edit, update — and its trash and restore
//! buttons, once for every entity that implements [`Formed`]: the layout (built-in groups and
//! custom fields) drawn by `records/form.html`, the posted form read back through the same
//! layout, a refusal shown on the form with each field's message, success redirecting to the
//! record's page.

use std::collections::BTreeMap;
use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_platform::db::Db;
use guanxi_platform::error::FieldError;
use guanxi_platform::{Ctx, Error};
use minijinja::{context, Value};
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::layout::form_input;
use crate::records::lists::{layout_of, Listed};
use crate::state::AppState;

pub trait Formed: Listed {
    /// The message naming the new form (`article.new`).
    const NEW: &'static str;
    /// What the edit form's title names the record by.
    fn heading(&self) -> String;
    fn get(db: &Db, ctx: &Ctx, id: Uuid) -> impl Future<Output = Result<Self, Error>> + Send;
    /// Creates the record; its id.
    fn create(
        db: &Db,
        ctx: &Ctx,
        input: Self::Input,
    ) -> impl Future<Output = Result<Uuid, Error>> + Send;
    fn set_deleted(
        db: &Db,
        ctx: &Ctx,
        id: Uuid,
        deleted: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// The new form's values from its query string (defaults, what it starts from). A
    /// `carry` map among them is posted back as hidden inputs.
    fn new_values(p: &Signed, q: &BTreeMap<String, String>) -> Value;
    /// Sets on the input what the form carried beside its fields (`carry`).
    fn carried(_form: &BTreeMap<String, String>, _input: &mut Self::Input) {}
}

fn t(p: &Signed, key: &str) -> String {
    crate::i18n::t(&p.ctx.locale, key)
}

async fn view<R: Formed>(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    action: String,
    title: String,
    values: Value,
    errors: Vec<FieldError>,
) -> Response {
    let (opts, layout) = match (
        crate::customers::pages::options(s, p).await,
        layout_of::<R>(s, p).await,
    ) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "records/form.html",
        R::SPEC.nav,
        context! { sections => layout.sections, values => values, errors => errors,
        action => action, title => title, opts => opts, kind => R::SPEC.kind,
        dupes => Vec::<Value>::new() },
    )
}

/// `GET {base}/new`.
pub async fn new<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let values = R::new_values(&p, &q);
    view::<R>(
        &s,
        &p,
        StatusCode::OK,
        R::SPEC.base.into(),
        t(&p, R::NEW),
        values,
        vec![],
    )
    .await
}

async fn input_of<R: Formed>(
    s: &AppState,
    p: &Signed,
    form: &BTreeMap<String, String>,
) -> Result<R::Input, Error> {
    let layout = layout_of::<R>(s, p).await?;
    let mut form = form.clone();
    layout.fold_choices(&mut form);
    let mut input = form_input::<R::Input>(&layout, p, &form)?;
    R::carried(&form, &mut input);
    Ok(input)
}

/// The form again with the refusal's field messages, or an error page for anything else.
async fn refused<R: Formed>(
    s: &AppState,
    p: &Signed,
    e: Error,
    action: String,
    title: String,
    form: &BTreeMap<String, String>,
) -> Response {
    match p.field_errors(e) {
        Ok(errors) => {
            let carry: BTreeMap<&str, &String> = form
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("carry.").map(|k| (k, v)))
                .collect();
            let mut values = serde_json::to_value(form).unwrap_or_default();
            if let Some(o) = values.as_object_mut() {
                o.insert(
                    "carry".into(),
                    serde_json::to_value(carry).unwrap_or_default(),
                );
            }
            view::<R>(
                s,
                p,
                StatusCode::UNPROCESSABLE_ENTITY,
                action,
                title,
                Value::from_serialize(&values),
                errors,
            )
            .await
        }
        Err(e) => p.error(s, e),
    }
}

/// `POST {base}`.
pub async fn create<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let result = match input_of::<R>(&s, &p, &form).await {
        Ok(input) => R::create(&s.db, &p.ctx, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => Redirect::to(&format!("{}/{id}", R::SPEC.base)).into_response(),
        Err(e) => refused::<R>(&s, &p, e, R::SPEC.base.into(), t(&p, R::NEW), &form).await,
    }
}

/// `GET {base}/{id}/edit`.
pub async fn edit<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
) -> Response {
    let (r, layout) = match (
        R::get(&s.db, &p.ctx, id).await,
        layout_of::<R>(&s, &p).await,
    ) {
        (Ok(r), Ok(l)) => (r, l),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    let title = format!("{} · {}", t(&p, "common.edit"), r.heading());
    let values = layout.form_values(&r, p.time_zone);
    view::<R>(
        &s,
        &p,
        StatusCode::OK,
        format!("{}/{id}/edit", R::SPEC.base),
        title,
        values,
        vec![],
    )
    .await
}

/// `POST {base}/{id}/edit`.
pub async fn update<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let result = match input_of::<R>(&s, &p, &form).await {
        Ok(input) => R::update(&s.db, &p.ctx, id, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to(&format!("{}/{id}", R::SPEC.base)).into_response(),
        Err(e) => {
            let title = t(&p, "common.edit");
            let action = format!("{}/{id}/edit", R::SPEC.base);
            refused::<R>(&s, &p, e, action, title, &form).await
        }
    }
}

async fn trash<R: Formed>(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    form: &BTreeMap<String, String>,
    deleted: bool,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let page = format!("{}/{id}", R::SPEC.base);
    match R::set_deleted(&s.db, &p.ctx, id, deleted).await {
        Ok(()) => Redirect::to(&page).into_response(),
        Err(e @ Error::Validation(_)) => p.refused_to(&page, e, None),
        Err(e) => p.error(s, e),
    }
}

/// `POST {base}/{id}/delete`: to the trash.
pub async fn delete<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    trash::<R>(&s, &p, id, &form, true).await
}

/// `POST {base}/{id}/restore`.
pub async fn restore<R: Formed>(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    trash::<R>(&s, &p, id, &form, false).await
}
