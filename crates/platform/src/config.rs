//! Typed configuration, resolved once at start and passed by value.
//! Precedence: command-line flags > `GUANXI_*` environment > TOML file > defaults.
//! (Flags and environment are read by clap in the binary into one [`Layer`].)

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A value that never appears in logs or printed configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// One source of settings; every field optional. Also the shape of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<Secret>,
    pub listen: Option<SocketAddr>,
    pub base_url: Option<String>,
    pub allow_signup: Option<bool>,
    pub smtp_url: Option<Secret>,
    pub mail_from: Option<String>,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub log_format: Option<LogFormat>,
    pub workers: Option<bool>,
    pub db_max_connections: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log format must be text or json, not {s:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: the embedded SQLite file `<data_dir>/guanxi.db`.
    pub database_url: Option<Secret>,
    pub listen: SocketAddr,
    /// The address users reach the server at; used in emailed links.
    pub base_url: String,
    pub allow_signup: bool,
    /// `smtp://[user:pass@]host[:port]` (plain, for a local relay) or `smtps://…` (TLS).
    /// `None`: emails stay queued in the outbox until one is configured.
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub log_format: LogFormat,
    /// Run background job workers in this process.
    pub workers: bool,
    pub db_max_connections: u32,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client.
    /// Empty: the socket peer is the client, whatever the headers say.
    pub trusted_proxies: Vec<String>,
}

/// Whether `ip` is `spec`: an address (`10.0.0.5`, `::1`) or a CIDR range (`10.0.0.0/8`).
pub fn ip_matches(spec: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (spec, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

pub const DEFAULT_TOML: &str = r#"# Guanxi configuration. Every key is optional; flags and GUANXI_* environment variables
# (GUANXI_DATA_DIR, GUANXI_DATABASE_URL, …) override this file.

# Where the embedded SQLite database and backups live.
data_dir = "data"
# PostgreSQL instead of SQLite, e.g. "postgres://guanxi:secret@127.0.0.1:5432/guanxi".
# database_url = ""
listen = "127.0.0.1:8080"
# The URL users open; used in links inside emails. Defaults to http://<listen>.
# base_url = "https://crm.example.com"
# Let visitors sign up a new company from the sign-in page.
allow_signup = false
# Outgoing mail. Without it, emails wait in the outbox until it is set.
# smtp_url = "smtp://user:password@127.0.0.1:2525"
mail_from = "Guanxi <noreply@localhost>"
# First start only: the admin of the first tenant (otherwise a password is generated and printed).
# admin_email = "admin@example.com"
# admin_password = ""
log_format = "text"
workers = true
# Database connections in all; on SQLite one of them is the writer, the rest read. Default: 16
# on PostgreSQL, 6 on SQLite (on 2 cores more SQLite readers only held more memory and served
# fewer requests: docs/benchmarks.md, issue 20).
# db_max_connections = 6
# Behind a reverse proxy: the proxies (addresses or CIDR ranges) whose X-Forwarded-For header
# names the client (sign-in limits count per client address). Empty: the socket peer.
# trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
"#;

/// A server's pool on PostgreSQL.
const DEFAULT_PG_CONNECTIONS: u32 = 16;

/// … and on SQLite: the writer and five readers. With fifteen readers on this 2-core machine
/// every path served as many requests or fewer, and each reader's page cache, schema and
/// statements held memory (peak RSS under load 152 MB, against 120 MB with five).
const DEFAULT_SQLITE_CONNECTIONS: u32 = 6;

impl Config {
    /// Merges layers, highest precedence first, over the defaults.
    pub fn resolve(layers: &[Layer]) -> Config {
        macro_rules! pick {
            ($f:ident) => {
                layers.iter().find_map(|l| l.$f.clone())
            };
        }
        let listen = pick!(listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let database_url = pick!(database_url).filter(|s| !s.0.is_empty());
        let connections = if database_url.is_some() {
            DEFAULT_PG_CONNECTIONS
        } else {
            DEFAULT_SQLITE_CONNECTIONS
        };
        Config {
            data_dir: pick!(data_dir).unwrap_or_else(|| PathBuf::from("data")),
            database_url,
            listen,
            base_url: pick!(base_url)
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_owned(),
            allow_signup: pick!(allow_signup).unwrap_or(false),
            smtp_url: pick!(smtp_url).filter(|s| !s.0.is_empty()),
            mail_from: pick!(mail_from).unwrap_or_else(|| "Guanxi <noreply@localhost>".into()),
            admin_email: pick!(admin_email),
            admin_password: pick!(admin_password),
            log_format: pick!(log_format).unwrap_or_default(),
            workers: pick!(workers).unwrap_or(true),
            db_max_connections: pick!(db_max_connections).unwrap_or(connections).max(1),
            trusted_proxies: pick!(trusted_proxies).unwrap_or_default(),
        }
    }

    /// Reads a TOML layer; a missing file is an empty layer only when `required` is false.
    pub fn read_file(path: &Path, required: bool) -> anyhow::Result<Layer> {
        match std::fs::read_to_string(path) {
            Ok(s) => toml::from_str(&s).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Layer::default()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// The database URL to connect to: PostgreSQL when configured, else the SQLite file.
    pub fn database(&self) -> String {
        match &self.database_url {
            Some(u) => u.0.clone(),
            None => self
                .data_dir
                .join("guanxi.db")
                .to_string_lossy()
                .into_owned(),
        }
    }
}

/// Hides the password in a URL such as `postgres://user:pw@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Display for Config {
    /// The effective configuration with secrets redacted, printed at start.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data_dir = {:?}", self.data_dir.display().to_string())?;
        writeln!(f, "database = {:?}", redact_url(&self.database()))?;
        writeln!(f, "listen = \"{}\"", self.listen)?;
        writeln!(f, "base_url = {:?}", self.base_url)?;
        writeln!(f, "allow_signup = {}", self.allow_signup)?;
        writeln!(f, "trusted_proxies = {:?}", self.trusted_proxies)?;
        match &self.smtp_url {
            Some(u) => writeln!(f, "smtp_url = {:?}", redact_url(&u.0))?,
            None => writeln!(f, "smtp_url = (not set: emails wait in the outbox)")?,
        }
        writeln!(f, "mail_from = {:?}", self.mail_from)?;
        writeln!(
            f,
            "admin_email = {:?}",
            self.admin_email.as_deref().unwrap_or("")
        )?;
        writeln!(
            f,
            "admin_password = {}",
            if self.admin_password.is_some() {
                "***"
            } else {
                "(not set)"
            }
        )?;
        writeln!(f, "log_format = {:?}", self.log_format)?;
        writeln!(f, "workers = {}", self.workers)?;
        write!(f, "db_max_connections = {}", self.db_max_connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file: Layer = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nallow_signup = true\nmail_from = \"file@x\"",
        )
        .unwrap();
        let flags = Layer {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Layer::default()
        };
        let c = Config::resolve(&[flags, file.clone()]);
        assert_eq!(c.listen.port(), 9100);
        assert!(c.allow_signup);
        assert_eq!(c.mail_from, "file@x");
        assert_eq!(c.base_url, "http://127.0.0.1:9100");
        let d = Config::resolve(&[]);
        assert_eq!(d.listen.port(), 8080);
        assert!(!d.allow_signup);
    }

    #[test]
    fn default_toml_parses_and_secrets_are_redacted() {
        let l: Layer = toml::from_str(DEFAULT_TOML).unwrap();
        let mut c = Config::resolve(&[l]);
        c.database_url = Some(Secret("postgres://u:hunter2@h/db".into()));
        c.admin_password = Some(Secret("hunter2".into()));
        let shown = format!("{c}\n{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://u:***@h/db"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Layer>("lisen = \"x\"").is_err());
    }
}
