//! `orket serve`: the HTTP API, the WebSocket of events and the web board of a project.

use crate::commands::run::{provider, ProviderArgs};
use crate::project::Project;
use anyhow::{Context, Result};
use orket_server::{check_bind, AppState, ProviderChoice, ServerConfig};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;

/// Options of `orket serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on; anything but loopback needs ORKET_API_KEY.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub host: String,
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8082, value_name = "PORT")]
    pub port: u16,
    /// The provider of the review runs a Gitea pull request starts (embedded, ollama, openai
    /// or replay) [default: ORKET_PROVIDER; none: no review run starts].
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// The replay file of those runs, for `--provider replay`.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Simulated model time per replayed reply of those runs, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub replay_delay_ms: u64,
    /// The model of those runs.
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Hand the turns of the runs it starts (API runs and review runs) to the fleet's workers
    /// (`orket worker`); needs a PostgreSQL store.
    #[arg(long)]
    pub fleet: bool,
}

/// Gives the server the fleet, when asked.
#[cfg(feature = "postgres")]
async fn with_fleet(project: &Project, config: &mut ServerConfig, fleet: bool) -> Result<()> {
    if fleet {
        let store = project.postgres_store().await?;
        config.fleet = Some(Arc::new(orket_store::PgFleet::connect(&store).await?));
        // A run the API starts needs no provider of its own: its turns run on the workers.
        config
            .default_provider
            .get_or_insert_with(|| "fleet".to_string());
    }
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn with_fleet(_project: &Project, _config: &mut ServerConfig, fleet: bool) -> Result<()> {
    if fleet {
        anyhow::bail!("--fleet needs PostgreSQL, and this orket was built without it: rebuild with `cargo build --release -p orket-cli --features postgres`");
    }
    Ok(())
}

/// The exit code of a refused configuration (non-loopback without a key, bad address).
const REFUSED: u8 = 2;

/// Serves the project until Ctrl-C.
pub async fn run(project: &Project, args: ServeArgs) -> Result<ExitCode> {
    let addr = match resolve(&args.host, args.port) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(REFUSED));
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let api_key = env("ORKET_API_KEY").filter(|k| !k.trim().is_empty());
    if let Err(message) = check_bind(&addr, api_key.as_deref()) {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(REFUSED));
    }
    let tree = project.tree()?;
    let store = project
        .open_store()
        .await
        .with_context(|| format!("opening the store {}", project.store_name()))?;
    let mut config = ServerConfig::new(tree.root(), store).with_env(env);
    if let Some(name) = args.provider.clone() {
        config.review_provider = Some(ProviderChoice {
            name,
            replay: args.replay.clone(),
            replay_delay: std::time::Duration::from_millis(args.replay_delay_ms),
        });
    }
    config.review_model = args.model.clone();
    with_fleet(project, &mut config, args.fleet).await?;
    // The runs' providers are built as `orket run` builds them (with the embedded model when
    // this binary has it).
    config.providers = Arc::new(|choice: &ProviderChoice| {
        let args = ProviderArgs {
            provider: Some(choice.name.clone()),
            record: None,
            replay: choice.replay.clone(),
            replay_delay_ms: u64::try_from(choice.replay_delay.as_millis()).unwrap_or(u64::MAX),
            model_path: std::env::var_os("ORKET_MODEL_PATH").map(Into::into),
        };
        provider(&args).map_err(|e| format!("{e:#}"))
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // A closed stdout (the starter stopped reading) must not bring the server down.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "orket serve: http://{local}/ (project {})",
        project.root().display()
    );
    if config.api_key.is_some() {
        let _ = writeln!(
            out,
            "  /v1 and /ws need the X-API-Key header (ORKET_API_KEY)"
        );
    }
    let state = AppState::new(config);
    orket_server::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .with_context(|| format!("serving on {local}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `host:port` as a socket address (`localhost` and other names resolved).
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--host {host}: not an address or a known host name ({e})"))?
        .next()
        .ok_or_else(|| format!("--host {host}: the name has no address"))
}
