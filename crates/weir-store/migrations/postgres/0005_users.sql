-- Users of the web UI and REST API: argon2 password hashes and one role each
-- (admin, op, viewer).
CREATE TABLE app_user (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_login BIGINT
);

-- Tokens revoked before they expire (logout): refused until their expiry passes.
CREATE TABLE revoked_token (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
