//! Where committed events go: the [`Recorder`] applies a batch of changes to the store and
//! only then delivers the events among them to the run's `orket.log` ([`EventLog`], JSON lines,
//! rotated) and to the in-process broadcast ([`EventBus`]) the server's WebSocket subscribes
//! to. Every event of Orket takes this one path (the event types are `orket_core::Event`).

use crate::{Applied, Change, EventRecord, Store, StoreResult};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is told it lagged.
pub const DEFAULT_BUS_CAPACITY: usize = 1024;

/// The in-process broadcast of committed events; a slow subscriber never blocks publishers
/// (it receives `RecvError::Lagged(n)` instead).
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<EventRecord>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_BUS_CAPACITY)
    }
}

impl EventBus {
    /// A bus that buffers `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus { tx }
    }

    /// Sends an event to every current subscriber (none is fine).
    pub fn publish(&self, event: EventRecord) {
        // An error only means nobody listens right now.
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscriber, receiving the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.tx.subscribe()
    }
}

/// The default size at which `orket.log` is rotated.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// How many rotated logs are kept (`orket.log.1` … `orket.log.N`).
pub const DEFAULT_LOG_KEEP: usize = 3;

/// A workspace's `orket.log`: one JSON object per line, rotated by size. Each workspace has
/// its own log, and a record goes only to the log of the run it belongs to.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: Mutex<Option<(File, u64)>>,
}

impl EventLog {
    /// The log `<workspace>/orket.log` with the default limits.
    pub fn for_workspace(workspace: &Path) -> Self {
        EventLog::new(
            workspace.join("orket.log"),
            DEFAULT_LOG_MAX_BYTES,
            DEFAULT_LOG_KEEP,
        )
    }

    /// A log at `path`, rotated when it would grow past `max_bytes`, keeping `keep` old files.
    pub fn new(path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        EventLog {
            path,
            max_bytes: max_bytes.max(1),
            keep,
            file: Mutex::new(None),
        }
    }

    /// The current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the events, one JSON line each, rotating first when the file would outgrow its
    /// limit (a single line larger than the limit still goes into a fresh file).
    pub fn append(&self, events: &[EventRecord]) -> io::Result<()> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| io::Error::other("event log lock poisoned"))?;
        for event in events {
            let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
            line.push(b'\n');
            let size = guard.as_ref().map(|(_, size)| *size);
            let size = match size {
                Some(size) => size,
                None => {
                    let (file, size) = self.open()?;
                    *guard = Some((file, size));
                    size
                }
            };
            if size > 0 && size + line.len() as u64 > self.max_bytes {
                *guard = None;
                self.rotate()?;
                *guard = Some(self.open()?);
            }
            if let Some((file, size)) = guard.as_mut() {
                file.write_all(&line)?;
                *size += line.len() as u64;
            }
        }
        if let Some((file, _)) = guard.as_mut() {
            file.flush()?;
        }
        Ok(())
    }

    fn open(&self) -> io::Result<(File, u64)> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&self) -> io::Result<()> {
        if self.keep == 0 {
            return fs::remove_file(&self.path).or_else(ignore_missing);
        }
        fs::remove_file(self.rotated(self.keep)).or_else(ignore_missing)?;
        for n in (1..self.keep).rev() {
            fs::rename(self.rotated(n), self.rotated(n + 1)).or_else(ignore_missing)?;
        }
        fs::rename(&self.path, self.rotated(1)).or_else(ignore_missing)
    }
}

fn ignore_missing(err: io::Error) -> io::Result<()> {
    if err.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(err)
    }
}

/// Commits batches of changes and delivers their events, in order, once the batch is in the
/// store: one write to the log per batch, then the bus.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<dyn Store>,
    sink: EventSink,
    // Held from apply to delivery, so that batches committed concurrently (two issues of a
    // tick) reach the log and the bus in the order of their row ids. The store's writer
    // applies one batch at a time anyway, so this costs no parallelism.
    order: Arc<tokio::sync::Mutex<()>>,
}

impl Recorder {
    /// Commits to `store` and delivers to `sink`.
    pub fn new(store: Arc<dyn Store>, sink: EventSink) -> Self {
        Recorder {
            store,
            sink,
            order: Arc::default(),
        }
    }

    /// Commits to `store` and publishes to a bus nobody listens to yet, with no log (for
    /// callers outside a run, such as `orket sandbox`).
    pub fn for_store(store: Arc<dyn Store>) -> Self {
        Recorder::new(store, EventSink::new(EventBus::default(), None))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where events are delivered.
    pub fn sink(&self) -> &EventSink {
        &self.sink
    }

    /// The same recorder delivering to the bus and to `log` (a run's workspace log).
    pub fn with_log(&self, log: Arc<EventLog>) -> Recorder {
        Recorder {
            store: Arc::clone(&self.store),
            sink: EventSink::new(self.sink.bus().clone(), Some(log)),
            order: Arc::clone(&self.order),
        }
    }

    /// Applies `changes` as one batch, then delivers the events among them with their row ids.
    /// A log that cannot be written is reported as a warning: the events are committed and
    /// published all the same.
    pub async fn commit(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        let events: Vec<Option<crate::NewEvent>> = changes
            .iter()
            .map(|c| match c {
                Change::AppendEvent(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let _in_order = self.order.lock().await;
        let applied = self.store.apply(changes).await?;
        let records: Vec<EventRecord> = events
            .into_iter()
            .zip(applied.iter())
            .filter_map(|(e, a)| Some(e?.stored(a.id()?)))
            .collect();
        if let Err(err) = self.sink.deliver(records) {
            tracing::warn!("cannot write the event log: {err}");
        }
        Ok(applied)
    }

    /// Records `events` as one batch.
    pub async fn record(&self, events: Vec<crate::NewEvent>) -> StoreResult<()> {
        self.commit(events.into_iter().map(Change::AppendEvent).collect())
            .await
            .map(drop)
    }
}

/// Where committed events go after the store: the bus, and the run's workspace log.
#[derive(Debug, Clone)]
pub struct EventSink {
    bus: EventBus,
    log: Option<Arc<EventLog>>,
}

impl EventSink {
    /// Delivers to `bus` and, when given, to `log`.
    pub fn new(bus: EventBus, log: Option<Arc<EventLog>>) -> Self {
        EventSink { bus, log }
    }

    /// The bus.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Writes the events to the log and publishes them. A log that cannot be written is
    /// reported by the returned error; the events are published all the same.
    pub fn deliver(&self, events: Vec<EventRecord>) -> io::Result<()> {
        let logged = match &self.log {
            Some(log) => log.append(&events),
            None => Ok(()),
        };
        for event in events {
            self.bus.publish(event);
        }
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orket_core::Event;
    use serde_json::json;

    /// Event `id`: a turn start (`complete`: a turn's end).
    fn event(id: i64, complete: bool) -> EventRecord {
        let event = if complete {
            Event::TurnComplete {
                seq: id,
                calls: 1,
                status: None,
                tokens_in: 0,
                tokens_out: 0,
                notes: Vec::new(),
            }
        } else {
            Event::TurnStart {
                seq: id,
                seat: "developer".to_string(),
            }
        };
        EventRecord {
            id,
            run_id: Some("abcd1234".to_string()),
            timestamp: "2026-11-22T04:16:22.123Z".to_string(),
            role: Some("coder".to_string()),
            issue_id: Some("DEMO-1".to_string()),
            event,
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn log_lines_are_the_event_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::for_workspace(dir.path());
        log.append(&[event(1, false), event(2, true)]).unwrap();
        let got = lines(&dir.path().join("orket.log"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["event"], "turn_start");
        assert_eq!(got[1]["event"], "turn_complete");
        for key in ["timestamp", "run_id", "role", "event", "data"] {
            assert!(got[0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(got[0]["data"], json!({"seq": 1, "seat": "developer"}));
    }

    #[test]
    fn log_rotates_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orket.log");
        let one_line = serde_json::to_vec(&event(1, false)).unwrap().len() as u64 + 1;
        // Room for two lines per file, keep two rotated files.
        let log = EventLog::new(path.clone(), one_line * 2, 2);
        for id in 1..=9 {
            log.append(&[event(id, false)]).unwrap();
        }
        let ids =
            |p: &Path| -> Vec<i64> { lines(p).iter().map(|v| v["id"].as_i64().unwrap()).collect() };
        assert_eq!(ids(&path), vec![9]);
        assert_eq!(ids(&dir.path().join("orket.log.1")), vec![7, 8]);
        assert_eq!(ids(&dir.path().join("orket.log.2")), vec![5, 6]);
        assert!(!dir.path().join("orket.log.3").exists());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_many_it_missed() {
        let bus = EventBus::new(4);
        let mut slow = bus.subscribe();
        for id in 1..=10 {
            bus.publish(event(id, false));
        }
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("expected a lag notice, got {other:?}"),
        }
        assert_eq!(slow.recv().await.unwrap().id, 7);
    }

    #[tokio::test]
    async fn sink_logs_then_publishes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::for_workspace(dir.path()));
        let sink = EventSink::new(EventBus::default(), Some(log));
        let mut rx = sink.bus().subscribe();
        sink.deliver(vec![event(1, false), event(2, true)]).unwrap();
        assert_eq!(rx.recv().await.unwrap().event.name(), "turn_start");
        assert_eq!(rx.recv().await.unwrap().event.name(), "turn_complete");
        assert_eq!(lines(&dir.path().join("orket.log")).len(), 2);
    }
}
