//! Likely duplicates of a customer about to be saved: the same 统一社会信用代码, the same phone
//! (compared in E.164, however it was typed), the same email, or the same name (at the same
//! account, for a contact). Shown before saving so an existing customer is never entered as
//! new. Candidates the caller may not open are still reported (name and owner only): the
//! customer belongs to the company, and the rep should ask its owner rather than create a copy.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{args, Ctx, Error};

use guanxi_records::normalize;

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
    // Candidates by each key through its own index (a union: an OR across columns makes
    // both planners walk the tenant's rows), then the rows themselves.
    let mut q = Sql::new(&format!(
        "SELECT x.id, x.name, x.owner_id, o.name AS owner_name, x.team_id, {credit_col} AS credit_code,
             x.phone_e164, x.email, {account_col} AS account_id
         FROM {table} x LEFT JOIN users o ON o.tenant_id = x.tenant_id AND o.id = x.owner_id
         WHERE x.tenant_id = "
    ));
    q.bind(ctx.tenant_id).push(" AND x.id IN (");
    let keys = [
        ("phone_e164", phone.clone()),
        ("email", email.clone()),
        ("name", name.clone()),
        ("credit_code", credit.clone()),
    ];
    let mut first = true;
    for (column, value) in keys {
        let Some(value) = value else { continue };
        if !first {
            q.push(" UNION ALL ");
        }
        first = false;
        // Each key at most 20 matches (a common name must not crowd out a phone match).
        q.push(&format!(
            "SELECT id FROM (SELECT id FROM {table} WHERE tenant_id = "
        ))
        .bind(ctx.tenant_id)
        .push(&format!(" AND {column} = "))
        .bind(value)
        .push(&format!(" LIMIT 20) AS by_{column}"));
    }
    if first {
        return Ok(Candidates { items: vec![] });
    }
    q.push(") AND x.deleted_at IS NULL AND x.id <> ")
        .bind(probe.exclude_id.unwrap_or(Uuid::nil()))
        .push(" LIMIT 80");
    let rows: Vec<Row> = db.fetch_all(&q.sql, q.args).await?;
    let mut items: Vec<Candidate> = rows
        .into_iter()
        .map(|r| {
            let (score, matched) = score(
                &Keys {
                    name: name.as_deref(),
                    phone: phone.as_deref(),
                    email: email.as_deref(),
                    credit_code: credit.as_deref(),
                    account_id: probe.account_id,
                },
                &Keys {
                    name: Some(&r.name),
                    phone: r.phone_e164.as_deref(),
                    email: r.email.as_deref(),
                    credit_code: r.credit_code.as_deref(),
                    account_id: r.account_id,
                },
                table == "accounts",
            );
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
    items.truncate(20);
    Ok(Candidates { items })
}

/// What two records are compared on (normalised: phone in E.164, email lower-case).
#[derive(Debug, Clone, Copy, Default)]
pub struct Keys<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub credit_code: Option<&'a str>,
    /// A contact's account (a shared name counts more at the same company).
    pub account_id: Option<Uuid>,
}

/// How likely `b` duplicates `a`, and on what: credit code 100, phone or email 90, the same
/// name 70 for accounts or contacts at the same account, else 40.
pub fn score(a: &Keys, b: &Keys, accounts: bool) -> (i64, Vec<String>) {
    let mut matched = Vec::new();
    let mut score = 0;
    let same = |x: Option<&str>, y: Option<&str>| x.is_some() && x == y;
    if same(a.credit_code, b.credit_code) {
        matched.push("credit_code".to_owned());
        score = score.max(100);
    }
    if same(a.phone, b.phone) {
        matched.push("phone".to_owned());
        score = score.max(90);
    }
    if same(a.email, b.email) {
        matched.push("email".to_owned());
        score = score.max(90);
    }
    if same(a.name, b.name) {
        matched.push("name".to_owned());
        let same_account = a.account_id.is_some() && a.account_id == b.account_id;
        score = score.max(if same_account || accounts { 70 } else { 40 });
    }
    (score, matched)
}

/// Live contacts sharing a key with any of `probes` that could score 70 or more (phone,
/// email, or name at the same account) — one query for an import batch, each key through its
/// own index.
pub async fn contacts_sharing_keys(
    tx: &mut Tx,
    tenant_id: Uuid,
    probes: &[Keys<'_>],
) -> Result<Vec<(Uuid, String, Option<String>, Option<String>, Option<Uuid>)>> {
    let mut q =
        Sql::new("SELECT id, name, phone_e164, email, account_id FROM contacts WHERE tenant_id = ");
    q.bind(tenant_id)
        .push(" AND deleted_at IS NULL AND id IN (");
    let mut parts = 0;
    let mut part = |q: &mut Sql, column: &str, values: Vec<&str>, accounts: Vec<Uuid>| {
        if values.is_empty() {
            return;
        }
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        q.push("SELECT id FROM contacts WHERE tenant_id = ")
            .bind(tenant_id);
        q.push(&format!(" AND {column} IN ("));
        for (i, v) in values.into_iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " }).bind(v);
        }
        q.push(")");
        if !accounts.is_empty() {
            q.push(" AND account_id IN (");
            for (i, a) in accounts.into_iter().enumerate() {
                q.push(if i == 0 { "" } else { ", " }).bind(a);
            }
            q.push(")");
        }
    };
    part(
        &mut q,
        "phone_e164",
        uniq(probes.iter().filter_map(|p| p.phone).collect()),
        vec![],
    );
    part(
        &mut q,
        "email",
        uniq(probes.iter().filter_map(|p| p.email).collect()),
        vec![],
    );
    let named: Vec<&Keys> = probes.iter().filter(|p| p.account_id.is_some()).collect();
    let mut accounts: Vec<Uuid> = named.iter().filter_map(|p| p.account_id).collect();
    accounts.sort_unstable();
    accounts.dedup();
    part(
        &mut q,
        "name",
        uniq(named.iter().filter_map(|p| p.name).collect()),
        accounts,
    );
    if parts == 0 {
        return Ok(vec![]);
    }
    q.push(")");
    tx.fetch_sql(q).await
}

fn uniq(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v.dedup();
    v
}

/// One side of a duplicate pair.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PairSide {
    pub id: Uuid,
    pub name: String,
    pub version: i64,
    pub owner_id: Uuid,
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pair {
    /// The older record (a natural survivor).
    pub a: PairSide,
    pub b: PairSide,
    pub score: i64,
    pub matched: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pairs {
    pub items: Vec<Pair>,
}

#[derive(sqlx::FromRow)]
struct PairRow {
    a_id: Uuid,
    a_name: String,
    a_version: i64,
    a_owner: Uuid,
    a_team: Option<Uuid>,
    b_id: Uuid,
    b_name: String,
    b_version: i64,
    b_owner: Uuid,
    b_team: Option<Uuid>,
    same_phone: bool,
    same_email: bool,
    same_name: bool,
    same_account: bool,
}

/// Candidate pairs of duplicate contacts the caller can see, best first (at most 200): the
/// same phone (E.164) or email (90), the same name at the same account (70).
pub async fn contact_pairs(db: &Db, ctx: &Ctx) -> Result<Pairs> {
    let scope = ctx.require("contacts", Action::Read)?;
    let rows: Vec<PairRow> = db
        .fetch_all(
            "SELECT a.id AS a_id, a.name AS a_name, a.version AS a_version, a.owner_id AS a_owner, a.team_id AS a_team,
                 b.id AS b_id, b.name AS b_name, b.version AS b_version, b.owner_id AS b_owner, b.team_id AS b_team,
                 COALESCE(a.phone_e164 = b.phone_e164, $2) AS same_phone,
                 COALESCE(a.email = b.email, $2) AS same_email,
                 a.name = b.name AS same_name,
                 COALESCE(a.account_id = b.account_id, $2) AS same_account
             FROM contacts a JOIN contacts b ON b.tenant_id = a.tenant_id AND a.id < b.id
                 AND (a.phone_e164 = b.phone_e164 OR a.email = b.email
                      OR (a.name = b.name AND a.account_id = b.account_id))
             WHERE a.tenant_id = $1 AND a.deleted_at IS NULL AND b.deleted_at IS NULL
             ORDER BY a.id, b.id LIMIT 1000",
            args![ctx.tenant_id, false],
        )
        .await?;
    let mut items: Vec<Pair> = rows
        .into_iter()
        .filter(|r| {
            ctx.covers(scope, Some(r.a_owner), r.a_team)
                && ctx.covers(scope, Some(r.b_owner), r.b_team)
        })
        .map(|r| {
            let mut matched = Vec::new();
            let mut score = 0;
            if r.same_phone {
                matched.push("phone".to_owned());
                score = 90;
            }
            if r.same_email {
                matched.push("email".to_owned());
                score = 90;
            }
            if r.same_name {
                matched.push("name".to_owned());
                if r.same_account {
                    score = score.max(70);
                }
            }
            Pair {
                a: PairSide {
                    id: r.a_id,
                    name: r.a_name,
                    version: r.a_version,
                    owner_id: r.a_owner,
                    team_id: r.a_team,
                },
                b: PairSide {
                    id: r.b_id,
                    name: r.b_name,
                    version: r.b_version,
                    owner_id: r.b_owner,
                    team_id: r.b_team,
                },
                score,
                matched,
            }
        })
        .collect();
    items.sort_by(|x, y| y.score.cmp(&x.score).then_with(|| x.a.name.cmp(&y.a.name)));
    items.truncate(200);
    Ok(Pairs { items })
}
