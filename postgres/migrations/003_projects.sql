-- Projects: every file, batch and upload belongs to one. What was stored before
-- belongs to the default project.
ALTER TABLE files ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE batches ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE uploads ADD COLUMN project text NOT NULL DEFAULT 'default';
CREATE INDEX files_project ON files (project, seq);
CREATE INDEX batches_project ON batches (project, seq);
-- Admission sums the tokens, and counts the batches, of a project's batches that are
-- not terminal.
CREATE INDEX batches_project_enqueued ON batches (project)
	WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');
