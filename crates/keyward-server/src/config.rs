//! The server's configuration: `keyward.toml`, then `KEYWARD_*` environment variables on top.
//!
//! Only the things needed before the database is open live here (where to listen, where the data
//! and the database are, where the encryption key for stored secrets comes from) plus a few
//! lifecycle switches. The Entra connector's settings are data, kept encrypted in the store and
//! changed through the API, so that several servers on one database share them.
//!
//! `figment` and `config` were considered and rejected: the file is small and flat, and a
//! hand-written overlay gives error messages that name the exact key and variable at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path} is not a valid Keyward configuration: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A value (from the file or the environment) is out of range.
    #[error("{name}: {message}")]
    Invalid {
        /// The key or variable.
        name: String,
        /// What is wrong and what to use instead.
        message: String,
    },
}

/// Everything the server reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (`KEYWARD_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the generated secret key (`KEYWARD_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default a SQLite file in the data directory
    /// (`KEYWARD_DATABASE_URL`).
    pub database_url: Option<String>,
    /// File holding the key that encrypts secrets in the database; created on first start
    /// when missing (`KEYWARD_SECRET_KEY_FILE`; `KEYWARD_SECRET_KEY` gives the key itself).
    pub secret_key_file: Option<PathBuf>,
    /// Which external-reference slot (1–3) of a person holds the Entra object id
    /// (`KEYWARD_EXTERNAL_REF_SLOT`).
    pub external_ref_slot: u8,
    /// Revoke a leaver's managed passkeys when sync finds them disabled or deleted in Entra
    /// (`KEYWARD_REVOKE_ON_LEAVE`).
    pub revoke_on_leave: bool,
    /// Issuances wait for a second person's approval before options are fetched
    /// (`KEYWARD_APPROVAL_REQUIRED`).
    pub approval_required: bool,
    /// Largest request body accepted, in bytes (`KEYWARD_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Minutes between scheduled runs of sync (leavers) and reconcile; 0 turns the schedule
    /// off (`KEYWARD_SYNC_INTERVAL_MINUTES`).
    pub sync_interval_minutes: u64,
    /// Threads that run requests and jobs; default one per core (`KEYWARD_WORKER_THREADS`).
    pub worker_threads: Option<usize>,
    /// Entra directory roles (display names or template ids) whose members are protected: only
    /// an admin issues them a passkey or a TAP (`KEYWARD_PROTECTED_ROLES`, comma-separated; an
    /// empty list protects nobody by role).
    pub protected_roles: Vec<String>,
    /// Entra groups (display names) whose members are protected likewise
    /// (`KEYWARD_PROTECTED_GROUPS`, comma-separated).
    pub protected_groups: Vec<String>,
    /// The longest Temporary Access Pass a helpdesk token may issue, in minutes; helpdesk TAPs
    /// are always single-use (`KEYWARD_HELPDESK_TAP_MAX_MINUTES`).
    pub helpdesk_tap_max_minutes: u32,
    /// How many days a new API token works unless its maker says otherwise
    /// (`KEYWARD_TOKEN_LIFETIME_DAYS`).
    pub token_lifetime_days: u32,
}

/// The directory roles protected by default: those whose holders can take over the tenant or
/// other people's sign-in methods.
pub const DEFAULT_PROTECTED_ROLES: &[&str] = &[
    "Global Administrator",
    "Privileged Authentication Administrator",
    "Privileged Role Administrator",
    "Authentication Administrator",
    "Security Administrator",
];

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("keyward-data"),
            database_url: None,
            secret_key_file: None,
            external_ref_slot: 1,
            revoke_on_leave: true,
            approval_required: false,
            max_body_bytes: 256 * 1024,
            sync_interval_minutes: 60,
            worker_threads: None,
            protected_roles: DEFAULT_PROTECTED_ROLES.iter().map(|r| r.to_string()).collect(),
            protected_groups: Vec::new(),
            helpdesk_tap_max_minutes: 60,
            token_lifetime_days: 90,
        }
    }
}

impl ServerConfig {
    /// Reads `path` when it exists (a missing file means defaults), then applies the
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .map_err(|source| ConfigError::Read { path: p.to_owned(), source })?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: p.to_owned(), message: e.message().to_owned() })?
            }
            _ => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `KEYWARD_*` overrides read through `get` (a function so tests need not touch
    /// the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str, what: &str) -> Result<T, ConfigError> {
            value.parse().map_err(|_| ConfigError::Invalid {
                name: name.to_owned(),
                message: format!("{value:?} is not {what}"),
            })
        }
        if let Some(v) = get("KEYWARD_LISTEN") {
            self.listen = parse("KEYWARD_LISTEN", &v, "an address like 127.0.0.1:8080")?;
        }
        if let Some(v) = get("KEYWARD_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("KEYWARD_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("KEYWARD_SECRET_KEY_FILE") {
            self.secret_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("KEYWARD_EXTERNAL_REF_SLOT") {
            self.external_ref_slot = parse("KEYWARD_EXTERNAL_REF_SLOT", &v, "1, 2 or 3")?;
        }
        if let Some(v) = get("KEYWARD_REVOKE_ON_LEAVE") {
            self.revoke_on_leave = parse("KEYWARD_REVOKE_ON_LEAVE", &v, "true or false")?;
        }
        if let Some(v) = get("KEYWARD_APPROVAL_REQUIRED") {
            self.approval_required = parse("KEYWARD_APPROVAL_REQUIRED", &v, "true or false")?;
        }
        if let Some(v) = get("KEYWARD_SYNC_INTERVAL_MINUTES") {
            self.sync_interval_minutes = parse("KEYWARD_SYNC_INTERVAL_MINUTES", &v, "a number of minutes")?;
        }
        if let Some(v) = get("KEYWARD_WORKER_THREADS") {
            self.worker_threads = Some(parse("KEYWARD_WORKER_THREADS", &v, "a number of threads")?);
        }
        let list = |v: String| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        if let Some(v) = get("KEYWARD_PROTECTED_ROLES") {
            self.protected_roles = list(v);
        }
        if let Some(v) = get("KEYWARD_PROTECTED_GROUPS") {
            self.protected_groups = list(v);
        }
        if let Some(v) = get("KEYWARD_HELPDESK_TAP_MAX_MINUTES") {
            self.helpdesk_tap_max_minutes =
                parse("KEYWARD_HELPDESK_TAP_MAX_MINUTES", &v, "a number of minutes")?;
        }
        if let Some(v) = get("KEYWARD_TOKEN_LIFETIME_DAYS") {
            self.token_lifetime_days = parse("KEYWARD_TOKEN_LIFETIME_DAYS", &v, "a number of days")?;
        }
        if let Some(v) = get("KEYWARD_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("KEYWARD_MAX_BODY_BYTES", &v, "a number of bytes")?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3).contains(&self.external_ref_slot) {
            return Err(ConfigError::Invalid {
                name: "external_ref_slot".into(),
                message: format!("{} is not a slot; use 1, 2 or 3", self.external_ref_slot),
            });
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                name: "database_url".into(),
                message: "use sqlite://PATH or postgres://USER@HOST/DB".into(),
            });
        }
        if self.worker_threads == Some(0) {
            return Err(ConfigError::Invalid {
                name: "worker_threads".into(),
                message: "must be at least 1; leave it out for the default".into(),
            });
        }
        if !(10..=43_200).contains(&self.helpdesk_tap_max_minutes) {
            return Err(ConfigError::Invalid {
                name: "helpdesk_tap_max_minutes".into(),
                message: "must be 10 to 43200 minutes, the range a Temporary Access Pass may live".into(),
            });
        }
        if !(1..=3650).contains(&self.token_lifetime_days) {
            return Err(ConfigError::Invalid {
                name: "token_lifetime_days".into(),
                message: "must be 1 to 3650 days".into(),
            });
        }
        if self.max_body_bytes < 16 * 1024 {
            return Err(ConfigError::Invalid {
                name: "max_body_bytes".into(),
                message: "must be at least 16384: registration bodies are several kilobytes".into(),
            });
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or the SQLite file in the data
    /// directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("keyward.db").display()))
    }

    /// How many threads run the server's async work on a machine with `cores` cores: the
    /// configured number, else one per core.
    ///
    /// Measured on the 2-core machine (`bench/server.sh`, one and two threads alternated three
    /// times in one session): CPU per issuance was the same within noise, and `GET
    /// /api/v1/people/{id}` throughput was higher with two, so the default stays one per core; the
    /// setting is for hosts shared with other work.
    pub fn worker_threads(&self, cores: usize) -> usize {
        self.worker_threads.unwrap_or(cores).max(1)
    }

    /// The secret-key file in force.
    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file.clone().unwrap_or_else(|| self.data_dir.join("secret.key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn environment_overrides_the_file_and_bad_values_name_the_variable() {
        let dir = std::env::temp_dir().join(format!("kw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keyward.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nexternal_ref_slot = 2\n").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut c: ServerConfig = toml::from_str(&text).unwrap();
        assert_eq!(c.external_ref_slot, 2);
        let env: HashMap<&str, &str> =
            [("KEYWARD_LISTEN", "0.0.0.0:7000"), ("KEYWARD_REVOKE_ON_LEAVE", "false")].into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert!(!c.revoke_on_leave);
        let err = c.apply_env(|k| (k == "KEYWARD_EXTERNAL_REF_SLOT").then(|| "four".into())).unwrap_err();
        assert!(err.to_string().contains("KEYWARD_EXTERNAL_REF_SLOT"), "{err}");
        c.external_ref_slot = 4;
        assert!(c.validate().unwrap_err().to_string().contains("use 1, 2 or 3"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let err = toml::from_str::<ServerConfig>("listne = \"x\"").unwrap_err();
        assert!(err.message().contains("listne"), "{}", err.message());
    }

    #[test]
    fn request_threads_are_one_per_core_unless_configured() {
        let fixed = ServerConfig { worker_threads: Some(3), ..ServerConfig::default() };
        for (config, cores, want) in [
            (&ServerConfig::default(), 1, 1),
            (&ServerConfig::default(), 8, 8),
            (&fixed, 2, 3),
            (&fixed, 8, 3),
        ] {
            assert_eq!(config.worker_threads(cores), want, "{:?} on {cores} cores", config.worker_threads);
        }
        let mut zero = ServerConfig::default();
        let err =
            zero.apply_env(|k| (k == "KEYWARD_WORKER_THREADS").then(|| "0".into())).and(zero.validate());
        assert!(err.unwrap_err().to_string().contains("worker_threads"));
        let mut bad = ServerConfig::default();
        let err = bad.apply_env(|k| (k == "KEYWARD_WORKER_THREADS").then(|| "many".into())).unwrap_err();
        assert!(err.to_string().contains("KEYWARD_WORKER_THREADS"), "{err}");
    }

    #[test]
    fn default_database_is_a_sqlite_file_in_the_data_directory() {
        let c = ServerConfig { data_dir: "/var/lib/keyward".into(), ..Default::default() };
        assert_eq!(c.database_url(), "sqlite:///var/lib/keyward/keyward.db");
        assert_eq!(c.secret_key_path(), Path::new("/var/lib/keyward/secret.key"));
    }
}
