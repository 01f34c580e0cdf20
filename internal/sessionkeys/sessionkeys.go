// Package sessionkeys names the Redis keys of login sessions, for the api
// that writes them and for the workers that prune them (retention) and end
// them (erasure): one place, so that a change of name cannot leave a
// worker looking for keys nobody writes.
package sessionkeys

import "github.com/google/uuid"

// Session is a session family's key: its current refresh secret's hash,
// its user and when it opened.
func Session(prefix, family string) string { return prefix + "session:" + family }

// UserSessions is the set of a user's session families.
func UserSessions(prefix string, user uuid.UUID) string {
	return prefix + "user-sessions:" + user.String()
}

// UserSessionsPattern matches every user's set, for SCAN.
func UserSessionsPattern(prefix string) string { return prefix + "user-sessions:*" }

// RevokedBefore holds the time before which a user's access tokens and
// sessions no longer count ("log out everywhere", a password reset, an
// erasure).
func RevokedBefore(prefix string, user uuid.UUID) string {
	return prefix + "revoked-before:" + user.String()
}
