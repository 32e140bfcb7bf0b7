//! Merging duplicate contacts or accounts: one survivor keeps its id; for each field the user
//! picks which record's value it keeps; every activity, order and asset of the others (for
//! accounts also their contacts and child accounts) moves to the survivor; the others go to the
//! trash marked `merged_into`. One transaction, audited as `merge` on the survivor (its
//! timeline shows it) with what was moved, so `unmerge` can put it all back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, Ctx, Db, Error};

use crate::accounts::{self, Account, AccountInput};
use crate::contacts::{self, Contact, ContactInput};
use guanxi_records::custom_fields;
use guanxi_records::record;

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
    "tags",
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
    /// Assets moved from each merged record.
    #[serde(default)]
    pub assets: Vec<(Uuid, Uuid)>,
    /// Contacts moved from each merged account.
    #[serde(default)]
    pub contacts: Vec<(Uuid, Uuid)>,
    /// Child accounts moved from each merged account.
    #[serde(default)]
    pub children: Vec<(Uuid, Uuid)>,
    /// The values the survivor took, each with what it held before: `unmerge` gives them back.
    #[serde(default)]
    pub taken: Vec<Taken>,
}

/// One value the survivor took from a merged record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Taken {
    /// A field name, or `custom.<key>`.
    pub field: String,
    pub from: Uuid,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// A field's value in a record's JSON (`custom.<key>` inside `custom`); absent is null.
fn value_of(v: &serde_json::Value, field: &str) -> serde_json::Value {
    match field.strip_prefix("custom.") {
        Some(key) => v["custom"][key].clone(),
        None => v[field].clone(),
    }
}

/// What the survivor took: every mergeable field (and custom field) whose value the merge
/// changed, with the record it came from (`from_of`; fields no record is named for are skipped).
fn taken_values(
    before: &serde_json::Value,
    after: &serde_json::Value,
    fields: &[&str],
    from_of: impl Fn(&str) -> Option<Uuid>,
) -> Vec<Taken> {
    let mut names: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    for v in [before, after] {
        if let Some(m) = v["custom"].as_object() {
            for k in m.keys() {
                let f = format!("custom.{k}");
                if !names.contains(&f) {
                    names.push(f);
                }
            }
        }
    }
    names
        .into_iter()
        .filter_map(|field| {
            let (b, a) = (value_of(before, &field), value_of(after, &field));
            if b == a {
                return None;
            }
            let from = from_of(&field)?;
            Some(Taken {
                field,
                from,
                before: b,
                after: a,
            })
        })
        .collect()
}

/// The PATCH that gives back what the survivor took from `merged` — each value it still holds
/// as the merge left it (one edited since stays as edited).
fn give_back(
    current: &serde_json::Value,
    taken: &[Taken],
    merged: Uuid,
) -> serde_json::Map<String, serde_json::Value> {
    let mut patch = serde_json::Map::new();
    let mut custom = serde_json::Map::new();
    for t in taken.iter().filter(|t| t.from == merged) {
        if value_of(current, &t.field) != t.after {
            continue;
        }
        match t.field.strip_prefix("custom.") {
            Some(key) => {
                custom.insert(key.to_owned(), t.before.clone());
            }
            None => {
                patch.insert(t.field.clone(), t.before.clone());
            }
        }
    }
    if !custom.is_empty() {
        patch.insert("custom".into(), serde_json::Value::Object(custom));
    }
    patch
}

/// The survivor's own record of an unmerge on its timeline, beside the merge it undoes.
async fn record_unmerge(
    tx: &mut guanxi_platform::db::Tx,
    ctx: &Ctx,
    table: &str,
    survivor: Uuid,
    merged: Uuid,
) -> Result<()> {
    audit::record(
        tx,
        ctx,
        "unmerge",
        table,
        Some(survivor),
        None,
        Some(&serde_json::json!({ "unmerged": merged })),
    )
    .await
}

/// Points `table.column` of every row holding `from` at `to`; returns (row id, `from`) for each,
/// which is what [`move_back`] needs.
async fn move_rows(
    tx: &mut guanxi_platform::db::Tx,
    tenant_id: Uuid,
    table: &str,
    column: &str,
    from: Uuid,
    to: Uuid,
) -> Result<Vec<(Uuid, Uuid)>> {
    let ids: Vec<(Uuid,)> = tx
        .fetch_all(
            &format!("SELECT id FROM {table} WHERE tenant_id = $1 AND {column} = $2"),
            args![tenant_id, from],
        )
        .await?;
    tx.execute(
        &format!(
            "UPDATE {table} SET {column} = $1, updated_at = $2 WHERE tenant_id = $3 AND {column} = $4"
        ),
        args![to, now(), tenant_id, from],
    )
    .await?;
    Ok(ids.into_iter().map(|(id,)| (id, from)).collect())
}

/// Undoes [`move_rows`] for the rows that came from `merged`.
async fn move_back(
    tx: &mut guanxi_platform::db::Tx,
    tenant_id: Uuid,
    table: &str,
    column: &str,
    moved: &[(Uuid, Uuid)],
    merged: Uuid,
) -> Result<()> {
    for (id, from) in moved.iter().filter(|(_, f)| *f == merged) {
        tx.execute(
            &format!(
                "UPDATE {table} SET {column} = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4"
            ),
            args![*from, now(), tenant_id, *id],
        )
        .await?;
    }
    Ok(())
}

pub async fn merge_contacts(
    db: &Db,
    ctx: &Ctx,
    survivor: Uuid,
    input: MergeInput,
) -> Result<Contact> {
    let mut tx = db.begin().await?;
    let (keep, expected, mut errs) =
        begin::<Contact>(&mut tx, ctx, survivor, &input, MERGEABLE).await?;
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
    errs.finish()?;
    // The others let go of their unique values first, so the survivor may take them.
    for o in &others {
        custom_fields::release_unique(&mut tx, ctx.tenant_id, crate::contacts::ENTITY, o.id)
            .await?;
    }
    // The survivor takes the chosen values (validated as any edit).
    let patch = take_values(&others, |o| o.id, &input.take)?;
    let patch: ContactInput = serde_json::from_value(serde_json::Value::Object(patch))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let after = contacts::update_in(&mut tx, ctx, survivor, expected, patch).await?;
    let json = |v: &Contact| serde_json::to_value(v).map_err(|e| Error::Internal(e.into()));
    let taken = taken_values(&json(&keep)?, &json(&after)?, MERGEABLE, |f| {
        input.take.get(f).copied()
    });
    // Move the history, then retire the others.
    let mut moved = MergeRecord {
        survivor,
        merged: others.iter().map(|o| o.id).collect(),
        activities: vec![],
        orders: vec![],
        assets: vec![],
        contacts: vec![],
        children: vec![],
        taken,
    };
    let t = now();
    for o in &others {
        let tid = ctx.tenant_id;
        let moved_acts =
            move_rows(&mut tx, tid, "activities", "contact_id", o.id, survivor).await?;
        moved.activities.extend(moved_acts);
        let moved_orders = move_rows(&mut tx, tid, "orders", "contact_id", o.id, survivor).await?;
        moved.orders.extend(moved_orders);
        let moved_assets = move_rows(&mut tx, tid, "assets", "contact_id", o.id, survivor).await?;
        moved.assets.extend(moved_assets);
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

/// Undoes the merge that retired `merged`: it comes back from the trash with its activities,
/// orders and assets, and the survivor gives back the values it took from it (those not edited
/// since) — merge then unmerge leaves both as they were.
pub async fn unmerge_contact(db: &Db, ctx: &Ctx, merged: Uuid) -> Result<Contact> {
    let mut tx = db.begin().await?;
    let gone: Contact = record::load_for(&mut tx, ctx, merged, Action::Delete).await?;
    let (survivor, record) = merge_record(&mut tx, ctx, "contacts", merged).await?;
    let now_held: Contact = record::load(&mut tx, ctx.tenant_id, survivor).await?;
    let current = serde_json::to_value(&now_held).map_err(|e| Error::Internal(e.into()))?;
    let patch = give_back(&current, &record.taken, merged);
    if !patch.is_empty() {
        let patch: ContactInput = serde_json::from_value(serde_json::Value::Object(patch))
            .map_err(|e| Error::Internal(e.into()))?;
        contacts::update_in(&mut tx, ctx, survivor, now_held.version, patch).await?;
    }
    record_unmerge(&mut tx, ctx, "contacts", survivor, merged).await?;
    let t = now();
    let tid = ctx.tenant_id;
    move_back(
        &mut tx,
        tid,
        "activities",
        "contact_id",
        &record.activities,
        merged,
    )
    .await?;
    move_back(&mut tx, tid, "orders", "contact_id", &record.orders, merged).await?;
    move_back(&mut tx, tid, "assets", "contact_id", &record.assets, merged).await?;
    tx.execute(
        "UPDATE contacts SET deleted_at = NULL, merged_into = NULL, updated_at = $1, updated_by = $2,
             version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, merged],
    )
    .await?;
    let back: Contact = record::load(&mut tx, ctx.tenant_id, merged).await?;
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, crate::contacts::ENTITY).await?;
    let values = back.custom.0.as_object().cloned().unwrap_or_default();
    custom_fields::hold_unique(
        &mut tx,
        ctx.tenant_id,
        crate::contacts::ENTITY,
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

/// The survivor (an unknown one is a 404 whatever the body says; one in the trash a 409), the
/// version the caller read, and the request's ids and field choices checked.
async fn begin<R: record::Record>(
    tx: &mut guanxi_platform::db::Tx,
    ctx: &Ctx,
    survivor: Uuid,
    input: &MergeInput,
    mergeable: &[&str],
) -> Result<(R, i64, Errors)> {
    let keep: R = record::load_for(tx, ctx, survivor, Action::Update).await?;
    if keep.in_trash() {
        return Err(Error::Conflict("the survivor is in the trash".into()));
    }
    let expected = input
        .version
        .ok_or_else(|| Error::field("version", "required"))?;
    let mut errs = Errors::default();
    check_request(&mut errs, survivor, input, mergeable);
    Ok((keep, expected, errs))
}

/// Checks a merge request's ids and field choices.
fn check_request(errs: &mut Errors, survivor: Uuid, input: &MergeInput, mergeable: &[&str]) {
    if input.merge_ids.is_empty() {
        errs.add("merge_ids", "required");
    }
    if input.merge_ids.contains(&survivor) {
        errs.add("merge_ids", "invalid");
    }
    for (field, from) in &input.take {
        if !mergeable.contains(&field.as_str()) && !field.starts_with("custom.") {
            errs.add(&format!("take.{field}"), "unknown_field");
        } else if *from != survivor && !input.merge_ids.contains(from) {
            errs.add(&format!("take.{field}"), "unknown");
        }
    }
}

/// The values the survivor takes from the others, as a PATCH body (custom fields inside
/// `custom`).
fn take_values<R: Serialize>(
    others: &[R],
    id_of: impl Fn(&R) -> Uuid,
    take: &BTreeMap<String, Uuid>,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut patch = serde_json::Map::new();
    let mut custom = serde_json::Map::new();
    for (field, from) in take {
        let Some(src) = others.iter().find(|o| id_of(o) == *from) else {
            continue; // the survivor's own value: nothing to change
        };
        let v = serde_json::to_value(src).map_err(|e| Error::Internal(e.into()))?;
        match field.strip_prefix("custom.") {
            Some(key) => {
                custom.insert(key.to_owned(), v["custom"][key].clone());
            }
            None => {
                patch.insert(field.clone(), v[field.as_str()].clone());
            }
        }
    }
    if !custom.is_empty() {
        patch.insert("custom".into(), serde_json::Value::Object(custom));
    }
    Ok(patch)
}

/// What the merge that retired `merged` moved, read back from the survivor's `merge` event.
async fn merge_record(
    tx: &mut guanxi_platform::db::Tx,
    ctx: &Ctx,
    table: &str,
    merged: Uuid,
) -> Result<(Uuid, MergeRecord)> {
    let into: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            &format!("SELECT merged_into FROM {table} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, merged],
        )
        .await?;
    let Some((Some(survivor),)) = into else {
        return Err(Error::Conflict("this record was not merged".into()));
    };
    let events: Vec<(sqlx::types::Json<serde_json::Value>,)> = tx
        .fetch_all(
            "SELECT after FROM audit_events WHERE tenant_id = $1 AND entity = $2 AND entity_id = $3
                 AND action = 'merge' ORDER BY id DESC",
            args![ctx.tenant_id, table, survivor],
        )
        .await?;
    events
        .into_iter()
        .filter_map(|(j,)| serde_json::from_value::<MergeRecord>(j.0).ok())
        .find(|m| m.merged.contains(&merged))
        .map(|m| (survivor, m))
        .ok_or_else(|| Error::Conflict("the merge record is missing".into()))
}

/// Account fields the survivor may take from another account.
pub const MERGEABLE_ACCOUNT: &[&str] = &[
    "name",
    "parent_id",
    "credit_code",
    "industry",
    "grade",
    "website",
    "email",
    "phone",
    "wechat",
    "province",
    "city",
    "district",
    "address",
    "postal_code",
    "source",
    "description",
    "tags",
];

/// Merges duplicate accounts into `survivor`: their contacts, child accounts, activities,
/// orders and assets move to it. An account cannot be merged into one of its own descendants
/// (merge the other way round).
pub async fn merge_accounts(
    db: &Db,
    ctx: &Ctx,
    survivor: Uuid,
    input: MergeInput,
) -> Result<Account> {
    let mut tx = db.begin().await?;
    let (keep, expected, mut errs) =
        begin::<Account>(&mut tx, ctx, survivor, &input, MERGEABLE_ACCOUNT).await?;
    let ancestors: Vec<(Uuid,)> = tx
        .fetch_all(
            "WITH RECURSIVE up (id, parent_id, depth) AS (
                 SELECT id, parent_id, 0 FROM accounts WHERE tenant_id = $1 AND id = $2
                 UNION ALL
                 SELECT a.id, a.parent_id, up.depth + 1 FROM accounts a
                 JOIN up ON a.tenant_id = $1 AND a.id = up.parent_id WHERE up.depth < 100)
             SELECT id FROM up WHERE id <> $2",
            args![ctx.tenant_id, survivor],
        )
        .await?;
    let mut others = Vec::new();
    for (i, id) in input.merge_ids.iter().enumerate() {
        match record::load_for::<Account>(&mut tx, ctx, *id, Action::Delete).await {
            Ok(_) if ancestors.iter().any(|(a,)| a == id) => {
                errs.add(&format!("merge_ids[{i}]"), "ancestor")
            }
            Ok(a) if a.deleted_at.is_none() => others.push(a),
            Ok(_) => errs.add(&format!("merge_ids[{i}]"), "already_merged"),
            Err(Error::NotFound) => errs.add(&format!("merge_ids[{i}]"), "unknown"),
            Err(e) => return Err(e),
        }
    }
    errs.finish()?;
    // Retire the others first: their credit code and unique values become free to take.
    let t = now();
    let tid = ctx.tenant_id;
    for o in &others {
        custom_fields::release_unique(&mut tx, tid, crate::accounts::ENTITY, o.id).await?;
        tx.execute(
            "UPDATE accounts SET deleted_at = $1, merged_into = $2, updated_at = $1, updated_by = $3,
                 version = version + 1 WHERE tenant_id = $4 AND id = $5",
            args![t, survivor, ctx.user_id, tid, o.id],
        )
        .await?;
    }
    let mut patch = take_values(&others, |o| o.id, &input.take)?;
    // A survivor whose parent was merged away hangs under that one's parent.
    if !input.take.contains_key("parent_id") {
        if let Some(gone) = others.iter().find(|o| Some(o.id) == keep.parent_id) {
            patch.insert("parent_id".into(), serde_json::json!(gone.parent_id));
        }
    }
    let patch: AccountInput = serde_json::from_value(serde_json::Value::Object(patch))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let after = accounts::update_in(&mut tx, ctx, survivor, expected, patch).await?;
    let json = |v: &Account| serde_json::to_value(v).map_err(|e| Error::Internal(e.into()));
    let parent_from = others
        .iter()
        .find(|o| Some(o.id) == keep.parent_id)
        .map(|o| o.id);
    let taken = taken_values(&json(&keep)?, &json(&after)?, MERGEABLE_ACCOUNT, |f| {
        input
            .take
            .get(f)
            .copied()
            .or(if f == "parent_id" { parent_from } else { None })
    });
    let mut moved = MergeRecord {
        survivor,
        merged: others.iter().map(|o| o.id).collect(),
        activities: vec![],
        orders: vec![],
        assets: vec![],
        contacts: vec![],
        children: vec![],
        taken,
    };
    for o in &others {
        let m = &mut moved;
        m.activities
            .extend(move_rows(&mut tx, tid, "activities", "account_id", o.id, survivor).await?);
        m.orders
            .extend(move_rows(&mut tx, tid, "orders", "account_id", o.id, survivor).await?);
        m.assets
            .extend(move_rows(&mut tx, tid, "assets", "account_id", o.id, survivor).await?);
        m.contacts
            .extend(move_rows(&mut tx, tid, "contacts", "account_id", o.id, survivor).await?);
        m.children
            .extend(move_rows(&mut tx, tid, "accounts", "parent_id", o.id, survivor).await?);
        let before = serde_json::to_value(o).map_err(|e| Error::Internal(e.into()))?;
        let after = serde_json::json!({"merged_into": survivor});
        audit::record(
            &mut tx,
            ctx,
            "merged_into",
            "accounts",
            Some(o.id),
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    let before = serde_json::to_value(&keep).map_err(|e| Error::Internal(e.into()))?;
    let record = serde_json::to_value(&moved).map_err(|e| Error::Internal(e.into()))?;
    audit::record(
        &mut tx,
        ctx,
        "merge",
        "accounts",
        Some(survivor),
        Some(&before),
        Some(&record),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Undoes the merge that retired account `merged`: it comes back with its contacts, child
/// accounts, activities, orders and assets. Refused while the survivor holds its credit code.
pub async fn unmerge_account(db: &Db, ctx: &Ctx, merged: Uuid) -> Result<Account> {
    let mut tx = db.begin().await?;
    let gone: Account = record::load_for(&mut tx, ctx, merged, Action::Delete).await?;
    let (survivor, record) = merge_record(&mut tx, ctx, "accounts", merged).await?;
    // The survivor gives back what it took first (a credit code among them).
    let now_held: Account = record::load(&mut tx, ctx.tenant_id, survivor).await?;
    let current = serde_json::to_value(&now_held).map_err(|e| Error::Internal(e.into()))?;
    let mut patch = give_back(&current, &record.taken, merged);
    // Its parent, if that was the merged account, once that one is back (below).
    let parent = patch.remove("parent_id");
    if !patch.is_empty() {
        let patch: AccountInput = serde_json::from_value(serde_json::Value::Object(patch))
            .map_err(|e| Error::Internal(e.into()))?;
        accounts::update_in(&mut tx, ctx, survivor, now_held.version, patch).await?;
    }
    record_unmerge(&mut tx, ctx, "accounts", survivor, merged).await?;
    if let Some(code) = &gone.credit_code {
        let taken: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1 AND credit_code = $2 AND deleted_at IS NULL",
                args![ctx.tenant_id, code.as_str()],
            )
            .await?;
        if taken > 0 {
            return Err(Error::field("credit_code", "taken"));
        }
    }
    let tid = ctx.tenant_id;
    move_back(
        &mut tx,
        tid,
        "activities",
        "account_id",
        &record.activities,
        merged,
    )
    .await?;
    move_back(&mut tx, tid, "orders", "account_id", &record.orders, merged).await?;
    move_back(&mut tx, tid, "assets", "account_id", &record.assets, merged).await?;
    move_back(
        &mut tx,
        tid,
        "contacts",
        "account_id",
        &record.contacts,
        merged,
    )
    .await?;
    move_back(
        &mut tx,
        tid,
        "accounts",
        "parent_id",
        &record.children,
        merged,
    )
    .await?;
    tx.execute(
        "UPDATE accounts SET deleted_at = NULL, merged_into = NULL, updated_at = $1, updated_by = $2,
             version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![now(), ctx.user_id, tid, merged],
    )
    .await?;
    if let Some(parent) = parent {
        let held: Account = record::load(&mut tx, tid, survivor).await?;
        let patch: AccountInput =
            serde_json::from_value(serde_json::json!({ "parent_id": parent }))
                .map_err(|e| Error::Internal(e.into()))?;
        accounts::update_in(&mut tx, ctx, survivor, held.version, patch).await?;
    }
    let back: Account = record::load(&mut tx, tid, merged).await?;
    let defs = custom_fields::active(&mut tx, tid, crate::accounts::ENTITY).await?;
    let values = back.custom.0.as_object().cloned().unwrap_or_default();
    custom_fields::hold_unique(
        &mut tx,
        tid,
        crate::accounts::ENTITY,
        merged,
        &defs,
        &values,
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "unmerge",
        "accounts",
        Some(merged),
        Some(&gone),
        Some(&back),
    )
    .await?;
    tx.commit().await?;
    Ok(back)
}
