//! Merging two records side by side: `/customers/{accounts|contacts}/{id}/merge?other=<id>`
//! shows every field where the two differ, the survivor's value chosen unless it is empty;
//! the user picks per field and confirms. The merge itself (and its undo) is
//! `guanxi_customers::merge`, as in the API.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_customers::merge::{self, MergeInput, MERGEABLE, MERGEABLE_ACCOUNT};
use guanxi_customers::{accounts, contacts};
use guanxi_platform::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::layout::Layout;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Other {
    other: Option<Uuid>,
    /// `duplicates` to come back to the duplicates list afterwards.
    back: Option<String>,
}

/// The two records as JSON, for an account or a contact.
async fn pair(
    s: &AppState,
    p: &Signed,
    kind: &str,
    a: Uuid,
    b: Uuid,
) -> Result<(Value, Value), Error> {
    let json = |v: Result<Value, serde_json::Error>| v.map_err(|e| Error::Internal(e.into()));
    if kind == "account" {
        let (x, y) = (
            accounts::get(&s.db, &p.ctx, a).await?,
            accounts::get(&s.db, &p.ctx, b).await?,
        );
        Ok((
            json(serde_json::to_value(x))?,
            json(serde_json::to_value(y))?,
        ))
    } else {
        let (x, y) = (
            contacts::get(&s.db, &p.ctx, a).await?,
            contacts::get(&s.db, &p.ctx, b).await?,
        );
        Ok((
            json(serde_json::to_value(x))?,
            json(serde_json::to_value(y))?,
        ))
    }
}

/// How a built-in value reads on the page.
fn shown(record: &Value, field: &str) -> String {
    let v = match field {
        "account_id" => &record["account_name"],
        "parent_id" => &record["parent_name"],
        f => &record[f],
    };
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" · "),
        other => other.to_string(),
    }
}

/// The fields where the two differ: (name, label, survivor's text, other's text, default
/// choice).
async fn rows(
    s: &AppState,
    p: &Signed,
    kind: &str,
    layout: &Layout,
    keep: &Value,
    other: &Value,
) -> Vec<minijinja::Value> {
    let mergeable = if kind == "account" {
        MERGEABLE_ACCOUNT
    } else {
        MERGEABLE
    };
    let mut out = Vec::new();
    for f in mergeable {
        let (a, b) = (shown(keep, f), shown(other, f));
        if a != b && !b.is_empty() {
            out.push(
                context! { name => f, label => crate::i18n::t(&p.ctx.locale, &format!("field.{f}")),
                keep => a, other => b, take_other => keep[*f].is_null() || a.is_empty() },
            );
        }
    }
    let names = layout.user_names(s, p).await;
    let (ka, kb) = (
        layout.shown_with(p, &keep["custom"], &names),
        layout.shown_with(p, &other["custom"], &names),
    );
    for d in &layout.defs {
        let name = format!("custom.{}", d.key);
        let (a, b) = (
            ka.get(&name).cloned().unwrap_or_default(),
            kb.get(&name).cloned().unwrap_or_default(),
        );
        if a != b && !b.is_empty() {
            out.push(
                context! { name => name, label => d.label_in(&p.ctx.locale), keep => a, other => b,
                take_other => a.is_empty() },
            );
        }
    }
    out
}

pub async fn account_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<Other>,
) -> Response {
    page(s, p, "account", id, q).await
}

pub async fn contact_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<Other>,
) -> Response {
    page(s, p, "contact", id, q).await
}

async fn page(s: AppState, p: Signed, kind: &'static str, id: Uuid, q: Other) -> Response {
    let Some(other) = q.other else {
        return p.error(&s, Error::field("other", "required"));
    };
    let result = async {
        let (keep, them) = pair(&s, &p, kind, id, other).await?;
        let layout = super::pages::customer_layout(&s, &p, kind).await?;
        let rows = rows(&s, &p, kind, &layout, &keep, &them).await;
        Ok::<_, Error>(p.page(
            &s,
            "customers/merge.html",
            "customers",
            context! { kind => kind, keep => keep, other => them, rows => rows, back => q.back },
        ))
    }
    .await;
    result.unwrap_or_else(|e| p.error(&s, e))
}

pub async fn merge_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    submit(s, p, "account", id, form).await
}

pub async fn merge_contact(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    submit(s, p, "contact", id, form).await
}

/// The confirmed merge: each `take.<field>=other` takes the other's value.
async fn submit(
    s: AppState,
    p: Signed,
    kind: &'static str,
    id: Uuid,
    form: BTreeMap<String, String>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let Some(other) = form.get("other_id").and_then(|v| Uuid::parse_str(v).ok()) else {
        return p.error(&s, Error::field("other_id", "required"));
    };
    let take = form
        .iter()
        .filter(|(k, v)| k.starts_with("take.") && v.as_str() == "other")
        .map(|(k, _)| (k["take.".len()..].to_owned(), other))
        .collect();
    let input = MergeInput {
        version: form.get("version").and_then(|v| v.parse().ok()),
        merge_ids: vec![other],
        take,
    };
    let result = if kind == "account" {
        merge::merge_accounts(&s.db, &p.ctx, id, input)
            .await
            .map(|_| ())
    } else {
        merge::merge_contacts(&s.db, &p.ctx, id, input)
            .await
            .map(|_| ())
    };
    let to = if form.get("back").map(String::as_str) == Some("duplicates") {
        "/customers/duplicates".to_owned()
    } else {
        format!("/customers/{kind}s/{id}?notice=merged&undo={other}")
    };
    match result {
        Ok(()) => Redirect::to(&to).into_response(),
        Err(e) => p.error(&s, e),
    }
}
