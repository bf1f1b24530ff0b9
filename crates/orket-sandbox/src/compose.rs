//! Compose files per tech stack. Every service's host port comes from the sandbox's
//! slot; the database password is referenced as `${DB_PASSWORD}` and lives only in the
//! sandbox's `.env` file, never in the compose file, the store, events or logs.

use orket_store::SandboxPorts;
use std::fmt::{self, Write};
use std::path::Path;
use std::str::FromStr;

/// A tech stack a sandbox can deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stack {
    /// FastAPI + React (Vite) + PostgreSQL, Adminer as the admin UI.
    FastapiReactPostgres,
    /// FastAPI + Vue (Vite) + MongoDB, mongo-express as the admin UI.
    FastapiVueMongo,
    /// ASP.NET Core Razor Pages + Entity Framework on PostgreSQL, Adminer as the admin UI.
    CsharpRazorEf,
}

impl Stack {
    /// Every stack.
    pub const ALL: [Stack; 3] = [
        Stack::FastapiReactPostgres,
        Stack::FastapiVueMongo,
        Stack::CsharpRazorEf,
    ];

    /// Its name in assets (`params.stack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stack::FastapiReactPostgres => "fastapi-react-postgres",
            Stack::FastapiVueMongo => "fastapi-vue-mongo",
            Stack::CsharpRazorEf => "csharp-razor-ef",
        }
    }

    /// True when the stack has a separate frontend service.
    pub fn has_frontend(self) -> bool {
        !matches!(self, Stack::CsharpRazorEf)
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stack::ALL
            .into_iter()
            .find(|st| st.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown stack \"{s}\" (expected one of: {})",
                    Stack::ALL.map(Stack::as_str).join(", ")
                )
            })
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML) with `$` escaped for
/// compose interpolation.
fn q(text: &str) -> String {
    serde_json::Value::String(text.replace('$', "$$")).to_string()
}

/// A scalar that keeps `${VAR}` interpolation (only for the fixed templates below).
fn interpolated(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

struct Service<'a> {
    name: &'a str,
    image: &'a str,
    working_dir: Option<&'a str>,
    volume: Option<String>,
    command: Option<String>,
    environment: Vec<(&'a str, String)>,
    port: (u16, u16),
    depends_on: Vec<&'a str>,
    healthcheck: Option<&'a str>,
}

fn write_service(out: &mut String, s: &Service<'_>) {
    let _ = writeln!(out, "  {}:", s.name);
    let _ = writeln!(out, "    image: {}", q(s.image));
    if let Some(dir) = s.working_dir {
        let _ = writeln!(out, "    working_dir: {}", q(dir));
    }
    if let Some(volume) = &s.volume {
        let _ = writeln!(out, "    volumes:\n      - {volume}");
    }
    if let Some(command) = &s.command {
        let _ = writeln!(out, "    command: [\"sh\", \"-c\", {}]", q(command));
    }
    if !s.environment.is_empty() {
        let _ = writeln!(out, "    environment:");
        for (k, v) in &s.environment {
            let _ = writeln!(out, "      {k}: {v}");
        }
    }
    let _ = writeln!(
        out,
        "    ports:\n      - \"127.0.0.1:{}:{}\"",
        s.port.0, s.port.1
    );
    if !s.depends_on.is_empty() {
        let _ = writeln!(out, "    depends_on:");
        for d in &s.depends_on {
            let _ = writeln!(out, "      - {d}");
        }
    }
    if let Some(test) = s.healthcheck {
        let _ = writeln!(
            out,
            "    healthcheck:\n      test: [\"CMD-SHELL\", {}]\n      interval: \"5s\"\n      timeout: \"5s\"\n      retries: 12",
            q(test)
        );
    }
    let _ = writeln!(out, "    restart: \"unless-stopped\"");
}

/// The compose file of a sandbox deploying `workspace` with `stack` on `ports`.
pub fn compose_file(stack: Stack, workspace: &Path, ports: &SandboxPorts) -> String {
    let ws = workspace.to_string_lossy();
    let mount = q(&format!("{ws}:/app"));
    let pip = "cd /app/backend 2>/dev/null || cd /app; if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi; pip install --no-cache-dir fastapi uvicorn; exec uvicorn main:app --host 0.0.0.0 --port 8000";
    let npm = "cd /app/frontend 2>/dev/null || cd /app; npm install && exec npm run dev -- --host 0.0.0.0 --port 3000";
    let api_url = format!("http://127.0.0.1:{}", ports.api);
    let postgres = |name| Service {
        name,
        image: "postgres:16-alpine",
        working_dir: None,
        volume: None,
        command: None,
        environment: vec![
            ("POSTGRES_USER", q("orket")),
            ("POSTGRES_DB", q("app")),
            ("POSTGRES_PASSWORD", interpolated("${DB_PASSWORD}")),
        ],
        port: (ports.db, 5432),
        depends_on: vec![],
        healthcheck: Some("pg_isready -U orket -d app"),
    };
    let adminer = Service {
        name: "admin",
        image: "adminer:4",
        working_dir: None,
        volume: None,
        command: None,
        environment: vec![("ADMINER_DEFAULT_SERVER", q("db"))],
        port: (ports.admin, 8080),
        depends_on: vec!["db"],
        healthcheck: None,
    };
    let services: Vec<Service<'_>> = match stack {
        Stack::FastapiReactPostgres | Stack::FastapiVueMongo => {
            let mongo = stack == Stack::FastapiVueMongo;
            let db = if mongo {
                Service {
                    name: "db",
                    image: "mongo:7",
                    working_dir: None,
                    volume: None,
                    command: None,
                    environment: vec![
                        ("MONGO_INITDB_ROOT_USERNAME", q("orket")),
                        ("MONGO_INITDB_ROOT_PASSWORD", interpolated("${DB_PASSWORD}")),
                    ],
                    port: (ports.db, 27017),
                    depends_on: vec![],
                    healthcheck: None,
                }
            } else {
                postgres("db")
            };
            let database_url = if mongo {
                (
                    "MONGO_URL",
                    interpolated("mongodb://orket:${DB_PASSWORD}@db:27017"),
                )
            } else {
                (
                    "DATABASE_URL",
                    interpolated("postgresql://orket:${DB_PASSWORD}@db:5432/app"),
                )
            };
            let admin = if mongo {
                Service {
                    name: "admin",
                    image: "mongo-express:1",
                    working_dir: None,
                    volume: None,
                    command: None,
                    environment: vec![
                        (
                            "ME_CONFIG_MONGODB_URL",
                            interpolated("mongodb://orket:${DB_PASSWORD}@db:27017"),
                        ),
                        ("ME_CONFIG_BASICAUTH", q("false")),
                    ],
                    port: (ports.admin, 8081),
                    depends_on: vec!["db"],
                    healthcheck: None,
                }
            } else {
                adminer
            };
            vec![
                db,
                Service {
                    name: "api",
                    image: "python:3.11-slim",
                    working_dir: Some("/app"),
                    volume: Some(mount.clone()),
                    command: Some(pip.to_string()),
                    environment: vec![database_url],
                    port: (ports.api, 8000),
                    depends_on: vec!["db"],
                    healthcheck: None,
                },
                Service {
                    name: "frontend",
                    image: "node:20-alpine",
                    working_dir: Some("/app"),
                    volume: Some(mount),
                    command: Some(npm.to_string()),
                    environment: vec![("VITE_API_URL", q(&api_url))],
                    port: (ports.frontend, 3000),
                    depends_on: vec!["api"],
                    healthcheck: None,
                },
                admin,
            ]
        }
        Stack::CsharpRazorEf => vec![
            postgres("db"),
            Service {
                name: "web",
                image: "mcr.microsoft.com/dotnet/sdk:8.0",
                working_dir: Some("/app"),
                volume: Some(mount),
                command: Some("dotnet run --urls http://0.0.0.0:8000".to_string()),
                environment: vec![
                    (
                        "ConnectionStrings__Default",
                        interpolated("Host=db;Database=app;Username=orket;Password=${DB_PASSWORD}"),
                    ),
                    ("ASPNETCORE_ENVIRONMENT", q("Development")),
                ],
                port: (ports.api, 8000),
                depends_on: vec!["db"],
                healthcheck: None,
            },
            adminer,
        ],
    };
    let mut out = format!(
        "# Generated by orket for the {stack} stack; the password is in .env (DB_PASSWORD).\nversion: \"3.8\"\nservices:\n"
    );
    for s in &services {
        write_service(&mut out, s);
    }
    out
}

/// The `.env` file next to the compose file: the only place the password is written.
pub fn env_file(password: &str) -> String {
    format!("DB_PASSWORD={password}\n")
}
