//! `guanxi demo`: a living demo company, the same every time for the same seed. Chinese and
//! English customers in account hierarchies, contacts, a small catalogue, two years of orders
//! whose revenue per customer is Pareto-shaped (a few customers bring most of it), and calls,
//! visits, notes and tasks by several reps. Everything goes through the service functions, so
//! it is validated and audited like real work.

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::{args, auth, calendars, users, Ctx};

use crate::accounts::{self, AccountInput};
use crate::activities::{self, ActivityInput};
use crate::contacts::{self, ContactInput};
use crate::orders::{self, LineInput, OrderInput};
use crate::products::{self, ProductInput};

#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub accounts: usize,
    pub seed: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoStats {
    pub reps: usize,
    pub accounts: usize,
    pub contacts: usize,
    pub products: usize,
    pub orders: usize,
    pub activities: usize,
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "欧阳",
    "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "志强", "晓东", "子涵", "雨萱", "浩然", "思远",
    "一鸣",
];
const FIRST: &[&str] = &[
    "James", "Mary", "John", "Linda", "David", "Sarah", "Michael", "Emma", "Daniel", "Olivia",
];
const LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Evans", "Thomas", "Walker", "Wright", "Green",
];
/// (province, city, area code)
pub const PLACES: &[(&str, &str, &str)] = &[
    ("北京市", "北京市", "010"),
    ("上海市", "上海市", "021"),
    ("广东省", "广州市", "020"),
    ("广东省", "深圳市", "0755"),
    ("浙江省", "杭州市", "0571"),
    ("江苏省", "南京市", "025"),
    ("江苏省", "苏州市", "0512"),
    ("四川省", "成都市", "028"),
    ("湖北省", "武汉市", "027"),
    ("福建省", "福州市", "0591"),
    ("山东省", "青岛市", "0532"),
    ("陕西省", "西安市", "029"),
];
pub const TRADES: &[(&str, &str)] = &[
    ("科技", "软件"),
    ("贸易", "批发零售"),
    ("食品", "食品饮料"),
    ("物流", "交通运输"),
    ("医疗器械", "医疗"),
    ("文化传播", "文化传媒"),
    ("建材", "建筑"),
    ("电子", "制造"),
];
pub const BRANDS: &[&str] = &[
    "华信", "宏达", "金桥", "瑞丰", "天成", "恒通", "中联", "博远", "新元", "东方", "嘉禾", "鼎盛",
];
const TITLES: &[&str] = &["总经理", "采购经理", "行政主管", "财务", "Buyer"];
const MOBILE_PREFIXES: &[&str] = &[
    "138", "139", "150", "158", "186", "188", "135", "177", "199",
];
const CATALOGUE: &[(&str, &str, &str, &str, i64)] = &[
    ("TEA-001", "武夷岩茶 250g", "茶叶", "盒", 19_900),
    ("TEA-002", "西湖龙井 100g", "茶叶", "罐", 36_800),
    ("CUP-001", "青瓷茶杯", "茶具", "个", 4_500),
    ("SET-001", "功夫茶具套装", "茶具", "套", 128_000),
    ("SRV-001", "企业茶歇服务（月）", "服务", "月", 580_000),
    ("GFT-001", "中秋礼盒", "礼品", "盒", 68_800),
];

pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

pub fn person_name(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.85) {
        format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN))
    } else {
        format!("{} {}", pick(rng, FIRST), pick(rng, LAST))
    }
}

pub fn mobile(rng: &mut StdRng) -> String {
    format!(
        "{} {:04} {:04}",
        pick(rng, MOBILE_PREFIXES),
        rng.gen_range(0..10_000),
        rng.gen_range(0..10_000)
    )
}

/// The number if it is a valid mainland number, else none (the demo never fails validation).
fn valid_phone(raw: String) -> Option<String> {
    guanxi_records::normalize::phone(&raw, "CN")
        .ok()
        .map(|_| raw)
}

/// A Pareto(α = 1.16, the "80/20" shape) weight ≥ 1.
fn pareto(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    u.powf(-1.0 / 1.16)
}

/// China's 2026 public holidays (放假) and make-up working days (调休上班), as the State
/// Council announced them: (first day, last day, kind, name).
const HOLIDAYS_2026: &[(&str, &str, &str, &str)] = &[
    ("2026-01-01", "2026-01-03", "holiday", "元旦"),
    ("2026-01-04", "2026-01-04", "workday", "元旦调休"),
    ("2026-02-14", "2026-02-14", "workday", "春节调休"),
    ("2026-02-15", "2026-02-23", "holiday", "春节"),
    ("2026-02-28", "2026-02-28", "workday", "春节调休"),
    ("2026-04-04", "2026-04-06", "holiday", "清明节"),
    ("2026-05-01", "2026-05-05", "holiday", "劳动节"),
    ("2026-05-09", "2026-05-09", "workday", "劳动节调休"),
    ("2026-06-19", "2026-06-21", "holiday", "端午节"),
    ("2026-09-20", "2026-09-20", "workday", "国庆节调休"),
    ("2026-09-25", "2026-09-27", "holiday", "中秋节"),
    ("2026-10-01", "2026-10-07", "holiday", "国庆节"),
    ("2026-10-10", "2026-10-10", "workday", "国庆节调休"),
];

/// The demo company's calendar: office hours with a lunch break, and 2026's holidays.
fn demo_calendar() -> calendars::CalendarInput {
    let mut days = Vec::new();
    for (first, last, kind, name) in HOLIDAYS_2026 {
        let (Ok(mut d), Ok(last)) = (
            chrono::NaiveDate::parse_from_str(first, "%Y-%m-%d"),
            chrono::NaiveDate::parse_from_str(last, "%Y-%m-%d"),
        ) else {
            continue;
        };
        while d <= last {
            days.push(calendars::DayInput {
                date: Some(d.to_string()),
                kind: Some((*kind).to_owned()),
                name: Some((*name).to_owned()),
                periods: None,
            });
            d += Duration::days(1);
        }
    }
    calendars::CalendarInput {
        name: Some("总部工作日历".into()),
        is_default: Some(true),
        days: Some(days),
        ..Default::default()
    }
}

/// Loads the demo into the tenant of `ctx` (an admin). Reps are created as users.
pub async fn load(db: &Db, admin: &Ctx, size: DemoSize) -> Result<DemoStats> {
    let mut rng = StdRng::seed_from_u64(size.seed);
    let mut stats = DemoStats::default();
    // Reps, who own the customers and log the work.
    let (sales_role,): (Uuid,) = db
        .fetch_one(
            "SELECT id FROM roles WHERE tenant_id = $1 AND key = $2",
            args![admin.tenant_id, "sales"],
        )
        .await?;
    let mut reps = Vec::new();
    for (i, name) in ["陈思远", "林晓东", "Emma Walker", "赵雨萱"]
        .iter()
        .enumerate()
    {
        let email = format!("rep{}.{}@demo.guanxi", i + 1, size.seed);
        let existing: Option<(Uuid,)> = db
            .fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND email = $2",
                args![admin.tenant_id, email.as_str()],
            )
            .await?;
        let id = match existing {
            Some((id,)) => id,
            None => {
                users::create(
                    db,
                    admin,
                    "http://localhost",
                    users::NewUser {
                        email: Some(email),
                        name: Some((*name).to_owned()),
                        role_id: Some(sales_role),
                        password: Some(guanxi_platform::secret::random_secret()),
                        ..Default::default()
                    },
                )
                .await?
                .id
            }
        };
        reps.push(auth::ctx_for_user(db, admin.tenant_id, id).await?);
        stats.reps += 1;
    }
    // The company's working hours with the 2026 public holidays and make-up days.
    let has_calendar: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM calendars WHERE tenant_id = $1 AND deleted_at IS NULL",
            args![admin.tenant_id],
        )
        .await?;
    if has_calendar == 0 {
        calendars::create(db, admin, demo_calendar()).await?;
    }
    // The catalogue.
    let mut catalogue = Vec::new();
    for (sku, name, category, unit, price) in CATALOGUE {
        let sku = format!("{sku}-{}", size.seed);
        let p = products::create(
            db,
            admin,
            ProductInput {
                sku: Some(sku),
                name: Some((*name).to_owned()),
                category: Some(Some((*category).to_owned())),
                unit: Some(Some((*unit).to_owned())),
                list_price: Some(*price),
                // VAT: 13% on goods, 6% on services.
                tax_rate: Some(if *category == "服务" { 600 } else { 1300 }),
                ..Default::default()
            },
        )
        .await?;
        catalogue.push(p);
        stats.products += 1;
    }
    // Accounts: groups with subsidiaries, each with contacts, orders and activities.
    let now = Utc::now();
    let mut groups: Vec<Uuid> = Vec::new();
    for i in 0..size.accounts {
        let rep = &reps[rng.gen_range(0..reps.len())];
        let (province, city, area) = *pick(&mut rng, PLACES);
        let (trade, industry) = *pick(&mut rng, TRADES);
        let english = rng.gen_bool(0.1);
        let name = if english {
            format!(
                "{} {} Ltd. #{i}",
                pick(&mut rng, LAST),
                pick(&mut rng, &["Trading", "Partners", "Foods", "Tech"])
            )
        } else {
            format!(
                "{}{}{}有限公司（{i}）",
                city.trim_end_matches('市'),
                pick(&mut rng, BRANDS),
                trade
            )
        };
        let parent = if !groups.is_empty() && rng.gen_bool(0.15) {
            Some(groups[rng.gen_range(0..groups.len())])
        } else {
            None
        };
        let account = accounts::create(
            db,
            rep,
            AccountInput {
                name: Some(name),
                parent_id: Some(parent),
                industry: Some(Some(industry.to_owned())),
                phone: Some(valid_phone(format!(
                    "{area}-{}",
                    rng.gen_range(20_000_000..89_999_999)
                ))),
                province: Some(Some(province.to_owned())),
                city: Some(Some(city.to_owned())),
                source: Some(Some(
                    pick(&mut rng, &["展会", "转介绍", "官网", "电话营销"]).to_string(),
                )),
                ..Default::default()
            },
        )
        .await?;
        stats.accounts += 1;
        if parent.is_none() && rng.gen_bool(0.3) {
            groups.push(account.id);
        }
        let mut people = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let name = person_name(&mut rng);
            let c = contacts::create(
                db,
                rep,
                ContactInput {
                    name: Some(name),
                    account_id: Some(Some(account.id)),
                    phone: Some(valid_phone(mobile(&mut rng))),
                    title: Some(Some(pick(&mut rng, TITLES).to_string())),
                    email: Some(Some(format!(
                        "c{}.{}@example.com",
                        stats.contacts, size.seed
                    ))),
                    ..Default::default()
                },
            )
            .await?;
            people.push(c.id);
            stats.contacts += 1;
        }
        // Orders over two years: how many follows the account's Pareto weight.
        let weight = pareto(&mut rng);
        let count = ((weight * 1.5) as usize).min(40);
        for _ in 0..count {
            let days = rng.gen_range(0..730);
            let lines: Vec<LineInput> = (0..rng.gen_range(1..=3))
                .map(|_| {
                    let p = pick(&mut rng, &catalogue);
                    LineInput {
                        product_id: Some(p.id),
                        quantity: Some(rng.gen_range(1..=((weight as i64).clamp(1, 20)))),
                        ..Default::default()
                    }
                })
                .collect();
            orders::create(
                db,
                rep,
                OrderInput {
                    account_id: Some(account.id),
                    contact_id: Some(people[0]),
                    channel: Some(pick(&mut rng, orders::CHANNELS).to_string()),
                    status: Some(
                        pick(
                            &mut rng,
                            &[
                                "completed",
                                "completed",
                                "completed",
                                "paid",
                                "shipped",
                                "returned",
                            ],
                        )
                        .to_string(),
                    ),
                    ordered_at: Some(
                        now - Duration::days(days) - Duration::minutes(rng.gen_range(0..600)),
                    ),
                    lines: Some(lines),
                    ..Default::default()
                },
            )
            .await?;
            stats.orders += 1;
        }
        // What the reps did.
        for _ in 0..rng.gen_range(0..=4) {
            let kind = pick(
                &mut rng,
                &["call", "visit", "note", "meeting", "email", "task"],
            )
            .to_string();
            let task = kind == "task";
            let subject = pick(
                &mut rng,
                &[
                    "续约沟通",
                    "新品介绍",
                    "回款跟进",
                    "节日拜访",
                    "需求调研",
                    "投诉回访",
                    "报价确认",
                ],
            )
            .to_string();
            activities::create(
                db,
                rep,
                ActivityInput {
                    kind: Some(kind),
                    subject: Some(subject),
                    body: Some(Some(
                        pick(
                            &mut rng,
                            &[
                                "客户对价格敏感，答应下周给方案。",
                                "约好下月上门演示。",
                                "已发送资料，等待反馈。",
                            ],
                        )
                        .to_string(),
                    )),
                    contact_id: Some(people[rng.gen_range(0..people.len())]),
                    occurred_at: (!task).then(|| now - Duration::days(rng.gen_range(0..120))),
                    due_at: task.then(|| Some(now + Duration::days(rng.gen_range(-3..14)))),
                    ..Default::default()
                },
            )
            .await?;
            stats.activities += 1;
        }
    }
    Ok(stats)
}

/// What [`scale`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScaleStats {
    pub accounts: usize,
    pub contacts: usize,
    pub products: usize,
    pub orders: usize,
    pub order_lines: usize,
    pub activities: usize,
}

/// Contacts per transaction; each brings its orders, their lines and its activities along.
pub const BATCH: usize = 5_000;

#[rustfmt::skip]
const ACCOUNT_COLUMNS: &[&str] = &[
    "tenant_id", "id", "name", "parent_id", "industry", "phone", "phone_e164", "country",
    "province", "city", "source", "owner_id", "team_id", "search", "grams", "created_at",
    "updated_at", "created_by", "updated_by", "version", "custom", "tags", "era",
];
#[rustfmt::skip]
const CONTACT_COLUMNS: &[&str] = &[
    "tenant_id", "id", "name", "account_id", "title", "phone", "phone_e164", "email", "country",
    "province", "city", "owner_id", "team_id", "search", "grams", "created_at", "updated_at",
    "created_by", "updated_by", "version", "custom", "tags", "era",
];
#[rustfmt::skip]
const ORDER_COLUMNS: &[&str] = &[
    "tenant_id", "id", "number", "channel", "status", "account_id", "contact_id", "ordered_at",
    "currency", "total", "created_at", "updated_at", "created_by", "updated_by", "version",
    "custom",
];
#[rustfmt::skip]
const LINE_COLUMNS: &[&str] = &[
    "tenant_id", "order_id", "line_no", "product_id", "sku", "name", "quantity", "unit_price",
    "discount", "amount",
];
#[rustfmt::skip]
const ACTIVITY_COLUMNS: &[&str] = &[
    "tenant_id", "id", "kind", "subject", "account_id", "contact_id", "occurred_at", "done_at",
    "owner_id", "team_id", "created_at", "updated_at", "created_by", "updated_by", "version",
    "custom",
];

/// Puts a batch of generated rows of `table` (each without its last column, `era`) in the
/// tenant's newest search era, and counts them there.
pub async fn in_era(
    tx: &mut guanxi_platform::db::Tx,
    tenant: Uuid,
    table: &str,
    mut rows: Vec<Vec<guanxi_platform::db::Val>>,
) -> Result<Vec<Vec<guanxi_platform::db::Val>>> {
    let era = guanxi_records::eras::newest(tx, tenant, table).await?;
    for row in &mut rows {
        row.push(era.into());
    }
    guanxi_records::eras::count(tx, tenant, table, era, rows.len() as i64).await?;
    Ok(rows)
}

/// How many orders a contact places: a Pareto draw (shape 1.16, the 80/20 rule) capped at
/// 1,000 and scaled to about three orders a contact on average — most buy little or nothing,
/// a few buy a great deal, so revenue per customer has the long tail real books have.
fn orders_of(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let x = u.powf(-1.0 / 1.16).min(1_000.0);
    (x * 0.75) as usize
}

/// `guanxi demo --scale N`: N contacts and N/10 accounts (every tenth one a subsidiary of
/// another), about 3N orders with 1–6 lines each (≈10 lines per contact; orders per contact
/// Pareto-shaped, see [`orders_of`]) over a six-product catalogue, and about N activities —
/// deterministic from the seed (ids aside), written in transactions of [`BATCH`] contacts
/// with their activities, then the orders oldest first (as a shop's table fills), as
/// multi-row INSERTs on SQLite and COPY on PostgreSQL
/// ([`guanxi_platform::db::Tx::insert_rows`]). Every value is what the service functions
/// would store (normalised phone, search text with pinyin, order totals the sum of their
/// lines); no audit events are written for generated rows. For benchmarks and load tests.
pub async fn scale(
    db: &Db,
    admin: &Ctx,
    contacts: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<ScaleStats> {
    use guanxi_platform::db::Val;
    let mut rng = StdRng::seed_from_u64(seed);
    let owner = admin.user_id.ok_or(guanxi_platform::Error::Forbidden)?;
    let team = admin.team_id;
    let tenant = admin.tenant_id;
    let t = guanxi_platform::time::now();
    // Order numbers and SKUs carry the run's tag: a second run into the same tenant adds to it.
    let run = guanxi_platform::time::new_id().simple().to_string()[24..].to_uppercase();
    let mut stats = ScaleStats::default();
    let mut catalogue = Vec::new();
    for (sku, name, category, unit, price) in CATALOGUE {
        let p = products::create(
            db,
            admin,
            ProductInput {
                sku: Some(format!("{sku}-{run}")),
                name: Some((*name).to_owned()),
                category: Some(Some((*category).to_owned())),
                unit: Some(Some((*unit).to_owned())),
                list_price: Some(*price),
                ..Default::default()
            },
        )
        .await?;
        catalogue.push(p);
        stats.products += 1;
    }
    let common = |row: &mut Vec<Val>| {
        row.extend([
            t.into(),
            t.into(),
            owner.into(),
            owner.into(),
            1i64.into(),
            serde_json::json!({}).into(),
        ]);
    };
    let n_accounts = (contacts / 10).max(1);
    let mut account_ids: Vec<Uuid> = Vec::with_capacity(n_accounts);
    let mut rows = Vec::with_capacity(BATCH);
    for i in 0..n_accounts {
        let id = guanxi_platform::time::new_id();
        let (province, city, area) = *pick(&mut rng, PLACES);
        let (trade, industry) = *pick(&mut rng, TRADES);
        let name = format!(
            "{}{}{}有限公司 {}",
            city.trim_end_matches('市'),
            pick(&mut rng, BRANDS),
            trade,
            i + 1
        );
        let phone = format!("{area}-{:08}", rng.gen_range(10_000_000..100_000_000u32));
        let p = guanxi_records::normalize::phone(&phone, "CN").ok();
        let parent = (i % 10 == 9 && !account_ids.is_empty())
            .then(|| account_ids[rng.gen_range(0..account_ids.len())]);
        let search = guanxi_records::record::search_of(
            &name,
            p.as_ref().map(|p| p.national.as_str()),
            p.as_ref().map(|p| p.e164.as_str()),
            &[],
        );
        let grams = guanxi_records::normalize::grams(&search);
        let mut row: Vec<Val> = vec![
            tenant.into(),
            id.into(),
            name.into(),
            parent.into(),
            industry.into(),
            p.as_ref().map(|p| p.raw.clone()).into(),
            p.map(|p| p.e164).into(),
            "CN".into(),
            province.into(),
            city.into(),
            "scale".into(),
            owner.into(),
            team.into(),
            search.into(),
            grams.into(),
        ];
        common(&mut row);
        row.push(serde_json::json!([]).into());
        rows.push(row);
        account_ids.push(id);
        if rows.len() == BATCH || i + 1 == n_accounts {
            let mut tx = db.begin().await?;
            tx.bulk_load().await?;
            let batch = in_era(&mut tx, tenant, "accounts", std::mem::take(&mut rows)).await?;
            tx.insert_rows("accounts", ACCOUNT_COLUMNS, batch).await?;
            tx.commit().await?;
        }
    }
    stats.accounts = n_accounts;
    let two_years = 2 * 365 * 24 * 3600;
    let (mut people, mut touches) = (vec![], vec![]);
    // Orders are planned with their buyer (when, and a seed for the rest) and written after
    // every contact, oldest first: a real order table fills in time, so its rows lie in the
    // order they were placed — written buyer by buyer, each buyer's orders shared pages, which
    // made reading by buyer unrealistically cheap and reading a period unrealistically dear.
    let mut planned: Vec<(i64, u32, u64)> = Vec::new();
    let mut buyers: Vec<(Uuid, Uuid)> = Vec::with_capacity(contacts);
    for i in 0..contacts {
        let id = guanxi_platform::time::new_id();
        let name = person_name(&mut rng);
        // A generated mobile is valid by construction: its forms are written directly
        // (parsing a million numbers would dominate the run).
        let raw = mobile(&mut rng);
        let national = guanxi_records::normalize::digits(&raw);
        let e164 = format!("+86{national}");
        let (py, _) = guanxi_records::normalize::pinyin(&name);
        let email = format!("{}.{}@example.com", py.replace(' ', ""), i + 1);
        let (province, city, _) = *pick(&mut rng, PLACES);
        let account = account_ids[rng.gen_range(0..account_ids.len())];
        let search =
            guanxi_records::record::search_of(&name, Some(&national), Some(&e164), &[Some(&email)]);
        let grams = guanxi_records::normalize::grams(&search);
        let mut row: Vec<Val> = vec![
            tenant.into(),
            id.into(),
            name.into(),
            account.into(),
            (*pick(&mut rng, TITLES)).into(),
            raw.into(),
            e164.into(),
            email.into(),
            "CN".into(),
            province.into(),
            city.into(),
            owner.into(),
            team.into(),
            search.into(),
            grams.into(),
        ];
        common(&mut row);
        row.push(serde_json::json!([]).into());
        people.push(row);
        let n_orders = orders_of(&mut rng);
        for _ in 0..n_orders {
            planned.push((rng.gen_range(0..two_years), buyers.len() as u32, rng.gen()));
        }
        buyers.push((id, account));
        // A touch for most customers, more for those who buy.
        for k in 0..(usize::from(rng.gen_bool(0.6)) + n_orders.min(4) / 2) {
            let at = t - Duration::seconds(rng.gen_range(0..two_years));
            let kind = *pick(&mut rng, &["call", "visit", "meeting", "note", "email"]);
            let mut row: Vec<Val> = vec![
                tenant.into(),
                guanxi_platform::time::new_id().into(),
                kind.into(),
                format!("第 {} 次跟进", k + 1).into(),
                account.into(),
                id.into(),
                at.into(),
                Some(at).into(),
                owner.into(),
                team.into(),
            ];
            common(&mut row);
            touches.push(row);
        }
        if people.len() == BATCH || i + 1 == contacts {
            stats.contacts += people.len();
            stats.activities += touches.len();
            let mut tx = db.begin().await?;
            tx.bulk_load().await?;
            let batch = in_era(&mut tx, tenant, "contacts", std::mem::take(&mut people)).await?;
            tx.insert_rows("contacts", CONTACT_COLUMNS, batch).await?;
            tx.insert_rows("activities", ACTIVITY_COLUMNS, std::mem::take(&mut touches))
                .await?;
            tx.commit().await?;
            progress(stats.contacts);
        }
    }
    // Oldest first (seconds ago, most first).
    planned.sort_unstable_by_key(|(ago, buyer, _)| (std::cmp::Reverse(*ago), *buyer));
    let (mut orders, mut lines) = (vec![], vec![]);
    let n_planned = planned.len();
    for (k, (ago, buyer, order_seed)) in planned.into_iter().enumerate() {
        let (id, account) = buyers[buyer as usize];
        let mut rng = StdRng::seed_from_u64(order_seed);
        let order = guanxi_platform::time::new_id();
        let at = t - Duration::seconds(ago);
        let mut total = 0i64;
        for line_no in 1..=rng.gen_range(1..=6i64) {
            let p = pick(&mut rng, &catalogue);
            let quantity = rng.gen_range(1..=20i64);
            let discount = if rng.gen_bool(0.2) {
                p.list_price * quantity / 10
            } else {
                0
            };
            let amount = p.list_price * quantity - discount;
            total += amount;
            lines.push(vec![
                tenant.into(),
                order.into(),
                line_no.into(),
                p.id.into(),
                p.sku.clone().into(),
                p.name.clone().into(),
                quantity.into(),
                p.list_price.into(),
                discount.into(),
                amount.into(),
            ]);
        }
        stats.orders += 1;
        let mut row: Vec<Val> = vec![
            tenant.into(),
            order.into(),
            format!("G{run}-{:08}", stats.orders).into(),
            (*pick(&mut rng, orders::CHANNELS)).into(),
            (if rng.gen_bool(0.9) {
                "completed"
            } else {
                "paid"
            })
            .into(),
            account.into(),
            id.into(),
            at.into(),
            "CNY".into(),
            total.into(),
        ];
        common(&mut row);
        orders.push(row);
        if orders.len() == 3 * BATCH || k + 1 == n_planned {
            stats.order_lines += lines.len();
            let mut tx = db.begin().await?;
            tx.bulk_load().await?;
            tx.insert_rows("orders", ORDER_COLUMNS, std::mem::take(&mut orders))
                .await?;
            tx.insert_rows("order_lines", LINE_COLUMNS, std::mem::take(&mut lines))
                .await?;
            tx.commit().await?;
        }
    }
    db.finish_bulk_load().await?;
    Ok(stats)
}
