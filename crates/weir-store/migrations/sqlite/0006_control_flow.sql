-- Control flow (branch, short_circuit, latest_only): what such a task decided about its
-- downstream tasks, recorded with its success (JSON), and why an instance was skipped by one.
ALTER TABLE task_instance ADD COLUMN decision TEXT;
ALTER TABLE task_instance ADD COLUMN reason TEXT;
