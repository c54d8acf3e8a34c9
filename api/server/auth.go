package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/batonhq/baton/api"
)

// Role is what a token may do. Each role includes the ones below it.
type Role uint8

// Roles.
const (
	// RoleRead may read everything: GET endpoints, the audit log, status.
	RoleRead Role = 1 + iota
	// RoleWorker may also register, heartbeat, leave and report drains,
	// activations, checkpoints and releases.
	RoleWorker
	// RoleOperator may do everything: declare and remove partitions, move,
	// cordon, pin, pause, join and remove nodes.
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

// Token is one accepted bearer token.
type Token struct {
	Name   string `json:"name"`
	Role   Role   `json:"-"`
	Secret string `json:"token"`
}

// ParseToken parses "role:secret" or "name:role:secret".
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
		return Token{}, fmt.Errorf("server: token %q: want role:secret or name:role:secret", redact(s))
	}
	r, err := ParseRole(role)
	if err != nil {
		return Token{}, err
	}
	t.Role = r
	return t, nil
}

// LoadTokens reads a JSON token file: {"tokens": [{"name": "ci", "role":
// "operator", "token": "..."}]}.
func LoadTokens(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: token file: %w", err)
	}
	var f struct {
		Tokens []struct {
			Name  string `json:"name"`
			Role  string `json:"role"`
			Token string `json:"token"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("server: token file %s: %w", path, err)
	}
	out := make([]Token, 0, len(f.Tokens))
	for i, t := range f.Tokens {
		r, err := ParseRole(t.Role)
		if err != nil {
			return nil, fmt.Errorf("server: token file %s: tokens[%d]: %w", path, i, err)
		}
		out = append(out, Token{Name: t.Name, Role: r, Secret: t.Token})
	}
	return out, nil
}

func redact(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i+1] + "…"
	}
	return "…"
}

// authenticator checks bearer tokens. Tokens are compared by SHA-256 digest in
// constant time, so neither a map lookup nor an early exit leaks a secret.
type authenticator struct {
	tokens []hashedToken
}

type hashedToken struct {
	name   string
	role   Role
	digest [32]byte
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		a.tokens = append(a.tokens, hashedToken{name: t.Name, role: t.Role, digest: sha256.Sum256([]byte(t.Secret))})
	}
	return a
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// check returns the caller's name, or an API error if the request lacks a token
// or its role is below need.
func (a *authenticator) check(r *http.Request, need Role) (string, *api.Error) {
	if !a.enabled() {
		return "anonymous", nil
	}
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return "", api.Errorf(api.CodeUnauthorized, "missing bearer token")
	}
	d := sha256.Sum256([]byte(secret))
	var match *hashedToken
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			match = &a.tokens[i]
		}
	}
	if match == nil {
		return "", api.Errorf(api.CodeUnauthorized, "unknown bearer token")
	}
	if match.role < need {
		return "", api.Errorf(api.CodeForbidden, "token %s has role %s; this needs %s", match.name, match.role, need)
	}
	return match.name, nil
}
