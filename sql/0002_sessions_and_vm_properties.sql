-- API sessions live in the database so that every engine process accepts every token.
CREATE TABLE api_sessions (
    token       text PRIMARY KEY,
    user_name   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'readonly')),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX api_sessions_expiry ON api_sessions (expires_at);

-- oVirt's VM custom properties (name -> value), e.g. console_log for the tiny guest's serial file.
ALTER TABLE vms ADD COLUMN custom_properties jsonb NOT NULL DEFAULT '{}'::jsonb;
