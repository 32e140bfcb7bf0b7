//! Conversion: a lead becomes a customer — an account (for its company) and a contact — in one
//! transaction. An existing customer is linked, never created twice: the account is the one
//! asked for, else a live account of the same name; the contact the one asked for, else a
//! live contact with the lead's phone or email, else one of the same name at that account.
//! The lead's touches are copied onto the contact's timeline, the activities logged on it
//! (calls, visits, tasks) become the contact's and its account's as well, the lead is marked converted
//! (and stays readable, no longer editable), and converting again — or twice at once —
//! answers the first conversion.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_customers::accounts::{self, Account, AccountInput};
use guanxi_customers::contacts::{self, Contact, ContactInput};
use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, keylock, version, Ctx, Error};
use guanxi_records::record;

use crate::leads::Lead;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertInput {
    /// The lead's version as read; a conversion of a lead changed since is refused (412).
    pub version: Option<i64>,
    /// Link this existing account instead of finding or creating one.
    pub account_id: Option<Uuid>,
    /// Link this existing contact instead of finding or creating one.
    pub contact_id: Option<Uuid>,
    /// `false` converts into a contact alone, even when the lead names a company.
    pub create_account: Option<bool>,
    /// The first deal, for the account (its `account_id` and `contact_id` are the
    /// conversion's; `name` defaults to the company and the product of interest; the owner to
    /// the lead's).
    pub opportunity: Option<crate::opportunities::OpportunityInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Conversion {
    pub lead: Lead,
    pub account_id: Option<Uuid>,
    pub contact_id: Uuid,
    /// Whether this conversion created the account (else it linked an existing one).
    pub account_created: bool,
    pub contact_created: bool,
    /// The deal the conversion opened (asked for with `opportunity`).
    pub opportunity_id: Option<Uuid>,
}

pub async fn convert(db: &Db, ctx: &Ctx, id: Uuid, input: ConvertInput) -> Result<Conversion> {
    ctx.require("leads", Action::Update)?;
    let mut tx = db.begin().await?;
    // Two conversions of one lead at once: the second waits here, then reads the first's.
    keylock::hold(&mut tx, ctx.tenant_id, &[format!("convert:{id}")], now()).await?;
    let lead: Lead = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if lead.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the lead is in the trash; restore it first".into(),
        ));
    }
    if let Some(contact_id) = lead.converted_contact_id {
        let opened: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM opportunities WHERE tenant_id = $1 AND lead_id = $2",
                args![ctx.tenant_id, id],
            )
            .await?;
        let done = Conversion {
            account_id: lead.converted_account_id,
            contact_id,
            account_created: false,
            contact_created: false,
            opportunity_id: opened.map(|(o,)| o),
            lead,
        };
        return Ok(done);
    }
    if let Some(v) = input.version {
        version::check(v, lead.version)?;
    }
    let owner = lead.owner_id.or(ctx.user_id);
    let (account_id, account_created) = account(&mut tx, ctx, &lead, &input, owner).await?;
    let (contact_id, contact_created) =
        contact(&mut tx, ctx, &lead, &input, account_id, owner).await?;
    let t = now();
    version::update(
        &mut tx,
        version::Row {
            table: "leads",
            tenant_id: ctx.tenant_id,
            id,
        },
        lead.version,
        "status = 'converted', converted_account_id = $1, converted_contact_id = $2,
             converted_at = $3, disqualify_reason = NULL, updated_at = $4, updated_by = $5,
             responded_at = COALESCE(responded_at, $3)",
        args![account_id, contact_id, t, t, ctx.user_id],
    )
    .await?;
    copy_touches(&mut tx, ctx, id, contact_id).await?;
    let opportunity_id = match (input.opportunity, account_id) {
        (None, _) => None,
        (Some(_), None) => return Err(Error::field("opportunity", "needs_account")),
        (Some(mut o), Some(account)) => {
            o.account_id = Some(account);
            o.contact_id = Some(Some(contact_id));
            o.owner_id = o.owner_id.or(owner);
            if o.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                let name = [lead.company.as_deref(), lead.product_interest.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ");
                o.name = Some(if name.is_empty() {
                    lead.name.clone()
                } else {
                    name
                });
            }
            let d = crate::opportunities::create_in(&mut tx, ctx, o, Some(id)).await?;
            Some(d.id)
        }
    };
    // The calls, visits and tasks logged on the lead are the customer's too now.
    tx.execute(
        "UPDATE activities SET contact_id = $1, account_id =
             (SELECT c.account_id FROM contacts c WHERE c.tenant_id = $2 AND c.id = $1)
         WHERE tenant_id = $2 AND record_type = 'leads' AND record_id = $3",
        args![contact_id, ctx.tenant_id, id],
    )
    .await?;
    let after: Lead = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "convert",
        "leads",
        Some(id),
        Some(&lead),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(Conversion {
        lead: after,
        account_id,
        contact_id,
        account_created,
        contact_created,
        opportunity_id,
    })
}

/// The account: the one asked for, else a live one named as the lead's company, else a new
/// one (unless asked not to, or the lead names no company).
async fn account(
    tx: &mut Tx,
    ctx: &Ctx,
    lead: &Lead,
    input: &ConvertInput,
    owner: Option<Uuid>,
) -> Result<(Option<Uuid>, bool)> {
    if let Some(a) = input.account_id {
        let a: Account = record::get(&mut *tx, ctx, a)
            .await
            .map_err(|_| Error::field("account_id", "unknown"))?;
        if a.deleted_at.is_some() {
            return Err(Error::field("account_id", "unknown"));
        }
        return Ok((Some(a.id), false));
    }
    let Some(company) = lead.company.as_deref() else {
        return Ok((None, false));
    };
    if input.create_account == Some(false) {
        return Ok((None, false));
    }
    let existing: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM accounts WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL
             ORDER BY id LIMIT 1",
            args![ctx.tenant_id, company],
        )
        .await?;
    if let Some((id,)) = existing {
        return Ok((Some(id), false));
    }
    let a = accounts::create_in(
        tx,
        ctx,
        AccountInput {
            name: Some(company.to_owned()),
            industry: Some(lead.industry.clone()),
            country: Some(lead.country.clone()),
            province: Some(lead.province.clone()),
            city: Some(lead.city.clone()),
            source: Some(Some(lead.source.clone())),
            owner_id: owner,
            ..Default::default()
        },
    )
    .await?;
    Ok((Some(a.id), true))
}

/// The contact: the one asked for, else a live one with the lead's phone or email, else one
/// of the same name at the account, else a new one.
async fn contact(
    tx: &mut Tx,
    ctx: &Ctx,
    lead: &Lead,
    input: &ConvertInput,
    account_id: Option<Uuid>,
    owner: Option<Uuid>,
) -> Result<(Uuid, bool)> {
    if let Some(c) = input.contact_id {
        let c: Contact = record::get(&mut *tx, ctx, c)
            .await
            .map_err(|_| Error::field("contact_id", "unknown"))?;
        if c.deleted_at.is_some() {
            return Err(Error::field("contact_id", "unknown"));
        }
        return Ok((c.id, false));
    }
    let existing: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND deleted_at IS NULL
               AND (phone_e164 = $2 OR email = $3 OR (name = $4 AND account_id = $5))
             ORDER BY id LIMIT 1",
            args![
                ctx.tenant_id,
                lead.phone_e164.clone(),
                lead.email.clone(),
                lead.name.as_str(),
                account_id
            ],
        )
        .await?;
    if let Some((id,)) = existing {
        return Ok((id, false));
    }
    let c = contacts::create_in(
        tx,
        ctx,
        ContactInput {
            name: Some(lead.name.clone()),
            account_id: Some(account_id),
            title: Some(lead.title.clone()),
            phone: Some(lead.phone.clone()),
            email: Some(lead.email.clone()),
            wechat: Some(lead.wechat.clone()),
            country: Some(lead.country.clone()),
            province: Some(lead.province.clone()),
            city: Some(lead.city.clone()),
            notes: Some(lead.notes.clone()),
            owner_id: owner,
            ..Default::default()
        },
    )
    .await?;
    Ok((c.id, true))
}

/// The lead's touches, on the contact's timeline too (each noting the lead it came through).
async fn copy_touches(tx: &mut Tx, ctx: &Ctx, lead: Uuid, contact: Uuid) -> Result<()> {
    let touches: Vec<(Option<sqlx::types::Json<serde_json::Value>>,)> = tx
        .fetch_all(
            "SELECT after FROM audit_events
             WHERE tenant_id = $1 AND entity = 'leads' AND entity_id = $2 AND action = 'touch'
             ORDER BY at, id LIMIT 1000",
            args![ctx.tenant_id, lead],
        )
        .await?;
    let events: Vec<serde_json::Value> = touches
        .into_iter()
        .map(|(after,)| {
            let mut v = after.map(|j| j.0).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("lead_id".into(), serde_json::json!(lead));
            }
            v
        })
        .collect();
    let rows: Vec<(Uuid, Option<&serde_json::Value>, Option<&serde_json::Value>)> =
        events.iter().map(|v| (contact, None, Some(v))).collect();
    audit::record_many(tx, ctx, "touch", "contacts", &rows).await
}
