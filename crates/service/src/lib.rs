//! Service desk: tickets from every channel with the record machinery, their messages and an
//! append-only event log; SLA policies chosen by priority, customer grade and category, whose
//! clocks are derived from that log on business time (`clock`), evaluated and escalated by the
//! scheduler (`sla`).

use guanxi_platform::migrate::Migration;

pub mod articles;
pub mod attachments;
pub mod clock;
pub mod conditions;
pub mod demo;
pub mod imap;
pub mod inbound;
pub mod mailboxes;
pub mod nps;
pub mod portal;
pub mod routing;
pub mod sla;
pub mod surveys;
pub mod tickets;
pub mod visits;
pub mod warranty;

/// This module's schema, versions 3001–3999.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 3001,
        name: "3001_tickets",
        sqlite: include_str!("../migrations/sqlite/3001_tickets.sql"),
        postgres: include_str!("../migrations/postgres/3001_tickets.sql"),
    },
    Migration {
        version: 3002,
        name: "3002_routing",
        sqlite: include_str!("../migrations/sqlite/3002_routing.sql"),
        postgres: include_str!("../migrations/postgres/3002_routing.sql"),
    },
    Migration {
        version: 3003,
        name: "3003_reply_mail",
        sqlite: include_str!("../migrations/sqlite/3003_reply_mail.sql"),
        postgres: include_str!("../migrations/postgres/3003_reply_mail.sql"),
    },
    Migration {
        version: 3004,
        name: "3004_mailboxes",
        sqlite: include_str!("../migrations/sqlite/3004_mailboxes.sql"),
        postgres: include_str!("../migrations/postgres/3004_mailboxes.sql"),
    },
    Migration {
        version: 3005,
        name: "3005_surveys",
        sqlite: include_str!("../migrations/sqlite/3005_surveys.sql"),
        postgres: include_str!("../migrations/postgres/3005_surveys.sql"),
    },
    Migration {
        version: 3006,
        name: "3006_articles",
        sqlite: include_str!("../migrations/sqlite/3006_articles.sql"),
        postgres: include_str!("../migrations/postgres/3006_articles.sql"),
    },
    Migration {
        version: 3007,
        name: "3007_portal",
        sqlite: include_str!("../migrations/sqlite/3007_portal.sql"),
        postgres: include_str!("../migrations/postgres/3007_portal.sql"),
    },
    Migration {
        version: 3008,
        name: "3008_followers",
        sqlite: include_str!("../migrations/sqlite/3008_followers.sql"),
        postgres: include_str!("../migrations/postgres/3008_followers.sql"),
    },
    Migration {
        version: 3009,
        name: "3009_attachments",
        sqlite: include_str!("../migrations/sqlite/3009_attachments.sql"),
        postgres: include_str!("../migrations/postgres/3009_attachments.sql"),
    },
    Migration {
        version: 3010,
        name: "3010_visits",
        sqlite: include_str!("../migrations/sqlite/3010_visits.sql"),
        postgres: include_str!("../migrations/postgres/3010_visits.sql"),
    },
    Migration {
        version: 3011,
        name: "3011_nps",
        sqlite: include_str!("../migrations/sqlite/3011_nps.sql"),
        postgres: include_str!("../migrations/postgres/3011_nps.sql"),
    },
    Migration {
        version: 3012,
        name: "3012_vote_limits",
        sqlite: include_str!("../migrations/sqlite/3012_vote_limits.sql"),
        postgres: include_str!("../migrations/postgres/3012_vote_limits.sql"),
    },
    Migration {
        version: 3013,
        name: "3013_sla_coverage",
        sqlite: include_str!("../migrations/sqlite/3013_sla_coverage.sql"),
        postgres: include_str!("../migrations/postgres/3013_sla_coverage.sql"),
    },
    Migration {
        version: 3014,
        name: "3014_routing_facts",
        sqlite: include_str!("../migrations/sqlite/3014_routing_facts.sql"),
        postgres: include_str!("../migrations/postgres/3014_routing_facts.sql"),
    },
    Migration {
        version: 3015,
        name: "3015_warranty_follow_ups",
        sqlite: include_str!("../migrations/sqlite/3015_warranty_follow_ups.sql"),
        postgres: include_str!("../migrations/postgres/3015_warranty_follow_ups.sql"),
    },
];
