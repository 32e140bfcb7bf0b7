//! The service desk's HTTP side: `/api/v1/tickets`, `/api/v1/sla-policies`,
//! `/api/v1/mailboxes`, `/api/v1/articles` and the ticket, SLA policy, mailbox and
//! knowledge-base pages, and the public help centre.

pub mod api;
pub mod articles_api;
pub mod articles_pages;
pub mod help;
pub mod mail;
pub mod mailboxes_api;
pub mod mailboxes_page;
pub mod pages;
pub mod portal_api;
pub mod portal_pages;
pub mod surveys;
pub mod visits;
pub mod webforms;
