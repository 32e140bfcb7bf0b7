//! Who is on a deal besides its owner: the customer's people with their role in the buying
//! decision (decision maker, influencer, champion, evaluator, user, blocker, other) and the
//! competitors in the running, each with a note (migration 2014). Both are part of the deal:
//! replaced as a whole at the deal's version, which the change advances — so a concurrent
//! edit of the deal or of its parties is refused (412), never overwritten — and audited with
//! the deal.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, validate, version, Ctx, Error};
use guanxi_records::record;

use crate::opportunities::{self, Opportunity};

/// The roles a contact plays in a deal, in the order they are offered.
pub const ROLES: &[&str] = &[
    "decision_maker",
    "influencer",
    "champion",
    "evaluator",
    "user",
    "blocker",
    "other",
];
pub const MAX_CONTACTS: usize = 50;
pub const MAX_COMPETITORS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct DealContact {
    pub contact_id: Uuid,
    pub name: String,
    pub title: Option<String>,
    pub account_name: Option<String>,
    /// One of `decision_maker`, `influencer`, `champion`, `evaluator`, `user`, `blocker`,
    /// `other`.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Competitor {
    pub name: String,
    /// Their offer, strengths, where they stand.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Parties {
    pub contacts: Vec<DealContact>,
    pub competitors: Vec<Competitor>,
    /// The deal's version (send it back to change the parties).
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRole {
    pub contact_id: Uuid,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompetitorInput {
    /// 1–100 characters, once per deal.
    pub name: String,
    /// Up to 500 characters.
    pub note: Option<String>,
}

/// The parties to set: a list given replaces the deal's, a list left out stays as it is.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartiesInput {
    /// The deal's version as read (or send `If-Match`).
    pub version: Option<i64>,
    /// At most 50, each contact once.
    pub contacts: Option<Vec<ContactRole>>,
    /// At most 20.
    pub competitors: Option<Vec<CompetitorInput>>,
}

async fn lists(
    conn: impl Into<Conn<'_>>,
    tenant: Uuid,
    id: Uuid,
) -> Result<(Vec<DealContact>, Vec<Competitor>)> {
    let mut conn = conn.into();
    let contacts: Vec<DealContact> = conn
        .reborrow()
        .fetch_all(
            "SELECT oc.contact_id, c.name, c.title, a.name AS account_name, oc.role
             FROM opportunity_contacts oc
             JOIN contacts c ON c.tenant_id = oc.tenant_id AND c.id = oc.contact_id
             LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
             WHERE oc.tenant_id = $1 AND oc.opportunity_id = $2 ORDER BY oc.position",
            args![tenant, id],
        )
        .await?;
    let competitors: Vec<Competitor> = conn
        .fetch_all(
            "SELECT name, note FROM opportunity_competitors
             WHERE tenant_id = $1 AND opportunity_id = $2 ORDER BY position",
            args![tenant, id],
        )
        .await?;
    Ok((contacts, competitors))
}

/// A deal's contacts with their roles and its competitors (for a caller who may read it).
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Parties> {
    let d = opportunities::get(db, ctx, id).await?;
    of(db, ctx, &d).await
}

/// [`get`] for a deal the caller has already read (its page).
pub async fn of(db: &Db, ctx: &Ctx, deal: &Opportunity) -> Result<Parties> {
    let (contacts, competitors) = lists(db, ctx.tenant_id, deal.id).await?;
    Ok(Parties {
        contacts,
        competitors,
        version: deal.version,
    })
}

/// The deal's customer's contacts not on the deal yet, by name (at most 200): id, name, title.
pub async fn candidates(
    db: &Db,
    ctx: &Ctx,
    deal: &Opportunity,
) -> Result<Vec<(Uuid, String, Option<String>)>> {
    db.fetch_all(
        "SELECT c.id, c.name, c.title FROM contacts c
         WHERE c.tenant_id = $1 AND c.account_id = $2 AND c.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM opportunity_contacts oc WHERE oc.tenant_id = c.tenant_id
               AND oc.opportunity_id = $3 AND oc.contact_id = c.id)
         ORDER BY c.name LIMIT 200",
        args![ctx.tenant_id, deal.account_id, deal.id],
    )
    .await
}

/// What is wrong with the input, field by field (pure).
pub fn check(input: &PartiesInput) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(cs) = &input.contacts {
        if cs.len() > MAX_CONTACTS {
            errs.add("contacts", "too_many");
        }
        for (i, c) in cs.iter().enumerate() {
            if !ROLES.contains(&c.role.as_str()) {
                errs.add(&format!("contacts[{i}].role"), "invalid");
            }
            if cs[..i].iter().any(|o| o.contact_id == c.contact_id) {
                errs.add(&format!("contacts[{i}].contact_id"), "duplicate");
            }
        }
    }
    if let Some(cs) = &input.competitors {
        if cs.len() > MAX_COMPETITORS {
            errs.add("competitors", "too_many");
        }
        for (i, c) in cs.iter().enumerate() {
            match validate::text(&c.name, 100) {
                Ok(Some(n)) => {
                    if cs[..i].iter().any(|o| o.name.trim() == n) {
                        errs.add(&format!("competitors[{i}].name"), "duplicate");
                    }
                }
                Ok(None) => errs.add(&format!("competitors[{i}].name"), "required"),
                Err(code) => errs.add(&format!("competitors[{i}].name"), code),
            }
            if let Some(Err(code)) = c.note.as_deref().map(|n| validate::text(n, 500)) {
                errs.add(&format!("competitors[{i}].note"), code);
            }
        }
    }
    errs.finish()
}

/// Replaces the lists given, at the deal's version (advanced; the deal's audit shows the
/// parties before and after).
pub async fn set(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PartiesInput,
) -> Result<Parties> {
    let mut tx = db.begin().await?;
    let deal: Opportunity = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    let expected = version::expected(if_match, input.version)?;
    if deal.deleted_at.is_some() {
        return Err(Error::Conflict("the deal is in the trash".into()));
    }
    check(&input)?;
    if let Some(cs) = input.contacts.as_deref().filter(|c| !c.is_empty()) {
        let mut q = Sql::new("SELECT id FROM contacts WHERE tenant_id = ");
        q.bind(ctx.tenant_id);
        q.push(" AND deleted_at IS NULL AND id IN ")
            .bind_list(cs.iter().map(|c| c.contact_id));
        let known: Vec<(Uuid,)> = tx.fetch_sql(q).await?;
        let mut errs = Errors::default();
        for (i, c) in cs.iter().enumerate() {
            if !known.iter().any(|k| k.0 == c.contact_id) {
                errs.add(&format!("contacts[{i}].contact_id"), "unknown");
            }
        }
        errs.finish()?;
    }
    let (contacts, competitors) = lists(&mut tx, ctx.tenant_id, id).await?;
    let before = Parties {
        contacts,
        competitors,
        version: deal.version,
    };
    let version = version::update(
        &mut tx,
        version::Row {
            table: "opportunities",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "updated_at = $1, updated_by = $2",
        args![now(), ctx.user_id],
    )
    .await?;
    if let Some(cs) = &input.contacts {
        tx.execute(
            "DELETE FROM opportunity_contacts WHERE tenant_id = $1 AND opportunity_id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
        let rows: Vec<_> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| args![ctx.tenant_id, id, c.contact_id, c.role.as_str(), i as i64])
            .collect();
        if !rows.is_empty() {
            tx.insert_rows(
                "opportunity_contacts",
                &[
                    "tenant_id",
                    "opportunity_id",
                    "contact_id",
                    "role",
                    "position",
                ],
                rows,
            )
            .await?;
        }
    }
    if let Some(cs) = &input.competitors {
        tx.execute(
            "DELETE FROM opportunity_competitors WHERE tenant_id = $1 AND opportunity_id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
        let rows: Vec<_> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let note = c
                    .note
                    .as_deref()
                    .and_then(|n| validate::text(n, 500).ok().flatten());
                args![ctx.tenant_id, id, i as i64, c.name.trim(), note]
            })
            .collect();
        if !rows.is_empty() {
            tx.insert_rows(
                "opportunity_competitors",
                &["tenant_id", "opportunity_id", "position", "name", "note"],
                rows,
            )
            .await?;
        }
    }
    let (contacts, competitors) = lists(&mut tx, ctx.tenant_id, id).await?;
    let after = Parties {
        contacts,
        competitors,
        version,
    };
    audit::record(
        &mut tx,
        ctx,
        "update",
        "opportunities",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(n: u128, role: &str) -> ContactRole {
        ContactRole {
            contact_id: Uuid::from_u128(n),
            role: role.into(),
        }
    }

    #[test]
    fn each_field_is_named() {
        let input = PartiesInput {
            version: Some(1),
            contacts: Some(vec![contact(1, "decision_maker"), contact(1, "boss")]),
            competitors: Some(vec![
                CompetitorInput {
                    name: " 华为 ".into(),
                    note: None,
                },
                CompetitorInput {
                    name: "华为".into(),
                    note: Some("x".repeat(501)),
                },
                CompetitorInput {
                    name: "  ".into(),
                    note: None,
                },
            ]),
        };
        let errs = match check(&input) {
            Err(Error::Validation(v)) => v,
            _ => vec![],
        };
        let named: Vec<(String, String)> = errs.into_iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(
            named,
            [
                ("contacts[1].role", "invalid"),
                ("contacts[1].contact_id", "duplicate"),
                ("competitors[1].name", "duplicate"),
                ("competitors[1].note", "too_long"),
                ("competitors[2].name", "required"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
        let many = PartiesInput {
            contacts: Some(
                (0..=MAX_CONTACTS as u128)
                    .map(|n| contact(n, "user"))
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(check(&many).is_err());
        assert!(check(&PartiesInput::default()).is_ok());
    }
}
