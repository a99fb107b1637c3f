-- changelens's users on a cluster of ClickHouse 20.5+ (SQL access control),
-- run once through any node. On older servers use users.d/changelens.xml.
CREATE DATABASE IF NOT EXISTS changelens ON CLUSTER changelens;

-- The collectors: create the schema ON CLUSTER, insert, drop expired partitions.
CREATE USER IF NOT EXISTS changelens_writer ON CLUSTER changelens
    IDENTIFIED WITH sha256_password BY 'change-me';
GRANT ON CLUSTER changelens CREATE TABLE, CREATE VIEW, DROP TABLE, ALTER, INSERT, SELECT, SYSTEM SYNC REPLICA
    ON changelens.* TO changelens_writer;
-- Distributed DDL and Distributed tables:
GRANT ON CLUSTER changelens CLUSTER, REMOTE ON *.* TO changelens_writer;

-- changelens-api: reads the Distributed tables.
CREATE USER IF NOT EXISTS changelens_reader ON CLUSTER changelens
    IDENTIFIED WITH sha256_password BY 'change-me-too'
    SETTINGS readonly = 2;   -- SELECT and per-query settings (max_execution_time) only
GRANT ON CLUSTER changelens SELECT ON changelens.* TO changelens_reader;
GRANT ON CLUSTER changelens REMOTE ON *.* TO changelens_reader;
