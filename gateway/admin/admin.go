package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// maxBody bounds a request body: the largest is an allowlist of
// keystore.MaxAllowlistPrefixes prefixes.
const maxBody = 128 << 10

// Auditor receives the admin API's audit records. *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) error
}

// Config configures a Handler.
type Config struct {
	// Region is the region requests are signed for (us-east-1 is accepted
	// too, see auth.Config).
	Region string
	// Logger receives one line per failed request; nil discards.
	Logger *slog.Logger
	// Auditor, if set, receives every authentication result and every
	// change; a change it cannot record is refused.
	Auditor Auditor
	// Allowlists, if set, is told to forget its cache when this node
	// changes an allowlist, so the change applies here at once.
	Allowlists *auth.Allowlists
	// Limiter rate-limits failed authentications; nil means one with
	// auth.DefaultLimiterConfig.
	Limiter *auth.Limiter
	// ClientIP returns a request's client address; nil means its direct
	// peer (auth.RemoteIP).
	ClientIP func(r *http.Request) netip.Addr
	// Clock is the verifier's and expiry checks' clock; nil means time.Now.
	Clock func() time.Time
	// AuditDir is this node's login audit log, for reviews (review.go);
	// empty answers them NotImplemented. AuditSystemKey opens the node's
	// records that belong to no tenant, in an operator's review.
	AuditDir       string
	AuditSystemKey []byte
	// Cluster, if set, takes membership changes (cluster.go).
	Cluster Cluster
}

// Handler serves the admin API.
type Handler struct {
	cfg      Config
	store    *keystore.Store
	verifier *auth.Verifier
	limiter  *auth.Limiter
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns the admin API over store.
func New(store *keystore.Store, cfg Config) (*Handler, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = auth.RemoteIP
	}
	acfg := auth.DefaultConfig(cfg.Region)
	acfg.Clock = cfg.Clock
	v, err := auth.NewVerifier(Secrets(store, cfg.Clock), acfg)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, store: store, verifier: v, limiter: cfg.Limiter, log: cfg.Logger, mux: http.NewServeMux()}
	if h.limiter == nil {
		h.limiter = auth.NewLimiter(auth.DefaultLimiterConfig())
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.routes()
	return h, nil
}

// Prefix is where the admin API is mounted.
const Prefix = "/admin/v1/"

// caller is an authenticated admin request's principal.
type caller struct {
	auth.Principal
	accessKey string
	ip        netip.Addr
}

func (c caller) operator() bool {
	return keystore.ID(c.Tenant) == keystore.OperatorScope && keystore.Role(c.Role) == keystore.RoleOperator
}

// call is one request's context for an endpoint.
type call struct {
	h    *Handler
	r    *http.Request
	ctx  context.Context
	who  caller
	body []byte
	id   string
}

// endpoint serves one route; action names it in the audit ("" for reads).
// recovery admits a tenant's recovery key (onboarding.go).
type endpoint struct {
	action   string
	recovery bool
	serve    func(c *call) (int, any, error)
}

func (h *Handler) handle(pattern, action string, fn func(c *call) (int, any, error)) {
	h.mux.Handle(pattern, h.wrap(endpoint{action: action, serve: fn}))
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) wrap(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{h: h, r: r, id: newRequestID()}
		w.Header().Set("X-Request-Id", c.id)
		status, out, err := h.serve(c, e)
		if err != nil {
			ae := toError(err)
			if ae.Status >= 500 {
				h.log.Error("admin request failed", "request_id", c.id, "method", r.Method, "path", r.URL.Path, "error", err)
			}
			writeJSON(w, ae.Status, ae)
			return
		}
		if out == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, out)
	})
}

func (h *Handler) serve(c *call, e endpoint) (int, any, error) {
	r := c.r
	ip := h.cfg.ClientIP(r)
	claimed := auth.ClaimedAccessKeyID(r)
	if ok, _ := h.limiter.Allow(ip, claimed); !ok {
		if err := h.audit(r.Context(), c, audit.RateLimited, "rate limited", claimed, ip, nil, true); err != nil {
			return 0, nil, err
		}
		return 0, nil, apiError(http.StatusTooManyRequests, "SlowDown", "Too many failed authentications; retry later.")
	}
	res, err := h.verifier.Verify(r.Context(), r)
	switch { // as the S3 listener does (gateway/authn.go)
	case errors.Is(err, auth.ErrSignatureDoesNotMatch):
		h.limiter.Failure(ip, claimed)
	case errors.Is(err, auth.ErrInvalidAccessKeyID):
		h.limiter.Failure(ip, "") // no such key, no secret to guess: the address pays
	}
	if err != nil {
		var claimant *auth.Principal
		if p, ok := auth.ClaimantOf(err); ok {
			claimant = &p // the key's tenant sees its failed logins
		}
		if aerr := h.audit(r.Context(), c, audit.AuthFailure, toError(err).Code, claimed, ip, claimant, auth.Unproven(err)); aerr != nil {
			return 0, nil, aerr
		}
		return 0, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	res.Body.Close()
	if err != nil {
		return 0, nil, err // a body that does not verify: an *auth.Error
	}
	if len(body) > maxBody {
		return 0, nil, errTooLarge
	}
	if !res.Presigned { // a presigned URL proves only that it was handed out
		h.limiter.Success(ip, res.AccessKeyID)
	}
	c.body = body
	c.who = caller{Principal: res.Principal, accessKey: res.AccessKeyID, ip: ip}
	// Admin reads see the latest committed state, not a possibly stale
	// local replica.
	c.ctx = keystore.WithReadLevel(r.Context(), keystore.ReadLinearizable)
	if !c.who.operator() && keystore.Role(c.who.Role) != keystore.RoleAdmin && !(e.recovery && c.who.recovery()) {
		// Writers and readers have no business here; record that they
		// tried.
		if err := h.audit(r.Context(), c, audit.AuthFailure, "AccessDenied", res.AccessKeyID, ip, &res.Principal, false); err != nil {
			return 0, nil, err
		}
		return 0, nil, errForbidden
	}
	kind, op := audit.AuthSuccess, r.Method+" "+r.Pattern
	if e.action != "" {
		kind, op = audit.AdminAction, e.action
	}
	rec := audit.Record{Kind: kind, Operation: op}
	if err := h.auditRecord(r.Context(), c, rec, res.AccessKeyID, ip, &res.Principal); err != nil {
		return 0, nil, err
	}
	return e.serve(c)
}

// audit appends an authentication result; aggregate marks a refusal that
// cost its sender nothing, as on the S3 listener (gateway/authn.go).
func (h *Handler) audit(ctx context.Context, c *call, kind audit.Kind, reason, key string, ip netip.Addr, p *auth.Principal, aggregate bool) error {
	return h.auditRecord(ctx, c, audit.Record{Kind: kind, Reason: reason, Operation: "admin", Aggregate: aggregate}, key, ip, p)
}

func (h *Handler) auditRecord(ctx context.Context, c *call, rec audit.Record, key string, ip netip.Addr, p *auth.Principal) error {
	if h.cfg.Auditor == nil {
		return nil
	}
	rec.AccessKeyID, rec.RequestID = key, c.id
	if ip.IsValid() {
		rec.SourceAddr = ip.String()
	}
	if p != nil {
		rec.Tenant, rec.User = p.Tenant, keystore.ID(p.User).String()
	}
	if err := h.cfg.Auditor.Append(ctx, rec); err != nil {
		h.log.Error("audit record not written; refusing the admin request", "request_id", c.id, "error", err)
		return apiError(http.StatusServiceUnavailable, "AuditUnavailable", "The login audit is unavailable; the request was not processed.")
	}
	return nil
}

// decode parses the request body into v, refusing unknown fields.
func (c *call) decode(v any) error {
	if len(c.body) == 0 {
		return apiError(http.StatusBadRequest, "InvalidArgument", "A JSON body is required.")
	}
	dec := json.NewDecoder(bytesReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("Malformed JSON body: %v", err))
	}
	return nil
}

// requireOperator refuses everyone but operators.
func (c *call) requireOperator() error {
	if !c.who.operator() {
		return errForbidden
	}
	return nil
}

// tenant resolves the {tenant} path value for the caller: an operator sees
// every tenant, a tenant admin its own and no other (another tenant is
// reported exactly as a missing one).
func (c *call) tenant() (keystore.Tenant, error) {
	t, err := c.h.store.TenantByName(c.ctx, c.r.PathValue("tenant"))
	if err != nil {
		return keystore.Tenant{}, err
	}
	if !c.who.operator() && t.ID != keystore.ID(c.who.Tenant) {
		return keystore.Tenant{}, errNotFound
	}
	return t, nil
}

// user resolves {tenant} and {user}.
func (c *call) user() (keystore.Tenant, keystore.User, error) {
	t, err := c.tenant()
	if err != nil {
		return t, keystore.User{}, err
	}
	u, err := c.h.store.UserByName(c.ctx, t.ID, c.r.PathValue("user"))
	return t, u, err
}

// accessKey resolves {tenant}, {user} and {key}: the key must be the
// user's.
func (c *call) accessKey() (keystore.User, keystore.AccessKey, error) {
	_, u, err := c.user()
	if err != nil {
		return u, keystore.AccessKey{}, err
	}
	keys, err := c.h.store.AccessKeys(c.ctx, u.ID)
	if err != nil {
		return u, keystore.AccessKey{}, err
	}
	i := slices.IndexFunc(keys, func(k keystore.AccessKey) bool { return k.ID == c.r.PathValue("key") })
	if i < 0 {
		return u, keystore.AccessKey{}, errNotFound
	}
	return u, keys[i], nil
}
