//! The demo company's sales side, loaded after its customers (`guanxi demo`): a web form, a
//! company pool, scoring and assignment rules, a first-response policy, and leads in every
//! status — from the form, a trade show, the API and by hand — through the same service
//! functions a user's requests take.

use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::{args, Ctx};
use serde_json::json;
use uuid::Uuid;

use crate::intake::{self, Arrival};
use crate::leads::{self, LeadInput};
use crate::{assignment, convert, forms, pools, scoring, sla};

#[derive(Debug, Default)]
pub struct SalesStats {
    pub leads: usize,
}

fn input(v: serde_json::Value) -> LeadInput {
    serde_json::from_value(v).unwrap_or_default()
}

pub async fn load(db: &Db, admin: &Ctx, seed: u64) -> Result<SalesStats> {
    let mut stats = SalesStats::default();
    let reps: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT u.id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
             WHERE u.tenant_id = $1 AND r.key = 'sales' ORDER BY u.email",
            args![admin.tenant_id],
        )
        .await?;
    let owner = admin.user_id;
    let existing = forms::list(db, admin).await?;
    if existing.is_empty() {
        forms::create(
            db,
            admin,
            serde_json::from_value(json!({
                "name": "官网咨询",
                "fields": [
                    {"field": "name", "labels": {"zh-CN": "您的姓名", "en": "Your name"}},
                    {"field": "company", "labels": {"zh-CN": "公司", "en": "Company"}},
                    {"field": "phone", "labels": {"zh-CN": "手机", "en": "Mobile"}, "required": true},
                    {"field": "email", "labels": {"zh-CN": "邮箱", "en": "Email"}},
                    {"field": "product_interest", "labels": {"zh-CN": "想了解的产品", "en": "Interested in"}},
                    {"field": "notes", "labels": {"zh-CN": "留言", "en": "Message"}}
                ],
                "consent": {"zh-CN": "我同意贵公司就此咨询与我联系", "en": "You may contact me about this enquiry"},
                "source_detail": "官网",
                "tags": ["官网"]
            }))
            .unwrap_or_default(),
        )
        .await?;
        // The service desk's web form: a request opens a ticket.
        forms::create(
            db,
            admin,
            serde_json::from_value(json!({
                "name": "在线报修",
                "target": "tickets",
                "fields": [
                    {"field": "name", "labels": {"zh-CN": "您的姓名", "en": "Your name"}},
                    {"field": "email", "labels": {"zh-CN": "邮箱（用于答复）", "en": "Email (for our answer)"}},
                    {"field": "phone", "labels": {"zh-CN": "手机", "en": "Mobile"}},
                    {"field": "company", "labels": {"zh-CN": "公司", "en": "Company"}},
                    {"field": "subject", "labels": {"zh-CN": "问题概要", "en": "Summary"}},
                    {"field": "description", "labels": {"zh-CN": "问题描述", "en": "What happened"}}
                ],
                "thanks": {"zh-CN": "已收到您的报修，我们会尽快通过邮件答复。", "en": "We have your request and will answer by email soon."},
                "tags": ["在线报修"]
            }))
            .unwrap_or_default(),
        )
        .await?;
        pools::create(
            db,
            admin,
            serde_json::from_value(json!({
                "name": "公司公海", "claim_per_day": 10, "max_held": 200, "reclaim_wait_days": 7,
                "return_days": 30, "grade_days": {"A": 60, "D": 14}, "unconverted_days": 180
            }))
            .unwrap_or_default(),
        )
        .await?;
        pools::create(
            db,
            admin,
            serde_json::from_value(json!({
                "name": "客户公海", "entity": "accounts", "claim_per_day": 5, "max_held": 100,
                "reclaim_wait_days": 30, "return_days": 60, "unconverted_days": 180
            }))
            .unwrap_or_default(),
        )
        .await?;
        for (name, conds, points) in [
            (
                "茶饮行业",
                json!([{"field": "industry", "op": "in", "value": ["茶饮", "餐饮", "零售"]}]),
                30,
            ),
            (
                "意向明确",
                json!([{"field": "product_interest", "op": "exists"}]),
                20,
            ),
            ("有公司", json!([{"field": "company", "op": "exists"}]), 10),
            (
                "多次来访",
                json!([{"field": "touches", "op": "gte", "value": 1}]),
                30,
            ),
            (
                "华东",
                json!([{"field": "province", "op": "in", "value": ["浙江", "江苏", "上海"]}]),
                10,
            ),
        ] {
            scoring::create(
                db,
                admin,
                scoring::ScoringRuleInput {
                    name: Some(name.into()),
                    conditions: serde_json::from_value(conds).ok(),
                    points: Some(points),
                    ..Default::default()
                },
            )
            .await?;
        }
        if let Some((first,)) = reps.first() {
            assignment::create(
                db,
                admin,
                assignment::AssignmentRuleInput {
                    name: Some("华东客户给首席销售".into()),
                    conditions: serde_json::from_value(
                        json!([{"field": "province", "op": "in", "value": ["浙江", "江苏", "上海"]}]),
                    )
                    .ok(),
                    target: Some("user".into()),
                    user_id: Some(Some(*first)),
                    ..Default::default()
                },
            )
            .await?;
        }
        sla::set_policies(
            db,
            admin,
            vec![sla::ResponsePolicy {
                source: "*".into(),
                minutes: 240,
                warn_minutes: 60,
                on_breach: "notify".into(),
            }],
        )
        .await?;
    }
    // Leads: new ones from the form and a trade show, some worked, one converted.
    let people = [
        (
            "周婷",
            "杭州明前茶饮",
            "浙江",
            "杭州",
            "茶饮",
            "龙井礼盒",
            "form",
        ),
        (
            "郑浩",
            "苏州味道餐饮",
            "江苏",
            "苏州",
            "餐饮",
            "普洱散茶",
            "form",
        ),
        (
            "Grace Lin",
            "Harbour Tea Ltd",
            "",
            "Hong Kong",
            "零售",
            "Oolong",
            "api",
        ),
        ("冯磊", "成都茶语", "四川", "成都", "茶饮", "", "campaign"),
        (
            "许晴",
            "南京茗香零售",
            "江苏",
            "南京",
            "零售",
            "白茶",
            "import",
        ),
        ("唐亮", "深圳鲜叶科技", "广东", "深圳", "科技", "", "manual"),
        (
            "韩雪",
            "武汉长江茶馆",
            "湖北",
            "武汉",
            "餐饮",
            "红茶",
            "form",
        ),
        ("曹阳", "", "北京", "北京", "", "茶具", "api"),
    ];
    let statuses = [
        "new",
        "new",
        "working",
        "nurturing",
        "qualified",
        "disqualified",
        "working",
        "new",
    ];
    for (i, (name, company, province, city, industry, interest, source)) in
        people.iter().enumerate()
    {
        let phone = format!("139{:04}{:04}", seed % 10_000, 7000 + i);
        let v = input(json!({
            "name": name,
            "company": (!company.is_empty()).then_some(company),
            "province": (!province.is_empty()).then_some(province),
            "city": city,
            "industry": (!industry.is_empty()).then_some(industry),
            "product_interest": (!interest.is_empty()).then_some(interest),
            "phone": phone,
            "tags": if *source == "import" { json!(["2026茶博会"]) } else { json!([]) },
        }));
        let arrival = Arrival {
            source: (*source).into(),
            detail: Some(
                match *source {
                    "form" => "官网",
                    "import" => "2026 茶博会名片",
                    "campaign" => "双十一活动",
                    _ => "",
                }
                .to_owned(),
            )
            .filter(|d| !d.is_empty()),
            extra: serde_json::Value::Null,
            fallback_owner: reps.get(i % reps.len().max(1)).map(|(id,)| *id).or(owner),
        };
        let r = intake::intake(db, admin, v, arrival).await?;
        stats.leads += 1;
        let Some(lead) = r.lead else { continue };
        let status = statuses[i % statuses.len()];
        if status != "new" {
            leads::update(
                db,
                admin,
                lead.id,
                Some(lead.version),
                input(json!({
                    "status": status,
                    "disqualify_reason": (status == "disqualified").then_some("只是比价，无采购计划"),
                })),
            )
            .await?;
        }
        if i == 0 {
            // The first one wrote twice.
            intake::intake(
                db,
                admin,
                input(json!({"name": name, "phone": phone, "notes": "请尽快报价，下周开业"})),
                Arrival {
                    source: "form".into(),
                    detail: Some("官网".into()),
                    extra: serde_json::Value::Null,
                    fallback_owner: owner,
                },
            )
            .await?;
        }
        if status == "qualified" {
            convert::convert(db, admin, lead.id, convert::ConvertInput::default()).await?;
        }
    }
    // Two in the pool, waiting to be claimed.
    let all = pools::list(db, admin).await?;
    if let Some(pool) = all.iter().find(|p| !p.holds_accounts()) {
        for (name, phone) in [("姜伟", "13600001111"), ("钱多多", "13600002222")] {
            let r = intake::intake(
                db,
                admin,
                input(json!({"name": name, "phone": phone, "product_interest": "茶叶批发"})),
                Arrival {
                    source: "import".into(),
                    detail: Some("2026 茶博会名片".into()),
                    extra: serde_json::Value::Null,
                    fallback_owner: owner,
                },
            )
            .await?;
            stats.leads += 1;
            if r.entity == "leads" {
                pools::release(
                    db,
                    admin,
                    pool.id,
                    pools::PoolAction {
                        version: None,
                        ids: vec![r.id],
                        reason: Some("展会名片，待分配".into()),
                        owner_id: None,
                    },
                )
                .await?;
            }
        }
    }
    deals(db, admin).await?;
    // Two customers nobody followed up, back in the customer pool.
    if let Some(pool) = all.iter().find(|p| p.holds_accounts()) {
        let filter = guanxi_customers::accounts::AccountFilter {
            sort: Some("-created_at".into()),
            limit: Some(2),
            ..Default::default()
        };
        let ids: Vec<Uuid> = guanxi_customers::accounts::list(db, admin, &filter)
            .await?
            .items
            .iter()
            .map(|a| a.id)
            .collect();
        if ids.is_empty() {
            return Ok(stats);
        }
        pools::release(
            db,
            admin,
            pool.id,
            pools::PoolAction {
                version: None,
                ids,
                reason: Some("半年未跟进".into()),
                owner_id: None,
            },
        )
        .await?;
    }
    Ok(stats)
}

/// Two pipelines (product sales; a project's bid → contract → delivery → acceptance →
/// warranty → 回访) and deals across their stages on the demo's customers, moved through the
/// stages so each has a history.
async fn deals(db: &Db, admin: &Ctx) -> Result<()> {
    use crate::opportunities::{self, OpportunityInput};
    use crate::pipelines::{self, PipelineInput};
    if !pipelines::list(db, admin).await?.is_empty() {
        return Ok(());
    }
    let pipeline =
        |v: serde_json::Value| -> PipelineInput { serde_json::from_value(v).unwrap_or_default() };
    let sales = pipelines::create(
        db,
        admin,
        pipeline(json!({"name": "产品销售", "stages": [
            {"name": "初步接触", "probability": 10},
            {"name": "需求确认", "probability": 30},
            {"name": "方案报价", "probability": 50, "category": "best_case", "required_fields": ["amount", "expected_close"]},
            {"name": "商务谈判", "probability": 80, "category": "commit"},
            {"name": "赢单", "category": "won"},
            {"name": "输单", "category": "lost", "required_fields": ["close_reason"]}
        ]})),
    )
    .await?;
    pipelines::create(
        db,
        admin,
        pipeline(json!({"name": "工程项目", "moves": "forward", "may_reopen": false, "stages": [
            {"name": "投标", "probability": 20}, {"name": "合同", "probability": 60, "category": "commit", "required_fields": ["amount"]},
            {"name": "交付", "probability": 90, "category": "commit"}, {"name": "验收", "probability": 95, "category": "commit"},
            {"name": "质保与回访", "category": "won"}, {"name": "流标", "category": "lost", "required_fields": ["close_reason"]}
        ]})),
    )
    .await?;
    let accounts = guanxi_customers::accounts::list(
        db,
        admin,
        &guanxi_customers::accounts::AccountFilter {
            limit: Some(8),
            ..Default::default()
        },
    )
    .await?
    .items;
    let plans: [(&str, i64, usize, &str); 8] = [
        ("年度茶叶采购", 12_800_000, 0, "2027-01-20"),
        ("门店礼盒定制", 3_600_000, 1, "2026-12-28"),
        ("春节团购", 5_200_000, 2, "2027-01-10"),
        ("办公室茶水间", 880_000, 3, "2026-12-15"),
        ("新品试销", 1_500_000, 1, "2027-02-01"),
        ("连锁门店铺货", 26_000_000, 4, "2026-11-30"),
        ("展会赠品", 640_000, 5, "2026-11-20"),
        ("会员积分礼品", 2_100_000, 2, "2027-03-01"),
    ];
    let mut deals = Vec::new();
    for (i, (name, amount, stage, close)) in plans.iter().enumerate() {
        let Some(acc) = accounts.get(i % accounts.len().max(1)) else {
            break;
        };
        let d = opportunities::create(
            db,
            admin,
            OpportunityInput {
                name: Some((*name).into()),
                account_id: Some(acc.id),
                amount: Some(*amount),
                expected_close: Some(Some((*close).into())),
                owner_id: acc.owner_id,
                ..Default::default()
            },
        )
        .await?;
        let mut version = d.version;
        for st in sales.stages.iter().take(*stage + 1).skip(1) {
            let moved = opportunities::update(
                db,
                admin,
                d.id,
                None,
                OpportunityInput {
                    version: Some(version),
                    stage_id: Some(st.id),
                    close_reason: (st.category == "lost").then(|| Some("预算取消".into())),
                    ..Default::default()
                },
            )
            .await?;
            version = moved.version;
        }
        deals.push(d.id);
    }
    quotes_demo(db, admin, &accounts, &deals).await
}

/// Grades on the first accounts, price books (everyone's with a volume tier, grade A's), and a
/// quote in each state: revised (v1 superseded by v2), a draft, accepted (an order), declined.
async fn quotes_demo(
    db: &Db,
    admin: &Ctx,
    accounts: &[guanxi_customers::accounts::Account],
    deals: &[Uuid],
) -> Result<()> {
    use crate::price_books::{self, EntryInput, PriceBookInput};
    use crate::quotes::{self, Decision, LineInput, QuoteInput};
    for (a, grade) in accounts.iter().zip(["A", "B", "C"]) {
        guanxi_customers::accounts::update(
            db,
            admin,
            a.id,
            None,
            guanxi_customers::accounts::AccountInput {
                version: Some(a.version),
                grade: Some(Some(grade.into())),
                ..Default::default()
            },
        )
        .await?;
    }
    let products: Vec<(Uuid, i64)> = db
        .fetch_all(
            "SELECT id, list_price FROM products WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY sku LIMIT 6",
            args![admin.tenant_id],
        )
        .await?;
    if products.len() < 3 || deals.len() < 4 {
        return Ok(());
    }
    let entry = |i: usize, min: i64, pct: i64| EntryInput {
        product_id: Some(products[i].0),
        sku: None,
        min_quantity: Some(min),
        unit_price: products[i].1 * pct / 100,
    };
    price_books::create(
        db,
        admin,
        PriceBookInput {
            name: Some("2026 标准价".into()),
            valid_from: Some(Some("2026-01-01".into())),
            entries: Some(vec![
                entry(0, 1, 100),
                entry(0, 20, 92),
                entry(0, 100, 85),
                entry(1, 1, 100),
                entry(2, 50, 90),
            ]),
            ..Default::default()
        },
    )
    .await?;
    price_books::create(
        db,
        admin,
        PriceBookInput {
            name: Some("A 级客户价".into()),
            audience: Some("grade".into()),
            audience_value: Some("A".into()),
            entries: Some(vec![entry(0, 1, 88), entry(1, 1, 90)]),
            ..Default::default()
        },
    )
    .await?;
    let line = |i: usize, q: i64| LineInput {
        product_id: Some(products[i].0),
        quantity: Some(q),
        ..Default::default()
    };
    let open = |deal: Uuid, lines: Vec<LineInput>| QuoteInput {
        opportunity_id: Some(deal),
        valid_until: Some(Some("2027-03-31".into())),
        payment_terms: Some(Some("月结 30 天".into())),
        delivery_terms: Some(Some("到货 7 个工作日内".into())),
        lines: Some(lines),
        ..Default::default()
    };
    // Revised: v1 sent, a 5% discount on the total, v2 sent.
    let q = quotes::create(db, admin, open(deals[0], vec![line(0, 120), line(2, 60)])).await?;
    let q = quotes::send(db, admin, q.id, Some(q.version)).await?;
    let q = quotes::update(
        db,
        admin,
        q.id,
        None,
        QuoteInput {
            version: Some(q.version),
            discount_bp: Some(500),
            ..Default::default()
        },
    )
    .await?;
    quotes::send(db, admin, q.id, Some(q.version)).await?;
    // A draft.
    quotes::create(db, admin, open(deals[1], vec![line(1, 10), line(2, 10)])).await?;
    // Accepted: an order in the customer's purchase history.
    let q = quotes::create(db, admin, open(deals[2], vec![line(0, 30)])).await?;
    let q = quotes::send(db, admin, q.id, Some(q.version)).await?;
    quotes::accept(
        db,
        admin,
        q.id,
        Decision {
            version: None,
            version_no: Some(1),
            reason: None,
        },
    )
    .await?;
    // Declined, with the reason.
    let q = quotes::create(db, admin, open(deals[3], vec![line(1, 5)])).await?;
    let q = quotes::send(db, admin, q.id, Some(q.version)).await?;
    quotes::decline(
        db,
        admin,
        q.id,
        Decision {
            version: None,
            version_no: Some(1),
            reason: Some("预算推迟到明年".into()),
        },
    )
    .await?;
    approvals_demo(db, admin, deals, &products).await?;
    targets_demo(db, admin, deals).await
}

/// This quarter's targets for the reps who own the demo deals.
async fn targets_demo(db: &Db, admin: &Ctx, deals: &[Uuid]) -> Result<()> {
    use crate::forecast::{self, Period, TargetInput};
    let period = Period::quarter_of(
        (guanxi_platform::time::now() + chrono::Duration::hours(8)).date_naive(),
    );
    let mut owners: Vec<Uuid> = Vec::new();
    for d in deals {
        let owner = crate::opportunities::get(db, admin, *d).await?.owner_id;
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    for (i, owner) in owners.iter().enumerate() {
        let input = TargetInput {
            period: period.clone(),
            user_id: Some(*owner),
            team_id: None,
            amount: 20_000_000 + 5_000_000 * i as i64,
        };
        forecast::set_target(db, admin, input).await?;
    }
    // The first rep calls their quarter; the administrator adjusts the second rep's call.
    let call = |user: Uuid, amount: i64, note: &str| forecast::CallInput {
        period: period.clone(),
        user_id: Some(user),
        team_id: None,
        amount,
        note: Some(note.into()),
    };
    if let Some(first) = owners.first() {
        let rep = guanxi_platform::auth::ctx_for_user(db, admin.tenant_id, *first).await?;
        forecast::make_call(db, &rep, call(*first, 15_000_000, "年度采购单有把握")).await?;
    }
    if let Some(second) = owners.get(1) {
        let rep = guanxi_platform::auth::ctx_for_user(db, admin.tenant_id, *second).await?;
        forecast::make_call(db, &rep, call(*second, 9_000_000, "两单在谈")).await?;
        forecast::make_call(
            db,
            admin,
            call(*second, 6_500_000, "团购单客户预算未批，先按一单算"),
        )
        .await?;
    }
    parties_demo(db, admin, deals).await
}

/// The first deal's people (its customer's contacts as decision maker and influencer) and a
/// competitor.
async fn parties_demo(db: &Db, admin: &Ctx, deals: &[Uuid]) -> Result<()> {
    use crate::parties::{self, CompetitorInput, ContactRole, PartiesInput};
    let Some(first) = deals.first() else {
        return Ok(());
    };
    let deal = crate::opportunities::get(db, admin, *first).await?;
    let people = parties::candidates(db, admin, &deal).await?;
    let roles = ["decision_maker", "influencer"];
    let input = PartiesInput {
        version: Some(deal.version),
        contacts: Some(
            people
                .iter()
                .zip(roles)
                .map(|(c, role)| ContactRole {
                    contact_id: c.0,
                    role: role.into(),
                })
                .collect(),
        ),
        competitors: Some(vec![CompetitorInput {
            name: "竞品茶业".into(),
            note: Some("报价低 5%，交期长两周".into()),
        }]),
    };
    parties::set(db, admin, *first, None, input).await?;
    // Another rep works the deal with its owner (read and edit).
    let colleague: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT u.id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
             WHERE u.tenant_id = $1 AND u.id <> $2 AND u.active = $3 AND u.deleted_at IS NULL
               AND r.key = 'sales'
             ORDER BY u.email LIMIT 1",
            guanxi_platform::args![admin.tenant_id, deal.owner_id, true],
        )
        .await?;
    if let Some((user_id,)) = colleague {
        use guanxi_records::shares::{self, Access, ShareInput, SharesInput};
        let deal = crate::opportunities::get(db, admin, *first).await?;
        let input = SharesInput {
            version: Some(deal.version),
            shares: vec![ShareInput {
                user_id,
                access: Access::Edit,
            }],
        };
        shares::set(
            db,
            admin,
            *first,
            None,
            input,
            |d: &crate::opportunities::Opportunity| d.name.clone(),
        )
        .await?;
    }
    Ok(())
}

/// An approval process for quotes more than 15% below the book prices (the rep's manager, then
/// the administrator), and a rep's request in each state: waiting for the administrator,
/// approved, rejected.
async fn approvals_demo(
    db: &Db,
    admin: &Ctx,
    deals: &[Uuid],
    products: &[(Uuid, i64)],
) -> Result<()> {
    use crate::quotes::{self, LineInput, QuoteInput};
    use guanxi_platform::approvals::{self, DecisionInput, ProcessInput};
    if deals.len() < 7 {
        return Ok(());
    }
    let conditions =
        serde_json::from_value(json!([{"field": "discount_bp", "op": "gt", "value": 1500}]))
            .unwrap_or_default();
    let steps = serde_json::from_value(json!([
        {"name": "销售主管审批", "rule": "any", "approvers": [{"kind": "manager"}]},
        {"name": "总经理审批", "rule": "any", "approvers": [{"kind": "role", "role": "admin"}]}
    ]))
    .unwrap_or_default();
    approvals::create_process(
        db,
        admin,
        ProcessInput {
            name: Some("大额折扣审批".into()),
            entity: Some("quotes".into()),
            conditions: Some(conditions),
            steps: Some(steps),
            ..Default::default()
        },
    )
    .await?;
    for (deal, verdict) in deals[4..7]
        .iter()
        .zip([None, Some("approve"), Some("reject")])
    {
        let d = crate::opportunities::get(db, admin, *deal).await?;
        let rep = guanxi_platform::auth::ctx_for_user(db, admin.tenant_id, d.owner_id).await?;
        let q = quotes::create(
            db,
            &rep,
            QuoteInput {
                opportunity_id: Some(*deal),
                discount_bp: Some(2000),
                payment_terms: Some(Some("预付 30%，到货付清".into())),
                lines: Some(vec![LineInput {
                    product_id: Some(products[0].0),
                    quantity: Some(50),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .await?;
        let note = Some("老客户续约，争取年度合同".to_owned());
        let r = quotes::submit(db, &rep, q.id, Some(q.version), note).await?;
        if let Some(v) = verdict {
            let comment = (v == "reject").then(|| "折扣超出本季度政策".to_owned());
            let input = DecisionInput {
                version: None,
                comment,
            };
            approvals::decide(db, admin, r.id, v, input).await?;
        }
    }
    Ok(())
}

#[rustfmt::skip]
const LEAD_COLUMNS: &[&str] = &[
    "tenant_id", "id", "name", "company", "phone", "phone_e164", "country", "province", "city",
    "industry", "source", "source_detail", "status", "score", "last_touch_at", "owner_id",
    "team_id", "search", "grams", "custom", "tags", "created_at", "updated_at", "created_by",
    "updated_by", "version", "era",
];

/// `guanxi bench`: `n` leads written straight into the table with the values the intake would
/// store (normalised phone, search text with pinyin and the company's), owned by the admin,
/// `new` or `working`, scores spread over 0–100, last changed up to a year ago — in
/// transactions of [`guanxi_customers::demo::BATCH`], no audit events. Deterministic from the
/// seed (ids aside).
pub async fn scale(db: &Db, admin: &Ctx, n: usize, seed: u64) -> Result<()> {
    use guanxi_customers::demo::{
        in_era, mobile, person_name, pick, BATCH, BRANDS, PLACES, TRADES,
    };
    use guanxi_platform::db::Val;
    use guanxi_records::{normalize, record};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let owner = admin.user_id.ok_or(guanxi_platform::Error::Forbidden)?;
    let t = guanxi_platform::time::now();
    let mut rows: Vec<Vec<Val>> = Vec::with_capacity(BATCH);
    for i in 0..n {
        let name = person_name(&mut rng);
        let raw = mobile(&mut rng);
        let national = normalize::digits(&raw);
        let e164 = format!("+86{national}");
        let (province, city, _) = *pick(&mut rng, PLACES);
        let (trade, industry) = *pick(&mut rng, TRADES);
        let company = format!(
            "{}{}{}",
            city.trim_end_matches('市'),
            pick(&mut rng, BRANDS),
            trade
        );
        let (company_py, company_initials) = normalize::pinyin(&company);
        let search = record::search_of(
            &name,
            Some(&national),
            Some(&e164),
            &[Some(&company), Some(&company_py), Some(&company_initials)],
        );
        let grams = normalize::grams(&search);
        let changed = t - chrono::Duration::seconds(rng.gen_range(0..365 * 24 * 3600));
        rows.push(vec![
            admin.tenant_id.into(),
            guanxi_platform::time::new_id().into(),
            name.into(),
            company.into(),
            raw.into(),
            e164.into(),
            "CN".into(),
            province.into(),
            city.into(),
            industry.into(),
            "import".into(),
            "scale".into(),
            (if rng.gen_bool(0.7) { "new" } else { "working" }).into(),
            rng.gen_range(0..=100i64).into(),
            changed.into(),
            owner.into(),
            admin.team_id.into(),
            search.into(),
            grams.into(),
            json!({}).into(),
            json!([]).into(),
            changed.into(),
            changed.into(),
            owner.into(),
            owner.into(),
            1i64.into(),
        ]);
        if rows.len() == BATCH || i + 1 == n {
            let mut tx = db.begin().await?;
            tx.bulk_load().await?;
            let batch =
                in_era(&mut tx, admin.tenant_id, "leads", std::mem::take(&mut rows)).await?;
            tx.insert_rows("leads", LEAD_COLUMNS, batch).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

#[rustfmt::skip]
const DEAL_COLUMNS: &[&str] = &[
    "tenant_id", "id", "name", "account_id", "pipeline_id", "stage_id", "status", "amount",
    "currency", "probability", "stage_since", "position", "owner_id", "team_id", "search",
    "grams", "custom", "tags", "created_at", "updated_at", "created_by", "updated_by", "version",
    "expected_close", "closed_at", "reached_stage_id", "era",
];

/// `n` deals on the tenant's accounts and among its users, written in batches as the other
/// generators do: open ones spread over the open stages of `pipeline`, expected to close over
/// this quarter and the next; with `closed_share` > 0 that share closed today (two in five
/// won), for the forecast's and the funnel's benchmarks. Each has reached its stage (a lost
/// one an open stage before it).
pub async fn scale_deals(
    db: &Db,
    admin: &Ctx,
    pipeline: &crate::pipelines::Pipeline,
    n: usize,
    closed_share: f64,
    seed: u64,
) -> Result<()> {
    use guanxi_customers::demo::{in_era, BATCH};
    use guanxi_platform::db::Val;
    use guanxi_records::{normalize, record};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let owner = admin.user_id.ok_or(guanxi_platform::Error::Forbidden)?;
    let accounts: Vec<(Uuid, String)> = db
        .fetch_all(
            "SELECT id, name FROM accounts WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT 10000",
            args![admin.tenant_id],
        )
        .await?;
    let open: Vec<&crate::pipelines::Stage> = pipeline
        .stages
        .iter()
        .filter(|s| s.status() == "open")
        .collect();
    let won = pipeline.stages.iter().find(|s| s.category == "won");
    let lost = pipeline.stages.iter().find(|s| s.category == "lost");
    let users: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT id FROM users WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT 100",
            args![admin.tenant_id],
        )
        .await?;
    if accounts.is_empty() || open.is_empty() || users.is_empty() {
        return Ok(());
    }
    let t = guanxi_platform::time::now();
    let today = t.date_naive();
    let mut rows: Vec<Vec<Val>> = Vec::with_capacity(BATCH);
    for i in 0..n {
        let (account, account_name) = &accounts[rng.gen_range(0..accounts.len())];
        let mut stage = open[rng.gen_range(0..open.len())];
        let reached = stage.id;
        let closed = match (won, lost) {
            (Some(w), Some(l)) if rng.gen_bool(closed_share.clamp(0.0, 1.0)) => {
                stage = if rng.gen_bool(0.4) { w } else { l };
                true
            }
            _ => false,
        };
        let reached = if stage.category == "won" {
            stage.id
        } else {
            reached
        };
        let close_day = today + chrono::Days::new(rng.gen_range(0..180));
        let deal_owner = users[rng.gen_range(0..users.len())].0;
        let name = format!("{account_name} 第{}单", i + 1);
        let search = record::search_of(&name, None, None, &[Some(account_name.as_str())]);
        let grams = normalize::grams(&search);
        rows.push(vec![
            admin.tenant_id.into(),
            guanxi_platform::time::new_id().into(),
            name.into(),
            (*account).into(),
            pipeline.id.into(),
            stage.id.into(),
            stage.status().into(),
            (rng.gen_range(1..5_000) * 10_000_i64).into(),
            "CNY".into(),
            stage.probability.into(),
            t.into(),
            (-(i as f64)).into(),
            deal_owner.into(),
            Val::from(None::<Uuid>),
            search.into(),
            grams.into(),
            serde_json::json!({}).into(),
            serde_json::json!([]).into(),
            t.into(),
            t.into(),
            owner.into(),
            owner.into(),
            1_i64.into(),
            close_day.format("%Y-%m-%d").to_string().into(),
            Val::from(closed.then_some(t)),
            reached.into(),
        ]);
        if rows.len() == BATCH || i + 1 == n {
            let mut tx = db.begin().await?;
            tx.bulk_load().await?;
            let batch = in_era(
                &mut tx,
                admin.tenant_id,
                "opportunities",
                std::mem::take(&mut rows),
            )
            .await?;
            tx.insert_rows("opportunities", DEAL_COLUMNS, batch).await?;
            tx.commit().await?;
        }
    }
    db.finish_bulk_load().await?;
    Ok(())
}
