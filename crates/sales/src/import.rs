//! Lead lists from a file — "4,700 business cards from a trade show, now what?": a CSV (UTF-8
//! or GBK, Chinese or English headers) or XLSX, one person a row. Each row goes through the
//! lead intake, so a person already known (a contact, or a lead) gets the row as a touch and
//! nobody is entered twice — within the file too; new leads are tagged with the campaign, owned
//! by the assignment rules (else the importer), each given its owner a follow-up task, and each
//! rep who got new leads is told once how many. A row that cannot be read is reported with its number and reason; the others are
//! kept. A dry run reports the same without writing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::activities::{self, ActivityInput};
use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{notifications, Ctx, Error};
use guanxi_records::custom_fields;
use guanxi_records::record::Lookups;
use guanxi_records::tables::Table;

use crate::intake::{self, Arrival, Outcome};
use crate::leads::LeadInput;

/// Header names (lower-cased, trimmed) read as each lead field.
const HEADERS: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "name",
            "姓名",
            "名字",
            "名称",
            "名稱",
            "联系人",
            "客户姓名",
            "full name",
        ],
    ),
    (
        "company",
        &[
            "company",
            "公司",
            "公司名称",
            "单位",
            "企业",
            "organization",
        ],
    ),
    ("title", &["title", "职位", "职务", "job title"]),
    (
        "phone",
        &[
            "phone",
            "mobile",
            "手机",
            "手机号",
            "电话",
            "联系电话",
            "手机号码",
        ],
    ),
    (
        "email",
        &["email", "e-mail", "邮箱", "电子邮件", "电子邮箱"],
    ),
    ("wechat", &["wechat", "微信", "微信号"]),
    ("province", &["province", "省", "省份"]),
    ("city", &["city", "城市", "市"]),
    ("industry", &["industry", "行业"]),
    (
        "product_interest",
        &[
            "product_interest",
            "product interest",
            "意向产品",
            "感兴趣的产品",
            "关注产品",
        ],
    ),
    ("notes", &["notes", "备注", "留言", "说明"]),
];

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadImportOptions {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// Tag every new lead with this (e.g. the trade show's name); also its source detail.
    pub campaign: Option<String>,
    /// `true` reads and checks every row and writes nothing.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadRowError {
    /// The spreadsheet's row number (the header is row 1).
    pub row: u64,
    /// `<field>: <code>`, or why the row could not be read.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LeadImportReport {
    pub rows: u64,
    /// New leads.
    pub created: u64,
    /// People already known: the row was recorded on their record.
    pub matched: u64,
    /// Rows repeating an earlier row (or a recent arrival): nothing new.
    pub repeated: u64,
    /// Follow-up tasks given to the new leads' owners (one a lead, due when its first response
    /// is; none where the importer may not log activities or see the lead).
    pub tasks: u64,
    pub errors: Vec<LeadRowError>,
    /// The columns read, header → field; headers not listed were ignored.
    pub columns: BTreeMap<String, String>,
    pub dry_run: bool,
}

/// At most this many row errors are listed (all are counted in `rows`).
const MAX_ERRORS: usize = 1000;

/// The follow-up task for a new lead's owner, in the row's transaction. `false` when the
/// importer may not log activities or see the lead (nothing written).
async fn follow_up(
    tx: &mut Tx,
    ctx: &Ctx,
    lead: &crate::leads::Lead,
    owner: Uuid,
    campaign: Option<&str>,
) -> Result<bool> {
    if ctx.can("activities", Action::Create).is_none() {
        return Ok(false);
    }
    let subject = match (ctx.is_zh(), campaign) {
        (true, Some(c)) => format!("跟进 {}（{c}）", lead.name),
        (true, None) => format!("跟进 {}", lead.name),
        (false, Some(c)) => format!("Follow up {} ({c})", lead.name),
        (false, None) => format!("Follow up {}", lead.name),
    };
    let input = ActivityInput {
        kind: Some("task".into()),
        subject: Some(subject.chars().take(200).collect()),
        assignee_id: Some(owner),
        due_at: Some(lead.response_due_at),
        ..Default::default()
    };
    match activities::create_in(tx, ctx, Some((crate::leads::ENTITY, lead.id)), input).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound | Error::Forbidden) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn run(
    db: &Db,
    ctx: &Ctx,
    table: Table,
    opts: &LeadImportOptions,
) -> Result<LeadImportReport> {
    ctx.require("leads", Action::Create)?;
    let dry_run = opts.dry_run == Some(true);
    let mut columns: Vec<(usize, &'static str)> = Vec::new();
    let mut report = LeadImportReport {
        dry_run,
        ..Default::default()
    };
    let defs = custom_fields::active_in(db, ctx.tenant_id, crate::leads::ENTITY).await?;
    let mut custom_columns: Vec<(usize, String)> = Vec::new();
    for (i, h) in table.headers.iter().enumerate() {
        let key = h.trim().to_lowercase();
        if let Some((field, _)) = HEADERS
            .iter()
            .find(|(_, names)| names.contains(&key.as_str()))
        {
            if !columns.iter().any(|(_, f)| f == field) {
                columns.push((i, field));
                report.columns.insert(h.clone(), (*field).to_owned());
            }
        } else if let Some(d) = defs.iter().find(|d| {
            d.key == key
                || d.label.trim().to_lowercase() == key
                || d.labels.values().any(|l| l.trim().to_lowercase() == key)
        }) {
            custom_columns.push((i, d.key.clone()));
            report
                .columns
                .insert(h.clone(), format!("custom.{}", d.key));
        }
    }
    if !columns.iter().any(|(_, f)| *f == "name") {
        return Err(Error::field("file", "no_name_column"));
    }
    let campaign = opts
        .campaign
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(50).collect::<String>());
    let mut per_owner: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    // The owners named in the file, each looked up once.
    let mut owners = Lookups::default();
    for row in table.rows {
        report.rows += 1;
        let (line, cells) = match row {
            Ok(r) => r,
            Err((line, reason)) => {
                if report.errors.len() < MAX_ERRORS {
                    report.errors.push(LeadRowError { row: line, reason });
                }
                continue;
            }
        };
        let cell = |i: usize| {
            cells
                .get(i)
                .map(|v| guanxi_records::tables::csv_unsafe(v.trim()).to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut obj = serde_json::Map::new();
        for (i, field) in &columns {
            if let Some(v) = cell(*i) {
                obj.insert((*field).to_owned(), serde_json::Value::String(v));
            }
        }
        if obj.values().all(|v| v.as_str().is_none_or(str::is_empty)) {
            report.rows -= 1; // a blank line is not a row
            continue;
        }
        let mut input: LeadInput = match serde_json::from_value(serde_json::Value::Object(obj)) {
            Ok(i) => i,
            Err(e) => {
                report.errors.push(LeadRowError {
                    row: line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let values: BTreeMap<String, String> = custom_columns
            .iter()
            .filter_map(|(i, k)| cell(*i).map(|v| (format!("custom.{k}"), v)))
            .collect();
        input.custom = custom_fields::from_text(&defs, &|name| values.get(name).cloned());
        if let Some(c) = &campaign {
            input.tags = Some(vec![c.clone()]);
        }
        let arrival = Arrival {
            source: "import".into(),
            detail: campaign.clone(),
            extra: serde_json::json!({"row": line}),
            fallback_owner: None,
        };
        let mut tx = db.begin().await?;
        // A dry run rolls every row back, so it remembers the file's own people itself.
        if dry_run {
            match intake::identity(&mut tx, ctx, &input, &arrival).await {
                Ok((keys, fingerprint)) => {
                    let again = if !seen.insert(fingerprint) {
                        Some(Outcome::Repeated)
                    } else if keys.iter().any(|k| seen.contains(k)) {
                        Some(Outcome::Matched)
                    } else {
                        None
                    };
                    seen.extend(keys);
                    match again {
                        Some(Outcome::Repeated) => {
                            report.repeated += 1;
                            continue;
                        }
                        Some(_) => {
                            report.matched += 1;
                            continue;
                        }
                        None => {}
                    }
                }
                // Said below, by the intake itself.
                Err(Error::Validation(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let result = intake::intake_in(&mut tx, ctx, input, arrival, &mut owners).await;
        match result {
            Ok(r) => {
                match r.outcome {
                    Outcome::Created => {
                        report.created += 1;
                        if let Some(lead) = &r.lead {
                            if let Some(owner) = lead.owner_id {
                                *per_owner.entry(owner).or_default() += 1;
                                if follow_up(&mut tx, ctx, lead, owner, campaign.as_deref()).await?
                                {
                                    report.tasks += 1;
                                }
                            }
                        }
                    }
                    Outcome::Matched => report.matched += 1,
                    Outcome::Repeated => report.repeated += 1,
                }
                // A dry run's transaction is dropped: rolled back.
                if !dry_run {
                    tx.commit().await?;
                }
            }
            Err(Error::Validation(errs)) => {
                if report.errors.len() < MAX_ERRORS {
                    report.errors.push(LeadRowError {
                        row: line,
                        reason: errs
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.code))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !dry_run && !per_owner.is_empty() {
        // Each rep who got new leads is told once, with how many to follow up.
        let mut tx = db.begin().await?;
        for (owner, count) in per_owner {
            notifications::notify(
                &mut tx,
                ctx,
                owner,
                notifications::Notice {
                    kind: "leads_imported",
                    params: serde_json::json!({"count": count, "campaign": campaign.clone().unwrap_or_default()}),
                    link: Some("/leads?status=new".into()),
                    entity: None,
                    entity_id: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(report)
}
