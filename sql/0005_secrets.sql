-- Secrets at rest: users' passwords only as scrypt hashes, API tokens only as SHA-256 digests
-- (a database dump opens nothing), and failed logins counted so that guessing slows down.

CREATE TABLE api_users (
    name            text PRIMARY KEY,
    role            text NOT NULL CHECK (role IN ('admin', 'readonly')),
    password_hash   text NOT NULL CHECK (password_hash LIKE 'scrypt$%')
);

-- Tokens issued before this migration become their digests: they keep working.
UPDATE api_sessions SET token = encode(sha256(convert_to(token, 'UTF8')), 'hex');

CREATE TABLE login_failures (
    key             text PRIMARY KEY,          -- 'user:<name>' or 'addr:<client address>'
    failures        integer NOT NULL,
    window_start    timestamptz NOT NULL,
    locked_until    timestamptz
);
