//! Importing contacts, accounts and orders from CSV (UTF-8 or GBK/GB18030, as Chinese Excel
//! saves it), XLSX and vCard (contacts) — each file read as a table by `tables`. Columns are
//! mapped by guessing from Chinese and English headers and labels (custom fields included),
//! or by an explicit mapping; rows are streamed (bounded memory), each validated by the same
//! service function as a form. Contacts are saved in batches of [`BATCH`] rows, accounts and
//! orders in batches of [`UNITS`] ([`COMMAND_UNITS`] from the command line), one transaction
//! each: what the batch names (companies,
//! customers, products, existing records) looked up by a few queries, each row validated by
//! the form's own `prepare`, the new records written several to a statement (an update, or a
//! batch whose bulk write is refused, goes one record at a time); a crash loses at most the
//! batch in flight. Bad rows are reported (row, column, reason) and skipped while good rows go
//! in; nothing is silently altered. Contacts and accounts that match an existing record follow
//! the duplicate policy — with `skip` (the default) re-running a file doubles nothing; orders
//! are pushed by their number (`orders::push`), which is idempotent by construction.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};

use crate::accounts::{self, AccountInput};
use crate::contacts::{self, ContactInput};
use crate::duplicates;
use crate::orders::{self, LineInput, OrderInput, Pushed};
use guanxi_records::custom_fields::{self, CustomField};
use guanxi_records::normalize;
use guanxi_records::record;
use guanxi_records::tables::Table;
use guanxi_records::Entity;

/// What to do with a row that matches an existing contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Leave the existing contact alone (re-running a file doubles nothing).
    #[default]
    Skip,
    /// Fill the existing contact with the row's non-empty values.
    Update,
    /// Create a new contact anyway.
    Create,
}

/// The fields a column can feed, with the headers that name them (besides the API name).
const CONTACT_ALIASES: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "姓名",
            "名字",
            "联系人",
            "联系人姓名",
            "客户姓名",
            "full name",
            "contact",
        ],
    ),
    (
        "phone",
        &[
            "手机",
            "手机号",
            "手机号码",
            "电话",
            "联系电话",
            "mobile",
            "telephone",
            "tel",
            "phone number",
        ],
    ),
    (
        "email",
        &["邮箱", "电子邮件", "电子邮箱", "邮件", "e-mail", "mail"],
    ),
    ("wechat", &["微信", "微信号", "weixin"]),
    ("title", &["职位", "职务", "job title", "position"]),
    ("department", &["部门", "dept"]),
    (
        "account",
        &[
            "公司",
            "公司名称",
            "单位",
            "客户",
            "所属客户",
            "company",
            "account",
            "organization",
            "organisation",
        ],
    ),
    (
        "country",
        &[
            "国家",
            "国家/地区",
            "國家",
            "國家/地區",
            "country",
            "country code",
            "nation",
        ],
    ),
    ("province", &["省", "省份", "state"]),
    ("city", &["市", "城市"]),
    ("district", &["区", "区县", "区/县", "county"]),
    ("address", &["地址", "详细地址", "street", "street address"]),
    ("gender", &["性别", "sex"]),
    (
        "birthday",
        &["生日", "出生日期", "birth date", "date of birth"],
    ),
    ("notes", &["备注", "说明", "note", "comments"]),
    ("tags", &["标签", "标记", "tag"]),
    ("family_name", &["姓", "last name", "surname"]),
    ("given_name", &["名", "first name"]),
];

/// Account columns and the headers that name them.
const ACCOUNT_ALIASES: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "公司名称",
            "客户名称",
            "企业名称",
            "单位名称",
            "名称",
            "company",
            "account",
            "company name",
        ],
    ),
    (
        "credit_code",
        &[
            "统一社会信用代码",
            "信用代码",
            "社会信用代码",
            "credit code",
            "uscc",
        ],
    ),
    ("industry", &["行业", "所属行业"]),
    ("phone", &["电话", "联系电话", "座机", "telephone", "tel"]),
    ("email", &["邮箱", "电子邮件", "e-mail", "mail"]),
    ("website", &["网址", "官网", "网站", "web", "url"]),
    ("wechat", &["微信", "微信号", "公众号"]),
    (
        "country",
        &[
            "国家",
            "国家/地区",
            "國家",
            "國家/地區",
            "country",
            "country code",
            "nation",
        ],
    ),
    ("province", &["省", "省份", "state"]),
    ("city", &["市", "城市"]),
    ("district", &["区", "区县", "区/县", "county"]),
    ("address", &["地址", "详细地址", "street"]),
    ("postal_code", &["邮编", "邮政编码", "zip", "postcode"]),
    ("source", &["来源", "客户来源", "lead source"]),
    ("description", &["描述", "简介", "备注", "notes"]),
    (
        "parent",
        &["上级客户", "母公司", "上级单位", "parent", "parent account"],
    ),
    ("tags", &["标签", "标记", "tag"]),
];

/// Order columns (one row per order line; the lines of one order on consecutive rows).
const ORDER_ALIASES: &[(&str, &[&str])] = &[
    (
        "number",
        &[
            "订单号",
            "单号",
            "订单编号",
            "order number",
            "order no",
            "external_id",
        ],
    ),
    ("channel", &["渠道", "销售渠道"]),
    ("status", &["状态", "订单状态"]),
    (
        "ordered_at",
        &[
            "下单时间",
            "下单日期",
            "订单日期",
            "日期",
            "order date",
            "date",
        ],
    ),
    (
        "account",
        &["客户", "客户名称", "公司", "公司名称", "company", "account"],
    ),
    ("contact", &["联系人", "姓名", "contact"]),
    ("currency", &["币种", "货币"]),
    ("sku", &["商品编码", "货号", "编码", "product code"]),
    (
        "product",
        &[
            "商品",
            "商品名称",
            "产品",
            "产品名称",
            "品名",
            "product",
            "item",
        ],
    ),
    ("quantity", &["数量", "qty"]),
    ("unit_price", &["单价", "价格", "price", "unit price"]),
    ("discount", &["折扣", "优惠"]),
    ("notes", &["备注", "note"]),
];

/// What an import creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ImportTarget)]
pub enum Target {
    Contacts,
    Accounts,
    Orders,
}

impl Target {
    fn aliases(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Target::Contacts => CONTACT_ALIASES,
            Target::Accounts => ACCOUNT_ALIASES,
            Target::Orders => ORDER_ALIASES,
        }
    }

    /// The column every file must have.
    fn required(self) -> &'static str {
        match self {
            Target::Orders => "number",
            _ => "name",
        }
    }

    fn entity(self) -> Option<Entity> {
        match self {
            Target::Contacts => Some(crate::contacts::ENTITY),
            Target::Accounts => Some(crate::accounts::ENTITY),
            Target::Orders => None,
        }
    }

    /// The fields a column can feed (for a mapping chosen by hand).
    pub fn fields(self) -> Vec<&'static str> {
        self.aliases().iter().map(|(f, _)| *f).collect()
    }
}

/// The field a header names, if any: the API name, a known alias, or a label the caller adds
/// (the UI's translated labels, so an exported file imports back).
pub fn guess(header: &str, labels: &[(String, String)]) -> Option<&'static str> {
    guess_in(CONTACT_ALIASES, header, labels)
}

fn guess_in(
    aliases: &'static [(&'static str, &'static [&'static str])],
    header: &str,
    labels: &[(String, String)],
) -> Option<&'static str> {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    let h = h.trim_end_matches(['*', ':', '：']).trim();
    for (field, names) in aliases {
        if h == *field || names.iter().any(|n| n.to_lowercase() == h) {
            return Some(field);
        }
    }
    labels
        .iter()
        .find(|(label, _)| label.to_lowercase() == h)
        .and_then(|(_, field)| aliases.iter().find(|(f, _)| f == field).map(|(f, _)| *f))
}

/// The custom field a header names: its key, `custom.<key>`, or its label in any language.
fn guess_custom(header: &str, defs: &[CustomField]) -> Option<String> {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    let h = h.trim_end_matches(['*', ':', '：']).trim();
    defs.iter()
        .find(|d| {
            h == d.key
                || h.strip_prefix("custom.") == Some(d.key.as_str())
                || h == d.label.to_lowercase()
                || d.labels.values().any(|l| l.to_lowercase() == h)
        })
        .map(|d| format!("custom.{}", d.key))
}

/// A row's custom values as the API takes them; money is typed in yuan in files.
pub use guanxi_records::tables::{detect, Encoding};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// The spreadsheet's row number: the header is row 1 (a vCard's: its card number).
    pub row: u64,
    /// The file's column header (or the field).
    pub column: String,
    pub reason: String,
    /// The value the row holds in that column, as written.
    pub value: Option<String>,
    /// The row's name (the record it would have been), to find it by.
    pub name: Option<String>,
}

/// A row not imported because the record it describes is already there (`skip`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkippedRow {
    pub row: u64,
    /// The record it matched.
    pub matched_id: Option<Uuid>,
    pub matched_name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ColumnMap {
    pub header: String,
    /// The field it feeds, or none (ignored).
    pub field: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub encoding: Option<Encoding>,
    pub columns: Vec<ColumnMap>,
    /// Records the file describes: contacts or accounts (one a row), or orders (one for
    /// each run of rows with one number).
    pub rows: u64,
    /// Rows of data read from the file (blank ones not counted); equals `rows` but for orders.
    #[serde(default)]
    pub lines: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Row-level problems (the first 1,000).
    pub errors: Vec<RowError>,
    /// Rows skipped as duplicates, with the record each matched (the first 1,000).
    #[serde(default)]
    pub skipped_rows: Vec<SkippedRow>,
}

pub struct ImportOptions {
    pub dry_run: bool,
    pub duplicates: DuplicatePolicy,
    /// Translated field labels → field, so exported files import back.
    pub labels: Vec<(String, String)>,
    /// Column header → field (or `""` to ignore the column), overriding the guess.
    pub mapping: BTreeMap<String, String>,
}

const MAX_ERRORS: usize = 1000;

/// The row being imported: its cells by field.
struct Row<'a> {
    fields: &'a [Option<String>],
    cells: &'a [String],
}

impl Row<'_> {
    fn get(&self, field: &str) -> Option<String> {
        self.fields
            .iter()
            .position(|f| f.as_deref() == Some(field))
            .and_then(|i| self.cells.get(i))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// Imports `table` as `target`. `progress` is told the number of rows done every 100 rows.
pub async fn run(
    db: &Db,
    ctx: &Ctx,
    target: Target,
    table: Table,
    opts: &ImportOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ImportReport> {
    let module = match target {
        Target::Contacts => "contacts",
        Target::Accounts => "accounts",
        Target::Orders => "orders",
    };
    ctx.require(module, Action::Create)?;
    let defs = match target.entity() {
        Some(e) => custom_fields::active_in(db, ctx.tenant_id, e).await?,
        None => vec![],
    };
    let Table {
        headers,
        encoding,
        rows,
    } = table;
    // A hand-made mapping wins; else built-in fields by name, alias or label; then custom
    // fields by key or label.
    let mut errors = Vec::new();
    let fields: Vec<Option<String>> = headers
        .iter()
        .map(|h| match opts.mapping.get(h) {
            Some(f) if f.is_empty() => None,
            Some(f) if target.fields().contains(&f.as_str()) => Some(f.clone()),
            Some(f)
                if f.strip_prefix("custom.")
                    .is_some_and(|k| defs.iter().any(|d| d.key == k)) =>
            {
                Some(f.clone())
            }
            Some(f) => {
                errors.push(format!("mapping.{h}: {f}"));
                None
            }
            None => guess_in(target.aliases(), h, &opts.labels)
                .map(str::to_owned)
                .or_else(|| guess_custom(h, &defs)),
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::field("mapping", "unknown_field"));
    }
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        encoding,
        columns: headers
            .iter()
            .zip(&fields)
            .map(|(h, f)| ColumnMap {
                header: h.clone(),
                field: f.clone(),
            })
            .collect(),
        ..Default::default()
    };
    if !fields
        .iter()
        .any(|f| f.as_deref() == Some(target.required()))
    {
        return Err(Error::field(
            "file",
            &format!("no_{}_column", target.required()),
        ));
    }
    let header_of = |field: &str| {
        let f = column_of(target, field);
        fields
            .iter()
            .position(|x| x.as_deref() == Some(f))
            .and_then(|i| headers.get(i))
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    };
    // Contacts go in batches of rows; accounts and orders in batches of units (an account's
    // row, an order's consecutive lines).
    let mut batch: Vec<(u64, Vec<String>)> = Vec::new();
    let mut batches: u64 = 0;
    let mut units: Vec<(u64, Vec<Vec<String>>)> = Vec::new();
    let mut dry = HashSet::new();
    let writer = UnitWriter {
        db,
        ctx,
        target,
        opts,
        defs: &defs,
        fields: &fields,
        header_of: &header_of,
    };
    let mut pending: Option<(String, u64, Vec<Vec<String>>)> = None;
    let per_batch = if db.is_command() {
        COMMAND_UNITS
    } else {
        UNITS
    };
    for row in rows {
        let (line, cells) = match row {
            Ok(r) => r,
            Err((line, reason)) => {
                report.rows += 1;
                report.lines += 1;
                report.failed += 1;
                push_error(&mut report, line, "file".into(), reason);
                continue;
            }
        };
        if cells.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        report.lines += 1;
        match target {
            Target::Contacts => {
                report.rows += 1;
                batch.push((line, cells));
                if batch.len() >= BATCH {
                    let rows = std::mem::take(&mut batch);
                    contact_batch(db, ctx, opts, &defs, &fields, rows, &mut report, &header_of)
                        .await?;
                    batches += 1;
                    analyze_if_due(db, opts, target, batches).await?;
                    progress(report.rows);
                }
                continue;
            }
            Target::Accounts => {
                report.rows += 1;
                units.push((line, vec![cells]));
            }
            Target::Orders => {
                let number = Row {
                    fields: &fields,
                    cells: &cells,
                }
                .get("number")
                .unwrap_or_default();
                match &mut pending {
                    Some((n, _, lines)) if *n == number && !number.is_empty() => {
                        lines.push(cells);
                        continue;
                    }
                    _ => {
                        report.rows += 1;
                        if let Some((_, first, lines)) =
                            pending.replace((number, line, vec![cells]))
                        {
                            units.push((first, lines));
                        }
                    }
                }
            }
        }
        if units.len() >= per_batch {
            let done = std::mem::take(&mut units);
            writer.write(done, &mut dry, &mut report).await?;
            batches += 1;
            analyze_if_due(db, opts, target, batches).await?;
            progress(report.rows);
        }
    }
    if !batch.is_empty() {
        contact_batch(
            db,
            ctx,
            opts,
            &defs,
            &fields,
            batch,
            &mut report,
            &header_of,
        )
        .await?;
    }
    if let Some((_, first, lines)) = pending.take() {
        units.push((first, lines));
    }
    if !units.is_empty() {
        writer.write(units, &mut dry, &mut report).await?;
    }
    progress(report.rows);
    // A large import changes the tables' shape: let the planner's statistics follow.
    if !opts.dry_run && report.created + report.updated >= 1_000 {
        db.analyze(false).await?;
    }
    if !opts.dry_run {
        db.finish_bulk_load().await?;
    }
    Ok(report)
}

/// PostgreSQL's statistics do not know a tenant new since the last ANALYZE (it estimates one
/// row), and then plans a batch's lookups as nested loops over the tenant's rows — quadratic
/// (a batch's duplicate query for contacts; reading 200 accounts back by id took 45 ms with a
/// walk of every account of the tenant per row). Refreshed after batches 1, 4, 16, 64, …: a
/// handful of ANALYZEs for a million rows, each of only the columns the lookups read (0.3 s
/// at a million contacts; the whole table, with the search index's 10,000-token statistics,
/// takes 11 s).
async fn analyze_if_due(db: &Db, opts: &ImportOptions, target: Target, batches: u64) -> Result<()> {
    if db.backend() != Backend::Postgres
        || opts.dry_run
        || !batches.is_power_of_two()
        || !batches.trailing_zeros().is_multiple_of(2)
    {
        return Ok(());
    }
    let sql = match target {
        Target::Contacts => {
            "ANALYZE contacts (tenant_id, id, phone_e164, email, name, account_id, deleted_at)"
        }
        Target::Accounts => {
            "ANALYZE accounts (tenant_id, id, name, credit_code, parent_id, owner_id, deleted_at)"
        }
        Target::Orders => "ANALYZE orders (tenant_id, id, channel, external_id, number)",
    };
    db.execute(sql, vec![]).await?;
    Ok(())
}

/// The file's column a refused field is read from: an id the row named by name (`account_id`
/// ← `account`), a line's field by its own name.
fn column_of(target: Target, field: &str) -> &str {
    let f = field.split('[').next().unwrap_or(field);
    let f = f.strip_prefix("lines.").unwrap_or(f);
    match f {
        "account_id" => "account",
        "contact_id" => "contact",
        "parent_id" => "parent",
        "name" if target == Target::Orders => "product",
        other => other,
    }
}

/// Counts a row's outcome; a refused row is reported by column, anything else stops the
/// import.
fn tally(
    report: &mut ImportReport,
    target: Target,
    line: u64,
    row: &Row<'_>,
    result: Result<Outcome>,
    header_of: &(dyn Fn(&str) -> String + Sync),
) -> Result<()> {
    match result {
        Ok(Outcome::Created) => report.created += 1,
        Ok(Outcome::Updated) => report.updated += 1,
        Ok(Outcome::Skipped(matched)) => {
            report.skipped += 1;
            if report.skipped_rows.len() < MAX_ERRORS {
                let (matched_id, matched_name) = match matched {
                    Some((id, name)) => (Some(id), name),
                    None => (
                        None,
                        row.get("name")
                            .or_else(|| row.get("number"))
                            .unwrap_or_default(),
                    ),
                };
                report.skipped_rows.push(SkippedRow {
                    row: line,
                    matched_id,
                    matched_name,
                });
            }
        }
        Err(Error::Validation(errs)) => {
            report.failed += 1;
            for e in errs {
                // The field as the row names it: `custom.x`, `account` (the company), or a
                // field of its own (an indexed one such as `lines[0].sku` reads its base).
                let field = e.field.split(['[', '.']).next().unwrap_or(&e.field);
                let value = row
                    .get(&e.field)
                    .or_else(|| row.get(field))
                    .or_else(|| row.get(column_of(target, &e.field)));
                if report.errors.len() < MAX_ERRORS {
                    report.errors.push(RowError {
                        row: line,
                        column: header_of(&e.field),
                        reason: e.code,
                        value,
                        name: row.get("name").or_else(|| row.get("number")),
                    });
                }
            }
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
fn push_error(report: &mut ImportReport, row: u64, column: String, reason: String) {
    if report.errors.len() < MAX_ERRORS {
        report.errors.push(RowError {
            row,
            column,
            reason,
            value: None,
            name: None,
        });
    }
}

enum Outcome {
    Created,
    Updated,
    /// Already there: the record matched (id and name), when known.
    Skipped(Option<(Uuid, String)>),
}

/// Contacts written per transaction: a crash loses at most the batch in flight, and a re-run
/// (duplicates `skip`) finds the batches already written.
const BATCH: usize = 500;

/// Accounts or orders written per transaction (the same promise) by a server, which holds
/// its one SQLite writer for a batch (~0.1 s).
const UNITS: usize = 200;

/// … and by `guanxi import`, which has the database to itself: on SQLite every commit
/// writes the pages the batch touched to the log (an index's upper pages again each time) —
/// an order import ran 1.3× faster with ten times fewer commits.
const COMMAND_UNITS: usize = 2_000;

/// What an account or order import writes its batches with.
struct UnitWriter<'a> {
    db: &'a Db,
    ctx: &'a Ctx,
    target: Target,
    opts: &'a ImportOptions,
    defs: &'a [CustomField],
    fields: &'a [Option<String>],
    header_of: &'a (dyn Fn(&str) -> String + Sync),
}

/// The companies and contacts a batch names, by exact name: read for the whole batch at once,
/// and kept up to date with what the batch creates. The oldest live record of a name is the
/// one meant (of the named company, for a contact with one).
#[derive(Default)]
struct Names {
    accounts: HashMap<String, Option<Uuid>>,
    contacts: HashMap<(String, Option<Uuid>), Option<Uuid>>,
    /// Live accounts by credit code: id and name.
    codes: HashMap<String, Option<(Uuid, String)>>,
}

impl Names {
    /// Looks up the accounts of these names, and the accounts of these credit codes.
    async fn fill(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        accounts: &[String],
        codes: &[String],
    ) -> Result<()> {
        let accounts: Vec<&String> = accounts
            .iter()
            .filter(|n| !self.accounts.contains_key(*n))
            .collect();
        for chunk in accounts.chunks(200) {
            // Each name's oldest by the name index, however many share it.
            let mut q = Sql::new("WITH v (name) AS (VALUES ");
            for (i, n) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(n.as_str())
                    .push(")");
            }
            q.push(") SELECT v.name, (SELECT a.id FROM accounts a WHERE a.tenant_id = ")
                .bind(tenant_id)
                .push(
                    " AND a.name = v.name AND a.deleted_at IS NULL
                 ORDER BY a.created_at, a.id LIMIT 1) FROM v",
                );
            let found: Vec<(String, Option<Uuid>)> = tx.fetch_sql(q).await?;
            self.accounts.extend(found);
        }
        let codes: Vec<&String> = codes
            .iter()
            .filter(|c| !self.codes.contains_key(*c))
            .collect();
        for chunk in codes.chunks(200) {
            for c in chunk {
                self.codes.insert((*c).clone(), None);
            }
            let mut q = Sql::new("SELECT credit_code, id, name FROM accounts WHERE tenant_id = ");
            q.bind(tenant_id)
                .push(" AND deleted_at IS NULL AND credit_code IN ")
                .bind_list(chunk.iter().map(|c| c.as_str()));
            let found: Vec<(String, Uuid, String)> = tx.fetch_sql(q).await?;
            for (code, id, name) in found {
                self.codes.insert(code, Some((id, name)));
            }
        }
        Ok(())
    }

    /// Looks up the contacts of these names (each of its company, when one is given).
    async fn fill_contacts(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        wanted: &[(String, Option<Uuid>)],
    ) -> Result<()> {
        let mut wanted: Vec<&(String, Option<Uuid>)> = wanted
            .iter()
            .filter(|k| !self.contacts.contains_key(*k))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(200) {
            let mut q = Sql::new("WITH v (name, account) AS (VALUES ");
            for (i, (n, a)) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(n.as_str())
                    .push(", ")
                    .bind(*a)
                    .push(")");
            }
            q.push(") SELECT v.name, v.account, (SELECT c.id FROM contacts c WHERE c.tenant_id = ")
                .bind(tenant_id)
                .push(
                    " AND c.name = v.name AND c.deleted_at IS NULL
                 AND (v.account IS NULL OR c.account_id = v.account)
                 ORDER BY c.created_at, c.id LIMIT 1) FROM v",
                );
            let found: Vec<(String, Option<Uuid>, Option<Uuid>)> = tx.fetch_sql(q).await?;
            for (name, account, id) in found {
                self.contacts.insert((name, account), id);
            }
        }
        Ok(())
    }

    /// The live account of this name, if any.
    async fn account(&mut self, tx: &mut Tx, ctx: &Ctx, name: &str) -> Result<Option<Uuid>> {
        if !self.accounts.contains_key(name) {
            self.fill(tx, ctx.tenant_id, &[name.to_owned()], &[])
                .await?;
        }
        Ok(self.accounts.get(name).copied().flatten())
    }

    /// The live contact of this name (of this company, when one is given), if any.
    async fn contact(
        &mut self,
        tx: &mut Tx,
        ctx: &Ctx,
        name: &str,
        account: Option<Uuid>,
    ) -> Result<Option<Uuid>> {
        let key = (name.to_owned(), account);
        if !self.contacts.contains_key(&key) {
            self.fill_contacts(tx, ctx.tenant_id, std::slice::from_ref(&key))
                .await?;
        }
        Ok(self.contacts.get(&key).copied().flatten())
    }

    /// The live account holding this credit code, if any: id and name.
    async fn code(&mut self, tx: &mut Tx, ctx: &Ctx, code: &str) -> Result<Option<(Uuid, String)>> {
        if !self.codes.contains_key(code) {
            self.fill(tx, ctx.tenant_id, &[], &[code.to_owned()])
                .await?;
        }
        Ok(self.codes.get(code).cloned().flatten())
    }

    /// An account this batch created (or is about to): found by its name (unless an older one
    /// has it) and its code.
    fn created(&mut self, id: Uuid, name: &str, code: Option<&str>) {
        let by_name = self.accounts.entry(name.to_owned()).or_insert(None);
        if by_name.is_none() {
            *by_name = Some(id);
        }
        if let Some(code) = code {
            self.codes
                .insert(code.to_owned(), Some((id, name.to_owned())));
        }
    }

    /// Forgets accounts a rolled-back bulk write did not create.
    fn forget(&mut self, ids: &HashSet<Uuid>) {
        for v in self.accounts.values_mut() {
            if v.is_some_and(|id| ids.contains(&id)) {
                *v = None;
            }
        }
        // Forgotten names are read again from the database when next asked.
        self.accounts.retain(|_, v| v.is_some());
        self.codes
            .retain(|_, v| !v.as_ref().is_some_and(|(id, _)| ids.contains(id)));
    }
}

/// A unit's outcome, by its index in the batch (tallied in order at the end).
type Outcomes = Vec<Option<Result<Outcome>>>;

impl UnitWriter<'_> {
    /// One batch of accounts (a row each) or orders (their lines' rows) in one transaction:
    /// what the batch names is looked up at once, each new record validated as the form
    /// validates it and the new ones written together. A record that exists already (an
    /// update, a re-run) goes alone under a savepoint, as does every record of a bulk write the
    /// database refused (a number or code taken meanwhile): a refused one is reported by its
    /// first row and leaves the others. A dry run does all of it and rolls back, so it refuses
    /// exactly what the import would; the companies its earlier batches "created" are
    /// remembered in `dry` (by name and credit code) for later rows that name them as parent
    /// or repeat them.
    async fn write(
        &self,
        units: Vec<(u64, Vec<Vec<String>>)>,
        dry: &mut HashSet<String>,
        report: &mut ImportReport,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        tx.bulk_load().await?;
        let mut names = Names::default();
        let outcomes = if self.target == Target::Orders {
            self.orders(&mut tx, &units, &mut names).await?
        } else {
            self.accounts(&mut tx, &units, &mut names, dry).await?
        };
        for ((line, rows), result) in units.iter().zip(outcomes) {
            let (Some(first), Some(result)) = (rows.first(), result) else {
                continue;
            };
            let row = Row {
                fields: self.fields,
                cells: first,
            };
            tally(report, self.target, *line, &row, result, self.header_of)?;
        }
        if !self.opts.dry_run {
            tx.commit().await?;
        }
        Ok(())
    }

    /// One unit on its own, under a savepoint.
    async fn one(
        &self,
        tx: &mut Tx,
        rows: &[Vec<String>],
        names: &mut Names,
        dry: &mut HashSet<String>,
    ) -> Result<Result<Outcome>> {
        let Some(first) = rows.first() else {
            return Ok(Ok(Outcome::Skipped(None)));
        };
        tx.execute("SAVEPOINT unit", vec![]).await?;
        let result = if self.target == Target::Orders {
            order_rows(tx, self.ctx, self.fields, rows, names).await
        } else {
            let row = Row {
                fields: self.fields,
                cells: first,
            };
            account_row(tx, self.ctx, self.opts, self.defs, &row, names, dry).await
        };
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT unit"
        } else {
            "ROLLBACK TO SAVEPOINT unit"
        };
        tx.execute(end, vec![]).await?;
        Ok(result)
    }

    async fn orders(
        &self,
        tx: &mut Tx,
        units: &[(u64, Vec<Vec<String>>)],
        names: &mut Names,
    ) -> Result<Outcomes> {
        let ctx = self.ctx;
        let fields = self.fields;
        let cell = |cells: &Vec<String>, f: &str| Row { fields, cells }.get(f);
        // What the batch names: customers, products, and orders pushed before.
        let firsts = || units.iter().filter_map(|(_, rows)| rows.first());
        let accounts: Vec<String> = firsts().filter_map(|c| cell(c, "account")).collect();
        names
            .fill(tx, ctx.tenant_id, &sorted(accounts), &[])
            .await?;
        let mut contacts = Vec::new();
        for first in firsts() {
            if let Some(n) = cell(first, "contact") {
                let account = match cell(first, "account") {
                    Some(a) => names.account(tx, ctx, &a).await?,
                    None => None,
                };
                contacts.push((n, account));
            }
        }
        names.fill_contacts(tx, ctx.tenant_id, &contacts).await?;
        let keys: Vec<Option<(String, String)>> = units
            .iter()
            .map(|(_, rows)| {
                let first = rows.first()?;
                let number = cell(first, "number")?;
                Some((
                    order_channel(&Row {
                        fields,
                        cells: first,
                    }),
                    number,
                ))
            })
            .collect();
        // By channel, then numbers: the order of the unique key's columns.
        let mut pushed: HashSet<(String, String)> = HashSet::new();
        let mut by_channel: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (channel, number) in keys.iter().flatten() {
            by_channel.entry(channel).or_default().push(number.clone());
        }
        for (channel, numbers) in by_channel {
            for chunk in sorted(numbers).chunks(200) {
                let mut q = Sql::new("SELECT external_id FROM orders WHERE tenant_id = ");
                q.bind(ctx.tenant_id)
                    .push(" AND channel = ")
                    .bind(channel)
                    .push(" AND external_id IN ")
                    .bind_list(chunk.iter().map(String::as_str));
                let found: Vec<(String,)> = tx.fetch_sql(q).await?;
                pushed.extend(found.into_iter().map(|(e,)| (channel.to_owned(), e)));
            }
        }
        let mut account_ids = Vec::new();
        let mut contact_ids = Vec::new();
        for first in firsts() {
            let account = match cell(first, "account") {
                Some(n) => names.account(tx, ctx, &n).await?,
                None => None,
            };
            account_ids.extend(account);
            if let Some(n) = cell(first, "contact") {
                contact_ids.extend(names.contact(tx, ctx, &n, account).await?);
            }
        }
        let skus: Vec<String> = units
            .iter()
            .flat_map(|(_, rows)| rows.iter().filter_map(|c| cell(c, "sku")))
            .collect();
        let mut known = orders::Known::default();
        known
            .fill(
                tx,
                ctx.tenant_id,
                &sorted_ids(account_ids),
                &sorted_ids(contact_ids),
                &sorted(skus),
            )
            .await?;
        // Each order: validated and set aside to be written with the others, or (pushed
        // before, or earlier in this batch) pushed on its own.
        let mut outcomes: Outcomes = Vec::with_capacity(units.len());
        let mut pending: Vec<(usize, orders::NewOrder)> = Vec::new();
        for (i, ((_, rows), key)) in units.iter().zip(&keys).enumerate() {
            let alone = match key {
                None => true,
                Some(k) => pushed.contains(k),
            };
            if alone {
                self.flush(
                    tx,
                    units,
                    names,
                    &mut pending,
                    &mut outcomes,
                    &mut HashSet::new(),
                )
                .await?;
                outcomes.push(Some(self.one(tx, rows, names, &mut HashSet::new()).await?));
                continue;
            }
            let prepared = match order_input(tx, ctx, fields, rows, names).await {
                Ok((channel, number, input)) => {
                    match orders::pushed_input(&channel, &number, input) {
                        Ok(input) => orders::prepare(tx, ctx, &input, &mut known).await,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match prepared {
                Ok(order) => {
                    if let Some(k) = key {
                        pushed.insert(k.clone());
                    }
                    pending.push((i, order));
                    outcomes.push(Some(Ok(Outcome::Created)));
                }
                Err(e) => outcomes.push(Some(Err(e))),
            }
        }
        self.flush(
            tx,
            units,
            names,
            &mut pending,
            &mut outcomes,
            &mut HashSet::new(),
        )
        .await?;
        Ok(outcomes)
    }

    async fn accounts(
        &self,
        tx: &mut Tx,
        units: &[(u64, Vec<Vec<String>>)],
        names: &mut Names,
        dry: &mut HashSet<String>,
    ) -> Result<Outcomes> {
        let (ctx, opts, defs, fields) = (self.ctx, self.opts, self.defs, self.fields);
        let firsts = || units.iter().filter_map(|(_, rows)| rows.first());
        let cell = |cells: &Vec<String>, f: &str| Row { fields, cells }.get(f);
        let code_of = |cells: &Vec<String>| {
            cell(cells, "credit_code").map(|c| normalize::credit_code(&c).unwrap_or(c))
        };
        let mut wanted: Vec<String> = firsts().filter_map(|c| cell(c, "name")).collect();
        wanted.extend(firsts().filter_map(|c| cell(c, "parent")));
        let codes: Vec<String> = firsts().filter_map(code_of).collect();
        names
            .fill(tx, ctx.tenant_id, &sorted(wanted), &sorted(codes))
            .await?;
        let mut lk = record::Lookups::default();
        let mut outcomes: Outcomes = Vec::with_capacity(units.len());
        let mut pending: Vec<(usize, accounts::NewAccount)> = Vec::new();
        // A unique custom value is claimed as its row is written: such tenants go a row at a
        // time.
        let alone_always = defs.iter().any(|d| d.unique);
        for (i, (_, rows)) in units.iter().enumerate() {
            let Some(first) = rows.first() else {
                outcomes.push(None);
                continue;
            };
            let name = cell(first, "name").unwrap_or_default();
            let code = code_of(first);
            let keys = [
                code.as_ref().map(|c| format!("code:{c}")),
                Some(format!("name:{name}")),
            ];
            let existing = if opts.duplicates == DuplicatePolicy::Create {
                None
            } else {
                match &code {
                    Some(c) => names.code(tx, ctx, c).await?,
                    None => None,
                }
                .or(names
                    .account(tx, ctx, &name)
                    .await?
                    .map(|id| (id, name.clone())))
            };
            let seen = keys.iter().flatten().any(|k| dry.contains(k));
            let outcome = match (existing, opts.duplicates) {
                (None, DuplicatePolicy::Skip) if seen => Some(Ok(Outcome::Skipped(None))),
                (None, DuplicatePolicy::Update) if seen => Some(Ok(Outcome::Updated)),
                (Some(matched), DuplicatePolicy::Skip) => Some(Ok(Outcome::Skipped(Some(matched)))),
                (None, _) if !alone_always => None,
                _ => {
                    self.flush(tx, units, names, &mut pending, &mut outcomes, dry)
                        .await?;
                    Some(self.one(tx, rows, names, dry).await?)
                }
            };
            if let Some(outcome) = outcome {
                outcomes.push(Some(outcome));
                continue;
            }
            // New: its parent by name (the batch's own new accounts included), then the form's
            // validation.
            let row = Row {
                fields,
                cells: first,
            };
            let prepared = match account_input(tx, ctx, defs, &row, names, dry).await {
                Ok(input) => accounts::prepare(tx, ctx, &input, defs, &mut lk).await,
                Err(e) => Err(e),
            };
            match prepared {
                Ok(a) => {
                    names.created(a.id(), a.name(), a.credit_code());
                    lk.add_live("accounts", a.id());
                    if opts.dry_run {
                        dry.extend(keys.into_iter().flatten());
                    }
                    pending.push((i, a));
                    outcomes.push(Some(Ok(Outcome::Created)));
                }
                Err(e) => outcomes.push(Some(Err(e))),
            }
        }
        self.flush(tx, units, names, &mut pending, &mut outcomes, dry)
            .await?;
        Ok(outcomes)
    }

    /// Writes the units set aside; if the database refuses them together (an account's credit
    /// code twice in the batch, an order's number taken meanwhile), each alone.
    async fn flush<T: Prepared>(
        &self,
        tx: &mut Tx,
        units: &[(u64, Vec<Vec<String>>)],
        names: &mut Names,
        pending: &mut Vec<(usize, T)>,
        outcomes: &mut Outcomes,
        dry: &mut HashSet<String>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let (at, news): (Vec<usize>, Vec<T>) = std::mem::take(pending).into_iter().unzip();
        tx.execute("SAVEPOINT bulk", vec![]).await?;
        match T::create_many(tx, self.ctx, self.defs, &news).await {
            Ok(()) => {}
            Err(Error::Validation(_) | Error::Conflict(_)) => {
                tx.execute("ROLLBACK TO SAVEPOINT bulk", vec![]).await?;
                T::not_written(names, &news);
                for i in at {
                    let result = self.one(tx, &units[i].1, names, dry).await?;
                    outcomes[i] = Some(result);
                }
            }
            Err(e) => return Err(e),
        }
        tx.execute("RELEASE SAVEPOINT bulk", vec![]).await?;
        Ok(())
    }
}

/// A unit validated and set aside, written with the rest of its batch.
trait Prepared: Sized {
    async fn create_many(tx: &mut Tx, ctx: &Ctx, defs: &[CustomField], all: &[Self]) -> Result<()>;
    /// The bulk write was rolled back: forget what the batch remembered of these.
    fn not_written(_names: &mut Names, _all: &[Self]) {}
}

impl Prepared for orders::NewOrder {
    async fn create_many(tx: &mut Tx, ctx: &Ctx, _: &[CustomField], all: &[Self]) -> Result<()> {
        orders::create_many(tx, ctx, all).await.map(|_| ())
    }
}

impl Prepared for accounts::NewAccount {
    async fn create_many(tx: &mut Tx, ctx: &Ctx, defs: &[CustomField], all: &[Self]) -> Result<()> {
        accounts::create_many(tx, ctx, defs, all).await.map(|_| ())
    }
    fn not_written(names: &mut Names, all: &[Self]) {
        names.forget(&all.iter().map(|a| a.id()).collect());
    }
}

/// The values, sorted and each once.
fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

fn sorted_ids(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort_unstable();
    v.dedup();
    v
}

/// One batch of contact rows in one transaction: the companies they name looked up at once
/// (and created when missing), each row validated exactly as the form validates it, likely
/// duplicates — in the database or earlier in the file — found by one query, and the new
/// contacts written several to a statement with their audit events. A dry run does all of it
/// and rolls back.
#[allow(clippy::too_many_arguments)]
async fn contact_batch(
    db: &Db,
    ctx: &Ctx,
    opts: &ImportOptions,
    defs: &[CustomField],
    fields: &[Option<String>],
    rows: Vec<(u64, Vec<String>)>,
    report: &mut ImportReport,
    header_of: &(dyn Fn(&str) -> String + Sync),
) -> Result<()> {
    let mut tx = db.begin().await?;
    tx.bulk_load().await?;
    let mut lk = record::Lookups::default();
    // The companies named, by exact name (the oldest live one when several share it).
    let mut companies: HashMap<String, Uuid> = HashMap::new();
    let names: Vec<String> = {
        let mut v: Vec<String> = rows
            .iter()
            .filter_map(|(_, cells)| Row { fields, cells }.get("account"))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for chunk in names.chunks(200) {
        let mut q = Sql::new("SELECT name, id FROM accounts WHERE tenant_id = ");
        q.bind(ctx.tenant_id)
            .push(" AND deleted_at IS NULL AND name IN (");
        for (i, n) in chunk.iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " }).bind(n.as_str());
        }
        q.push(") ORDER BY created_at DESC");
        let found: Vec<(String, Uuid)> = tx.fetch_sql(q).await?;
        companies.extend(found);
    }
    // Each row validated; a refused row is reported and skipped.
    let mut ready: Vec<(u64, ContactInput, contacts::NewContact)> = Vec::with_capacity(rows.len());
    for (line, cells) in &rows {
        let row = Row { fields, cells };
        let account_id = match row.get("account") {
            None => None,
            Some(name) => match companies.get(&name) {
                Some(id) => Some(*id),
                None if opts.dry_run => None,
                None => {
                    tx.execute("SAVEPOINT company", vec![]).await?;
                    let input = AccountInput {
                        name: Some(name.clone()),
                        ..Default::default()
                    };
                    match accounts::create_in(&mut tx, ctx, input).await {
                        Ok(a) => {
                            tx.execute("RELEASE SAVEPOINT company", vec![]).await?;
                            lk.add_live("accounts", a.id);
                            companies.insert(name, a.id);
                            Some(a.id)
                        }
                        Err(Error::Validation(mut v)) => {
                            tx.execute("ROLLBACK TO SAVEPOINT company", vec![]).await?;
                            for f in &mut v {
                                f.field = "account".into();
                            }
                            tally(
                                report,
                                Target::Contacts,
                                *line,
                                &row,
                                Err(Error::Validation(v)),
                                header_of,
                            )?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            },
        };
        let input = contact_input(defs, &row, account_id);
        match contacts::prepare(&mut tx, ctx, &input, defs, &mut lk).await {
            Ok(c) => ready.push((*line, input, c)),
            Err(e) => tally(report, Target::Contacts, *line, &row, Err(e), header_of)?,
        }
    }
    // Likely duplicates (score 70 and more): stored ones by one query, and earlier rows.
    let stored = if opts.duplicates == DuplicatePolicy::Create {
        vec![]
    } else {
        let probes: Vec<duplicates::Keys> = ready.iter().map(|(_, _, c)| c.keys()).collect();
        duplicates::contacts_sharing_keys(&mut tx, ctx.tenant_id, &probes).await?
    };
    let has_unique = defs.iter().any(|d| d.unique);
    let mut creating: Vec<contacts::NewContact> = Vec::new();
    let mut created_lines: Vec<u64> = Vec::new();
    let cells_at: HashMap<u64, &Vec<String>> = rows.iter().map(|(l, c)| (*l, c)).collect();
    let no_cells = Vec::new();
    for (line, input, c) in ready {
        let probe = c.keys();
        let best = |candidates: &mut dyn Iterator<Item = (Uuid, duplicates::Keys)>| {
            candidates
                .map(|(id, k)| (duplicates::score(&probe, &k, false).0, id))
                .filter(|(score, _)| *score >= 70)
                .max_by_key(|(score, _)| *score)
                .map(|(_, id)| id)
        };
        let existing = if opts.duplicates == DuplicatePolicy::Create {
            None
        } else {
            best(&mut stored.iter().map(|(id, name, phone, email, account)| {
                (
                    *id,
                    duplicates::Keys {
                        name: Some(name),
                        phone: phone.as_deref(),
                        email: email.as_deref(),
                        credit_code: None,
                        account_id: *account,
                    },
                )
            }))
            .or_else(|| best(&mut creating.iter().map(|n| (n.id(), n.keys()))))
        };
        let outcome = match (existing, opts.duplicates) {
            (Some(id), DuplicatePolicy::Skip) => Ok(Outcome::Skipped(
                stored
                    .iter()
                    .find(|s| s.0 == id)
                    .map(|s| (id, s.1.clone()))
                    .or(Some((id, input.name.clone().unwrap_or_default()))),
            )),
            (Some(_), _) if opts.dry_run => Ok(Outcome::Updated),
            (Some(id), _) => {
                // Fill the existing contact (written first if it came earlier in this batch).
                if creating.iter().any(|n| n.id() == id) {
                    contacts::create_many(&mut tx, ctx, defs, &creating).await?;
                    creating.clear();
                }
                tx.execute("SAVEPOINT fill", vec![]).await?;
                let current: contacts::Contact = record::load(&mut tx, ctx.tenant_id, id).await?;
                let patch = ContactInput {
                    version: Some(current.version),
                    name: None,
                    ..input
                };
                match contacts::update_in(&mut tx, ctx, id, current.version, patch).await {
                    Ok(_) => {
                        tx.execute("RELEASE SAVEPOINT fill", vec![]).await?;
                        Ok(Outcome::Updated)
                    }
                    Err(e) => {
                        tx.execute("ROLLBACK TO SAVEPOINT fill", vec![]).await?;
                        Err(e)
                    }
                }
            }
            (None, _) if has_unique && !opts.dry_run => {
                // A unique custom value is claimed as the row is written: one row at a time.
                tx.execute("SAVEPOINT unique_row", vec![]).await?;
                match contacts::create_many(&mut tx, ctx, defs, std::slice::from_ref(&c)).await {
                    Ok(()) => {
                        tx.execute("RELEASE SAVEPOINT unique_row", vec![]).await?;
                        Ok(Outcome::Created)
                    }
                    Err(e) => {
                        tx.execute("ROLLBACK TO SAVEPOINT unique_row", vec![])
                            .await?;
                        Err(e)
                    }
                }
            }
            (None, _) => {
                creating.push(c);
                created_lines.push(line);
                Ok(Outcome::Created)
            }
        };
        let cells = cells_at.get(&line).copied().unwrap_or(&no_cells);
        tally(
            report,
            Target::Contacts,
            line,
            &Row { fields, cells },
            outcome,
            header_of,
        )?;
    }
    if opts.dry_run {
        drop(tx);
        return Ok(());
    }
    contacts::create_many(&mut tx, ctx, defs, &creating).await?;
    tx.commit().await
}

/// A contact row as the form's input.
fn contact_input(defs: &[CustomField], row: &Row<'_>, account_id: Option<Uuid>) -> ContactInput {
    let value = |f: &str| row.get(f);
    let set = |field: &str| value(field).map(Some);
    ContactInput {
        name: Some(value("name").unwrap_or_default()),
        account_id: account_id.map(Some),
        phone: set("phone"),
        email: set("email"),
        wechat: set("wechat"),
        title: set("title"),
        department: set("department"),
        country: value("country"),
        province: set("province"),
        city: set("city"),
        district: set("district"),
        address: set("address"),
        gender: set("gender"),
        birthday: set("birthday"),
        notes: set("notes"),
        family_name: set("family_name"),
        given_name: set("given_name"),
        tags: value("tags").map(|t| split_list(&t)),
        custom: custom_fields::from_text(defs, &value),
        ..Default::default()
    }
}

/// `VIP, 展会、重点` → the items.
fn split_list(t: &str) -> Vec<String> {
    t.split([',', '，', '、', ';', '；'])
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// An account row as the form's input; its parent, named by exact name, must exist already
/// (import parents first, or earlier in the file).
async fn account_input(
    tx: &mut Tx,
    ctx: &Ctx,
    defs: &[CustomField],
    row: &Row<'_>,
    names: &mut Names,
    dry: &HashSet<String>,
) -> Result<AccountInput> {
    let value = |f: &str| row.get(f);
    let set = |f: &str| value(f).map(Some);
    let parent_id = match value("parent") {
        None => None,
        Some(name) => match names.account(tx, ctx, &name).await? {
            Some(id) => Some(Some(id)),
            // Created by an earlier batch of this dry run.
            None if dry.contains(&format!("name:{name}")) => None,
            None => return Err(Error::field("parent_id", "unknown")),
        },
    };
    Ok(AccountInput {
        name: Some(value("name").unwrap_or_default()),
        parent_id,
        credit_code: set("credit_code"),
        industry: set("industry"),
        phone: set("phone"),
        email: set("email"),
        website: set("website"),
        wechat: set("wechat"),
        country: value("country"),
        province: set("province"),
        city: set("city"),
        district: set("district"),
        address: set("address"),
        postal_code: set("postal_code"),
        source: set("source"),
        description: set("description"),
        tags: value("tags").map(|t| split_list(&t)),
        custom: custom_fields::from_text(defs, &value),
        ..Default::default()
    })
}

/// One account row on its own: the same company already there (by credit code, else by
/// exact name) is skipped or filled as the policy says; else it is created.
async fn account_row(
    tx: &mut Tx,
    ctx: &Ctx,
    opts: &ImportOptions,
    defs: &[CustomField],
    row: &Row<'_>,
    names: &mut Names,
    dry: &mut HashSet<String>,
) -> Result<Outcome> {
    let value = |f: &str| row.get(f);
    let input = account_input(tx, ctx, defs, row, names, dry).await?;
    let code = value("credit_code").map(|c| normalize::credit_code(&c).unwrap_or(c));
    let name = value("name").unwrap_or_default();
    let keys = [
        code.as_ref().map(|c| format!("code:{c}")),
        Some(format!("name:{name}")),
    ];
    let existing = if opts.duplicates == DuplicatePolicy::Create {
        None
    } else {
        let by_code = match &code {
            Some(code) => names.code(tx, ctx, code).await?.map(|(id, _)| id),
            None => None,
        };
        match by_code {
            Some(id) => Some(id),
            None => names.account(tx, ctx, &name).await?,
        }
    };
    let seen = keys.iter().flatten().any(|k| dry.contains(k));
    match (existing, opts.duplicates) {
        (None, DuplicatePolicy::Skip) if seen => Ok(Outcome::Skipped(None)),
        (None, DuplicatePolicy::Update) if seen => Ok(Outcome::Updated),
        (Some(id), DuplicatePolicy::Skip) => {
            let matched = accounts::get(&mut *tx, ctx, id).await?;
            Ok(Outcome::Skipped(Some((id, matched.name))))
        }
        (Some(id), _) => {
            let current = accounts::get(&mut *tx, ctx, id).await?;
            let patch = AccountInput {
                version: Some(current.version),
                name: None,
                // The matched company keeps its credit code (it may have matched on it).
                credit_code: None,
                ..input
            };
            accounts::update_in(tx, ctx, id, current.version, patch).await?;
            Ok(Outcome::Updated)
        }
        (None, _) => {
            let a = accounts::create_in(tx, ctx, input).await?;
            names.created(a.id, &a.name, a.credit_code.as_deref());
            if opts.dry_run {
                dry.extend(keys.into_iter().flatten());
            }
            Ok(Outcome::Created)
        }
    }
}

/// An order's channel: the row's, else `erp`.
fn order_channel(first: &Row<'_>) -> String {
    first
        .get("channel")
        .map(|c| c.to_lowercase())
        .unwrap_or_else(|| "erp".into())
}

/// One order from its consecutive rows (one per line), pushed by its number: a re-run finds it
/// unchanged, a corrected file updates it, nothing is doubled.
async fn order_rows(
    tx: &mut Tx,
    ctx: &Ctx,
    fields: &[Option<String>],
    lines: &[Vec<String>],
    names: &mut Names,
) -> Result<Outcome> {
    let (channel, number, input) = order_input(tx, ctx, fields, lines, names).await?;
    let (order, pushed) = orders::push_in(tx, ctx, &channel, &number, input).await?;
    match pushed {
        Pushed::Created => Ok(Outcome::Created),
        Pushed::Updated => Ok(Outcome::Updated),
        Pushed::Unchanged => Ok(Outcome::Skipped(Some((order.id, order.number)))),
    }
}

/// An order's rows as the push's channel, number and input: the company and the contact
/// named by exact name (the contact of that company, when both are given).
async fn order_input(
    tx: &mut Tx,
    ctx: &Ctx,
    fields: &[Option<String>],
    lines: &[Vec<String>],
    names: &mut Names,
) -> Result<(String, String, OrderInput)> {
    let first = Row {
        fields,
        cells: lines
            .first()
            .ok_or_else(|| Error::field("lines", "required"))?,
    };
    let number = first
        .get("number")
        .ok_or_else(|| Error::field("number", "required"))?;
    let channel = order_channel(&first);
    let mut errs = Errors::default();
    let account_id = match first.get("account") {
        None => None,
        Some(name) => {
            let id = names.account(tx, ctx, &name).await?;
            if id.is_none() {
                errs.add("account_id", "unknown");
            }
            id
        }
    };
    let contact_id = match first.get("contact") {
        None => None,
        Some(name) => {
            let found = names.contact(tx, ctx, &name, account_id).await?;
            if found.is_none() {
                errs.add("contact_id", "unknown");
            }
            found
        }
    };
    let ordered_at = match first.get("ordered_at") {
        None => None,
        Some(t) => match parse_when(&t) {
            Some(t) => Some(t),
            None => {
                errs.add("ordered_at", "invalid_date");
                None
            }
        },
    };
    let money = |errs: &mut Errors, row: &Row<'_>, f: &str| match row.get(f) {
        None => None,
        Some(v) => match normalize::money(&v) {
            Some(m) => Some(m),
            None => {
                errs.add(f, "invalid");
                None
            }
        },
    };
    let mut order_lines = Vec::new();
    for cells in lines {
        let r = Row { fields, cells };
        let quantity = match r.get("quantity") {
            None => None,
            Some(q) => match q.parse::<i64>() {
                Ok(q) => Some(q),
                Err(_) => {
                    errs.add("quantity", "invalid");
                    None
                }
            },
        };
        order_lines.push(LineInput {
            sku: r.get("sku"),
            name: r.get("product"),
            quantity,
            unit_price: money(&mut errs, &r, "unit_price"),
            discount: money(&mut errs, &r, "discount"),
            ..Default::default()
        });
    }
    errs.finish()?;
    let input = OrderInput {
        number: Some(number.clone()),
        status: first.get("status").map(|s| s.to_lowercase()),
        account_id,
        contact_id,
        ordered_at,
        currency: first.get("currency"),
        notes: first.get("notes").map(Some),
        lines: Some(order_lines),
        ..Default::default()
    };
    Ok((channel, number, input))
}

/// `2026-11-30`, `2026-11-30 14:05`, `2026/11/30 14:05:09` or RFC 3339, read as UTC+8 when no
/// zone is given (the files come from Chinese shops and ERPs).
fn parse_when(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let t = t.trim().replace('/', "-");
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&t) {
        return Some(d.with_timezone(&chrono::Utc));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(&t, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(&t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    chrono::FixedOffset::east_opt(8 * 3600)?
        .from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headers_are_guessed_in_both_languages() {
        for (h, f) in [
            ("姓名", "name"),
            ("手机号码", "phone"),
            ("E-mail", "email"),
            ("公司名称", "account"),
            ("Company", "account"),
            ("name", "name"),
            ("\u{feff}姓名", "name"),
            ("职位：", "title"),
        ] {
            assert_eq!(guess(h, &[]), Some(f), "{h}");
        }
        assert_eq!(guess("备用字段", &[]), None);
        let labels = vec![("所属客户".to_owned(), "account".to_owned())];
        assert_eq!(guess("所属客户", &labels), Some("account"));
    }

    #[test]
    fn encodings_are_told_apart() {
        let text = "姓名,手机\n张三,13800138000\n";
        assert_eq!(detect(text.as_bytes(), true).ok(), Some(Encoding::Utf8));
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(detect(&gbk, true).ok(), Some(Encoding::Gb18030));
        // A UTF-8 sample cut inside a character is still UTF-8.
        let bytes = text.as_bytes();
        assert_eq!(
            detect(&bytes[..bytes.len() - 20], false).ok(),
            Some(Encoding::Utf8)
        );
        // Neither: bytes that are not valid in either encoding.
        assert!(detect(&[0xFF, 0xFF, 0xFF, 0x80, 0xFF], true).is_err());
    }

    proptest! {
        /// Any text that is valid UTF-8 is read as UTF-8; the same text saved as GBK is read
        /// back identically through the GB18030 decoder.
        #[test]
        fn gbk_round_trips(s in "[\\u4e00-\\u9fa5a-zA-Z0-9,]{1,40}") {
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(&s);
            prop_assume!(!unmappable);
            match detect(&gbk, true) {
                Ok(Encoding::Utf8) => prop_assert!(std::str::from_utf8(&gbk).is_ok()),
                Ok(Encoding::Gb18030) => {
                    let (back, _) = encoding_rs::GB18030.decode_without_bom_handling(&gbk);
                    prop_assert_eq!(back.as_ref(), s.as_str());
                }
                Err(_) => prop_assert!(false, "GBK text refused"),
            }
        }

        /// The parser never panics on arbitrary bytes: it answers with an encoding or refuses.
        #[test]
        fn detect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = detect(&bytes, true);
            let _ = detect(&bytes, false);
        }
    }
}
