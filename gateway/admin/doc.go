// Package admin is tresor's admin API: JSON over HTTP on the admin
// listener, beside /health and /metrics, for operators and tenant admins.
// `tresor admin ...` is its client.
//
// # Authentication
//
// Every request is signed with AWS Signature Version 4, exactly as an S3
// request (service "s3", any region the S3 verifier accepts, header
// signing with x-amz-content-sha256 set to the body's SHA-256), with the
// access key of an operator or of a tenant user: any SigV4 library signs
// admin requests, and auth.Verifier checks them, body included, before a
// byte of the body is used. The service name is "s3" because the verifier
// is the S3 one; a signed admin request cannot be replayed as an S3 request
// that does anything (the signature covers the path /admin/v1/..., and an
// operator's key is unknown to the S3 API). Failed signatures are rate
// limited per address, per (address, key) and per key for addresses that
// have not signed with it recently (auth.Limiter), as on the S3 listener.
//
// # Authorization
//
//	operator        operators and their access keys (a change that would
//	                leave no operator with an active key is refused, 409),
//	                tenants (create, list, show, suspend, resume), global
//	                allowlists (s3, admin, cluster), and, for onboarding and
//	                incident response: creating the admin of a tenant that
//	                has none, listing and deleting a tenant's users, listing,
//	                disabling, enabling and deleting their access keys, the
//	                tenant allowlist and key versions (list and rotate only:
//	                nothing that makes data unreadable or readable again). An
//	                operator cannot add a user to a tenant that has an admin,
//	                change roles, or create an access key for an existing
//	                user, so it cannot give itself a way into a tenant's data
//	                unseen (deleting a tenant's admins to onboard a new one is
//	                destructive, visible to the tenant and audited); its own
//	                keys are refused by the S3 API. Also: cluster membership
//	                changes, and the review of the node's login audit with
//	                tenant fields as pseudonyms.
//	tenant admin    its own tenant only: show it, its users, their access
//	                keys (including new ones) and per-bucket grants, its
//	                allowlist, its login audit review (in clear), and its key
//	                versions' whole lifecycle: rotate, disable, enable,
//	                schedule-destroy, cancel-destroy, destroy. Whether the
//	                tenant's data stays readable, and its crypto-shredding
//	                (the GDPR erasure tool, irreversible), are the tenant's
//	                decisions alone: see keyVersionChange in routes.go.
//	writer, reader  nothing here (403).
//
// Creating a user also creates its first access key and answers its secret
// once: that is how an operator onboards a tenant's first admin. Every user
// and key a tenant has is visible to its admins.
//
// A tenant admin who names another tenant gets 404 NotFound, exactly as for
// a tenant that does not exist: tenants cannot probe each other.
//
// # Endpoints
//
// All under /admin/v1; {tenant} is a tenant name, {user} a user name, {key}
// an access key id, {version} a key version id (32 hex digits), {scope} s3,
// admin or cluster.
//
//	GET    /whoami
//	GET    /tenants                               POST /tenants {name, jurisdictions}
//	GET    /tenants/{tenant}
//	POST   /tenants/{tenant}/suspend              POST /tenants/{tenant}/resume
//	GET    /tenants/{tenant}/users                POST /tenants/{tenant}/users {name, role, expires}
//	GET    /tenants/{tenant}/users/{user}         DELETE /tenants/{tenant}/users/{user}
//	PUT    /tenants/{tenant}/users/{user}/role {role}
//	GET    /tenants/{tenant}/users/{user}/keys    POST /tenants/{tenant}/users/{user}/keys {expires}
//	POST   /tenants/{tenant}/users/{user}/keys/{key}/disable   .../enable
//	DELETE /tenants/{tenant}/users/{user}/keys/{key}
//	GET    /tenants/{tenant}/allowlist            PUT {cidrs} / DELETE
//	GET    /tenants/{tenant}/key-versions         POST /tenants/{tenant}/key-versions/rotate
//	POST   /tenants/{tenant}/key-versions/{version}/disable          .../enable
//	POST   /tenants/{tenant}/key-versions/{version}/schedule-destroy {grace}
//	POST   /tenants/{tenant}/key-versions/{version}/cancel-destroy   .../destroy
//	GET    /operators                             POST /operators {name}
//	DELETE /operators/{user}
//	GET    /operators/{user}/keys                 POST /operators/{user}/keys {expires}
//	POST   /operators/{user}/keys/{key}/disable   .../enable
//	DELETE /operators/{user}/keys/{key}
//	PUT    /tenants/{tenant}/users/{user}/grants/{bucket} {role}
//	DELETE /tenants/{tenant}/users/{user}/grants/{bucket}   DELETE .../grants (all)
//	GET    /tenants/{tenant}/audit/review         GET /audit/review (operators)
//	                                              ?since=24h&max-failures-per-key=N...
//	POST   /cluster/promote {node}                POST /cluster/remove {node}
//	POST   /cluster/transfer-leadership {node}    (node optional)
//	GET    /allowlists                            (every scope that has a list)
//	GET    /allowlists/{scope}                    PUT {cidrs} / DELETE
//
// Key version changes answer the version as it is afterwards. The keystore
// enforces the lifecycle (keystore.KeyState): the active version cannot be
// disabled (rotate first), only a disabled version can be scheduled, only a
// scheduled one whose time has come can be destroyed; anything else is 409
// InvalidState. Grace is a Go duration, 24h (keystore.MinDestroyGrace) by
// default and at least; less is 400 InvalidArgument.
//
// Times are RFC 3339. Errors are {"code": ..., "message": ...} with the
// HTTP status of the code (errors.go). Mutations are recorded in the login
// audit (kind admin_action) before they are made; if the audit cannot take
// the record the request fails with 503 and nothing changes.
//
// The admin listener is plain HTTP on loopback by default: put it behind
// TLS (or keep it on loopback and a trusted network) before exposing it,
// since create answers carry secrets.
package admin
