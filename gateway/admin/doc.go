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
//	                incident response: creating a tenant's first admin, once
//	                (below), listing and deleting a tenant's users, listing,
//	                disabling and deleting their access keys, showing the
//	                tenant's recovery key id, the tenant allowlist and key
//	                versions (list and rotate only: nothing that makes data
//	                unreadable or readable again). Also: cluster membership
//	                changes, and the review of the node's login audit with
//	                tenant fields as pseudonyms.
//	tenant admin    its own tenant only: show it, its users, their access
//	                keys (including new ones) and per-bucket grants, its
//	                allowlist, its login audit review (in clear), its
//	                recovery key (show, rotate), and its key versions'
//	                whole lifecycle: rotate, disable, enable,
//	                schedule-destroy, cancel-destroy, destroy. Whether the
//	                tenant's data stays readable, and its crypto-shredding
//	                (the GDPR erasure tool, irreversible), are the tenant's
//	                decisions alone: see keyVersionChange in routes.go.
//	recovery key    its own tenant's recovery only (below).
//	writer, reader  nothing here (403).
//
// # Operators never hold a tenant's key
//
// The operator processes a tenant's data on its behalf and never reads it
// (GDPR Art. 28). Through this API it could read it only with a working
// access key of the tenant, so no endpoint gives an operator one
// (onboarding.go): an operator cannot add a user or a key to a tenant,
// enable a disabled key, change a role or a grant, rotate the recovery key
// or recover a tenant (each 403 AccessDenied, with a message that says
// why). The one exception is made safe:
//
//   - An operator creates a tenant's first admin (POST /tenants with admin,
//     or POST /tenants/{tenant}/users) once: never on a tenant that has had
//     an admin, has a user or owns a bucket (keystore.CreateFirstAdmin
//     enforces it in the replicated command). An operator who deletes a
//     tenant's admins locks the tenant out, visibly, but cannot get in.
//   - It gives the future admin's public key (`tresor admin keygen`, HPKE
//     with MLKEM768-X25519, sealed.go), and the answer carries the admin's
//     access key and the tenant's recovery key sealed to it only: the
//     operator relays a ciphertext it cannot open (`tresor admin
//     open-credentials` opens it on the tenant's side).
//   - Without a public key the onboarding is refused, unless
//     operator_is_tenant says the operator is the tenant too (its own
//     machine, a test); the secrets then come in clear, a record of kind
//     admin_action, operation first-admin-secret-to-operator, goes to the
//     tenant's own login audit first, and the node logs a warning. `tresor
//     serve`'s first start keeps creating the default tenant's admin in
//     clear into <data-dir>/credentials (and its recovery key into
//     <data-dir>/recovery): whoever runs serve holds the root key anyway.
//
// A tenant that lost every admin with a usable access key recovers on its
// own: its recovery key, a SigV4 credential issued with its first admin
// and known to the tenant alone (the keystore keeps it sealed under the
// storage key, as SigV4 needs), signs POST /tenants/{tenant}/recover with
// the new admin's name and public key. The answer is sealed to that key,
// carries the tenant's next recovery key, and the used one stops working,
// so a relayed or replayed request gives nobody anything. While an admin
// of the tenant has a usable key, recovery is refused (409): the admins
// manage the team; an operator may disable or delete the keys of admins
// who are gone, at the tenant's request. The recovery key signs nothing
// else here (403) and is unknown to the S3 API. Tenants created before
// recovery keys get one when an admin rotates it (POST
// /tenants/{tenant}/recovery-key).
//
// Creating a user also creates its first access key and answers its secret
// once, in clear to a tenant admin, or sealed to public_key if the request
// gives one. Every user and key a tenant has is visible to its admins.
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
//	GET    /tenants                               POST /tenants {name, jurisdictions, admin}
//	GET    /tenants/{tenant}
//	POST   /tenants/{tenant}/suspend              POST /tenants/{tenant}/resume
//	GET    /tenants/{tenant}/users                POST /tenants/{tenant}/users {name, role, expires,
//	                                                   public_key, operator_is_tenant}
//	GET    /tenants/{tenant}/recovery-key         POST /tenants/{tenant}/recovery-key {public_key}
//	POST   /tenants/{tenant}/recover {name, public_key, expires}   (signed with the recovery key)
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
