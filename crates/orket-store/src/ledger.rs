//! The tamper-evident ledger of a run. Each turn, as it is committed, gets the SHA-256 of its
//! canonical content (prompt, replies, steps, calls, results — so the content of every file it
//! wrote —, model, settings and prompt version, tokens, times) chained to the hash of the run's
//! turn committed before it; the run keeps the hash of its last turn (its head). [`check`]
//! recomputes the chain and names the first turn that does not match: a turn changed, removed,
//! inserted or reordered after it was committed, or the head moved.

use crate::records::{NewTurn, TurnRecord};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the first turn of a run is chained to.
pub const GENESIS: &str = "";

/// The JSON text of `value` with every object's keys sorted, no spaces: one text per value,
/// whatever order its maps were built or stored in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash of `turn` chained to `prev` (the hash of the run's turn committed before it, or
/// [`GENESIS`]).
pub fn turn_hash(prev: &str, turn: &NewTurn) -> String {
    let content = serde_json::to_value(turn).unwrap_or(Value::Null);
    let mut text = String::with_capacity(prev.len() + 1);
    text.push_str(prev);
    text.push('\n');
    text.push_str(&canonical_json(&content));
    sha256_hex(text.as_bytes())
}

/// A chain that holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// Its turns.
    pub turns: usize,
    /// The hash of its last turn ([`GENESIS`] for a run with none).
    pub head: String,
}

/// Where a chain breaks, with what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum Break {
    /// The turn was stored before the ledger existed: it cannot be checked.
    #[error("turn {seq} (row {id}) was stored before runs had a ledger; it cannot be checked")]
    Unhashed {
        /// Its seq.
        seq: i64,
        /// Its row id.
        id: i64,
    },
    /// The turn's content no longer gives its recorded hash: it was changed.
    #[error("turn {seq} (row {id}) was changed after it was committed: its content hashes to {found}, the ledger recorded {recorded}")]
    Changed {
        /// Its seq.
        seq: i64,
        /// Its row id.
        id: i64,
        /// What its content hashes to now.
        found: String,
        /// What was recorded.
        recorded: String,
    },
    /// The turn is not chained to the turn before it: a turn was removed, inserted or moved.
    #[error("turn {seq} (row {id}) does not follow the turn before it: a turn was removed, inserted or reordered before it")]
    Relinked {
        /// Its seq.
        seq: i64,
        /// Its row id.
        id: i64,
    },
    /// The run's head is not its last turn's hash: turns were removed from its end, or the
    /// head was changed.
    #[error("the run's ledger head {head} is not the hash of its last turn ({last}): turns were removed from its end")]
    Head {
        /// The run's recorded head.
        head: String,
        /// The last turn's hash.
        last: String,
    },
}

/// Checks a run's turns, in commit order (row id), against the run's recorded `head`.
pub fn check(turns: &[TurnRecord], head: Option<&str>) -> Result<Chain, Break> {
    let mut ordered: Vec<&TurnRecord> = turns.iter().collect();
    ordered.sort_by_key(|t| t.id);
    let mut prev = GENESIS.to_string();
    for t in ordered {
        let (seq, id) = (t.turn.seq, t.id);
        let (Some(recorded), Some(linked)) = (&t.hash, &t.prev_hash) else {
            return Err(Break::Unhashed { seq, id });
        };
        if *linked != prev {
            return Err(Break::Relinked { seq, id });
        }
        let found = turn_hash(&prev, &t.turn);
        if found != *recorded {
            return Err(Break::Changed {
                seq,
                id,
                found,
                recorded: recorded.clone(),
            });
        }
        prev = found;
    }
    let head = head.unwrap_or(GENESIS);
    if head != prev {
        return Err(Break::Head {
            head: head.to_string(),
            last: prev,
        });
    }
    Ok(Chain {
        turns: turns.len(),
        head: prev,
    })
}
