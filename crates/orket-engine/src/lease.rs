//! One run per build across processes: a run holds its build's lease in the store (see
//! `orket_store::LeaseRecord`). It is taken in the batch that starts or resumes the run,
//! renewed by a heartbeat every [`HEARTBEAT`] and with every commit of the run (so a process
//! that lost its build cannot commit a late turn), and released in the batch that ends the run.
//! A lease whose holder stopped heartbeating for [`STALE_AFTER`], or whose process is gone
//! (same host, that pid no longer the same process), is taken over — so a run killed with
//! `kill -9` resumes at once.

use crate::error::EngineError;
use crate::run::{Halt, RunCtx};
use orket_core::Event;
use orket_store::{Change, LeaseHolder, LeaseRecord, LeaseRequest, Store, StoreError};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often a running run renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A lease not renewed for this long is free to take.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// This process as a lease holder: `host/boot/pidns/pid/start` — the host name, the kernel's
/// boot id, this process's PID namespace, its pid and its start time in clock ticks since boot
/// (from `/proc/self/stat`). A later process that gets the same pid is a different holder, and
/// only a holder of the same boot and PID namespace can be judged gone by its pid (two
/// containers may share a host name).
pub fn holder() -> &'static LeaseHolder {
    static HOLDER: OnceLock<LeaseHolder> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let pid = std::process::id();
        let host = host_name();
        let start = process_start(pid).unwrap_or(0);
        let (boot, pidns) = machine_view();
        LeaseHolder {
            token: format!("{host}/{boot}/{pidns}/{pid}/{start}"),
            pid,
            host,
        }
    })
}

/// The kernel's boot id and this process's PID namespace (`-` where unreadable): together they
/// say whether a pid of another holder names a process this one can see.
fn machine_view() -> (String, String) {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().to_string())
        .unwrap_or_else(|_| "-".to_string());
    let pidns = std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.to_string_lossy().replace('/', "_"))
        .unwrap_or_else(|_| "-".to_string());
    (boot, pidns)
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it exists.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "<pid> (<comm>) <state> <ppid> ...": the command may hold spaces and parentheses, so
    // count from the last ')'; the start time is the 20th field after it.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// True when `lease`'s holder is a process this one can see — same host, same boot, same PID
/// namespace, all known — that no longer runs: its pid is free or belongs to a process started
/// at another time. Any other holder is judged by its heartbeat only.
pub fn holder_is_gone(lease: &LeaseRecord) -> bool {
    let theirs: Vec<&str> = lease.holder.token.rsplitn(5, '/').collect();
    let ours: Vec<&str> = holder().token.rsplitn(5, '/').collect();
    // [start, pid, pidns, boot, host], read from the right (a host name has no '/').
    let (&[start, _, pidns, boot, host], &[_, _, our_pidns, our_boot, our_host]) =
        (theirs.as_slice(), ours.as_slice())
    else {
        return false;
    };
    let comparable = host == our_host
        && boot == our_boot
        && pidns == our_pidns
        && boot != "-"
        && pidns != "-"
        && lease.holder.token != holder().token;
    let Ok(started) = start.parse::<u64>() else {
        return false;
    };
    comparable && started != 0 && process_start(lease.holder.pid) != Some(started)
}

/// A lease this process cannot take now: held by another live process, heartbeating.
pub async fn held_elsewhere(
    store: &dyn Store,
    builds: &[String],
) -> Result<Option<LeaseRecord>, EngineError> {
    for build in builds {
        if let Some(lease) = store.get_lease(build).await? {
            let free = lease.holder.token == holder().token
                || lease.is_stale(STALE_AFTER)
                || holder_is_gone(&lease);
            if !free {
                return Ok(Some(lease));
            }
        }
    }
    Ok(None)
}

/// Commits `changes` (the batch that starts or resumes the run) together with taking the run's
/// build, then keeps the build with a heartbeat. A lease of a process that is gone is taken
/// over (recorded as `build_taken_over`); one held by a live process refuses the whole batch
/// (`EngineError::Held`).
pub(crate) async fn commit_taking_build(
    ctx: &RunCtx,
    changes: Vec<Change>,
) -> Result<(), EngineError> {
    let request = |replacing: Option<String>| {
        Change::TakeLease(LeaseRequest {
            build_id: ctx.build_id.clone(),
            run_id: ctx.run_id.clone(),
            holder: holder().clone(),
            stale_after: STALE_AFTER,
            replacing,
        })
    };
    let mut batch = vec![request(None)];
    batch.extend(changes.iter().cloned());
    match ctx.commit(batch).await {
        Ok(_) => {}
        Err(StoreError::Held(lease)) if holder_is_gone(&lease) => {
            tracing::warn!(
                "build {}: taking over from {}, whose process is gone",
                ctx.build_id,
                lease.describe()
            );
            let mut batch = vec![request(Some(lease.holder.token.clone()))];
            batch.push(Change::AppendEvent(ctx.event(Event::BuildTakenOver {
                from_run: lease.run_id.clone(),
                pid: lease.holder.pid,
                host: lease.holder.host.clone(),
                heartbeat_at: lease.heartbeat_at.clone(),
            })));
            batch.extend(changes);
            ctx.commit(batch).await?;
        }
        Err(e) => return Err(e.into()),
    }
    ctx.leased.store(true, Ordering::SeqCst);
    ctx.keep_alive(Heartbeat::start(
        Arc::clone(ctx.recorder.store()),
        ctx.build_id.clone(),
        ctx.halt.clone(),
    ));
    Ok(())
}

/// The change that renews the run's lease, put first in each of its commits.
pub(crate) fn renewal(build_id: &str) -> Change {
    Change::RenewLease {
        build_id: build_id.to_string(),
        token: holder().token.clone(),
    }
}

/// The change that releases `build_id`'s lease if this process holds it.
pub(crate) fn release(build_id: &str) -> Change {
    Change::ReleaseLease {
        build_id: build_id.to_string(),
        token: holder().token.clone(),
    }
}

/// The background renewal of a run's lease, stopped when dropped (with the run's context).
/// If the lease was taken over (this process was stopped past [`STALE_AFTER`]), the run is
/// halted: its next commit would be refused anyway.
pub(crate) struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    /// Renews `build_id`'s lease every [`HEARTBEAT`] until dropped; raises `halt` when the
    /// lease was taken over.
    pub(crate) fn start(store: Arc<dyn Store>, build_id: String, halt: Halt) -> Heartbeat {
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.apply(vec![renewal(&build_id)]).await {
                    Ok(_) => {}
                    Err(e @ (StoreError::Held(_) | StoreError::Conflict(_))) => {
                        tracing::error!("run halted: {e}");
                        halt.raise();
                        return;
                    }
                    Err(e) => tracing::warn!("build {build_id}: cannot renew its lease: {e}"),
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
