//! Bulk actions on a list's selected records: assign an owner, add or remove a tag, move to the
//! trash. Each record goes through the same update or trash function as a single edit — the
//! same permission check, validation, version and audit event — so a bulk action can do
//! nothing one could not do record by record. Records that cannot be changed are reported
//! with the reason; the others are changed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::{Ctx, Error};

use crate::record::{self, Record};

/// At most this many records per request.
pub const MAX_IDS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Give the records to `owner_id` (their team follows the owner).
    Assign,
    /// Add `tag`.
    Tag,
    /// Remove `tag`.
    Untag,
    /// Move to the trash.
    Delete,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    pub ids: Vec<Uuid>,
    pub action: BulkAction,
    /// For `assign`.
    pub owner_id: Option<Uuid>,
    /// For `tag` and `untag`.
    pub tag: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: Uuid,
    /// `not_found`, `forbidden`, `conflict`, or `<field>: <code>` for a refused value.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// The records changed.
    pub done: Vec<Uuid>,
    pub failed: Vec<BulkFailure>,
}

fn reason(e: &Error) -> String {
    match e {
        Error::NotFound => "not_found".into(),
        Error::Forbidden => "forbidden".into(),
        Error::Conflict(_) | Error::PreconditionFailed { .. } => "conflict".into(),
        Error::Validation(v) => v
            .iter()
            .map(|f| format!("{}: {}", f.field, f.code))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "error".into(),
    }
}

/// The tags after the action, or `None` when nothing changes.
fn retag(tags: &[String], action: BulkAction, tag: &str) -> Option<Vec<String>> {
    let has = tags.iter().any(|t| t == tag);
    match action {
        BulkAction::Tag if !has => Some(tags.iter().cloned().chain([tag.to_owned()]).collect()),
        BulkAction::Untag if has => Some(tags.iter().filter(|t| *t != tag).cloned().collect()),
        _ => None,
    }
}

/// A record type bulk actions can change: through its own update, with a patch holding the
/// version read and only the owner or the tags.
pub trait Editable: Record + Send + Sync {
    fn version(&self) -> i64;
    fn tags(&self) -> &[String];
    /// The record's own update with a patch of `version` and the new owner or tags.
    fn update_owner_or_tags(
        db: &Db,
        ctx: &Ctx,
        id: Uuid,
        version: i64,
        owner_id: Option<Uuid>,
        tags: Option<Vec<String>>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

pub async fn run<R: Editable>(db: &Db, ctx: &Ctx, input: BulkInput) -> Result<BulkResult> {
    let mut errs = Errors::default();
    if input.ids.is_empty() {
        errs.add("ids", "required");
    } else if input.ids.len() > MAX_IDS {
        errs.add("ids", "too_many");
    }
    let tag = input.tag.as_deref().map(str::trim).unwrap_or_default();
    match input.action {
        BulkAction::Assign if input.owner_id.is_none() => errs.add("owner_id", "required"),
        BulkAction::Tag | BulkAction::Untag if tag.is_empty() => errs.add("tag", "required"),
        BulkAction::Tag if tag.chars().count() > 50 => errs.add("tag", "too_long"),
        _ => {}
    }
    errs.finish()?;
    let mut out = BulkResult {
        done: vec![],
        failed: vec![],
    };
    let mut seen = std::collections::HashSet::new();
    let mut ids = input.ids.clone();
    ids.retain(|id| seen.insert(*id));
    for id in ids {
        match one::<R>(db, ctx, id, &input, tag).await {
            Ok(()) => out.done.push(id),
            Err(e @ Error::Internal(_)) => return Err(e),
            Err(e) => out.failed.push(BulkFailure {
                id,
                reason: reason(&e),
            }),
        }
    }
    Ok(out)
}

async fn one<R: Editable>(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    input: &BulkInput,
    tag: &str,
) -> Result<()> {
    if input.action == BulkAction::Delete {
        return record::set_deleted::<R>(db, ctx, id, true)
            .await
            .map(|_| ());
    }
    let r: R = record::get(db, ctx, id).await?;
    match input.action {
        BulkAction::Assign if r.owner() == input.owner_id => Ok(()),
        BulkAction::Assign => {
            R::update_owner_or_tags(db, ctx, id, r.version(), input.owner_id, None).await
        }
        _ => match retag(r.tags(), input.action, tag) {
            Some(tags) => R::update_owner_or_tags(db, ctx, id, r.version(), None, Some(tags)).await,
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retagging_changes_only_what_it_must() {
        let tags = vec!["VIP".to_owned()];
        assert_eq!(retag(&tags, BulkAction::Tag, "VIP"), None);
        assert_eq!(
            retag(&tags, BulkAction::Tag, "展会"),
            Some(vec!["VIP".to_owned(), "展会".to_owned()])
        );
        assert_eq!(retag(&tags, BulkAction::Untag, "VIP"), Some(vec![]));
        assert_eq!(retag(&tags, BulkAction::Untag, "展会"), None);
    }
}
