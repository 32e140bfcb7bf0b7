//! Likely duplicates of a customer about to be saved: the same 统一社会信用代码, the same phone
//! (compared in E.164, however it was typed), the same email, or the same name (at the same
//! account, for a contact). Shown before saving so an existing customer is never entered as
//! new. Candidates the caller may not open are still reported (name and owner only): the
//! customer belongs to the company, and the rep should ask its owner rather than create a copy.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{args, Ctx, Error};

use crate::normalize;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicateProbe {
    /// `account` or `contact`.
    pub kind: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub credit_code: Option<String>,
    /// For a contact: the account it would belong to.
    pub account_id: Option<Uuid>,
    /// ISO country for reading the phone; default `CN`.
    pub country: Option<String>,
    /// The record being edited, which is not its own duplicate.
    pub exclude_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Candidate {
    pub id: Uuid,
    pub name: String,
    pub owner_name: String,
    /// 0–100: credit code 100, phone or email 90, same name at the same account 70, same name 40.
    pub score: i64,
    /// Which fields matched: `credit_code`, `phone`, `email`, `name`.
    pub matched: Vec<String>,
    /// Whether the caller may open the record.
    pub visible: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Candidates {
    pub items: Vec<Candidate>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    owner_id: Uuid,
    owner_name: String,
    team_id: Option<Uuid>,
    credit_code: Option<String>,
    phone_e164: Option<String>,
    email: Option<String>,
    account_id: Option<Uuid>,
}

pub async fn find(db: &Db, ctx: &Ctx, probe: &DuplicateProbe) -> Result<Candidates> {
    let (table, module) = match probe.kind.as_deref() {
        Some("account") => ("accounts", "accounts"),
        Some("contact") => ("contacts", "contacts"),
        _ => return Err(Error::field("kind", "invalid")),
    };
    // Whoever may create such records may ask whether one exists.
    let read = ctx.can(module, Action::Read);
    if read.is_none() && ctx.can(module, Action::Create).is_none() {
        return Err(Error::Forbidden);
    }
    let country = probe.country.clone().unwrap_or_else(|| "CN".into());
    let phone = probe
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| normalize::phone(p, &country).ok())
        .map(|p| p.e164);
    let email = probe
        .email
        .as_deref()
        .and_then(|e| guanxi_platform::validate::email(e).ok());
    let credit = probe
        .credit_code
        .as_deref()
        .and_then(|c| normalize::credit_code(c).ok())
        .filter(|_| table == "accounts");
    let name = probe
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    // The column one kind lacks is a typed NULL (PostgreSQL decodes by type).
    let (credit_col, account_col) = if table == "accounts" {
        ("x.credit_code", "CAST(NULL AS UUID)")
    } else {
        ("CAST(NULL AS TEXT)", "x.account_id")
    };
    let rows: Vec<Row> = db
        .fetch_all(
            &format!(
                "SELECT x.id, x.name, x.owner_id, o.name AS owner_name, x.team_id, {credit_col} AS credit_code,
                     x.phone_e164, x.email, {account_col} AS account_id
                 FROM {table} x JOIN users o ON o.tenant_id = x.tenant_id AND o.id = x.owner_id
                 WHERE x.tenant_id = $1 AND x.deleted_at IS NULL AND x.id <> $2
                   AND (x.phone_e164 = $3 OR x.email = $4 OR {credit_col} = $5 OR x.name = $6)
                 LIMIT 20"
            ),
            args![
                ctx.tenant_id,
                probe.exclude_id.unwrap_or(Uuid::nil()),
                phone.clone(),
                email.clone(),
                credit.clone(),
                name.clone()
            ],
        )
        .await?;
    let mut items: Vec<Candidate> = rows
        .into_iter()
        .map(|r| {
            let mut matched = Vec::new();
            let mut score = 0;
            if credit.is_some() && r.credit_code == credit {
                matched.push("credit_code".to_owned());
                score = score.max(100);
            }
            if phone.is_some() && r.phone_e164 == phone {
                matched.push("phone".to_owned());
                score = score.max(90);
            }
            if email.is_some() && r.email == email {
                matched.push("email".to_owned());
                score = score.max(90);
            }
            if name.is_some() && Some(&r.name) == name.as_ref() {
                matched.push("name".to_owned());
                let same_account = probe.account_id.is_some() && r.account_id == probe.account_id;
                score = score.max(if same_account || table == "accounts" {
                    70
                } else {
                    40
                });
            }
            Candidate {
                visible: read.is_some_and(|s| ctx.covers(s, Some(r.owner_id), r.team_id)),
                id: r.id,
                name: r.name,
                owner_name: r.owner_name,
                score,
                matched,
            }
        })
        .collect();
    items.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.name.cmp(&b.name)));
    Ok(Candidates { items })
}
