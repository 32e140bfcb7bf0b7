//! `/admin/pipelines`: the sales processes — each pipeline's stages in order with their
//! probability, forecast category and required fields; add, rename, reorder and remove stages
//! (a removed stage's deals are moved to the stage chosen beside it).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_platform::Error;
use guanxi_sales::pipelines::{self, Pipeline, PipelineInput, StageInput, CATEGORIES, REQUIRABLE};
use minijinja::context;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

/// Blank rows a form offers for new stages.
const NEW_ROWS: usize = 3;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/pipelines", get(list).post(create))
        .route("/admin/pipelines/{id}", get(edit).post(update))
}

async fn view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    editing: Option<Pipeline>,
    errors: Vec<FieldError>,
    draft: Option<&PipelineInput>,
) -> Response {
    let all = match pipelines::list(&s.db, &p.ctx).await {
        Ok(a) => a,
        Err(e) => return p.error(s, e),
    };
    let can_edit = p.ctx.can("pipelines", Action::Update).is_some();
    let can_create = p.ctx.can("pipelines", Action::Create).is_some();
    // A refused pipeline comes back as typed.
    let draft = draft.map(|d| {
        let stages: Vec<_> = d
            .stages
            .iter()
            .flatten()
            .map(|s| {
                context! { id => s.id, name => s.name, probability => s.probability,
                category => s.category, required_fields => s.required_fields }
            })
            .collect();
        context! { name => d.name, moves => d.moves, may_reopen => d.may_reopen, stages => stages }
    });
    p.page_status(
        s,
        status,
        "sales/pipelines.html",
        "pipelines",
        context! { pipelines => all, editing => editing, errors => errors, new_rows => NEW_ROWS, draft => draft,
        categories => CATEGORIES, requirable => REQUIRABLE, can_edit => can_edit, can_create => can_create },
    )
}

async fn list(State(s): State<AppState>, p: Signed) -> Response {
    view(&s, &p, StatusCode::OK, None, vec![], None).await
}

async fn edit(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match pipelines::get(&s.db, &p.ctx, id).await {
        Ok(pl) => view(&s, &p, StatusCode::OK, Some(pl), vec![], None).await,
        Err(e) => p.error(&s, e),
    }
}

/// The posted rows as the API's input: `s<i>.*` rows in the order of their `s<i>.position`
/// (blank names skipped; a kept stage ticked `s<i>.remove` is left out, its deals going to
/// `s<i>.remap`).
fn input_of(form: &BTreeMap<String, String>) -> PipelineInput {
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut rows: Vec<(f64, usize, StageInput)> = vec![];
    let mut remap = BTreeMap::new();
    for i in 0..(pipelines::MAX_STAGES + NEW_ROWS) {
        let k = |f: &str| format!("s{i}.{f}");
        let Some(name) = get(&k("name")) else {
            continue;
        };
        let id = get(&k("id")).and_then(|v| Uuid::parse_str(v).ok());
        if let (Some(id), true) = (id, get(&k("remove")).is_some()) {
            if let Some(to) = get(&k("remap")).and_then(|v| Uuid::parse_str(v).ok()) {
                remap.insert(id, to);
            }
            continue;
        }
        let position = get(&k("position"))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(1000.0 + i as f64);
        rows.push((
            position,
            i,
            StageInput {
                id,
                name: name.to_owned(),
                probability: get(&k("probability")).and_then(|v| v.parse().ok()),
                category: get(&k("category")).map(str::to_owned),
                required_fields: REQUIRABLE
                    .iter()
                    .filter(|r| get(&k(&format!("req.{r}"))).is_some())
                    .map(|r| (*r).to_owned())
                    .collect(),
            },
        ));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    PipelineInput {
        version: get("version").and_then(|v| v.parse().ok()),
        name: get("name").map(str::to_owned),
        moves: get("moves").map(str::to_owned),
        may_reopen: Some(get("may_reopen").is_some()),
        is_default: get("is_default").map(|_| true),
        active: None,
        stages: Some(rows.into_iter().map(|(_, _, s)| s).collect()),
        remap,
    }
}

async fn saved(
    s: &AppState,
    p: &Signed,
    r: Result<Pipeline, Error>,
    editing: Option<Pipeline>,
    draft: Option<&PipelineInput>,
) -> Response {
    match r {
        Ok(pl) => Redirect::to(&format!("/admin/pipelines#p-{}", pl.id)).into_response(),
        Err(e @ (Error::Validation(_) | Error::PreconditionFailed { .. })) => {
            match p.field_errors(e) {
                Ok(errors) => {
                    let errors = labelled(p, errors);
                    view(
                        s,
                        p,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        editing,
                        errors,
                        draft,
                    )
                    .await
                }
                Err(e) => p.error(s, e),
            }
        }
        Err(e) => p.error(s, e),
    }
}

/// Refused fields in the reader's words: `stages.2.name` → "Stage 3 · Name", `remap.<id>` →
/// "A removed stage's deals", others by their label.
fn labelled(p: &Signed, errs: Vec<FieldError>) -> Vec<FieldError> {
    let remap = crate::i18n::t(&p.ctx.locale, "pipeline.remap");
    let errs = errs
        .into_iter()
        .map(|mut e| {
            if e.field.starts_with("remap.") {
                e.field = remap.clone();
            }
            e
        })
        .collect();
    crate::problem::with_row_labels(errs, &p.ctx.locale, &[("stages", "pipeline.row")])
}

async fn create(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let input = input_of(&form);
    let r = pipelines::create(&s.db, &p.ctx, input.clone()).await;
    saved(&s, &p, r, None, Some(&input)).await
}

async fn update(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let input = input_of(&form);
    let r = pipelines::update(&s.db, &p.ctx, id, None, input.clone()).await;
    let editing = pipelines::get(&s.db, &p.ctx, id).await.ok();
    saved(&s, &p, r, editing, Some(&input)).await
}
