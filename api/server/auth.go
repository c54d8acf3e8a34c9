package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Role is what a token may do. Each role includes the ones below it.
type Role uint8

// Roles.
const (
	// RoleRead may read everything: GET endpoints, the audit log, status.
	RoleRead Role = 1 + iota
	// RoleWorker may also register, heartbeat, leave and report drains,
	// activations, checkpoints and releases, each only for the one worker
	// its token is bound to.
	RoleWorker
	// RoleOperator may do everything: declare and remove partitions, move,
	// cordon, pin, pause, join and remove nodes, and act for any worker.
	RoleOperator
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWorker:
		return "worker"
	case RoleOperator:
		return "operator"
	}
	return "invalid"
}

// ParseRole parses "read" (or "read-only"), "worker" or "operator".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read", "read-only", "readonly":
		return RoleRead, nil
	case "worker":
		return RoleWorker, nil
	case "operator":
		return RoleOperator, nil
	}
	return 0, fmt.Errorf("server: unknown role %q (read, worker, operator)", s)
}

// Limits of static tokens.
const (
	// MinSecretLen is the shortest accepted token secret, in bytes.
	MinSecretLen = 16
	// MaxTokenNameLen bounds the name of a read or operator token, in bytes.
	// A name goes into the actor of every command the token proposes
	// ("operator:<name>").
	MaxTokenNameLen = 64
)

// Token is one accepted static bearer token.
type Token struct {
	// Name says whose token it is; it becomes the actor of the commands it
	// proposes ("operator:<name>"). 1 to MaxTokenNameLen bytes of letters,
	// digits, '-', '_' and '.'. For a worker token it is the worker id.
	Name string
	// Role is what the token may do.
	Role Role
	// Secret is the bearer secret, at least MinSecretLen bytes.
	Secret string
	// Worker is the worker a RoleWorker token acts for: the token may call
	// the API only as that worker. Required for RoleWorker, empty otherwise.
	Worker fsm.WorkerID
}

// validate reports what is wrong with t.
func (t Token) validate() error {
	var errs []error
	switch {
	case t.Role < RoleRead || t.Role > RoleOperator:
		errs = append(errs, errors.New("invalid role"))
	case t.Role == RoleWorker:
		if err := fsm.CheckWorkerID(t.Worker); err != nil {
			errs = append(errs, fmt.Errorf("a worker token must name its worker: %s", rejectMsg(err)))
		} else if t.Name != string(t.Worker) {
			errs = append(errs, fmt.Errorf("a worker token's name must be its worker id %s", t.Worker))
		}
	default:
		if t.Worker != "" {
			errs = append(errs, fmt.Errorf("only worker tokens name a worker; this one has role %s", t.Role))
		}
		if !validTokenName(t.Name) {
			errs = append(errs, fmt.Errorf("name %q: want 1 to %d bytes of letters, digits, '-', '_' and '.'", clip(t.Name), MaxTokenNameLen))
		}
	}
	if len(t.Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("secret shorter than %d bytes", MinSecretLen))
	}
	if strings.HasPrefix(t.Secret, WorkerTokenPrefix) {
		errs = append(errs, fmt.Errorf("a static secret may not start with %q, the prefix of derived worker tokens", WorkerTokenPrefix))
	}
	return errors.Join(errs...)
}

// validTokenName: 1 to MaxTokenNameLen bytes of the id charset.
func validTokenName(s string) bool {
	return len(s) <= MaxTokenNameLen && fsm.CheckNodeID(s) == nil
}

// ParseToken parses a --token flag: "name:role:secret", or "role:secret" for
// read and operator tokens (named after the role). A worker token must name
// the worker it acts for: "w1:worker:secret".
func ParseToken(s string) (Token, error) {
	parts := strings.SplitN(s, ":", 3)
	var t Token
	var role string
	switch len(parts) {
	case 2:
		role, t.Secret = parts[0], parts[1]
		t.Name = role
	case 3:
		t.Name, role, t.Secret = parts[0], parts[1], parts[2]
	default:
		return Token{}, fmt.Errorf("server: token %q: want name:role:secret or role:secret", redact(s))
	}
	r, err := ParseRole(role)
	if err != nil {
		return Token{}, err
	}
	t.Role = r
	if r == RoleWorker {
		if len(parts) == 2 {
			return Token{}, fmt.Errorf("server: token %q: a worker token must name the worker it acts for: "+
				"write WORKER:worker:SECRET (e.g. w1:worker:…), or derive per-worker tokens with --worker-token-key and 'baton token issue'", redact(s))
		}
		t.Worker = fsm.WorkerID(t.Name)
	}
	if err := t.validate(); err != nil {
		return Token{}, fmt.Errorf("server: token %q: %w", redact(s), err)
	}
	return t, nil
}

// tokenFile is the JSON token file, read under the API's strict JSON rules.
type tokenFile struct {
	Tokens []tokenEntry `json:"tokens"`
}

type tokenEntry struct {
	Name   string       `json:"name,omitempty"`
	Role   string       `json:"role"`
	Token  string       `json:"token"`
	Worker fsm.WorkerID `json:"worker,omitempty"`
}

// LoadTokens reads a JSON token file:
//
//	{"tokens": [
//	  {"name": "ci", "role": "operator", "token": "..."},
//	  {"role": "worker", "worker": "w1", "token": "..."}
//	]}
//
// "worker" is required for role worker (the token acts only for that worker,
// and is named after it) and refused for the others, which need a "name".
// Unknown, duplicate and wrong-case keys are refused.
func LoadTokens(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: token file: %w", err)
	}
	var f tokenFile
	if err := decodeStrict(b, &f); err != nil {
		return nil, fmt.Errorf("server: token file %s: %w", path, err)
	}
	out := make([]Token, 0, len(f.Tokens))
	for i, e := range f.Tokens {
		r, err := ParseRole(e.Role)
		if err != nil {
			return nil, fmt.Errorf("server: token file %s: tokens[%d]: %w", path, i, err)
		}
		t := Token{Name: e.Name, Role: r, Secret: e.Token, Worker: e.Worker}
		if r == RoleWorker && t.Name == "" {
			t.Name = string(t.Worker)
		}
		if r == RoleWorker && e.Worker == "" {
			return nil, fmt.Errorf(`server: token file %s: tokens[%d]: role worker needs "worker": the id of the worker it acts for`, path, i)
		}
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("server: token file %s: tokens[%d]: %w", path, i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func redact(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i+1] + "…"
	}
	return "…"
}

// Derived worker tokens let a cluster admit a new worker without a restart:
// the servers share one key, and a worker's token is the worker id with an
// HMAC of it under that key, which any server recomputes.
const (
	// WorkerTokenPrefix begins every derived worker token:
	// "bwt1.<worker>.<base64url(HMAC-SHA256(key, context+worker))>".
	WorkerTokenPrefix = "bwt1."
	// MinWorkerTokenKeyLen is the shortest accepted worker token key, in
	// bytes (decoded).
	MinWorkerTokenKeyLen = 32
	// workerTokenContext separates these MACs from any other use of the key.
	workerTokenContext = "baton worker token v1\x00"
)

// ErrWorkerTokenKey is wrapped by ParseWorkerTokenKey and WorkerToken for a key
// that is malformed or too short.
var ErrWorkerTokenKey = errors.New("server: invalid worker token key")

// macEncoding encodes the MAC of a derived token. Strict, so that each MAC has
// exactly one spelling and a changed character never verifies.
func macEncoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// WorkerToken derives the bearer token of worker under key (at least
// MinWorkerTokenKeyLen bytes).
func WorkerToken(key []byte, worker fsm.WorkerID) (string, error) {
	if len(key) < MinWorkerTokenKeyLen {
		return "", fmt.Errorf("%w: %d bytes, want at least %d", ErrWorkerTokenKey, len(key), MinWorkerTokenKeyLen)
	}
	if err := fsm.CheckWorkerID(worker); err != nil {
		return "", fmt.Errorf("server: worker token: %w", err)
	}
	return WorkerTokenPrefix + string(worker) + "." + macEncoding().EncodeToString(workerMAC(key, worker)), nil
}

func workerMAC(key []byte, worker fsm.WorkerID) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(workerTokenContext))
	m.Write([]byte(worker))
	return m.Sum(nil)
}

// ParseWorkerTokenKey decodes a worker token key file's content: the key in
// hex (as 'baton token new-key' prints it), surrounding white space ignored,
// at least MinWorkerTokenKeyLen bytes once decoded.
func ParseWorkerTokenKey(b []byte) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: not hex", ErrWorkerTokenKey)
	}
	if len(key) < MinWorkerTokenKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d (make one with 'baton token new-key')", ErrWorkerTokenKey, len(key), MinWorkerTokenKeyLen)
	}
	return key, nil
}

// LoadWorkerTokenKey reads a worker token key file (ParseWorkerTokenKey).
func LoadWorkerTokenKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: worker token key: %w", err)
	}
	key, err := ParseWorkerTokenKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// principal is who a request comes from, as its token says.
type principal struct {
	name   string
	role   Role
	worker fsm.WorkerID // the worker a RoleWorker principal acts for
}

// actFor refuses a worker's token acting for another worker. Operators act for
// any worker.
func (p principal) actFor(w fsm.WorkerID) *api.Error {
	if p.role != RoleWorker || p.worker == w {
		return nil
	}
	return api.Errorf(api.CodeForbidden, "the token of worker %s may not act for worker %s", p.worker, clip(string(w)))
}

// authenticator checks bearer tokens. Static tokens are compared by SHA-256
// digest in constant time, so neither a map lookup nor an early exit leaks a
// secret; derived worker tokens are recomputed and compared in constant time.
type authenticator struct {
	tokens    []hashedToken
	workerKey []byte
}

type hashedToken struct {
	principal
	digest [32]byte
}

func newAuthenticator(tokens []Token, workerKey []byte) *authenticator {
	a := &authenticator{workerKey: workerKey}
	for _, t := range tokens {
		a.tokens = append(a.tokens, hashedToken{
			principal: principal{name: t.Name, role: t.Role, worker: t.Worker},
			digest:    sha256.Sum256([]byte(t.Secret)),
		})
	}
	return a
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 || a.workerKey != nil }

// check returns the caller, or an API error if the request lacks a valid token
// (401) or its role is below need (403). It reads nothing but the headers.
func (a *authenticator) check(r *http.Request, need Role) (principal, *api.Error) {
	if !a.enabled() {
		// No authentication: the caller may do everything.
		return principal{name: "anonymous", role: RoleOperator}, nil
	}
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return principal{}, api.Errorf(api.CodeUnauthorized, "missing bearer token")
	}
	var match *principal
	if a.workerKey != nil && strings.HasPrefix(secret, WorkerTokenPrefix) {
		p, err := a.derived(secret)
		if err != nil {
			return principal{}, err
		}
		match = &p
	} else {
		d := sha256.Sum256([]byte(secret))
		for i := range a.tokens {
			if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
				match = &a.tokens[i].principal
			}
		}
	}
	if match == nil {
		return principal{}, api.Errorf(api.CodeUnauthorized, "unknown bearer token")
	}
	if match.role < need {
		return principal{}, api.Errorf(api.CodeForbidden, "token %s has role %s; this needs %s", match.name, match.role, need)
	}
	return *match, nil
}

// derived verifies a derived worker token.
func (a *authenticator) derived(secret string) (principal, *api.Error) {
	rest := secret[len(WorkerTokenPrefix):]
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return principal{}, api.Errorf(api.CodeUnauthorized, "malformed worker token")
	}
	worker, mac := fsm.WorkerID(rest[:i]), rest[i+1:]
	got, err := macEncoding().DecodeString(mac)
	if err != nil || fsm.CheckWorkerID(worker) != nil {
		return principal{}, api.Errorf(api.CodeUnauthorized, "malformed worker token")
	}
	if !hmac.Equal(got, workerMAC(a.workerKey, worker)) {
		return principal{}, api.Errorf(api.CodeUnauthorized, "unknown bearer token")
	}
	return principal{name: string(worker), role: RoleWorker, worker: worker}, nil
}
