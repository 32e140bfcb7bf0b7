//! Customer 360: the shared record of every customer — accounts (companies, in hierarchies),
//! contacts (people) — with the Chinese specifics validated and a search that finds a
//! customer by any part of a name, its pinyin or initials, a phone in any format or an email.

use guanxi_platform::migrate::Migration;

/// This module's schema, versions 1001–1999.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1001,
        name: "1001_customers",
        sqlite: include_str!("../migrations/sqlite/1001_customers.sql"),
        postgres: include_str!("../migrations/postgres/1001_customers.sql"),
    },
    Migration {
        version: 1002,
        name: "1002_activities",
        sqlite: include_str!("../migrations/sqlite/1002_activities.sql"),
        postgres: include_str!("../migrations/postgres/1002_activities.sql"),
    },
    Migration {
        version: 1003,
        name: "1003_orders",
        sqlite: include_str!("../migrations/sqlite/1003_orders.sql"),
        postgres: include_str!("../migrations/postgres/1003_orders.sql"),
    },
    Migration {
        version: 1004,
        name: "1004_merge",
        sqlite: include_str!("../migrations/sqlite/1004_merge.sql"),
        postgres: include_str!("../migrations/postgres/1004_merge.sql"),
    },
    Migration {
        version: 1005,
        name: "1005_custom_fields",
        sqlite: include_str!("../migrations/sqlite/1005_custom_fields.sql"),
        postgres: include_str!("../migrations/postgres/1005_custom_fields.sql"),
    },
    Migration {
        version: 1006,
        name: "1006_tags",
        sqlite: include_str!("../migrations/sqlite/1006_tags.sql"),
        postgres: include_str!("../migrations/postgres/1006_tags.sql"),
    },
    Migration {
        version: 1007,
        name: "1007_assets",
        sqlite: include_str!("../migrations/sqlite/1007_assets.sql"),
        postgres: include_str!("../migrations/postgres/1007_assets.sql"),
    },
    Migration {
        version: 1008,
        name: "1008_imports",
        sqlite: include_str!("../migrations/sqlite/1008_imports.sql"),
        postgres: include_str!("../migrations/postgres/1008_imports.sql"),
    },
    Migration {
        version: 1009,
        name: "1009_search_grams",
        sqlite: include_str!("../migrations/sqlite/1009_search_grams.sql"),
        postgres: include_str!("../migrations/postgres/1009_search_grams.sql"),
    },
    Migration {
        version: 1010,
        name: "1010_search_statistics",
        sqlite: include_str!("../migrations/sqlite/1010_search_statistics.sql"),
        postgres: include_str!("../migrations/postgres/1010_search_statistics.sql"),
    },
    Migration {
        version: 1011,
        name: "1011_search_eras",
        sqlite: include_str!("../migrations/sqlite/1011_search_eras.sql"),
        postgres: include_str!("../migrations/postgres/1011_search_eras.sql"),
    },
    Migration {
        version: 1012,
        name: "1012_digit_grams",
        sqlite: include_str!("../migrations/sqlite/1012_digit_grams.sql"),
        postgres: include_str!("../migrations/postgres/1012_digit_grams.sql"),
    },
    Migration {
        version: 1013,
        name: "1013_pinyin_order",
        sqlite: include_str!("../migrations/sqlite/1013_pinyin_order.sql"),
        postgres: include_str!("../migrations/postgres/1013_pinyin_order.sql"),
    },
    Migration {
        version: 1014,
        name: "1014_record_activities",
        sqlite: include_str!("../migrations/sqlite/1014_record_activities.sql"),
        postgres: include_str!("../migrations/postgres/1014_record_activities.sql"),
    },
    Migration {
        version: 1015,
        name: "1015_pricing_facts",
        sqlite: include_str!("../migrations/sqlite/1015_pricing_facts.sql"),
        postgres: include_str!("../migrations/postgres/1015_pricing_facts.sql"),
    },
    Migration {
        version: 1016,
        name: "1016_trash_index",
        sqlite: include_str!("../migrations/sqlite/1016_trash_index.sql"),
        postgres: include_str!("../migrations/postgres/1016_trash_index.sql"),
    },
];
pub mod accounts;
pub mod activities;
pub mod assets;
pub mod contacts;
pub mod demo;
pub mod dependents;
pub mod duplicates;
pub mod import;
pub mod import_runs;
pub mod merge;
pub mod orders;
pub mod products;
pub mod search;
pub mod transfer;
