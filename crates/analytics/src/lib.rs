//! Customer value: who the valuable customers are, measured on the purchase history — ABC
//! (Pareto) classes by revenue, margin or order count, RFM scores and segments with the
//! movement between stored runs, and lifetime value (BG/NBD and Gamma-Gamma fitted on the
//! tenant's orders). 4V grades, churn
//! risk and win-back, cross-sell, the report builder and dashboards.

use guanxi_platform::migrate::Migration;

pub mod abc;
pub mod churn;
pub mod clv;
pub mod cross_sell;
pub mod dashboards;
pub mod facts;
pub mod grading;
pub mod grading_runs;
pub mod models;
pub mod reports;
pub mod rfm;

/// This module's schema, versions 5001–5999.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 5001,
        name: "5001_rfm_runs",
        sqlite: include_str!("../migrations/sqlite/5001_rfm_runs.sql"),
        postgres: include_str!("../migrations/postgres/5001_rfm_runs.sql"),
    },
    Migration {
        version: 5002,
        name: "5002_clv_models",
        sqlite: include_str!("../migrations/sqlite/5002_clv_models.sql"),
        postgres: include_str!("../migrations/postgres/5002_clv_models.sql"),
    },
    Migration {
        version: 5003,
        name: "5003_grading",
        sqlite: include_str!("../migrations/sqlite/5003_grading.sql"),
        postgres: include_str!("../migrations/postgres/5003_grading.sql"),
    },
    Migration {
        version: 5004,
        name: "5004_reports",
        sqlite: include_str!("../migrations/sqlite/5004_reports.sql"),
        postgres: include_str!("../migrations/postgres/5004_reports.sql"),
    },
    Migration {
        version: 5005,
        name: "5005_report_deliveries",
        sqlite: include_str!("../migrations/sqlite/5005_report_deliveries.sql"),
        postgres: include_str!("../migrations/postgres/5005_report_deliveries.sql"),
    },
    Migration {
        version: 5006,
        name: "5006_dashboards",
        sqlite: include_str!("../migrations/sqlite/5006_dashboards.sql"),
        postgres: include_str!("../migrations/postgres/5006_dashboards.sql"),
    },
    Migration {
        version: 5007,
        name: "5007_compact_scores",
        sqlite: include_str!("../migrations/sqlite/5007_compact_scores.sql"),
        postgres: include_str!("../migrations/postgres/5007_compact_scores.sql"),
    },
];
