package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// authenticate verifies the request's signature from its headers, before
// any byte of the body is read, and fills in the caller and the verified
// body.
//
// Failed signatures are rate limited per source address, per (address,
// access key) pair, and per key for addresses that have not signed with it
// recently (auth.Limiter): while a budget is spent, requests are answered
// SlowDown before their signature is computed, so guessing a secret gets
// no answer, other keys and addresses are not slowed, and the key's owner
// is still served from the addresses it signs from.
//
// Every result, success or failure with its reason, and every refusal by
// the limiter is appended to the login audit before the request goes on;
// a request whose audit record cannot be written is refused (fail closed).
// Refusals that cost their sender nothing are aggregated per source
// address past a few a minute (audit.AggregationConfig).
func (s *Server) authenticate(ctx context.Context, r *http.Request, rq *request) error {
	addr := auth.ClientIP(r, remoteAddr(r), s.cfg.TrustedProxies)
	claimed := auth.ClaimedAccessKeyID(r)
	if err := s.checkAllowlist(ctx, rq, auth.ScopeS3, "s3 allowlist", claimed, addr, nil); err != nil {
		return err
	}
	if ok, wait := s.limiter.Allow(addr, claimed); !ok {
		rq.retryAfter = wait
		if err := s.auditAuth(ctx, rq, audit.RateLimited, "rate limited", claimed, addr, nil, true); err != nil {
			return err
		}
		return s3Error("SlowDown", "Too many failed authentications; retry later.")
	}
	res, err := s.verifier.Verify(ctx, r)
	switch {
	case errors.Is(err, auth.ErrSignatureDoesNotMatch):
		s.limiter.Failure(addr, claimed)
	case errors.Is(err, auth.ErrInvalidAccessKeyID):
		s.limiter.Failure(addr, "") // no such key, no secret to guess: the address pays
	}
	if err != nil {
		var claimant *auth.Principal
		if p, ok := auth.ClaimantOf(err); ok {
			claimant = &p // the key's tenant sees its failed logins
		}
		if aerr := s.auditAuth(ctx, rq, audit.AuthFailure, toAPIError(err).Code, claimed, addr, claimant, auth.Unproven(err)); aerr != nil {
			return aerr
		}
		return err
	}
	if err := s.checkAllowlist(ctx, rq, auth.TenantScope(res.Principal.Tenant), "tenant allowlist", res.AccessKeyID, addr, &res.Principal); err != nil {
		res.Body.Close()
		return err
	}
	if !res.Presigned { // a presigned URL proves only that it was handed out
		s.limiter.Success(addr, res.AccessKeyID)
	}
	if err := s.auditAuth(ctx, rq, audit.AuthSuccess, "", res.AccessKeyID, addr, &res.Principal, false); err != nil {
		return err
	}
	rq.caller = res.Principal
	rq.accessKey = res.AccessKeyID
	rq.auth = res
	rq.body = res.Body
	rq.length = res.DecodedLength
	return nil
}

// checkAllowlist applies the allowlist of scope to addr: AccessDenied (and
// an audit record) when the list says no; ServiceUnavailable, which clients
// retry, when the list cannot be read now (a node past its max-staleness):
// closed either way, but only a real denial is reported as one.
func (s *Server) checkAllowlist(ctx context.Context, rq *request, scope, reason, accessKey string, addr netip.Addr, p *auth.Principal) error {
	if s.cfg.Allowlists == nil {
		return nil
	}
	ok, err := s.cfg.Allowlists.Check(ctx, scope, addr)
	if err != nil {
		s.log.Warn("allowlist unreadable; refusing the request", "request_id", rq.id, "error", err)
		return s3Error("ServiceUnavailable", "Access rules cannot be read on this node right now; retry.")
	}
	if !ok {
		// Before authentication (p nil) a denial proves nothing: aggregated.
		if err := s.auditAuth(ctx, rq, audit.AllowlistDeny, reason, accessKey, addr, p, p == nil); err != nil {
			return err
		}
		return s3Error("AccessDenied")
	}
	return nil
}

// Auditor receives the login audit's records. *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) error
}

// auditAuth appends one authentication result. For a failure the tenant
// and user of the claimed key, if it exists, are looked up so that the
// tenant's review sees attacks on its keys. aggregate marks a refusal
// that cost its sender nothing (no signature checked, or the limiter's or
// the listener allowlist's refusal): the log may count it instead of
// writing it (audit.Record.Aggregate), so that a flood of them cannot fill
// the disk; the request is refused either way.
func (s *Server) auditAuth(ctx context.Context, rq *request, kind audit.Kind, reason, accessKey string, addr netip.Addr, p *auth.Principal, aggregate bool) error {
	if s.auditor == nil {
		return nil
	}
	rec := audit.Record{
		Kind: kind, Reason: reason, Operation: string(rq.route.Op), AccessKeyID: accessKey,
		Bucket: rq.bucket, RequestID: rq.id, Aggregate: aggregate,
	}
	if addr.IsValid() {
		rec.SourceAddr = addr.String()
	}
	switch {
	case p != nil:
		rec.Tenant, rec.User = p.Tenant, keystore.ID(p.User).String()
	case accessKey != "":
		// A disabled or expired key comes back with its owner and an error.
		if ak, _ := s.store.AccessKey(ctx, accessKey); !ak.Tenant.IsZero() {
			rec.Tenant, rec.User = ak.Tenant, ak.User.String()
		}
	}
	if err := s.auditor.Append(ctx, rec); err != nil {
		s.log.Error("audit record not written; refusing the request", "request_id", rq.id, "error", err)
		return s3Error("ServiceUnavailable", "The login audit is unavailable; the request was not processed.")
	}
	return nil
}

// remoteAddr is the request's peer address (unmapped, without the port),
// or the zero Addr if it cannot be read.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// echoChecksums sets the x-amz-checksum-* digests the client sent or asked
// for, computed over the plaintext it sent (never the backend's checksums
// of ciphertext).
func (rq *request) echoChecksums(h http.Header) {
	if rq.auth == nil {
		return
	}
	for _, c := range rq.auth.Checksums() {
		h.Set(c.Algorithm.Header(), c.String())
	}
}

// keystoreSecrets gives auth the access keys kept in the keystore.
type keystoreSecrets struct {
	store *keystore.Store
	now   func() time.Time
}

// Secrets returns the auth.Secrets of the keystore's access keys. Disabled
// and expired keys, and keys of suspended tenants, are unknown to auth, so
// they fail exactly like a wrong key id.
func Secrets(store *keystore.Store) auth.Secrets {
	return keystoreSecrets{store: store, now: time.Now}
}

func (k keystoreSecrets) Secret(ctx context.Context, id string) ([]byte, auth.Principal, error) {
	ak, err := k.store.AccessKey(ctx, id)
	switch {
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrDisabled), errors.Is(err, keystore.ErrExpired):
		return nil, auth.Principal{}, fmt.Errorf("%w: %w", auth.ErrUnknownAccessKey, err)
	case err != nil:
		return nil, auth.Principal{}, err
	}
	if ak.State != keystore.AccessKeyActive || (!ak.Expires.IsZero() && !k.now().Before(ak.Expires)) || ak.Secret == "" {
		return nil, auth.Principal{}, auth.ErrUnknownAccessKey
	}
	p := auth.Principal{Tenant: ak.Tenant, User: ak.User, Role: string(ak.Role), Confined: ak.Confined}
	if len(ak.Grants) > 0 {
		p.Grants = make(map[string]string, len(ak.Grants))
		for b, r := range ak.Grants {
			p.Grants[b] = string(r)
		}
	}
	return []byte(ak.Secret), p, nil
}
