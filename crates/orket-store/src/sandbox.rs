//! The sandbox registry's rows. A sandbox never carries a password: those live only
//! in the sandbox's own `.env` file, so no listing can leak them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a sandbox is in its life. `allocated`, `deploying` and `running` hold the sandbox's
/// port slot; `failed` and `stopped` release it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    /// Ports reserved and compose file written; not deployed yet.
    Allocated,
    /// `docker compose up` is running.
    Deploying,
    /// Deployed.
    Running,
    /// The deploy failed (the reason is on the row).
    Failed,
    /// Stopped (`docker compose down`).
    Stopped,
}

impl SandboxStatus {
    /// Every status, in life order.
    pub const ALL: [SandboxStatus; 5] = [
        SandboxStatus::Allocated,
        SandboxStatus::Deploying,
        SandboxStatus::Running,
        SandboxStatus::Failed,
        SandboxStatus::Stopped,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxStatus::Allocated => "allocated",
            SandboxStatus::Deploying => "deploying",
            SandboxStatus::Running => "running",
            SandboxStatus::Failed => "failed",
            SandboxStatus::Stopped => "stopped",
        }
    }

    /// True while the sandbox holds its ports.
    pub fn holds_ports(self) -> bool {
        matches!(
            self,
            SandboxStatus::Allocated | SandboxStatus::Deploying | SandboxStatus::Running
        )
    }
}

impl fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SandboxStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown sandbox status \"{s}\" (expected one of allocated, deploying, running, failed, stopped)"
                )
            })
    }
}

/// The four host ports of a sandbox's slot k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPorts {
    /// The API (8000 + k).
    pub api: u16,
    /// The frontend (3000 + k).
    pub frontend: u16,
    /// The database (5432 + k).
    pub db: u16,
    /// The database admin UI (8080 + k).
    pub admin: u16,
}

/// The first port of each kind; slot k adds k.
pub const PORT_BASES: SandboxPorts = SandboxPorts {
    api: 8000,
    frontend: 3000,
    db: 5432,
    admin: 8080,
};

impl SandboxPorts {
    /// The ports of slot `k`, or `None` past the last valid port.
    pub fn for_slot(k: u16) -> Option<SandboxPorts> {
        Some(SandboxPorts {
            api: PORT_BASES.api.checked_add(k)?,
            frontend: PORT_BASES.frontend.checked_add(k)?,
            db: PORT_BASES.db.checked_add(k)?,
            admin: PORT_BASES.admin.checked_add(k)?,
        })
    }

    /// All four, api first.
    pub fn all(&self) -> [u16; 4] {
        [self.api, self.frontend, self.db, self.admin]
    }
}

/// A sandbox as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Its id (8 hex characters).
    pub id: String,
    /// The run that deployed it.
    pub run_id: Option<String>,
    /// The build whose output it deploys.
    pub build_id: Option<String>,
    /// The epic.
    pub epic: String,
    /// The tech stack (`fastapi-react-postgres`, `fastapi-vue-mongo`, `csharp-razor-ef`).
    pub stack: String,
    /// The port slot k.
    pub slot: u16,
    /// The host ports of the slot.
    pub ports: SandboxPorts,
    /// Where it is in its life.
    pub status: SandboxStatus,
    /// Why it failed or stopped, when it did.
    pub reason: Option<String>,
    /// The compose project name (`orket-<id>`).
    pub project_name: String,
    /// The generated compose file.
    pub compose_file: String,
    /// The workspace it deploys.
    pub workspace: String,
    /// When it was registered (UTC).
    pub created_at: String,
    /// When its row last changed (UTC).
    pub updated_at: String,
}
