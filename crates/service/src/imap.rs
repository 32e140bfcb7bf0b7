//! The IMAP side of a support mailbox (async-imap over tokio, rustls for TLS): connect with TLS,
//! STARTTLS or plain (a private CA may be given as PEM beside the public roots), log in, and
//! the few commands the fetcher and the Sent copy need. Every network step has a timeout.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Tls,
    StartTls,
    Plain,
}

impl Security {
    pub fn parse(s: &str) -> Option<Security> {
        match s {
            "tls" => Some(Security::Tls),
            "starttls" => Some(Security::StartTls),
            "plain" => Some(Security::Plain),
            _ => None,
        }
    }
}

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// PEM certificates trusted besides the public roots (a company's own CA).
    pub ca_pem: Option<String>,
    pub username: String,
    pub password: String,
}

/// Any stream the session runs over (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

pub type Imap = Session<Box<dyn Stream>>;

const STEP: Duration = Duration::from_secs(60);

/// An IMAP failure, worded for the mailbox's health line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImapError(pub String);

pub type Result<T> = std::result::Result<T, ImapError>;

fn err(what: &str) -> impl Fn(async_imap::error::Error) -> ImapError + '_ {
    move |e| ImapError(format!("{what}: {e}"))
}

/// Runs one IMAP step with the step timeout.
pub async fn step<T, F>(what: &str, f: F) -> Result<T>
where
    F: std::future::Future<Output = std::result::Result<T, async_imap::error::Error>>,
{
    match tokio::time::timeout(STEP, f).await {
        Ok(r) => r.map_err(err(what)),
        Err(_) => Err(ImapError(format!(
            "{what}: no answer in {}s",
            STEP.as_secs()
        ))),
    }
}

fn tls(server: &Server) -> Result<TlsConnector> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &server.ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| ImapError(format!("ca_pem: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ImapError(format!("ca_pem: {e}")))?;
            n += 1;
        }
        if n == 0 {
            return Err(ImapError("ca_pem: no certificate in it".into()));
        }
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ImapError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn wrap(server: &Server, tcp: TcpStream) -> Result<Box<dyn Stream>> {
    let name =
        ServerName::try_from(server.host.clone()).map_err(|e| ImapError(format!("host: {e}")))?;
    let s = tokio::time::timeout(STEP, tls(server)?.connect(name, tcp))
        .await
        .map_err(|_| ImapError("TLS handshake: no answer".into()))?
        .map_err(|e| ImapError(format!("TLS: {e}")))?;
    Ok(Box::new(s))
}

async fn greeting<T: Stream>(client: &mut Client<T>) -> Result<()> {
    match tokio::time::timeout(STEP, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError("the server closed the connection".into())),
        Ok(Err(e)) => Err(ImapError(format!("greeting: {e}"))),
        Err(_) => Err(ImapError("greeting: no answer".into())),
    }
}

/// Connects and logs in.
pub async fn connect(server: &Server) -> Result<Imap> {
    let tcp = tokio::time::timeout(
        STEP,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| ImapError(format!("{}:{}: no answer", server.host, server.port)))?
    .map_err(|e| ImapError(format!("{}:{}: {e}", server.host, server.port)))?;
    let stream: Box<dyn Stream> = match server.security {
        Security::Tls => wrap(server, tcp).await?,
        Security::Plain => Box::new(tcp),
        Security::StartTls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            step(
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            wrap(server, client.into_inner()).await?
        }
    };
    let mut client = Client::new(stream);
    if server.security != Security::StartTls {
        greeting(&mut client).await?;
    }
    match tokio::time::timeout(STEP, client.login(&server.username, &server.password)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err((e, _))) => Err(ImapError(format!("login: {e}"))),
        Err(_) => Err(ImapError("login: no answer".into())),
    }
}

/// One message as fetched: its UID, size, internal date and bytes (the header only when
/// `truncated`).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub size: u32,
    pub internal_date: Option<chrono::DateTime<chrono::Utc>>,
    pub raw: Vec<u8>,
}

/// Sizes and dates of `uids` (a UID set string).
pub async fn sizes(s: &mut Imap, uids: &str) -> Result<Vec<(u32, u32)>> {
    let stream = step("FETCH sizes", s.uid_fetch(uids, "(UID RFC822.SIZE)")).await?;
    let all: Vec<_> = step("FETCH sizes", stream.try_collect::<Vec<_>>()).await?;
    Ok(all
        .iter()
        .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
        .collect())
}

/// The messages `uids` whole (`headers_only`: just their header).
pub async fn bodies(s: &mut Imap, uids: &str, headers_only: bool) -> Result<Vec<Fetched>> {
    let query = if headers_only {
        "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])"
    } else {
        "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"
    };
    let stream = step("FETCH", s.uid_fetch(uids, query)).await?;
    let all: Vec<_> = step("FETCH", stream.try_collect::<Vec<_>>()).await?;
    Ok(all
        .iter()
        .filter_map(|f| {
            let raw = if headers_only { f.header() } else { f.body() }?;
            Some(Fetched {
                uid: f.uid?,
                size: f.size.unwrap_or(raw.len() as u32),
                internal_date: f.internal_date().map(|d| d.with_timezone(&chrono::Utc)),
                raw: raw.to_vec(),
            })
        })
        .collect())
}

/// Appends `raw` to `folder` unless a message with `message_id` is already there (so a retried
/// copy is not doubled).
pub async fn append_once(s: &mut Imap, folder: &str, message_id: &str, raw: &[u8]) -> Result<()> {
    step("SELECT", s.select(folder)).await?;
    let found = step(
        "SEARCH",
        s.uid_search(format!(
            "HEADER Message-ID \"{}\"",
            message_id.replace('"', "")
        )),
    )
    .await?;
    if found.is_empty() {
        step("APPEND", s.append(folder, Some("(\\Seen)"), None, raw)).await?;
    }
    Ok(())
}

/// Logs out, ignoring a server that already went.
pub async fn logout(mut s: Imap) {
    let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
}
