"""The REST API (/api/v1/): the kit every resource uses (team-scoped base view, caller access
and API-key authentication, problem details, idempotency, throttling, schema) and the views of
every resource. An edge: it parses, checks the caller, calls one service and renders; every
write goes through the same services as the socket and the pages."""
