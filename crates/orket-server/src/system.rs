//! Health, version, heartbeat, machine metrics, the sprint calendar and the board.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_core::assets::board::BoardError;
use orket_core::assets::Board;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sysinfo::System;
use utoipa::{IntoParams, ToSchema};

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /v1/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// `orket`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// `GET /v1/system/heartbeat`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Heartbeat {
    /// Always `ok`.
    pub status: String,
    /// Now, UTC.
    pub timestamp: String,
    /// Runs executing in this server now.
    pub active_tasks: usize,
}

/// `GET /v1/system/metrics`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Metrics {
    /// CPU use of the machine, 0–100.
    pub cpu_percent: f32,
    /// Memory use of the machine, 0–100.
    pub ram_percent: f32,
    /// GPU memory in use (all GPUs), when `nvidia-smi` answers.
    pub vram_used_mb: Option<u64>,
    /// GPU memory in total, when `nvidia-smi` answers.
    pub vram_total_mb: Option<u64>,
    /// When measured, UTC.
    pub timestamp: String,
}

/// `GET /v1/system/calendar`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Calendar {
    /// Today (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Its sprint label, `Q<q> S<s>`.
    pub sprint: String,
    /// Now, UTC.
    pub timestamp: String,
}

/// `?dept=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeptQuery {
    /// One department instead of all (all when absent or empty).
    pub dept: Option<String>,
}

/// The server is up (no key needed).
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// The server's version.
#[utoipa::path(get, path = "/v1/version", responses((status = 200, body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version {
        name: "orket".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// The server is up, with the number of runs executing in it.
#[utoipa::path(get, path = "/v1/system/heartbeat", responses((status = 200, body = Heartbeat)))]
pub async fn heartbeat(State(state): State<AppState>) -> Json<Heartbeat> {
    Json(Heartbeat {
        status: "ok".to_string(),
        timestamp: orket_store::now_timestamp(),
        active_tasks: state.active_runs(),
    })
}

/// CPU, memory and (with `nvidia-smi`) GPU memory use.
#[utoipa::path(get, path = "/v1/system/metrics", responses((status = 200, body = Metrics)))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Json<Metrics>> {
    let sampler = state.clone();
    tokio::task::spawn_blocking(move || sampler.metrics().sample())
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(format!("measuring the machine failed: {e}")))
}

/// Today's date and sprint label.
#[utoipa::path(get, path = "/v1/system/calendar", responses((status = 200, body = Calendar)))]
pub async fn calendar() -> Json<Calendar> {
    let today = chrono::Utc::now().date_naive();
    Json(Calendar {
        date: today.to_string(),
        sprint: orket_core::sprint::sprint_label(today),
        timestamp: orket_store::now_timestamp(),
    })
}

/// Rocks → epics → issues, with the store's statuses where a build exists.
#[utoipa::path(get, path = "/v1/system/board", params(DeptQuery),
    responses((status = 200, description = "the board", body = Object), (status = 400), (status = 404)))]
pub async fn board(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeptQuery>,
) -> ApiResult<Json<Board>> {
    let dept = query.dept.as_deref().filter(|d| !d.is_empty());
    let mut board = Board::from_files(state.tree(), dept).map_err(|e| match e {
        BoardError::InvalidDepartment(_) => ApiError::bad_request(format!("dept: {e}")),
        BoardError::UnknownDepartment(_) => ApiError::not_found(format!("dept: {e}")),
    })?;
    orket_store::overlay_builds(state.store().as_ref(), &mut board).await?;
    Ok(Json(board))
}

/// Used and total GPU memory, in MiB.
type Vram = (u64, u64);

/// Measures CPU and memory with sysinfo and GPU memory with `nvidia-smi`, whose answer is
/// kept for `ORKET_METRICS_VRAM_CACHE_SEC` seconds (default 5).
pub struct MetricsSampler {
    system: Mutex<System>,
    vram: Mutex<Option<(Instant, Option<Vram>)>>,
    vram_ttl: Duration,
}

impl MetricsSampler {
    /// A sampler with the VRAM cache time of `ORKET_METRICS_VRAM_CACHE_SEC`.
    pub fn from_env() -> Self {
        let secs = std::env::var("ORKET_METRICS_VRAM_CACHE_SEC")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(5.0);
        MetricsSampler {
            system: Mutex::new(System::new()),
            vram: Mutex::new(None),
            vram_ttl: Duration::from_secs_f64(secs),
        }
    }

    /// Measures now (blocking: may run `nvidia-smi`).
    pub fn sample(&self) -> Metrics {
        let (cpu_percent, ram_percent) = match self.system.lock() {
            Ok(mut system) => {
                system.refresh_cpu_usage();
                system.refresh_memory();
                let total = system.total_memory();
                let ram = if total == 0 {
                    0.0
                } else {
                    (system.used_memory() as f64 * 100.0 / total as f64) as f32
                };
                (system.global_cpu_usage(), ram)
            }
            Err(_) => (0.0, 0.0),
        };
        let vram = self.vram();
        Metrics {
            cpu_percent,
            ram_percent,
            vram_used_mb: vram.map(|v| v.0),
            vram_total_mb: vram.map(|v| v.1),
            timestamp: orket_store::now_timestamp(),
        }
    }

    fn vram(&self) -> Option<Vram> {
        let Ok(mut cache) = self.vram.lock() else {
            return None;
        };
        if let Some((at, value)) = *cache {
            if at.elapsed() < self.vram_ttl {
                return value;
            }
        }
        let value = query_nvidia_smi();
        *cache = Some((Instant::now(), value));
        value
    }
}

/// Used and total GPU memory in MiB over all GPUs, or `None` without `nvidia-smi`.
fn query_nvidia_smi() -> Option<(u64, u64)> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.used,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout))
}

/// Sums `used, total` lines (one per GPU).
fn parse_nvidia_smi(text: &str) -> Option<(u64, u64)> {
    let mut sum: Option<(u64, u64)> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (used, total) = line.split_once(',')?;
        let used: u64 = used.trim().parse().ok()?;
        let total: u64 = total.trim().parse().ok()?;
        let (u, t) = sum.unwrap_or((0, 0));
        sum = Some((u + used, t + total));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_are_summed() {
        assert_eq!(
            parse_nvidia_smi("1024, 8192\n512, 4096\n"),
            Some((1536, 12288))
        );
        assert_eq!(parse_nvidia_smi(""), None);
        assert_eq!(parse_nvidia_smi("N/A, 8192\n"), None);
    }
}
