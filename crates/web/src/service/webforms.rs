//! The service desk as a destination of the platform's public forms: a form made with
//! `target: tickets` opens a ticket (channel `form`) for the person who posted it.

use std::future::Future;
use std::pin::Pin;

use guanxi_platform::db::Tx;
use guanxi_platform::{Ctx, Result};
use guanxi_sales::forms::{TicketDesk, TicketRequest};
use guanxi_service::inbound::{self, FormTicket};
use uuid::Uuid;

pub struct Desk;

impl TicketDesk for Desk {
    fn open<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Ctx,
        r: TicketRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Uuid>> + Send + 'a>> {
        Box::pin(async move {
            let mut v = r.values;
            inbound::from_form(
                tx,
                ctx,
                FormTicket {
                    form_name: r.form_name,
                    name: v.remove("name"),
                    email: v.remove("email"),
                    phone: v.remove("phone"),
                    company: v.remove("company"),
                    subject: v.remove("subject"),
                    description: v.remove("description"),
                    category: v.remove("category"),
                    custom: r.custom,
                    tags: r.tags,
                    owner_id: Some(r.owner_id),
                },
            )
            .await
        })
    }
}
