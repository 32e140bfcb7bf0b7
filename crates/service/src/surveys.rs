//! CSAT and NPS. A resolution email carries a CSAT invite (a link with a secret token, only its
//! SHA-256 kept, valid [`INVITE_DAYS`]); the customer's answer — a score and an optional
//! comment, on a page the link opens (a GET only shows it, so a mail scanner following links
//! scores nothing) — is a response row. Agents record answers given by phone through the API.
//! Responses are never overwritten: answering again adds one, and the summaries read each
//! ticket's (or contact's) latest. CSAT is the share of 4s and 5s; NPS is promoters (9–10)
//! minus detractors (0–6), in percent of those who answered.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, secret, validate, Ctx, Error};

pub const KINDS: &[&str] = &["csat", "nps"];
/// How long an emailed survey link is answered.
pub const INVITE_DAYS: i64 = 30;
/// Answers one link takes (a customer changing their mind; not a flood).
pub const ANSWERS_PER_INVITE: i64 = 5;

/// The score range of a kind.
pub fn range(kind: &str) -> std::ops::RangeInclusive<i64> {
    if kind == "nps" {
        0..=10
    } else {
        1..=5
    }
}

/// Makes an invite inside the caller's transaction; returns its secret token (for the link).
pub async fn invite(
    tx: &mut Tx,
    tenant: Uuid,
    kind: &str,
    ticket: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<String> {
    let token = secret::random_secret();
    let t = now();
    tx.execute(
        "INSERT INTO survey_invites (tenant_id, id, kind, ticket_id, contact_id, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            tenant,
            new_id(),
            kind,
            ticket,
            contact,
            secret::digest(&token),
            t,
            t + Duration::days(INVITE_DAYS)
        ],
    )
    .await?;
    Ok(token)
}

/// What an invite's page shows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invite {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub kind: String,
    pub ticket_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub company: String,
    pub locale: String,
    pub number: Option<String>,
    pub subject: Option<String>,
    pub answered: i64,
}

/// The invite a token opens (unknown and expired ones alike: not found).
pub async fn open(db: &Db, token: &str) -> Result<Invite> {
    if token.len() > 100 {
        return Err(Error::NotFound);
    }
    let i: Option<Invite> = db
        .fetch_optional(
            "SELECT i.tenant_id, i.id, i.kind, i.ticket_id, i.contact_id, i.expires_at,
                    n.name AS company, n.locale, t.number, t.subject,
                    (SELECT COUNT(*) FROM survey_responses r
                      WHERE r.tenant_id = i.tenant_id AND r.invite_id = i.id) AS answered
             FROM survey_invites i
             JOIN tenants n ON n.id = i.tenant_id
             LEFT JOIN tickets t ON t.tenant_id = i.tenant_id AND t.id = i.ticket_id
             WHERE i.token_hash = $1",
            args![secret::digest(token)],
        )
        .await?;
    match i {
        Some(i) if i.expires_at > now() => Ok(i),
        _ => Err(Error::NotFound),
    }
}

/// A customer's answer, or one an agent records.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// `csat` (1–5) or `nps` (0–10); required.
    pub kind: Option<String>,
    /// Required.
    pub score: Option<i64>,
    pub comment: Option<String>,
    /// The ticket it is about (its contact and account follow).
    pub ticket_id: Option<Uuid>,
    /// Who answered (required without a ticket).
    pub contact_id: Option<Uuid>,
    /// `phone` (default) or `api`.
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SurveyResponse {
    pub id: Uuid,
    pub kind: String,
    pub score: i64,
    pub comment: Option<String>,
    /// `email`, `portal`, `phone` or `api`.
    pub channel: String,
    pub ticket_id: Option<Uuid>,
    pub ticket_number: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    /// The ticket's owner when it was answered.
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub at: DateTime<Utc>,
}

const SELECT: &str = "SELECT r.id, r.kind, r.score, r.comment, r.channel, r.ticket_id,
    t.number AS ticket_number, r.contact_id, c.name AS contact_name, r.account_id,
    a.name AS account_name, r.agent_id, u.name AS agent_name, r.at
    FROM survey_responses r
    LEFT JOIN tickets t ON t.tenant_id = r.tenant_id AND t.id = r.ticket_id
    LEFT JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id
    LEFT JOIN accounts a ON a.tenant_id = r.tenant_id AND a.id = r.account_id
    LEFT JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.agent_id";

fn check(
    errs: &mut Errors,
    kind: &str,
    score: Option<i64>,
    comment: Option<&str>,
) -> Option<String> {
    match score {
        Some(s) if range(kind).contains(&s) => {}
        Some(_) => errs.add("score", "out_of_range"),
        None => errs.add("score", "required"),
    }
    match comment.map(|c| validate::text(c, 2000)) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            errs.add("comment", e);
            None
        }
        None => None,
    }
}

/// Stores a response with what it is about: the ticket's contact, account, owner and team.
#[allow(clippy::too_many_arguments)]
async fn store(
    tx: &mut Tx,
    tenant: Uuid,
    kind: &str,
    invite: Option<Uuid>,
    ticket: Option<Uuid>,
    contact: Option<Uuid>,
    score: i64,
    comment: Option<String>,
    channel: &str,
    by: Option<Uuid>,
) -> Result<Uuid> {
    #[derive(sqlx::FromRow)]
    struct About {
        contact_id: Option<Uuid>,
        account_id: Option<Uuid>,
        owner_id: Option<Uuid>,
        team_id: Option<Uuid>,
    }
    let about: About = match ticket {
        Some(t) => tx
            .fetch_one(
                "SELECT contact_id, account_id, owner_id, team_id FROM tickets WHERE tenant_id = $1 AND id = $2",
                args![tenant, t],
            )
            .await?,
        None => {
            let account: Option<(Option<Uuid>,)> = match contact {
                Some(c) => {
                    tx.fetch_optional(
                        "SELECT account_id FROM contacts WHERE tenant_id = $1 AND id = $2",
                        args![tenant, c],
                    )
                    .await?
                }
                None => None,
            };
            About {
                contact_id: None,
                account_id: account.and_then(|a| a.0),
                owner_id: None,
                team_id: None,
            }
        }
    };
    let id = new_id();
    tx.execute(
        "INSERT INTO survey_responses (tenant_id, id, kind, invite_id, ticket_id, contact_id,
             account_id, agent_id, team_id, score, comment, channel, recorded_by, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        args![
            tenant,
            id,
            kind,
            invite,
            ticket,
            contact.or(about.contact_id),
            about.account_id,
            about.owner_id,
            about.team_id,
            score,
            comment,
            channel,
            by,
            now()
        ],
    )
    .await?;
    Ok(id)
}

/// The customer's answer through an invite's page.
pub async fn answer(
    db: &Db,
    token: &str,
    score: Option<i64>,
    comment: Option<&str>,
) -> Result<Invite> {
    let i = open(db, token).await?;
    let mut errs = Errors::default();
    let comment = check(&mut errs, &i.kind, score, comment);
    errs.finish()?;
    if i.answered >= ANSWERS_PER_INVITE {
        return Err(Error::Conflict("this survey was answered already".into()));
    }
    let mut tx = db.begin().await?;
    store(
        &mut tx,
        i.tenant_id,
        &i.kind,
        Some(i.id),
        i.ticket_id,
        i.contact_id,
        score.unwrap_or_default(),
        comment,
        "email",
        None,
    )
    .await?;
    tx.commit().await?;
    open(db, token).await
}

/// An answer an agent records (asked on the phone).
pub async fn record(db: &Db, ctx: &Ctx, input: ResponseInput) -> Result<SurveyResponse> {
    ctx.require("tickets", Action::Update)?;
    let mut errs = Errors::default();
    let kind = match input.kind.as_deref().map(str::trim) {
        Some(k) if KINDS.contains(&k) => k.to_owned(),
        Some(_) => {
            errs.add("kind", "invalid");
            "csat".to_owned()
        }
        None => {
            errs.add("kind", "required");
            "csat".to_owned()
        }
    };
    let comment = check(&mut errs, &kind, input.score, input.comment.as_deref());
    let channel = match input.channel.as_deref() {
        None | Some("phone") => "phone",
        Some("api") => "api",
        Some(_) => {
            errs.add("channel", "invalid");
            "phone"
        }
    };
    if input.ticket_id.is_none() && input.contact_id.is_none() {
        errs.add("contact_id", "required");
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    if let Some(t) = input.ticket_id {
        let known: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM tickets WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                args![ctx.tenant_id, t],
            )
            .await?;
        if known.is_none() {
            return Err(Error::field("ticket_id", "unknown"));
        }
    }
    if let Some(c) = input.contact_id {
        let known: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                args![ctx.tenant_id, c],
            )
            .await?;
        if known.is_none() {
            return Err(Error::field("contact_id", "unknown"));
        }
    }
    let id = store(
        &mut tx,
        ctx.tenant_id,
        &kind,
        None,
        input.ticket_id,
        input.contact_id,
        input.score.unwrap_or_default(),
        comment,
        channel,
        ctx.user_id,
    )
    .await?;
    let r: SurveyResponse = tx
        .fetch_one(
            &format!("{SELECT} WHERE r.tenant_id = $1 AND r.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "survey_responses",
        Some(id),
        None,
        Some(&r),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SurveyFilter {
    /// `csat` or `nps`.
    pub kind: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// The agent who owned the ticket.
    pub agent_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn filtered(ctx: &Ctx, f: &SurveyFilter, head: &str) -> Result<Sql> {
    let mut q = Sql::new(head);
    q.push(" WHERE r.tenant_id = ");
    q.bind(ctx.tenant_id);
    if let Some(k) = f.kind.as_deref() {
        if !KINDS.contains(&k) {
            return Err(Error::field("kind", "invalid"));
        }
        q.push(" AND r.kind = ");
        q.bind(k);
    }
    for (col, v) in [
        ("r.ticket_id", f.ticket_id),
        ("r.contact_id", f.contact_id),
        ("r.account_id", f.account_id),
        ("r.agent_id", f.agent_id),
    ] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = "));
            q.bind(v);
        }
    }
    Ok(q)
}

/// Responses, newest first (every one: history is kept).
pub async fn list(db: &Db, ctx: &Ctx, f: &SurveyFilter) -> Result<Page<SurveyResponse>> {
    ctx.require("tickets", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: None,
    };
    let limit = page.limit()?;
    let mut q = filtered(ctx, f, SELECT)?;
    if let Some(after) = page.cursor_id()? {
        q.push(" AND r.id < ");
        q.bind(after);
    }
    q.push(" ORDER BY r.id DESC LIMIT ");
    q.bind(limit + 1);
    let rows: Vec<SurveyResponse> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.to_string()))
}

/// CSAT and NPS over the latest answer of each ticket (answers without a ticket: each
/// contact's latest).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Summary {
    pub csat_answers: i64,
    /// Percent of 4s and 5s; absent without answers.
    pub csat_percent: Option<f64>,
    pub csat_average: Option<f64>,
    pub nps_answers: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// Promoters minus detractors, in percent (−100 to 100).
    pub nps: Option<f64>,
}

pub async fn summary(db: &Db, ctx: &Ctx, f: &SurveyFilter) -> Result<Summary> {
    ctx.require("tickets", Action::Read)?;
    // The latest answer per ticket (or per contact when it has no ticket), counted by the
    // database over every answer — the same rule as [`tally`], which tests it.
    let inner = filtered(
        ctx,
        f,
        "SELECT r.kind, r.score, ROW_NUMBER() OVER (
             PARTITION BY r.kind, COALESCE(r.ticket_id, r.contact_id, r.id)
             ORDER BY r.at DESC, r.id DESC) AS n
         FROM survey_responses r",
    )?;
    let mut q = Sql::new(
        "SELECT kind, COUNT(*), CAST(COALESCE(SUM(score), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN score >= 4 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN score >= 9 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN score BETWEEN 7 AND 8 THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM (",
    );
    q.append(inner);
    q.push(") latest WHERE n = 1 GROUP BY kind");
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = db.fetch_sql(q).await?;
    let mut s = Summary::default();
    for (kind, n, sum, good, high, middle) in rows {
        if kind == "csat" {
            s.csat_answers = n;
            if n > 0 {
                s.csat_percent = Some(100.0 * good as f64 / n as f64);
                s.csat_average = Some(sum as f64 / n as f64);
            }
        } else {
            s.nps_answers = n;
            s.promoters = high;
            s.passives = middle;
            s.detractors = n - high - middle;
            if n > 0 {
                s.nps = Some(100.0 * (high - (n - high - middle)) as f64 / n as f64);
            }
        }
    }
    Ok(s)
}

/// One stored answer, as the summary reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Answer {
    pub kind: String,
    pub score: i64,
    pub ticket_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// CSAT and NPS over answers given newest first: only the first seen (the latest) of each
/// ticket — or of each contact, for answers about no ticket — counts.
pub fn tally<'a>(newest_first: impl Iterator<Item = &'a Answer>) -> Summary {
    let mut seen = std::collections::HashSet::new();
    let mut s = Summary::default();
    let (mut csat_sum, mut csat_good) = (0i64, 0i64);
    for a in newest_first {
        if !seen.insert((
            a.kind.as_str(),
            a.ticket_id.or(a.contact_id).unwrap_or(a.id),
        )) {
            continue;
        }
        if a.kind == "csat" {
            s.csat_answers += 1;
            csat_sum += a.score;
            csat_good += i64::from(a.score >= 4);
        } else {
            s.nps_answers += 1;
            match a.score {
                9..=10 => s.promoters += 1,
                7..=8 => s.passives += 1,
                _ => s.detractors += 1,
            }
        }
    }
    if s.csat_answers > 0 {
        s.csat_percent = Some(100.0 * csat_good as f64 / s.csat_answers as f64);
        s.csat_average = Some(csat_sum as f64 / s.csat_answers as f64);
    }
    if s.nps_answers > 0 {
        s.nps = Some(100.0 * (s.promoters - s.detractors) as f64 / s.nps_answers as f64);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(kind: &str, score: i64, ticket: Option<u128>, contact: Option<u128>) -> Answer {
        Answer {
            kind: kind.into(),
            score,
            ticket_id: ticket.map(Uuid::from_u128),
            contact_id: contact.map(Uuid::from_u128),
            at: now(),
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn the_latest_answer_of_a_ticket_counts() {
        let rows = [
            answer("csat", 2, Some(1), Some(9)),
            answer("csat", 5, Some(1), Some(9)),
            answer("csat", 4, Some(2), Some(9)),
            answer("nps", 10, None, Some(9)),
            answer("nps", 3, None, Some(9)),
            answer("nps", 6, None, Some(8)),
        ];
        let s = tally(rows.iter());
        assert_eq!((s.csat_answers, s.csat_percent), (2, Some(50.0)));
        assert_eq!(s.csat_average, Some(3.0));
        assert_eq!((s.nps_answers, s.promoters, s.detractors), (2, 1, 1));
        assert_eq!(s.nps, Some(0.0));
    }

    proptest! {
        /// Whatever the answers: every counted one is in one bucket, NPS within ±100, CSAT
        /// within 0–100 and its average within the scale.
        #[test]
        fn summaries_stay_in_range(rows in proptest::collection::vec(
            (any::<bool>(), 0i64..=10, proptest::option::of(0u128..5), 0u128..5), 0..60)) {
            let answers: Vec<Answer> = rows
                .iter()
                .map(|(csat, score, ticket, contact)| {
                    let kind = if *csat { "csat" } else { "nps" };
                    let score = if *csat { 1 + score % 5 } else { *score };
                    answer(kind, score, *ticket, Some(*contact))
                })
                .collect();
            let s = tally(answers.iter());
            prop_assert_eq!(s.promoters + s.passives + s.detractors, s.nps_answers);
            prop_assert!(s.nps.is_none_or(|n| (-100.0..=100.0).contains(&n)));
            prop_assert!(s.csat_percent.is_none_or(|p| (0.0..=100.0).contains(&p)));
            prop_assert!(s.csat_average.is_none_or(|a| (1.0..=5.0).contains(&a)));
            // Never more counted than distinct subjects.
            let distinct: std::collections::HashSet<_> = answers
                .iter()
                .map(|a| (a.kind.clone(), a.ticket_id.or(a.contact_id)))
                .collect();
            prop_assert_eq!((s.csat_answers + s.nps_answers) as usize, distinct.len());
        }
    }
}
