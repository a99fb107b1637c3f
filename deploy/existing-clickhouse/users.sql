-- Users for changelens on ClickHouse 20.5+ (SQL-driven access control).
-- The collector writes (and creates the schema when create_schema is true);
-- the API only reads.
CREATE DATABASE IF NOT EXISTS changelens;

CREATE USER IF NOT EXISTS changelens_writer IDENTIFIED WITH sha256_password BY 'change-me';
GRANT CREATE TABLE, CREATE VIEW, DROP TABLE, ALTER, INSERT, SELECT ON changelens.* TO changelens_writer;

CREATE USER IF NOT EXISTS changelens_reader IDENTIFIED WITH sha256_password BY 'change-me-too'
    SETTINGS readonly = 2;   -- SELECT and per-query settings (max_execution_time) only
GRANT SELECT ON changelens.* TO changelens_reader;

-- On servers without SQL users (18.16), define both in users.xml instead; the
-- reader gets a profile with <readonly>2</readonly> (see deploy/local/clickhouse-users.xml).
