//! Document numbers (migration 8): quotes first, then invoices, contracts, tickets. A tenant sets
//! a pattern per kind of document (`Q-{YYYY}-{SEQ:6}` gives `Q-2026-000123`); [`next`] gives the
//! next number inside the caller's transaction. The counter is kept per kind and *period* — the
//! pattern's date part on the tenant's calendar, so a `{YYYY}` pattern restarts at 1 each year —
//! and advanced by one upsert whose row lock (PostgreSQL) or write lock (SQLite) serialises
//! concurrent documents: numbers never repeat, and a document whose transaction rolls back gives
//! its number back, so there are no gaps.

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use crate::db::{Conn, Db, Tx};
use crate::error::{Errors, Result};
use crate::perms::Action;
use crate::time::now;
use crate::{args, audit, Ctx};

/// The longest pattern accepted, in characters.
pub const MAX_PATTERN: usize = 40;

/// One piece of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Year4,
    Year2,
    Month,
    Day,
    /// The counter, zero-padded to this many digits.
    Seq(usize),
}

/// A checked pattern: text and the tokens `{YYYY}`, `{YY}`, `{MM}`, `{DD}` and exactly one
/// `{SEQ}` or `{SEQ:n}` (n = 1…12 digits, zero-padded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Piece>);

impl Pattern {
    /// Parses `raw`; the error is the code for the `pattern` field.
    pub fn parse(raw: &str) -> std::result::Result<Pattern, &'static str> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("required");
        }
        if raw.chars().count() > MAX_PATTERN {
            return Err("too_long");
        }
        let mut pieces = Vec::new();
        let mut rest = raw;
        let mut seqs = 0;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after.find('}').ok_or("invalid")?;
                let token = &after[..end];
                pieces.push(match token {
                    "YYYY" => Piece::Year4,
                    "YY" => Piece::Year2,
                    "MM" => Piece::Month,
                    "DD" => Piece::Day,
                    "SEQ" => Piece::Seq(1),
                    t => match t.strip_prefix("SEQ:").map(str::parse::<usize>) {
                        Some(Ok(n)) if (1..=12).contains(&n) => Piece::Seq(n),
                        _ => return Err("invalid"),
                    },
                });
                if matches!(pieces.last(), Some(Piece::Seq(_))) {
                    seqs += 1;
                }
                rest = &after[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let text = &rest[..end];
                if text
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '}')
                {
                    return Err("invalid");
                }
                pieces.push(Piece::Text(text.to_owned()));
                rest = &rest[end..];
            }
        }
        if seqs != 1 {
            return Err("needs_seq");
        }
        Ok(Pattern(pieces))
    }

    /// The counter's period for a document dated `day`: the date tokens expanded (empty when
    /// the pattern has none: one counter forever).
    fn period(&self, day: chrono::NaiveDate) -> String {
        self.0
            .iter()
            .filter_map(|p| match p {
                Piece::Year4 | Piece::Year2 => Some(format!("{:04}", day.year())),
                Piece::Month => Some(format!("{:02}", day.month())),
                Piece::Day => Some(format!("{:02}", day.day())),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The number for counter value `n` on `day`.
    pub fn format(&self, day: chrono::NaiveDate, n: i64) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Year4 => format!("{:04}", day.year()),
                Piece::Year2 => format!("{:02}", day.year().rem_euclid(100)),
                Piece::Month => format!("{:02}", day.month()),
                Piece::Day => format!("{:02}", day.day()),
                Piece::Seq(w) => format!("{n:0w$}"),
            })
            .collect()
    }
}

/// The tenant's pattern for `name`, or `default`.
pub async fn pattern(
    conn: impl Into<Conn<'_>>,
    tenant: Uuid,
    name: &str,
    default: &str,
) -> Result<String> {
    let p: Option<(String,)> = conn
        .into()
        .fetch_optional(
            "SELECT pattern FROM numberings WHERE tenant_id = $1 AND name = $2",
            args![tenant, name],
        )
        .await?;
    Ok(p.map(|(p,)| p).unwrap_or_else(|| default.to_owned()))
}

/// The tenant's local date at `at`.
async fn local_day(tx: &mut Tx, tenant: Uuid, at: DateTime<Utc>) -> Result<chrono::NaiveDate> {
    let tz: String = tx
        .scalar("SELECT time_zone FROM tenants WHERE id = $1", args![tenant])
        .await?;
    Ok(match tz.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).date_naive(),
        Err(_) => at.date_naive(),
    })
}

/// The next number of kind `name` (pattern `default` unless the tenant set one), taken inside
/// `tx`: it is the tenant's only once `tx` commits.
pub async fn next(tx: &mut Tx, tenant: Uuid, name: &str, default: &str) -> Result<String> {
    let raw = pattern(&mut *tx, tenant, name, default).await?;
    let pattern = Pattern::parse(&raw)
        .or_else(|_| Pattern::parse(default))
        .map_err(|c| crate::Error::Internal(anyhow::anyhow!("numbering {name}: default {c}")))?;
    let day = local_day(tx, tenant, now()).await?;
    let period = pattern.period(day);
    let n: i64 = tx
        .scalar(
            "INSERT INTO numbering_counters (tenant_id, name, period, last_value) VALUES ($1, $2, $3, 1)
             ON CONFLICT (tenant_id, name, period)
             DO UPDATE SET last_value = numbering_counters.last_value + 1
             RETURNING last_value",
            args![tenant, name, period.as_str()],
        )
        .await?;
    Ok(pattern.format(day, n))
}

/// Sets the tenant's pattern for `name` (an admin's: the `settings` module). Numbers already
/// given keep theirs; the next one follows the new pattern (its counter starts at 1 for a
/// period not seen before).
pub async fn set(db: &Db, ctx: &Ctx, name: &str, raw: &str) -> Result<String> {
    ctx.require("settings", Action::Update)?;
    let mut errs = Errors::default();
    if let Err(c) = Pattern::parse(raw) {
        errs.add("pattern", c);
    }
    errs.finish()?;
    let raw = raw.trim();
    let mut tx = db.begin().await?;
    let before: Option<(String,)> = tx
        .fetch_optional(
            "SELECT pattern FROM numberings WHERE tenant_id = $1 AND name = $2",
            args![ctx.tenant_id, name],
        )
        .await?;
    tx.execute(
        "INSERT INTO numberings (tenant_id, name, pattern, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, name) DO UPDATE SET pattern = excluded.pattern,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        args![ctx.tenant_id, name, raw, now(), ctx.user_id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "numberings",
        None,
        before
            .map(|(p,)| serde_json::json!({ "name": name, "pattern": p }))
            .as_ref(),
        Some(&serde_json::json!({ "name": name, "pattern": raw })),
    )
    .await?;
    tx.commit().await?;
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn patterns_expand_and_periods_follow_the_date_tokens() {
        let p = Pattern::parse("Q-{YYYY}-{SEQ:6}").unwrap_or(Pattern(vec![]));
        assert_eq!(p.format(day(2026, 12, 4), 123), "Q-2026-000123");
        assert_eq!(p.period(day(2026, 12, 4)), "2026");
        assert_eq!(p.period(day(2027, 1, 1)), "2027");
        let m = Pattern::parse("BJ{YY}{MM}-{SEQ}").unwrap_or(Pattern(vec![]));
        assert_eq!(m.format(day(2026, 3, 9), 7), "BJ2603-7");
        assert_eq!(m.period(day(2026, 3, 9)), "2026-03");
        let forever = Pattern::parse("QT{SEQ:4}").unwrap_or(Pattern(vec![]));
        assert_eq!(forever.period(day(2026, 3, 9)), "");
        assert_eq!(forever.format(day(2026, 3, 9), 123_456), "QT123456");
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert_eq!(Pattern::parse(""), Err("required"));
        assert_eq!(Pattern::parse("Q-{YYYY}"), Err("needs_seq"));
        assert_eq!(Pattern::parse("{SEQ}{SEQ}"), Err("needs_seq"));
        assert_eq!(Pattern::parse("Q {SEQ}"), Err("invalid"));
        assert_eq!(Pattern::parse("Q-{SEQ:13}"), Err("invalid"));
        assert_eq!(Pattern::parse("Q-{SEQ"), Err("invalid"));
        assert_eq!(Pattern::parse("Q-{NOPE}-{SEQ}"), Err("invalid"));
        assert_eq!(Pattern::parse(&"Q".repeat(41)), Err("too_long"));
    }
}
