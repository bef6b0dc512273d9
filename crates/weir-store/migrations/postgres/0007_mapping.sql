-- Dynamic task mapping: the item a mapped task instance runs with (JSON), fixed when the
-- scheduler expands the task; NULL for an unmapped task.
ALTER TABLE task_instance ADD COLUMN map_item TEXT;
