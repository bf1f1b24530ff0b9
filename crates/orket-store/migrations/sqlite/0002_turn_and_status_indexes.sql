-- A prompt's history reads the last turns of one issue in a run; the board and the derived
-- epic status read the statuses of one build.
CREATE INDEX turns_issue ON turns (run_id, issue_id, seq);
CREATE INDEX issues_build_status ON issues (build_id, status);
