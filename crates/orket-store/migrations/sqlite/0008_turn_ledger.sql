-- A tamper-evident ledger of every run: each turn carries the SHA-256 of its canonical
-- content chained to the hash of the run's turn committed before it, and the run keeps the
-- hash of its last turn (so removing turns from the end shows too). Turns stored before this
-- migration have no hash.
ALTER TABLE turns ADD COLUMN prev_hash TEXT;
ALTER TABLE turns ADD COLUMN hash TEXT;
ALTER TABLE sessions ADD COLUMN ledger_head TEXT;
