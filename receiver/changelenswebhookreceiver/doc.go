// Package changelenswebhookreceiver receives deployment webhooks — GitHub's
// deployment_status, Argo CD notifications, CDEvents service events — and
// passes each deployment on as one CI/CD deploy span, the span the changelens
// processor turns into a deployment event; and incident webhooks — PagerDuty
// v3, Prometheus Alertmanager, CDEvents incident events — passing each
// incident's opening or resolution on as one incident event
// (eventspan.AppendIncident); and GitHub's push webhooks, passing each pushed
// commit on as one commit event (eventspan.AppendCommit), the commit times
// of GitHub deployments' lead time. Senders that cannot emit OTLP themselves
// thus reach changelens without a step of their own.
//
// Every span is made of the delivery alone, its IDs derived from the source's
// own deployment or incident ID, so a webhook redelivered any number of
// times, through any number of collectors, gives the identical span and one
// stored row.
package changelenswebhookreceiver
