-- A turn is a bounded loop of model steps (one tool call each); every step is recorded.
ALTER TABLE turns ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
-- The candidate turns drawn for a developer turn with a fixture, and the one chosen.
ALTER TABLE turns ADD COLUMN candidates TEXT NOT NULL DEFAULT '[]';
-- The sampling and turn settings the turn ran with (its model profile applied).
ALTER TABLE turns ADD COLUMN settings TEXT;
