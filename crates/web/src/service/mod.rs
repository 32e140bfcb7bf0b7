//! The service desk's HTTP side: `/api/v1/tickets`, `/api/v1/sla-policies`,
//! `/api/v1/mailboxes` and the ticket, SLA policy and mailbox pages.

pub mod api;
pub mod mail;
pub mod mailboxes_api;
pub mod mailboxes_page;
pub mod pages;
pub mod surveys;
