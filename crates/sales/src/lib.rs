//! Sales: leads from every source (forms, imports, the API, campaigns, by hand) worked to a
//! qualified customer — duplicate-proof intake, conversion into an account and contact.
//! Opportunities, quotes and forecasts join here as their issues land.

use guanxi_platform::migrate::Migration;

pub mod assignment;
pub mod convert;
pub mod demo;
pub mod forecast;
pub mod forms;
pub mod funnel;
pub mod import;
pub mod intake;
pub mod leads;
pub mod learned;
pub mod opportunities;
pub mod parties;
pub mod pipelines;
pub mod pools;
pub mod price_books;
pub mod pricing;
pub mod quotes;
pub mod rules;
pub mod scoring;
pub mod sla;

/// This module's schema, versions 2001–2999.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 2001,
        name: "2001_leads",
        sqlite: include_str!("../migrations/sqlite/2001_leads.sql"),
        postgres: include_str!("../migrations/postgres/2001_leads.sql"),
    },
    Migration {
        version: 2002,
        name: "2002_forms",
        sqlite: include_str!("../migrations/sqlite/2002_forms.sql"),
        postgres: include_str!("../migrations/postgres/2002_forms.sql"),
    },
    Migration {
        version: 2003,
        name: "2003_assignment",
        sqlite: include_str!("../migrations/sqlite/2003_assignment.sql"),
        postgres: include_str!("../migrations/postgres/2003_assignment.sql"),
    },
    Migration {
        version: 2004,
        name: "2004_pools",
        sqlite: include_str!("../migrations/sqlite/2004_pools.sql"),
        postgres: include_str!("../migrations/postgres/2004_pools.sql"),
    },
    Migration {
        version: 2005,
        name: "2005_response_sla",
        sqlite: include_str!("../migrations/sqlite/2005_response_sla.sql"),
        postgres: include_str!("../migrations/postgres/2005_response_sla.sql"),
    },
    Migration {
        version: 2006,
        name: "2006_lead_models",
        sqlite: include_str!("../migrations/sqlite/2006_lead_models.sql"),
        postgres: include_str!("../migrations/postgres/2006_lead_models.sql"),
    },
    Migration {
        version: 2007,
        name: "2007_lead_name_index",
        sqlite: include_str!("../migrations/sqlite/2007_lead_name_index.sql"),
        postgres: include_str!("../migrations/postgres/2007_lead_name_index.sql"),
    },
    Migration {
        version: 2008,
        name: "2008_account_pools",
        sqlite: include_str!("../migrations/sqlite/2008_account_pools.sql"),
        postgres: include_str!("../migrations/postgres/2008_account_pools.sql"),
    },
    Migration {
        version: 2009,
        name: "2009_opportunities",
        sqlite: include_str!("../migrations/sqlite/2009_opportunities.sql"),
        postgres: include_str!("../migrations/postgres/2009_opportunities.sql"),
    },
    Migration {
        version: 2010,
        name: "2010_board_sums",
        sqlite: include_str!("../migrations/sqlite/2010_board_sums.sql"),
        postgres: include_str!("../migrations/postgres/2010_board_sums.sql"),
    },
    Migration {
        version: 2011,
        name: "2011_quotes",
        sqlite: include_str!("../migrations/sqlite/2011_quotes.sql"),
        postgres: include_str!("../migrations/postgres/2011_quotes.sql"),
    },
    Migration {
        version: 2012,
        name: "2012_targets",
        sqlite: include_str!("../migrations/sqlite/2012_targets.sql"),
        postgres: include_str!("../migrations/postgres/2012_targets.sql"),
    },
    Migration {
        version: 2013,
        name: "2013_forecast_calls",
        sqlite: include_str!("../migrations/sqlite/2013_forecast_calls.sql"),
        postgres: include_str!("../migrations/postgres/2013_forecast_calls.sql"),
    },
    Migration {
        version: 2014,
        name: "2014_deal_parties",
        sqlite: include_str!("../migrations/sqlite/2014_deal_parties.sql"),
        postgres: include_str!("../migrations/postgres/2014_deal_parties.sql"),
    },
    Migration {
        version: 2015,
        name: "2015_form_targets",
        sqlite: include_str!("../migrations/sqlite/2015_form_targets.sql"),
        postgres: include_str!("../migrations/postgres/2015_form_targets.sql"),
    },
];
