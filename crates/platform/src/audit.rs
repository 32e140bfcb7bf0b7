//! The audit log: every mutation writes one event — who, when, what, before and after — in the
//! same transaction as the change, so there is never a change without its record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::args;
use crate::ctx::Ctx;
use crate::db::{Db, Sql, Tx};
use crate::error::Result;
use crate::page::{Page, PageReq};
use crate::perms::{Action, Scope};
use crate::time::{new_id, now};

/// An event's `before`/`after` as stored: always an object (the API promises one) — anything
/// else is kept under `value`. Serialized straight to text: building a `serde_json::Value`
/// first, then printing it, was a tenth of an order import.
fn as_object<T: Serialize>(v: Option<&T>) -> Option<Box<RawValue>> {
    let text = serde_json::to_string(v?).unwrap_or_else(|_| "null".into());
    let text = if text.starts_with('{') {
        text
    } else {
        format!("{{\"value\":{text}}}")
    };
    RawValue::from_string(text).ok()
}

/// Writes one audit event inside `tx`. `before`/`after` are the record's API representation.
pub async fn record<T: Serialize>(
    tx: &mut Tx,
    ctx: &Ctx,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<()> {
    let to_json = as_object::<T>;
    tx.execute(
        "INSERT INTO audit_events (tenant_id, id, at, actor_id, actor_kind, action, entity, entity_id, before, after, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        args![
            ctx.tenant_id,
            new_id(),
            now(),
            ctx.user_id,
            ctx.actor.as_str(),
            action,
            entity,
            entity_id,
            to_json(before),
            to_json(after),
            ctx.request_id.clone()
        ],
    )
    .await?;
    Ok(())
}

/// [`record`] for many records of one kind at once (a bulk write): one event each, written
/// several to a statement, inside `tx`.
pub async fn record_many<T: Serialize>(
    tx: &mut Tx,
    ctx: &Ctx,
    action: &str,
    entity: &str,
    events: &[(Uuid, Option<&T>, Option<&T>)],
) -> Result<()> {
    let to_json = as_object::<T>;
    let at = now();
    for chunk in events.chunks(50) {
        let mut q = Sql::new(
            "INSERT INTO audit_events (tenant_id, id, at, actor_id, actor_kind, action, entity, entity_id, before, after, request_id) VALUES ",
        );
        for (i, (id, before, after)) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind(ctx.tenant_id)
                .push(", ")
                .bind(new_id())
                .push(", ")
                .bind(at);
            q.push(", ")
                .bind(ctx.user_id)
                .push(", ")
                .bind(ctx.actor.as_str());
            q.push(", ")
                .bind(action)
                .push(", ")
                .bind(entity)
                .push(", ")
                .bind(*id);
            q.push(", ")
                .bind(to_json(*before))
                .push(", ")
                .bind(to_json(*after));
            q.push(", ").bind(ctx.request_id.clone()).push(")");
        }
        tx.execute(&q.sql, q.args).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    /// `user`, `api_token` or `system`.
    pub actor_kind: String,
    /// `create`, `update`, `delete`, `restore`, `sign_in`, …
    pub action: String,
    /// The resource, e.g. `users`.
    pub entity: String,
    pub entity_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<sqlx::types::Json<serde_json::Value>>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<sqlx::types::Json<serde_json::Value>>,
    pub request_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    /// Events at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The columns an [`AuditEvent`] reads.
const COLS: &str =
    "id, at, actor_id, actor_kind, action, entity, entity_id, before, after, request_id";

/// Newest first. A manager (team scope) sees events by members of their team.
pub async fn list(db: &Db, ctx: &Ctx, f: &AuditFilter) -> Result<Page<AuditEvent>> {
    let scope = ctx.require("audit", Action::Read)?;
    let mut q = Sql::new(&format!(
        "SELECT {COLS} FROM audit_events WHERE tenant_id = "
    ));
    q.bind(ctx.tenant_id);
    match scope {
        Scope::All => {}
        Scope::Team => {
            q.push(" AND actor_id IN (SELECT id FROM users WHERE tenant_id = ")
                .bind(ctx.tenant_id);
            q.push(" AND (team_id = ")
                .bind(ctx.team_id)
                .push(" OR id = ")
                .bind(ctx.user_id)
                .push("))");
        }
        Scope::Own => {
            q.push(" AND actor_id = ").bind(ctx.user_id);
        }
    }
    if let Some(e) = &f.entity {
        q.push(" AND entity = ").bind(e);
    }
    if let Some(e) = f.entity_id {
        q.push(" AND entity_id = ").bind(e);
    }
    if let Some(a) = f.actor_id {
        q.push(" AND actor_id = ").bind(a);
    }
    if let Some(a) = &f.action {
        q.push(" AND action = ").bind(a);
    }
    if let Some(t) = f.from {
        q.push(" AND at >= ").bind(t);
    }
    if let Some(t) = f.to {
        q.push(" AND at < ").bind(t);
    }
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: None,
    };
    let limit = page.limit()?;
    if let Some(c) = page.cursor_id()? {
        q.push(" AND id < ").bind(c);
    }
    q.push(" ORDER BY id DESC LIMIT ").bind(limit + 1);
    let rows: Vec<AuditEvent> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.to_string()))
}

/// The records of `entities` the signed-in user changed last (their own actions: no audit
/// permission needed), newest first, one entry per record: (entity, id, name, when).
pub async fn changed_by_me(
    db: &Db,
    ctx: &Ctx,
    entities: &[&str],
    limit: usize,
) -> Result<Vec<(String, Uuid, String, DateTime<Utc>)>> {
    let Some(me) = ctx.user_id else {
        return Ok(vec![]);
    };
    let mut q = Sql::new(&format!(
        "SELECT {COLS} FROM audit_events WHERE tenant_id = "
    ));
    q.bind(ctx.tenant_id).push(" AND actor_id = ").bind(me);
    q.push(" AND entity IN ")
        .bind_list(entities.iter().copied())
        .push(" AND entity_id IS NOT NULL ORDER BY id DESC LIMIT ")
        .bind((limit * 5) as i64);
    let events: Vec<AuditEvent> = db.fetch_sql(q).await?;
    let mut out: Vec<(String, Uuid, String, DateTime<Utc>)> = Vec::new();
    for e in events {
        let Some(id) = e.entity_id else { continue };
        if out.iter().any(|(_, seen, _, _)| *seen == id) {
            continue;
        }
        let name = [&e.after, &e.before]
            .into_iter()
            .flatten()
            .find_map(|j| j.0["name"].as_str().map(str::to_owned));
        if let Some(name) = name {
            out.push((e.entity, id, name, e.at));
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod object_tests {
    use super::as_object;
    use serde_json::json;

    fn stored<T: serde::Serialize>(v: Option<&T>) -> Option<serde_json::Value> {
        as_object(v).map(|raw| serde_json::from_str(raw.get()).expect("valid JSON"))
    }

    #[test]
    fn an_event_side_is_always_an_object() {
        assert_eq!(stored(Some(&json!({"a": 1}))), Some(json!({"a": 1})));
        assert_eq!(stored(Some(&vec![1, 2])), Some(json!({"value": [1, 2]})));
        assert_eq!(stored(Some(&"x")), Some(json!({"value": "x"})));
        assert_eq!(
            stored(Some(&"{not an object}")),
            Some(json!({"value": "{not an object}"}))
        );
        assert_eq!(stored::<i32>(None), None);
    }
}
