-- +goose Up
-- The time a report version speaks for, so that versions are ordered by
-- what the lab says and not by when they arrived: OBR-22 (or the FHIR
-- report's issued), else the message's own time (MSH-7), else the time it
-- was filed. A message older than the version on file is kept as history
-- behind it.
ALTER TABLE lab_reports ADD COLUMN as_of timestamptz;
UPDATE lab_reports SET as_of = coalesce(issued_at, filed_at);
ALTER TABLE lab_reports ALTER COLUMN as_of SET NOT NULL;

-- +goose Down
ALTER TABLE lab_reports DROP COLUMN as_of;
