//! Duplicate-proof intake: every way a person arrives — a form, an import row, the API, a
//! campaign, a lead entered by hand — goes through [`intake`]. A person already known (a
//! contact by phone or email; a live, unconverted lead by phone, email or name at the same
//! company) is not entered again: the arrival is recorded on that record as a `touch` (what
//! was sent, from where), visible on its timeline, and the known record is answered. Only a
//! stranger becomes a new lead.
//!
//! Under concurrency: the person's keys (phone, email, name at company) are held with
//! [`keylock::hold`] before matching, so two arrivals of one person — twenty identical posts
//! at once, an import beside a form — are matched one after the other on both databases,
//! and the second finds the first's lead. The arrival's fingerprint (source and the
//! normalised fields) noted with [`keylock::hold_noting`] makes a repeat within
//! [`REPEAT_WINDOW`] (a double submit, a client's retry) change nothing at all.

use chrono::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, keylock, notifications, Ctx};
use guanxi_records::record;
use guanxi_records::record::Lookups;

use crate::assignment;
use crate::leads::{self, Fields, Lead, LeadInput};

/// A repeat of the same arrival within this window is the same arrival.
pub const REPEAT_WINDOW: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new lead.
    Created,
    /// A known person: the arrival was recorded on their record.
    Matched,
    /// The same arrival again within the window: nothing changed.
    Repeated,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeResult {
    pub outcome: Outcome,
    /// `leads` or `contacts`: the record the person is.
    pub entity: String,
    pub id: Uuid,
    /// What identified a known person: `phone`, `email`, `name_company`.
    pub matched_on: Vec<String>,
    /// The lead, when the person is one and the caller may read it.
    pub lead: Option<Lead>,
}

/// Where an arrival came from, for the record it lands on.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    /// `form`, `import`, `api`, `manual` or `campaign`.
    pub source: String,
    /// The form, file or campaign.
    pub detail: Option<String>,
    /// Anything else worth keeping with the touch (consent, UTM parameters…).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
    /// Who owns a new lead when the caller named nobody and no assignment rule decides (a
    /// form's owner); else the caller.
    #[serde(skip)]
    pub fallback_owner: Option<Uuid>,
}

/// A person arriving: matched to a known record or created as a lead, once.
pub async fn intake(
    db: &Db,
    ctx: &Ctx,
    input: LeadInput,
    arrival: Arrival,
) -> Result<IntakeResult> {
    let mut tx = db.begin().await?;
    let result = intake_in(&mut tx, ctx, input, arrival, &mut Lookups::default()).await?;
    tx.commit().await?;
    Ok(result)
}

/// [`intake`] inside the caller's transaction (a form keeps its submission with it).
pub async fn intake_in(
    tx: &mut Tx,
    ctx: &Ctx,
    mut input: LeadInput,
    arrival: Arrival,
    lk: &mut Lookups,
) -> Result<IntakeResult> {
    input.source = Some(arrival.source.clone());
    if arrival.detail.is_some() {
        input.source_detail = Some(arrival.detail.clone());
    }
    // Assignment rules decide a new lead's owner unless the caller named one.
    let named_owner = input.owner_id.is_some();
    if !named_owner {
        input.owner_id = arrival.fallback_owner;
    }
    let (mut f, defs) = leads::prepare(tx, ctx, &input, lk).await?;
    let at = now();
    let keys = keys(&f);
    let first = keylock::hold_noting(
        tx,
        ctx.tenant_id,
        &keys,
        &fingerprint(&f, &arrival),
        at,
        REPEAT_WINDOW,
    )
    .await?;
    let found = find(tx, ctx, &f).await?;
    let result = match found {
        Some((entity, id, matched_on)) => {
            let outcome = if first {
                touch(tx, ctx, entity, id, &f, &arrival).await?;
                Outcome::Matched
            } else {
                Outcome::Repeated
            };
            let lead = if entity == "leads" {
                record::get::<Lead>(&mut *tx, ctx, id).await.ok()
            } else {
                None
            };
            IntakeResult {
                outcome,
                entity: entity.to_owned(),
                id,
                matched_on,
                lead,
            }
        }
        None => {
            let assigned = if named_owner {
                None
            } else {
                assignment::decide(tx, ctx.tenant_id, &f.facts(), None).await?
            };
            if let Some((user, team)) = assigned {
                (f.owner_id, f.team_id) = (Some(user), team);
            }
            let lead = leads::insert(tx, ctx, &f, &defs).await?;
            if let (Some(owner), Some(_)) = (lead.owner_id, assigned) {
                notifications::notify(
                    tx,
                    ctx,
                    owner,
                    notifications::Notice {
                        kind: "lead_assigned",
                        params: serde_json::json!({"name": lead.name, "source": lead.source,
                            "company": lead.company.clone().unwrap_or_default()}),
                        link: Some(leads::ENTITY.link(lead.id)),
                        entity: Some("leads"),
                        entity_id: Some(lead.id),
                    },
                )
                .await?;
            }
            IntakeResult {
                outcome: Outcome::Created,
                entity: "leads".into(),
                id: lead.id,
                matched_on: vec![],
                lead: Some(lead),
            }
        }
    };
    Ok(result)
}

/// What identifies an arrival, for a dry run that writes nothing and so cannot see its own
/// earlier rows: the keys the person is known by and the arrival's fingerprint (the same
/// fingerprint again is a repeat; a key seen again, the same person).
pub async fn identity(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &LeadInput,
    arrival: &Arrival,
) -> Result<(Vec<String>, String)> {
    let mut input = input.clone();
    input.source = Some(arrival.source.clone());
    if arrival.detail.is_some() {
        input.source_detail = Some(arrival.detail.clone());
    }
    let (f, _) = leads::prepare(tx, ctx, &input, &mut Lookups::default()).await?;
    Ok((keys(&f), fingerprint(&f, arrival)))
}

/// The keys a person is known by (phone, email, name at company), each held while matching.
fn keys(f: &Fields) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(p) = &f.phone_e164 {
        keys.push(format!("person:phone:{p}"));
    }
    if let Some(e) = &f.email {
        keys.push(format!("person:email:{e}"));
    }
    if let Some(c) = &f.company {
        keys.push(format!("person:name:{}|{}", f.name, c.to_lowercase()));
    }
    keys
}

/// The same arrival again: source, detail and every normalised field alike (what came with
/// it — the page, campaign parameters — does not make a double submit a new arrival).
fn fingerprint(f: &Fields, arrival: &Arrival) -> String {
    let canonical = serde_json::json!([
        arrival.source,
        arrival.detail,
        f.name,
        f.company,
        f.title,
        f.phone_e164,
        f.email,
        f.wechat,
        f.province,
        f.city,
        f.industry,
        f.product_interest,
        f.notes,
        f.custom,
    ]);
    format!(
        "intake:{}",
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    )
}

/// The known record this person is: a live contact by phone or email first (a customer is
/// never a new lead), else a live unconverted lead by phone, email, or name at the same
/// company.
async fn find(
    tx: &mut Tx,
    ctx: &Ctx,
    f: &Fields,
) -> Result<Option<(&'static str, Uuid, Vec<String>)>> {
    #[derive(sqlx::FromRow)]
    struct Hit {
        entity: String,
        id: Uuid,
        phone_e164: Option<String>,
        email: Option<String>,
    }
    let matched = |h: &Hit| {
        let mut on = Vec::new();
        if h.phone_e164.is_some() && h.phone_e164 == f.phone_e164 {
            on.push("phone".to_owned());
        }
        if h.email.is_some() && h.email == f.email {
            on.push("email".to_owned());
        }
        on
    };
    // Only the arms for what was given: `email = NULL` never matches, and a planner that
    // weighs it by a column mostly empty scans the whole table (seen at 100,000 leads).
    let mut arms: Vec<String> = Vec::new();
    let mut params = args![ctx.tenant_id];
    for (column, value) in [("phone_e164", &f.phone_e164), ("email", &f.email)] {
        if let Some(v) = value {
            params.push(v.clone().into());
            arms.push(format!("{column} = ${}", params.len()));
        }
    }
    let contact_arms = arms.join(" OR ");
    if let Some(company) = &f.company {
        params.push(f.name.clone().into());
        params.push(company.clone().into());
        arms.push(format!(
            "(name = ${} AND company IS NOT NULL AND lower(company) = lower(${}))",
            params.len() - 1,
            params.len()
        ));
    }
    if arms.is_empty() {
        return Ok(None);
    }
    let leads = format!(
        "SELECT * FROM (SELECT 'leads' AS entity, id, phone_e164, email FROM leads
             WHERE tenant_id = $1 AND deleted_at IS NULL AND status <> 'converted'
               AND ({})
             ORDER BY id LIMIT 1) l",
        arms.join(" OR ")
    );
    // The contact and the lead in one round trip; the contact wins.
    let sql = if contact_arms.is_empty() {
        leads
    } else {
        format!(
            "SELECT * FROM (SELECT 'contacts' AS entity, id, phone_e164, email FROM contacts
                 WHERE tenant_id = $1 AND deleted_at IS NULL AND ({contact_arms})
                 ORDER BY id LIMIT 1) c
             UNION ALL {leads}"
        )
    };
    let hits: Vec<Hit> = tx.fetch_all(&sql, params).await?;
    let hit = hits
        .iter()
        .find(|h| h.entity == "contacts")
        .or_else(|| hits.first());
    Ok(hit.map(|h| {
        let mut on = matched(h);
        if h.entity == "contacts" {
            return ("contacts", h.id, on);
        }
        if on.is_empty() {
            on.push("name_company".to_owned());
        }
        ("leads", h.id, on)
    }))
}

/// Records an arrival on a known record: a `touch` event with what was sent (on its
/// timeline); a lead's last touch moves (not a user's edit: its version stays).
async fn touch(
    tx: &mut Tx,
    ctx: &Ctx,
    entity: &str,
    id: Uuid,
    f: &Fields,
    arrival: &Arrival,
) -> Result<()> {
    let sent = serde_json::json!({
        "source": arrival.source,
        "source_detail": arrival.detail,
        "extra": arrival.extra,
        "name": f.name,
        "company": f.company,
        "title": f.title,
        "phone": f.phone,
        "email": f.email,
        "wechat": f.wechat,
        "product_interest": f.product_interest,
        "notes": f.notes,
    });
    audit::record(tx, ctx, "touch", entity, Some(id), None, Some(&sent)).await?;
    if entity == "leads" {
        tx.execute(
            "UPDATE leads SET last_touch_at = $1 WHERE tenant_id = $2 AND id = $3",
            args![now(), ctx.tenant_id, id],
        )
        .await?;
        crate::scoring::rescore(tx, ctx.tenant_id, id).await?;
    }
    Ok(())
}
