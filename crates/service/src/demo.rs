//! The demo company's service desk (`guanxi demo`, after customers and grades): two agents,
//! SLA policies by customer grade, and tickets over the past year with replies, notes and
//! resolutions — each made through the service functions, then moved back to when it happened
//! (every timestamp of the ticket, its messages and its log shifted alike), and its clocks
//! evaluated from that log, so the queue, the clocks and the outcomes are what a year of work
//! would have left.

use chrono::{Duration, Utc};
use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::time::now;
use guanxi_platform::{args, auth, users, Ctx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::sla::{self, PolicyInput};
use crate::tickets::{self, MessageInput, TicketInput};

#[derive(Debug, Default)]
pub struct ServiceStats {
    pub tickets: usize,
    pub articles: usize,
    pub portal_users: usize,
    pub visits: usize,
}

const SUBJECTS: &[(&str, &str)] = &[
    ("设备无法开机", "维修"),
    ("发票抬头开错", "财务"),
    ("安装调试预约", "安装"),
    ("配件发错型号", "物流"),
    ("系统登录不了", "技术支持"),
    ("保养周期咨询", "咨询"),
    ("运行噪音偏大", "维修"),
    ("Request for a quote copy", "财务"),
    ("Spare parts delivery delayed", "物流"),
];

fn policy(v: serde_json::Value) -> PolicyInput {
    serde_json::from_value(v).unwrap_or_default()
}

pub async fn load(db: &Db, admin: &Ctx, seed: u64, base_url: &str) -> Result<ServiceStats> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e41);
    let mut stats = ServiceStats::default();
    if sla::list(db, admin).await?.is_empty() {
        sla::create(
            db,
            admin,
            policy(
                json!({"name": "A/B 类客户", "position": 1, "grades": ["A", "B"],
                "first_response_minutes": 60, "next_response_minutes": 120,
                "resolution_minutes": 960, "warn_minutes": 15, "raise_priority": true,
                "follow_up_days": 3}),
            ),
        )
        .await?;
        sla::create(
            db,
            admin,
            policy(
                json!({"name": "紧急", "position": 2, "priorities": ["urgent"],
                "first_response_minutes": 30, "resolution_minutes": 480, "warn_minutes": 10}),
            ),
        )
        .await?;
        sla::create(
            db,
            admin,
            policy(
                json!({"name": "标准", "position": 10, "first_response_minutes": 240,
                "next_response_minutes": 480, "resolution_minutes": 2400, "warn_minutes": 30}),
            ),
        )
        .await?;
    }
    let (service_role,): (Uuid,) = db
        .fetch_one(
            "SELECT id FROM roles WHERE tenant_id = $1 AND key = $2",
            args![admin.tenant_id, "service"],
        )
        .await?;
    // Two service stations: South China takes its provinces' tickets round robin, the
    // international desk takes those written in English.
    let mut stations = [None, None];
    if crate::routing::list(db, admin).await?.is_empty() {
        let queues = [
            (
                "华南服务站",
                json!({"regions": ["广东", "广西", "海南"], "strategy": "round_robin"}),
            ),
            (
                "International desk",
                json!({"languages": ["en"], "strategy": "least_loaded"}),
            ),
        ];
        for (i, (name, rules)) in queues.into_iter().enumerate() {
            let team = guanxi_platform::teams::create(
                db,
                admin,
                guanxi_platform::teams::TeamInput {
                    version: None,
                    name: Some(name.to_owned()),
                },
            )
            .await?;
            let mut input: crate::routing::QueueInput =
                serde_json::from_value(rules).unwrap_or_default();
            input.name = Some(name.to_owned());
            input.position = Some(i as i64 + 1);
            input.team_id = Some(team.id);
            crate::routing::create(db, admin, input).await?;
            stations[i] = Some(team.id);
        }
    }
    let mut agents = Vec::new();
    for (i, name) in ["王静（客服）", "Li Ming (Support)"].iter().enumerate() {
        let email = format!("agent{}.{seed}@demo.guanxi", i + 1);
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
                        role_id: Some(service_role),
                        team_id: stations[i],
                        password: Some(guanxi_platform::secret::random_secret()),
                        ..Default::default()
                    },
                )
                .await?
                .id
            }
        };
        agents.push(auth::ctx_for_user(db, admin.tenant_id, id).await?);
    }
    let contacts: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND deleted_at IS NULL AND account_id IS NOT NULL
             ORDER BY id LIMIT 60",
            args![admin.tenant_id],
        )
        .await?;
    if contacts.is_empty() || agents.is_empty() {
        return Ok(stats);
    }
    for i in 0..48usize {
        let (contact,) = contacts[rng.gen_range(0..contacts.len())];
        let (subject, category) = SUBJECTS[i % SUBJECTS.len()];
        let agent = &agents[i % agents.len()];
        let priority = ["low", "normal", "normal", "high", "urgent"][rng.gen_range(0..5)];
        let channel = ["phone", "email", "manual", "form", "portal"][rng.gen_range(0..5)];
        // Spread over the past year; the newest dozen still open.
        let age_days = if i < 12 {
            rng.gen_range(0..4)
        } else {
            rng.gen_range(5..365)
        };
        let t = tickets::create(
            db,
            agent,
            TicketInput {
                subject: Some(subject.to_owned()),
                contact_id: Some(Some(contact)),
                category: Some(Some(category.to_owned())),
                priority: Some(priority.to_owned()),
                channel: Some(channel.to_owned()),
                owner_id: Some((i % 5 != 0).then_some(agent.user_id).flatten()),
                ..Default::default()
            },
        )
        .await?;
        let say = |kind: &str, body: &str, status: Option<&str>| MessageInput {
            kind: Some(kind.to_owned()),
            body: Some(body.to_owned()),
            status: status.map(str::to_owned),
            version: None,
            contact_id: None,
            channel: None,
            article_id: None,
            attachment_ids: None,
        };
        if i % 5 != 0 || i >= 12 {
            tickets::add_message(
                db,
                agent,
                t.id,
                say("reply", "您好，已收到，我们正在处理。", None),
            )
            .await?;
            // Every third one: the engineer's check list rides with the note.
            if i % 3 == 0 {
                tickets::add_message_with(
                    db,
                    agent,
                    t.id,
                    say("note", "已联系工程师确认，检查记录见附件。", None),
                    &[(
                        "检查记录.txt".to_owned(),
                        format!("{subject}\n1. 外观完好\n2. 通电测试正常\n").into_bytes(),
                    )],
                )
                .await?;
            } else {
                tickets::add_message(db, agent, t.id, say("note", "已联系工程师确认。", None))
                    .await?;
            }
        }
        if i >= 12 {
            tickets::add_message(db, agent, t.id, say("customer", "谢谢，请尽快。", None)).await?;
            let last = if i % 7 == 0 { "closed" } else { "resolved" };
            tickets::add_message(
                db,
                agent,
                t.id,
                say("reply", "问题已解决，如有疑问请随时联系。", Some(last)),
            )
            .await?;
            // Most customers answer the satisfaction question (mostly content).
            if i % 4 != 0 {
                let score = [5, 4, 5, 3, 5, 2, 4, 5][i % 8];
                crate::surveys::record(
                    db,
                    agent,
                    crate::surveys::ResponseInput {
                        kind: Some("csat".into()),
                        score: Some(score),
                        comment: (score <= 3).then(|| "处理有点慢。".to_owned()),
                        ticket_id: Some(t.id),
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
        // Move it back to when it happened: minutes apart at creation, then hours between
        // each step of its log.
        let shift = Duration::days(age_days) + Duration::minutes(rng.gen_range(0..600));
        backdate(db, admin.tenant_id, t.id, shift, &mut rng).await?;
        let mut tx = db.begin().await?;
        sla::evaluate(&mut tx, admin, t.id, now()).await?;
        tx.commit().await?;
        stats.tickets += 1;
    }
    stats.visits = visits(db, &agents).await?;
    warranties(db, admin, &agents).await?;
    stats.articles = articles(db, admin).await?;
    stats.portal_users = portal_users(db, admin, base_url).await?;
    Ok(stats)
}

/// On-site visits booked for the open tickets of the first agent's: the coming days, one a
/// morning (the resolved A/B tickets booked their follow-ups themselves).
/// Equipment the customers bought, warranties ending over the coming months (one already
/// ended), and the warranty sweep on: the first agent, a repair engineer, gets the follow-ups
/// due within 30 days when the server's worker runs it.
async fn warranties(db: &Db, admin: &Ctx, agents: &[Ctx]) -> Result<()> {
    let (have,): (i64,) = db
        .fetch_one(
            "SELECT COUNT(*) FROM assets WHERE tenant_id = $1",
            args![admin.tenant_id],
        )
        .await?;
    let accounts: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT id FROM accounts WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT 8",
            args![admin.tenant_id],
        )
        .await?;
    if have > 0 || accounts.is_empty() {
        return Ok(());
    }
    let names = [
        "中央空调主机",
        "螺杆空压机",
        "冷水机组",
        "客梯",
        "净水设备",
        "配电柜",
        "锅炉",
        "叉车",
    ];
    for (i, ((account,), days)) in accounts
        .iter()
        .zip([-30i64, 5, 12, 20, 28, 45, 90, 200])
        .enumerate()
    {
        let until = (now() + Duration::days(days)).date_naive();
        guanxi_customers::assets::create(
            db,
            admin,
            guanxi_customers::assets::AssetInput {
                account_id: Some(Some(*account)),
                name: Some(names[i % names.len()].to_owned()),
                serial: Some(Some(format!("SN-DEMO-{:04}", i + 1))),
                started_on: Some(Some((until - Duration::days(730)).to_string())),
                warranty_until: Some(Some(until.to_string())),
                ..Default::default()
            },
        )
        .await?;
    }
    if let Some(engineer) = agents.first().and_then(|a| a.user_id) {
        let _ = crate::routing::set_agent(
            db,
            admin,
            engineer,
            crate::routing::AgentInput {
                version: Some(0),
                skills: Some([("维修".to_owned(), 6)].into_iter().collect()),
                ..Default::default()
            },
        )
        .await;
    }
    if crate::warranty::sweep(db, admin).await?.version == 0 {
        crate::warranty::set_sweep(
            db,
            admin,
            crate::warranty::SweepInput {
                version: Some(0),
                active: Some(true),
                days_before: Some(30),
                skill: Some(Some("维修".into())),
                next_at: None,
            },
        )
        .await?;
    }
    Ok(())
}

async fn visits(db: &Db, agents: &[Ctx]) -> Result<usize> {
    let Some(agent) = agents.first() else {
        return Ok(0);
    };
    let open: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT id FROM tickets WHERE tenant_id = $1 AND owner_id = $2
               AND status NOT IN ('resolved', 'closed') AND deleted_at IS NULL
             ORDER BY number LIMIT 3",
            args![agent.tenant_id, agent.user_id],
        )
        .await?;
    let tomorrow = (now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(2, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(now);
    let mut n = 0;
    for (i, (ticket,)) in open.into_iter().enumerate() {
        let booked = crate::visits::schedule(
            db,
            agent,
            crate::visits::VisitInput {
                ticket_id: Some(ticket),
                starts_at: Some(tomorrow + Duration::days(i as i64)),
                minutes: Some(120),
                address: Some(
                    [
                        "北京市朝阳区建国路 88 号",
                        "上海市浦东新区世纪大道 100 号",
                        "广州市天河区体育西路 1 号",
                    ][i % 3]
                        .to_owned(),
                ),
                ..Default::default()
            },
        )
        .await;
        match booked {
            Ok(_) => n += 1,
            // Run again: the agent already has that morning.
            Err(guanxi_platform::Error::Validation(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The knowledge base: articles a desk writes first (Chinese, some also in English), public
/// and internal, one still a draft, with a few votes.
/// Title, category, audience, status, text, and the English title and text if translated.
type DemoArticle = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const ARTICLES: &[DemoArticle] = &[
    (
        "设备无法开机怎么办",
        "维修",
        "public",
        "published",
        "1. 确认电源插头已插好，插座有电。\n2. 检查设备背面的总开关是否打开。\n3. 按住电源键 5 秒后松开，等待指示灯亮起。\n\n以上步骤仍无法开机，请记下设备序列号并联系我们，工程师会在一个工作日内回复。",
        Some((
            "The machine does not switch on",
            "1. Check that the plug is in and the socket has power.\n2. Check the main switch at the back.\n3. Hold the power button for 5 seconds, then release it and wait for the light.\n\nIf it still does not start, note the serial number and contact us: an engineer answers within one working day.",
        )),
    ),
    (
        "如何修改发票抬头",
        "财务",
        "public",
        "published",
        "发票开具后 30 天内可以申请重开。\n\n请提供：原发票号码，正确的单位名称和统一社会信用代码。财务会在三个工作日内寄出新发票，原发票请寄回作废。",
        Some((
            "How to correct the name on an invoice",
            "An invoice can be reissued within 30 days.\n\nSend us the invoice number, the correct company name and its unified social credit code. Finance mails the new invoice within three working days; please return the old one.",
        )),
    ),
    (
        "预约上门安装调试",
        "安装",
        "public",
        "published",
        "收到设备后，请在帮助中心或致电客服预约安装时间。\n\n安装前请准备：平整的安装位置，220V 独立电源，网络接口。工程师上门后约 2 小时完成安装调试并现场培训。",
        None,
    ),
    (
        "系统登录不了的排查步骤",
        "技术支持",
        "public",
        "published",
        "请先确认账号和密码，注意大小写。\n连续输错 5 次会暂时锁定，15 分钟后再试。\n\n仍无法登录时，请清除浏览器缓存或换一个浏览器；如果提示证书错误，请检查电脑时间是否正确。",
        Some((
            "Cannot sign in: what to check",
            "Check your user name and password (they are case-sensitive).\nFive wrong tries lock the account for 15 minutes.\n\nIf it still fails, clear the browser cache or try another browser; a certificate warning usually means the computer's clock is wrong.",
        )),
    ),
    (
        "保养周期说明",
        "咨询",
        "public",
        "published",
        "设备建议每运行 500 小时或每 6 个月保养一次，以先到者为准。\n\n保修期内的定期保养免费，配件按价目表收费。",
        None,
    ),
    (
        "运行噪音偏大的处理（内部）",
        "维修",
        "internal",
        "published",
        "先远程确认：噪音出现在启动时还是持续运行时。\n\n持续噪音多为风扇积尘或轴承磨损：安排工程师上门，携带风扇组件（料号 FAN-220）。保修期外需先报价。",
        None,
    ),
    (
        "配件发错型号的退换流程",
        "物流",
        "internal",
        "draft",
        "核对订单与实物型号 → 拍照留证 → 在工单中备注 → 通知仓库补发 → 客户寄回错发配件（运费到付）。",
        None,
    ),
];

async fn articles(db: &Db, admin: &Ctx) -> Result<usize> {
    use crate::articles::{self, ArticleInput, VoteInput};
    let existing = articles::list(db, admin, &Default::default()).await?;
    if !existing.items.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for (i, (title, category, audience, status, body, english)) in ARTICLES.iter().enumerate() {
        let input = |title: &str, body: &str, locale: &str, of: Option<Uuid>| ArticleInput {
            title: Some(title.into()),
            body: Some(body.into()),
            locale: Some(locale.into()),
            translation_of: of,
            category: Some(Some((*category).into())),
            status: Some((*status).into()),
            audience: Some((*audience).into()),
            ..Default::default()
        };
        let a = articles::create(db, admin, input(title, body, "zh-CN", None)).await?;
        n += 1;
        if let Some((t, b)) = english {
            articles::create(db, admin, input(t, b, "en", Some(a.id))).await?;
            n += 1;
        }
        if *status == "published" {
            for k in 0..(i % 4 + 1) {
                let vote = VoteInput {
                    helpful: Some(k % 3 != 2),
                    comment: (k % 3 == 2).then(|| "步骤里没写清楚指示灯的颜色。".to_owned()),
                };
                articles::vote(db, admin, a.id, vote).await?;
            }
        }
    }
    Ok(n)
}

/// Moves a ticket and everything it holds `shift` into the past, spacing its log's steps out
/// (each later step a few working hours after the one before), so it reads as it happened.
async fn backdate(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
    shift: Duration,
    rng: &mut StdRng,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let created: (chrono::DateTime<Utc>,) = tx
        .fetch_one(
            "SELECT created_at FROM tickets WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?;
    let start = created.0 - shift;
    // Outcomes are recorded again by the evaluation that follows, from the moved log.
    tx.execute(
        "DELETE FROM ticket_events WHERE tenant_id = $1 AND ticket_id = $2 AND kind = 'sla'",
        args![tenant, id],
    )
    .await?;
    tx.execute(
        "DELETE FROM ticket_sla WHERE tenant_id = $1 AND ticket_id = $2",
        args![tenant, id],
    )
    .await?;
    // The log's steps in order; each gets its own time after the start.
    let steps: Vec<(Uuid, chrono::DateTime<Utc>)> = tx
        .fetch_all(
            "SELECT id, at FROM ticket_events WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY at, id",
            args![tenant, id],
        )
        .await?;
    let mut at = start;
    let mut moved = Vec::new();
    let mut last = created.0;
    for (event, original) in steps {
        // One request's events share its instant; each later request is a later step.
        if original != last {
            at += Duration::minutes(rng.gen_range(20..300));
            last = original;
        }
        moved.push((original, at));
        tx.execute(
            "UPDATE ticket_events SET at = $1 WHERE tenant_id = $2 AND id = $3",
            args![at, tenant, event],
        )
        .await?;
    }
    // Messages and the ticket's own times follow the log step written with them.
    let place = |t: chrono::DateTime<Utc>| {
        moved
            .iter()
            .rev()
            .find(|(o, _)| *o <= t + Duration::milliseconds(5))
            .map_or(start, |(_, n)| *n)
    };
    let messages: Vec<(Uuid, chrono::DateTime<Utc>)> = tx
        .fetch_all(
            "SELECT id, at FROM ticket_messages WHERE tenant_id = $1 AND ticket_id = $2",
            args![tenant, id],
        )
        .await?;
    for (m, original) in messages {
        tx.execute(
            "UPDATE ticket_messages SET at = $1 WHERE tenant_id = $2 AND id = $3",
            args![place(original), tenant, m],
        )
        .await?;
    }
    type Times = (
        Option<chrono::DateTime<Utc>>,
        Option<chrono::DateTime<Utc>>,
        Option<chrono::DateTime<Utc>>,
        chrono::DateTime<Utc>,
    );
    let (first, resolved, closed, updated): Times = tx
        .fetch_one(
            "SELECT first_replied_at, resolved_at, closed_at, updated_at FROM tickets
             WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?;
    tx.execute(
        "UPDATE tickets SET created_at = $1, first_replied_at = $2, resolved_at = $3,
             closed_at = $4, updated_at = $5
         WHERE tenant_id = $6 AND id = $7",
        args![
            start,
            first.map(place),
            resolved.map(place),
            closed.map(place),
            place(updated),
            tenant,
            id
        ],
    )
    .await?;
    tx.commit().await
}

/// The bulk path for benchmarks (`guanxi bench --tickets N`): `n` tickets of the tenant's
/// contacts in the stored forms the service writes (number, search text with pinyin, tokens,
/// search era), a third of them resolved, each with its `created` event (and `status` when
/// resolved), written with `Tx::insert_rows` 5,000 a transaction — no audit, no clocks (the
/// benchmark evaluates those). Returns the ids of the open ones.
pub async fn scale_tickets(db: &Db, admin: &Ctx, n: usize, seed: u64) -> Result<Vec<Uuid>> {
    use guanxi_platform::db::Val;
    let mut rng = StdRng::seed_from_u64(seed);
    let contacts: Vec<(Uuid, Option<Uuid>, String)> = db
        .fetch_all(
            "SELECT id, account_id, name FROM contacts WHERE tenant_id = $1 AND deleted_at IS NULL
             ORDER BY id LIMIT 50000",
            args![admin.tenant_id],
        )
        .await?;
    let mut open = Vec::new();
    let started = now() - Duration::days(90);
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(5_000);
        let mut tickets = Vec::with_capacity(batch);
        let mut events = Vec::with_capacity(batch * 2);
        for i in done..done + batch {
            let id = guanxi_platform::time::new_id();
            let (subject, category) = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
            let (contact, account, name) = contacts
                .get(rng.gen_range(0..contacts.len().max(1)))
                .cloned()
                .map_or((None, None, String::new()), |(c, a, n)| (Some(c), a, n));
            let number = format!("B-{:08}", i + 1);
            let (py, init) = guanxi_records::normalize::pinyin(&name);
            let search = guanxi_records::record::search_of(
                subject,
                None,
                None,
                &[
                    Some(number.as_str()),
                    Some(name.as_str()),
                    Some(py.as_str()),
                    Some(init.as_str()),
                ],
            );
            let created = started + Duration::seconds((i as i64 * 7_776_000) / n.max(1) as i64);
            let resolved = rng.gen_range(0..3) == 0;
            let status = if resolved {
                "resolved"
            } else {
                ["new", "open", "waiting_customer"][rng.gen_range(0..3)]
            };
            if !resolved {
                open.push(id);
            }
            tickets.push(vec![
                Val::from(admin.tenant_id),
                Val::from(id),
                Val::from(number),
                Val::from(subject),
                Val::from(contact),
                Val::from(account),
                Val::from(category),
                Val::from(["low", "normal", "normal", "high", "urgent"][rng.gen_range(0..5)]),
                Val::from("api"),
                Val::from(status),
                Val::from(resolved.then_some(created + Duration::hours(5))),
                Val::from(search.as_str()),
                Val::from(guanxi_records::normalize::grams(&search)),
                Val::from(serde_json::json!({})),
                Val::from(serde_json::json!([])),
                Val::from(created),
                Val::from(created),
                Val::from(1i64),
            ]);
            events.push(vec![
                Val::from(admin.tenant_id),
                Val::from(guanxi_platform::time::new_id()),
                Val::from(id),
                Val::from("created"),
                Val::from(None::<String>),
                Val::from(Some("api")),
                Val::from(created),
            ]);
            if status != "new" {
                events.push(vec![
                    Val::from(admin.tenant_id),
                    Val::from(guanxi_platform::time::new_id()),
                    Val::from(id),
                    Val::from("status"),
                    Val::from(Some("new")),
                    Val::from(Some(status)),
                    Val::from(created + Duration::hours(if resolved { 5 } else { 1 })),
                ]);
            }
        }
        let mut tx = db.begin().await?;
        let tickets =
            guanxi_customers::demo::in_era(&mut tx, admin.tenant_id, "tickets", tickets).await?;
        tx.insert_rows(
            "tickets",
            &[
                "tenant_id",
                "id",
                "number",
                "subject",
                "contact_id",
                "account_id",
                "category",
                "priority",
                "channel",
                "status",
                "resolved_at",
                "search",
                "grams",
                "custom",
                "tags",
                "created_at",
                "updated_at",
                "version",
                "era",
            ],
            tickets,
        )
        .await?;
        tx.insert_rows(
            "ticket_events",
            &[
                "tenant_id",
                "id",
                "ticket_id",
                "kind",
                "from_value",
                "to_value",
                "at",
            ],
            events,
        )
        .await?;
        tx.commit().await?;
        done += batch;
    }
    Ok(open)
}

/// Two customers with the portal: the first contacts with an email address who asked for
/// something, the first of them seeing their whole company's requests (their invitations wait
/// in the outbox).
async fn portal_users(db: &Db, admin: &Ctx, base_url: &str) -> Result<usize> {
    if !crate::portal::list_users(db, admin, None).await?.is_empty() {
        return Ok(0);
    }
    let contacts: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT DISTINCT c.id FROM tickets t JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id
             WHERE t.tenant_id = $1 AND c.email IS NOT NULL AND c.account_id IS NOT NULL ORDER BY c.id LIMIT 2",
            args![admin.tenant_id],
        )
        .await?;
    for (i, (c,)) in contacts.iter().enumerate() {
        crate::portal::invite(
            db,
            admin,
            crate::portal::PortalUserInput {
                contact_id: Some(*c),
                company_access: Some(i == 0),
                ..Default::default()
            },
            base_url,
        )
        .await?;
    }
    Ok(contacts.len())
}
