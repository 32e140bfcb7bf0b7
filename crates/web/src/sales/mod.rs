//! The sales module's HTTP side: `/api/v1/leads`, `/api/v1/forms`, the lead pages, the form
//! admin pages and the public form endpoints.

pub mod api;
pub mod deals;
pub mod deals_api;
pub mod forecast_pages;
pub mod forms;
pub mod pages;
pub mod pipelines_page;
pub mod quotes_api;
pub mod quotes_pages;
pub mod rules_page;
