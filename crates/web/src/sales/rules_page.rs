//! `/admin/lead-rules`: how leads are handled, on one page — assignment rules (in order),
//! scoring rules, the first-response times, the pools and each rep's capacity. Conditions
//! are typed one a line (`province in 广东, 广西`); every change goes through the same service
//! functions as the API.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::perms::Action;
use guanxi_platform::teams;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::Error;
use guanxi_sales::assignment::{self, AssignmentRuleInput, RepInput};
use guanxi_sales::leads::SOURCES;
use guanxi_sales::learned::TrainInput;
use guanxi_sales::pools::{self, PoolInput};
use guanxi_sales::rules;
use guanxi_sales::scoring::{self, ScoringRuleInput};
use guanxi_sales::sla::{self, ResponsePolicy, ON_BREACH};
use minijinja::{context, Value};
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/lead-rules", get(page))
        .route("/admin/lead-rules/assignment", post(add_assignment))
        .route(
            "/admin/lead-rules/assignment/{id}/delete",
            post(delete_assignment),
        )
        .route("/admin/lead-rules/scoring", post(add_scoring))
        .route(
            "/admin/lead-rules/scoring/{id}/toggle",
            post(toggle_scoring),
        )
        .route("/admin/lead-rules/model", post(train_model))
        .route("/admin/lead-rules/model/forget", post(forget_model))
        .route("/admin/lead-rules/sla", post(save_sla))
        .route("/admin/lead-rules/pools", post(add_pool))
        .route("/admin/lead-rules/reps/{id}", post(save_rep))
}

async fn page(State(s): State<AppState>, p: Signed) -> Response {
    view(&s, &p, StatusCode::OK, None, BTreeMap::new()).await
}

async fn view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    error: Option<(String, String)>,
    form: BTreeMap<String, String>,
) -> Response {
    let db = &s.db;
    let ctx = &p.ctx;
    let data = async {
        let assign = assignment::list(db, ctx).await?;
        let scoring = scoring::list(db, ctx).await?;
        let models = guanxi_sales::learned::list(db, ctx).await?.items;
        let sla = sla::policies(db, ctx).await?;
        let pools = pools::list(db, ctx).await?;
        let reps = assignment::reps(db, ctx).await?;
        let teams = teams::list(db, ctx, Some(200), None, None).await?;
        let people = users::list(
            db,
            ctx,
            &UserFilter {
                active: Some(true),
                limit: Some(200),
                ..Default::default()
            },
        )
        .await?;
        Ok::<_, Error>((assign, scoring, models, sla, pools, reps, teams, people))
    }
    .await;
    let (assign, scoring, models, sla, pools, reps, teams, people) = match data {
        Ok(d) => d,
        Err(e) => return p.error(s, e),
    };
    let assign: Vec<Value> = assign
        .iter()
        .map(|r| {
            context! { r => r, conditions => rules::format(&r.conditions.0),
            target_name => people.items.iter().find(|u| Some(u.id) == r.user_id).map(|u| u.name.clone())
                .or_else(|| teams.items.iter().find(|t| Some(t.id) == r.team_id).map(|t| t.name.clone())) }
        })
        .collect();
    let scoring: Vec<Value> = scoring
        .iter()
        .map(|r| context! { r => r, conditions => rules::format(&r.conditions.0) })
        .collect();
    let sla_rows: Vec<Value> = std::iter::once("*")
        .chain(SOURCES.iter().copied())
        .map(|src| {
            let p = sla.iter().find(|x| x.source == src);
            context! { source => src, minutes => p.map(|x| x.minutes), warn => p.map(|x| x.warn_minutes),
            on_breach => p.map(|x| x.on_breach.clone()) }
        })
        .collect();
    // Each model with its team's name and its most telling values (a win likelier or less).
    let models: Vec<Value> = models
        .iter()
        .map(|m| {
            let mut telling: Vec<(String, String, f64)> = m
                .counts
                .iter()
                .flat_map(|(f, values)| {
                    values
                        .iter()
                        .filter(|(_, [w, l])| w + l >= 3)
                        .map(|(v, _)| {
                            let facts = serde_json::json!({ f.as_str(): v });
                            let lift = m.predict(&facts).lifts.first().map_or(1.0, |l| l.ratio);
                            (f.clone(), v.clone(), lift)
                        })
                })
                .collect();
            telling.sort_by(|a, b| b.2.ln().abs().total_cmp(&a.2.ln().abs()));
            telling.truncate(6);
            let telling: Vec<Value> = telling
                .into_iter()
                .map(|(f, v, r)| context! { field => f, value => v, ratio => r })
                .collect();
            context! { m => m, telling => telling,
            team => teams.items.iter().find(|t| Some(t.id) == m.team_id).map(|t| t.name.clone()) }
        })
        .collect();
    let (error_form, error) = error.unzip();
    p.page_status(
        s,
        status,
        "sales/rules.html",
        "lead_rules",
        context! {
            assign => assign, scoring => scoring, models => models, sla => sla_rows, pools => pools, reps => reps,
            teams => teams.items, users => people.items, on_breach => ON_BREACH,
            error => error, error_form => error_form, form => form,
            fields => rules::FIELDS,
            can_assign => p.ctx.can("assignment_rules", Action::Create).is_some(),
            can_score => p.ctx.can("scoring_rules", Action::Create).is_some(),
            can_pool => p.ctx.can("pools", Action::Create).is_some(),
        },
    )
}

fn csrf(p: &Signed, form: &BTreeMap<String, String>) -> bool {
    p.csrf_ok(&form.get("_csrf").cloned())
}

/// Back to the page, or the page again with the refusal under the form that caused it.
async fn done(
    s: &AppState,
    p: &Signed,
    which: &str,
    r: Result<(), Error>,
    form: BTreeMap<String, String>,
) -> Response {
    match r {
        Ok(()) => Redirect::to(&format!("/admin/lead-rules#{which}")).into_response(),
        Err(e @ (Error::Validation(_) | Error::PreconditionFailed { .. })) => {
            let msg = match p.field_errors(e) {
                // Each field by its label in the reader's language where it has one.
                Ok(errs) => errs
                    .iter()
                    .map(|e| {
                        let key = format!("field.{}", e.field);
                        let label = crate::i18n::t(&p.ctx.locale, &key);
                        let label = if label == key { e.field.clone() } else { label };
                        format!("{label}: {}", e.message)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => crate::problem::problem(e, &p.ctx.locale).title,
            };
            view(
                s,
                p,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((which.to_owned(), msg)),
                form,
            )
            .await
        }
        Err(e) => p.error(s, e),
    }
}

fn conditions(form: &BTreeMap<String, String>) -> Result<Vec<rules::Condition>, Error> {
    rules::parse(form.get("conditions").map(String::as_str).unwrap_or(""))
        .map_err(|line| Error::field(&format!("conditions.{line}"), "invalid"))
}

fn text(form: &BTreeMap<String, String>, k: &str) -> Option<String> {
    form.get(k)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An optional whole number typed in a field: blank is `None`; anything else that is not a
/// number is that field's error.
fn typed_number(form: &BTreeMap<String, String>, k: &str) -> Result<Option<i64>, Error> {
    text(form, k)
        .map(|v| v.parse().map_err(|_| Error::field(k, "invalid_number")))
        .transpose()
}

fn number(form: &BTreeMap<String, String>, k: &str) -> Option<i64> {
    text(form, k).and_then(|v| v.parse().ok())
}

async fn add_assignment(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = async {
        let target = text(&form, "target");
        let who = text(&form, "who").and_then(|v| Uuid::parse_str(&v).ok());
        let user = (target.as_deref() == Some("user")).then_some(who);
        let team = (target.as_deref() != Some("user")).then_some(who);
        assignment::create(
            &s.db,
            &p.ctx,
            AssignmentRuleInput {
                name: text(&form, "name"),
                conditions: Some(conditions(&form)?),
                target,
                user_id: user,
                team_id: team,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }
    .await;
    done(&s, &p, "assignment", r, form).await
}

async fn delete_assignment(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = assignment::delete(&s.db, &p.ctx, id).await;
    done(&s, &p, "assignment", r, BTreeMap::new()).await
}

async fn add_scoring(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = async {
        let points = typed_number(&form, "points")?;
        scoring::create(
            &s.db,
            &p.ctx,
            ScoringRuleInput {
                name: text(&form, "name"),
                conditions: Some(conditions(&form)?),
                points,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }
    .await;
    s.jobs_wake.notify_one();
    done(&s, &p, "scoring", r, form).await
}

async fn train_model(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = async {
        let weight = typed_number(&form, "weight")?;
        guanxi_sales::learned::train(&s.db, &p.ctx, TrainInput { weight })
            .await
            .map(|_| ())
    }
    .await;
    s.jobs_wake.notify_one();
    done(&s, &p, "model", r, form).await
}

async fn forget_model(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = guanxi_sales::learned::forget(&s.db, &p.ctx).await;
    s.jobs_wake.notify_one();
    done(&s, &p, "model", r, BTreeMap::new()).await
}

async fn toggle_scoring(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let r = scoring::update(
        &s.db,
        &p.ctx,
        id,
        None,
        ScoringRuleInput {
            version: number(&form, "version"),
            active: Some(form.get("active").is_some_and(|v| v == "true")),
            ..Default::default()
        },
    )
    .await
    .map(|_| ());
    s.jobs_wake.notify_one();
    done(&s, &p, "scoring", r, BTreeMap::new()).await
}

async fn save_sla(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let items: Vec<ResponsePolicy> = std::iter::once("*")
        .chain(SOURCES.iter().copied())
        .filter_map(|src| {
            let minutes = text(&form, &format!("minutes.{src}"))?;
            Some(ResponsePolicy {
                source: src.to_owned(),
                minutes: minutes.parse().unwrap_or(-1),
                warn_minutes: number(&form, &format!("warn.{src}")).unwrap_or(0),
                on_breach: text(&form, &format!("on_breach.{src}"))
                    .unwrap_or_else(|| "notify".into()),
            })
        })
        .collect();
    let r = sla::set_policies(&s.db, &p.ctx, items).await.map(|_| ());
    done(&s, &p, "sla", r, form).await
}

async fn add_pool(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let input = PoolInput {
        name: text(&form, "name"),
        entity: text(&form, "entity"),
        team_id: text(&form, "team_id").and_then(|v| Uuid::parse_str(&v).ok()),
        claim_per_day: Some(number(&form, "claim_per_day")),
        max_held: Some(number(&form, "max_held")),
        reclaim_wait_days: number(&form, "reclaim_wait_days"),
        return_days: Some(number(&form, "return_days")),
        unconverted_days: Some(number(&form, "unconverted_days")),
        ..Default::default()
    };
    let r = pools::create(&s.db, &p.ctx, input).await.map(|_| ());
    done(&s, &p, "pools", r, form).await
}

async fn save_rep(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf(&p, &form) {
        return forbidden_csrf();
    }
    let capacity = match typed_number(&form, "capacity") {
        Ok(c) => c,
        Err(e) => return done(&s, &p, "reps", Err(e), form).await,
    };
    let r = assignment::set_rep(
        &s.db,
        &p.ctx,
        id,
        RepInput {
            capacity: Some(capacity),
            on_leave: Some(form.contains_key("on_leave")),
        },
    )
    .await
    .map(|_| ());
    done(&s, &p, "reps", r, form).await
}
