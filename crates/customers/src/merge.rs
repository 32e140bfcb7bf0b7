//! Merging duplicate contacts: one survivor keeps its id; for each field the user picks which
//! record's value it keeps; every activity and order of the others moves to the survivor; the
//! others go to the trash marked `merged_into`. One transaction, audited as `merge` on the
//! survivor (its timeline shows it) with what was moved, so `unmerge` can put it all back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, Ctx, Db, Error};

use crate::contacts::{self, Contact, ContactInput};
use crate::custom_fields::{self, Entity};
use crate::record;

/// Fields whose value the survivor may take from another record.
pub const MERGEABLE: &[&str] = &[
    "name",
    "family_name",
    "given_name",
    "account_id",
    "title",
    "department",
    "phone",
    "email",
    "wechat",
    "gender",
    "birthday",
    "province",
    "city",
    "district",
    "address",
    "notes",
];

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The survivor's version you read.
    pub version: Option<i64>,
    /// The contacts merged into the survivor.
    #[serde(default)]
    pub merge_ids: Vec<Uuid>,
    /// field → the id of the record whose value the survivor keeps (default: its own).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub take: BTreeMap<String, Uuid>,
}

/// What a merge moved (kept in its audit event, read back by `unmerge`).
#[derive(Debug, Serialize, Deserialize)]
pub struct MergeRecord {
    pub survivor: Uuid,
    pub merged: Vec<Uuid>,
    /// Activities moved from each merged contact.
    pub activities: Vec<(Uuid, Uuid)>,
    /// Orders moved from each merged contact.
    pub orders: Vec<(Uuid, Uuid)>,
    /// Assets moved from each merged contact.
    #[serde(default)]
    pub assets: Vec<(Uuid, Uuid)>,
}

pub async fn merge_contacts(
    db: &Db,
    ctx: &Ctx,
    survivor: Uuid,
    input: MergeInput,
) -> Result<Contact> {
    let mut tx = db.begin().await?;
    // An unknown survivor is a 404 whatever the body says.
    let keep: Contact = record::load_for(&mut tx, ctx, survivor, Action::Update).await?;
    if keep.deleted_at.is_some() {
        return Err(Error::Conflict("the survivor is in the trash".into()));
    }
    let expected = input
        .version
        .ok_or_else(|| Error::field("version", "required"))?;
    let mut errs = Errors::default();
    if input.merge_ids.is_empty() {
        errs.add("merge_ids", "required");
    }
    if input.merge_ids.contains(&survivor) {
        errs.add("merge_ids", "invalid");
    }
    for f in input.take.keys() {
        if !MERGEABLE.contains(&f.as_str()) && !f.starts_with("custom.") {
            errs.add(&format!("take.{f}"), "unknown_field");
        }
    }
    // The others: this tenant's (another tenant's id is simply not found), live, changeable.
    let mut others = Vec::new();
    for (i, id) in input.merge_ids.iter().enumerate() {
        match record::load_for::<Contact>(&mut tx, ctx, *id, Action::Delete).await {
            Ok(c) if c.deleted_at.is_none() => others.push(c),
            Ok(_) => errs.add(&format!("merge_ids[{i}]"), "already_merged"),
            Err(Error::NotFound) => errs.add(&format!("merge_ids[{i}]"), "unknown"),
            Err(e) => return Err(e),
        }
    }
    for (field, from) in &input.take {
        if *from != survivor && !input.merge_ids.contains(from) {
            errs.add(&format!("take.{field}"), "unknown");
        }
    }
    errs.finish()?;
    // The others let go of their unique values first, so the survivor may take them.
    for o in &others {
        custom_fields::release_unique(&mut tx, ctx.tenant_id, Entity::Contacts, o.id).await?;
    }
    // The survivor takes the chosen values (validated as any edit).
    let mut patch = serde_json::Map::new();
    let mut custom = serde_json::Map::new();
    for (field, from) in &input.take {
        if let Some(src) = others.iter().find(|o| o.id == *from) {
            if let Some(key) = field.strip_prefix("custom.") {
                let v = src.custom.0.get(key).cloned().unwrap_or_default();
                custom.insert(key.to_owned(), v);
                continue;
            }
            let v = serde_json::to_value(src).map_err(|e| Error::Internal(e.into()))?;
            patch.insert(field.clone(), v[field.as_str()].clone());
        }
    }
    if !custom.is_empty() {
        patch.insert("custom".into(), serde_json::Value::Object(custom));
    }
    let patch: ContactInput = serde_json::from_value(serde_json::Value::Object(patch))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let after = contacts::update_in(&mut tx, ctx, survivor, expected, patch).await?;
    // Move the history, then retire the others.
    let mut moved = MergeRecord {
        survivor,
        merged: others.iter().map(|o| o.id).collect(),
        activities: vec![],
        orders: vec![],
        assets: vec![],
    };
    let t = now();
    for o in &others {
        let acts: Vec<(Uuid,)> = tx
            .fetch_all(
                "SELECT id FROM activities WHERE tenant_id = $1 AND contact_id = $2",
                args![ctx.tenant_id, o.id],
            )
            .await?;
        moved.activities.extend(acts.iter().map(|(a,)| (*a, o.id)));
        tx.execute(
            "UPDATE activities SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND contact_id = $4",
            args![survivor, t, ctx.tenant_id, o.id],
        )
        .await?;
        let ords: Vec<(Uuid,)> = tx
            .fetch_all(
                "SELECT id FROM orders WHERE tenant_id = $1 AND contact_id = $2",
                args![ctx.tenant_id, o.id],
            )
            .await?;
        moved.orders.extend(ords.iter().map(|(x,)| (*x, o.id)));
        tx.execute(
            "UPDATE orders SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND contact_id = $4",
            args![survivor, t, ctx.tenant_id, o.id],
        )
        .await?;
        let assets: Vec<(Uuid,)> = tx
            .fetch_all(
                "SELECT id FROM assets WHERE tenant_id = $1 AND contact_id = $2",
                args![ctx.tenant_id, o.id],
            )
            .await?;
        moved.assets.extend(assets.iter().map(|(x,)| (*x, o.id)));
        tx.execute(
            "UPDATE assets SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND contact_id = $4",
            args![survivor, t, ctx.tenant_id, o.id],
        )
        .await?;
        tx.execute(
            "UPDATE contacts SET deleted_at = $1, merged_into = $2, updated_at = $1, updated_by = $3,
                 version = version + 1 WHERE tenant_id = $4 AND id = $5",
            args![t, survivor, ctx.user_id, ctx.tenant_id, o.id],
        )
        .await?;
        let before = serde_json::to_value(o).map_err(|e| Error::Internal(e.into()))?;
        let after = serde_json::json!({"merged_into": survivor});
        audit::record(
            &mut tx,
            ctx,
            "merged_into",
            "contacts",
            Some(o.id),
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    // The survivor as it was, and what the merge moved (what `unmerge` reads back).
    let before = serde_json::to_value(&keep).map_err(|e| Error::Internal(e.into()))?;
    let record = serde_json::to_value(&moved).map_err(|e| Error::Internal(e.into()))?;
    audit::record(
        &mut tx,
        ctx,
        "merge",
        "contacts",
        Some(survivor),
        Some(&before),
        Some(&record),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Undoes the merge that retired `merged`: it comes back from the trash with its activities and
/// orders. (The survivor keeps the values it took; edit it if needed.)
pub async fn unmerge_contact(db: &Db, ctx: &Ctx, merged: Uuid) -> Result<Contact> {
    let mut tx = db.begin().await?;
    let gone: Contact = record::load_for(&mut tx, ctx, merged, Action::Delete).await?;
    let into: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT merged_into FROM contacts WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, merged],
        )
        .await?;
    let Some((Some(survivor),)) = into else {
        return Err(Error::Conflict("this contact was not merged".into()));
    };
    // The merge event on the survivor says what moved.
    let events: Vec<(sqlx::types::Json<serde_json::Value>,)> = tx
        .fetch_all(
            "SELECT after FROM audit_events WHERE tenant_id = $1 AND entity = 'contacts' AND entity_id = $2
                 AND action = 'merge' ORDER BY id DESC",
            args![ctx.tenant_id, survivor],
        )
        .await?;
    let record = events
        .into_iter()
        .filter_map(|(j,)| serde_json::from_value::<MergeRecord>(j.0).ok())
        .find(|m| m.merged.contains(&merged))
        .ok_or_else(|| Error::Conflict("the merge record is missing".into()))?;
    let t = now();
    for (activity, from) in record.activities.iter().filter(|(_, f)| *f == merged) {
        tx.execute(
            "UPDATE activities SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            args![*from, t, ctx.tenant_id, *activity],
        )
        .await?;
    }
    for (order, from) in record.orders.iter().filter(|(_, f)| *f == merged) {
        tx.execute(
            "UPDATE orders SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            args![*from, t, ctx.tenant_id, *order],
        )
        .await?;
    }
    for (asset, from) in record.assets.iter().filter(|(_, f)| *f == merged) {
        tx.execute(
            "UPDATE assets SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            args![*from, t, ctx.tenant_id, *asset],
        )
        .await?;
    }
    tx.execute(
        "UPDATE contacts SET deleted_at = NULL, merged_into = NULL, updated_at = $1, updated_by = $2,
             version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, merged],
    )
    .await?;
    let back: Contact = record::load(&mut tx, ctx.tenant_id, merged).await?;
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, Entity::Contacts).await?;
    let values = back.custom.0.as_object().cloned().unwrap_or_default();
    custom_fields::hold_unique(
        &mut tx,
        ctx.tenant_id,
        Entity::Contacts,
        merged,
        &defs,
        &values,
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "unmerge",
        "contacts",
        Some(merged),
        Some(&gone),
        Some(&back),
    )
    .await?;
    tx.commit().await?;
    Ok(back)
}
