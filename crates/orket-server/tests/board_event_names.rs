//! The board (`web/app.js`) reacts to events by their wire names; every name it tests for must
//! be an event of `orket_core::Event`, so renaming an event cannot silently break the board.

use orket_core::Event;

/// The quoted names `app.js` compares an event's name with: `ev.event === '…'` and the
/// `case '…':` labels of its event switch.
fn names_in_board() -> Vec<String> {
    let js = include_str!("../web/app.js");
    let mut names = Vec::new();
    for marker in ["ev.event === '", "case '"] {
        for (at, _) in js.match_indices(marker) {
            let rest = &js[at + marker.len()..];
            if let Some(end) = rest.find('\'') {
                names.push(rest[..end].to_string());
            }
        }
    }
    names
}

#[test]
fn every_event_name_the_board_tests_for_is_an_event() {
    let names = names_in_board();
    assert!(
        names.len() >= 8,
        "expected the board's event switch, found {names:?}"
    );
    let known: Vec<&str> = Event::CATALOG.iter().map(|doc| doc.name).collect();
    for name in &names {
        assert!(
            known.contains(&name.as_str()),
            "web/app.js tests for an event named {name:?}, which orket_core::Event does not have"
        );
    }
}
