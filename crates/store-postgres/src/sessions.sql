CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_creator ON sessions (creator);
CREATE TABLE webauthn_credentials (cred_id TEXT PRIMARY KEY, user_id TEXT NOT NULL)
