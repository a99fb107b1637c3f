-- changelens schema v9: what a deploy's source says of it.
--
-- deployment_events gains rework: "hotfix" or "revert" when the CI span or
-- webhook that reported the deployment marked it so (eventspan.AttrRework),
-- else "". DORA's deployment rework rate counts such deployments with the
-- rollbacks and fix-forwards the query side recognises itself
-- (docs/dora.md). Rows written before this version read as "": no mark.
-- row_hash is left as it is: a mark never differs between two rows of one
-- deployment, which come from the same report.
--
-- One ALTER, repeatable as v8's (schema.go treats "column already exists"
-- as done).

ALTER TABLE {{local "deployment_events"}}{{onCluster}} ADD COLUMN rework {{lcString}} DEFAULT '';
{{- if clustered}}
-- As v8: the Distributed table is re-created over the altered local table.
DROP TABLE IF EXISTS {{name "deployment_events"}}{{onCluster}};
{{distributed "deployment_events" unitKey}};
{{- end}}
