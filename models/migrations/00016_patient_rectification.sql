-- +goose Up
-- Rectification (GDPR Art. 16, KVKK 11(1)(d)): patients, their proxies
-- and the desk correct a patient's record through PATCH
-- /v1/patients/:id. version counts the record's changes, so that two
-- people correcting it at once cannot overwrite each other unseen (the
-- API's If-Match); preferred_language is the language the patient wants
-- to be written to in, one of the languages the apps speak.
ALTER TABLE patients
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version > 0),
    ADD COLUMN preferred_language text CHECK (preferred_language IN ('en', 'tr'));

-- +goose Down
ALTER TABLE patients
    DROP COLUMN preferred_language,
    DROP COLUMN version;
