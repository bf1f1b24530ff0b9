//! Identifiers: run ids, card ids, issue ids created by agents, and build ids.

use rand::Rng;
use sha2::{Digest, Sha256};

/// A new run (session) id: 8 random lower-case hex characters.
pub fn new_run_id() -> String {
    random_hex(8)
}

/// A new card id for a card written without one: 8 random lower-case hex characters.
pub fn random_card_id() -> String {
    random_hex(8)
}

/// A new issue id for an issue an agent creates: `ISSUE-` and 4 upper-case hex characters.
/// Callers retry on the (rare) collision with an existing id.
pub fn new_issue_id() -> String {
    format!("ISSUE-{}", random_hex(4).to_uppercase())
}

/// The id of an issue written without one in an epic file: 8 hex characters derived from the
/// epic, the issue's name and how many issues of that name came before it, so the id is the
/// same on every load and a re-run continues the same build.
pub fn derived_issue_id(epic: &str, name: &str, occurrence: usize) -> String {
    let digest = Sha256::digest(format!("{epic}\u{0}{name}\u{0}{occurrence}").as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The build an epic run works on: `build-<epic>`.
pub fn epic_build_id(epic: &str) -> String {
    format!("build-{epic}")
}

/// The build of a rock as a whole: `rock-build-<rock>`.
pub fn rock_build_id(rock: &str) -> String {
    format!("rock-build-{rock}")
}

/// The reserved lease key of the organization loop (`orket loop`, or the server's loop): one
/// loop per project holds it, as a run holds its build's. No epic or rock build is named so.
pub const LOOP_LEASE: &str = "loop";

fn random_hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_hex(s: &str) -> bool {
        s.chars().all(|c| c.is_ascii_hexdigit())
    }

    #[test]
    fn shapes() {
        let run = new_run_id();
        assert_eq!(run.len(), 8);
        assert!(is_hex(&run) && run == run.to_lowercase());
        let issue = new_issue_id();
        assert!(issue.starts_with("ISSUE-") && issue.len() == 10);
        assert!(is_hex(&issue[6..]) && issue[6..] == issue[6..].to_uppercase());
        assert_eq!(random_card_id().len(), 8);
        assert_eq!(epic_build_id("login"), "build-login");
        assert_eq!(rock_build_id("launch"), "rock-build-launch");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_issue_id("login", "Write the form", 0);
        assert_eq!(a, derived_issue_id("login", "Write the form", 0));
        assert_eq!(a.len(), 8);
        assert!(is_hex(&a));
        assert_ne!(a, derived_issue_id("login", "Write the form", 1));
        assert_ne!(a, derived_issue_id("signup", "Write the form", 0));
    }
}
