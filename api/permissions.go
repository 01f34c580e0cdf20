package api

import (
	"fmt"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/carebook/carebook/models"
)

// The permission matrix: which roles may use each signed-in route. It is
// the only place roles are checked (authorize, in front of every such
// route); what a permitted role then sees is narrowed per row (patients
// their own, doctors their patients, staff their facility; see
// appointments.go and labs.go), and row security keeps every query inside
// the caller's tenant. The README's table is this matrix, and a test holds
// the two together.
var (
	roleEveryone = []models.Role{models.RolePatient, models.RoleDoctor, models.RoleStaff, models.RoleBilling, models.RoleAdmin}

	// Appointments: patients book and move their own, the desk anyone's;
	// doctors may cancel (a sick day), not book.
	roleBook       = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}
	roleCancel     = []models.Role{models.RolePatient, models.RoleDoctor, models.RoleStaff, models.RoleAdmin}
	roleReschedule = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}
	roleCheckIn    = []models.Role{models.RoleStaff, models.RoleAdmin}
	roleSchedule   = []models.Role{models.RoleDoctor, models.RoleStaff, models.RoleAdmin}

	// Money: billing staff and the tenant's admins. Everyone else is
	// refused before any row is read, so a patient cannot even learn
	// whether a payment ID exists.
	roleBilling = []models.Role{models.RoleBilling, models.RoleAdmin}

	// Consent: patients record and read their own; staff and admins record
	// what a patient said at the desk and read it.
	roleConsent = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}

	// Break-glass: doctors open a record in an emergency; admins (the
	// privacy officer) review every such access.
	roleBreakGlass = []models.Role{models.RoleDoctor}

	// The audit log: the tenant's admins (its privacy officer and
	// auditors log in as admins).
	roleAudit = []models.Role{models.RoleAdmin}

	// Lab results: every role but billing reads them (narrowed per row);
	// doctors review; doctors and admins release; staff read the raw
	// message and work the unmatched queue.
	roleLabRead    = []models.Role{models.RolePatient, models.RoleDoctor, models.RoleStaff, models.RoleAdmin}
	roleLabReview  = []models.Role{models.RoleDoctor}
	roleLabRelease = []models.Role{models.RoleDoctor, models.RoleAdmin}
	roleLabRaw     = []models.Role{models.RoleStaff, models.RoleAdmin}
	roleLabQueue   = []models.Role{models.RoleStaff, models.RoleAdmin}

	// MFA: everyone manages their own; only patients, for whom it is
	// optional, may turn it off.
	roleMFAOptional = []models.Role{models.RolePatient}
	// Care assignments and proxy relations (care.go): the desk and admins
	// make and end them; doctors list their own assignments, patients the
	// relations they are either side of.
	roleCareManage  = []models.Role{models.RoleStaff, models.RoleAdmin}
	roleCareList    = []models.Role{models.RoleDoctor, models.RoleStaff, models.RoleAdmin}
	roleProxyManage = []models.Role{models.RoleStaff, models.RoleAdmin}
	roleProxyList   = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}
	// Encryption keys: the tenant's admins start a rotation of its data
	// key; nobody reads key material through the API.
	roleKeys = []models.Role{models.RoleAdmin}
	// Single sign-on: the tenant's admins set its identity provider.
	roleSSO = []models.Role{models.RoleAdmin}
	// Data subject requests: patients export their own data, staff and
	// admins anyone's (a request made at the desk or in writing); only
	// admins (the privacy officer) erase, place and release legal holds
	// and set retention.
	roleDSRExport = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}
	roleDSRAdmin  = []models.Role{models.RoleAdmin}
	// Clinical notes (notes.go): doctors write, edit their drafts, sign
	// and amend; patients (and proxies) read signed notes. Staff, billing
	// and admins see no note at all: minimum necessary.
	roleNoteWrite = []models.Role{models.RoleDoctor}
	roleNoteRead  = []models.Role{models.RolePatient, models.RoleDoctor}
	// Messaging (messages.go): a patient (or their proxy) and their
	// doctor, nobody else. Staff, billing and admins read no message: the
	// desk's work needs none, and a privacy officer sees who read and
	// wrote what in the audit log. Only the doctor closes a thread.
	roleMessages     = []models.Role{models.RolePatient, models.RoleDoctor}
	roleMessageClose = []models.Role{models.RoleDoctor}
	// Patient records (patients.go): whoever reaches a patient reads the
	// record; the patient (or a proxy), the desk and admins correct it
	// (rectification); doctors correct through the desk.
	rolePatientRead    = []models.Role{models.RolePatient, models.RoleDoctor, models.RoleStaff, models.RoleAdmin}
	rolePatientRectify = []models.Role{models.RolePatient, models.RoleStaff, models.RoleAdmin}
)

// permissions maps "METHOD /route/pattern" to the roles that may use it.
var permissions = map[string][]models.Role{
	"GET /v1/me":                           roleEveryone,
	"POST /v1/auth/logout":                 roleEveryone,
	"POST /v1/auth/logout-all":             roleEveryone,
	"GET /v1/auth/mfa":                     roleEveryone,
	"POST /v1/auth/mfa/totp":               roleEveryone,
	"POST /v1/auth/mfa/totp/confirm":       roleEveryone,
	"POST /v1/auth/mfa/recovery-codes":     roleEveryone,
	"POST /v1/auth/mfa/disable":            roleMFAOptional,
	"POST /v1/me/password":                 roleEveryone,
	"POST /v1/me/verification-email":       roleEveryone,
	"GET /v1/facilities":                   roleEveryone,
	"GET /v1/specialties":                  roleEveryone,
	"GET /v1/practitioners":                roleEveryone,
	"GET /v1/appointment-types":            roleEveryone,
	"GET /v1/practitioners/:id/slots":      roleEveryone,
	"GET /v1/slots":                        roleEveryone,
	"POST /v1/appointments":                roleBook,
	"GET /v1/appointments":                 roleEveryone,
	"GET /v1/appointments/:id":             roleEveryone,
	"POST /v1/appointments/:id/cancel":     roleCancel,
	"POST /v1/appointments/:id/reschedule": roleReschedule,
	"POST /v1/appointments/:id/check-in":   roleCheckIn,
	"GET /v1/schedule":                     roleSchedule,
	"GET /v1/payments":                     roleBilling,
	"GET /v1/payments/:id":                 roleBilling,
	"POST /v1/payments/:id/refund":         roleBilling,
	"GET /v1/billing/daily-totals":         roleBilling,
	"POST /v1/billing/settlements":         roleBilling,
	"GET /v1/billing/settlements":          roleBilling,
	"GET /v1/billing/settlements/:day":     roleBilling,
	"GET /v1/discrepancies":                roleBilling,
	"POST /v1/discrepancies/:id/resolve":   roleBilling,
	"POST /v1/break-glass":                 roleBreakGlass,
	"GET /v1/break-glass":                  roleAudit,
	"POST /v1/break-glass/:id/review":      roleAudit,
	"GET /v1/notices":                      roleEveryone,
	"GET /v1/consents":                     roleConsent,
	"POST /v1/consents":                    roleConsent,
	"GET /v1/audit-events":                 roleAudit,
	"GET /v1/audit-events/verify":          roleAudit,
	"GET /v1/lab-results":                  roleLabRead,
	"GET /v1/lab-results/:id":              roleLabRead,
	"GET /v1/lab-results/:id/trend":        roleLabRead,
	"GET /v1/lab-results/:id/pdf":          roleLabRead,
	"GET /v1/lab-results/:id/raw":          roleLabRaw,
	"POST /v1/lab-results/:id/review":      roleLabReview,
	"POST /v1/lab-results/:id/release":     roleLabRelease,
	"GET /v1/lab-messages":                 roleLabQueue,
	"GET /v1/lab-messages/:id":             roleLabQueue,
	"GET /v1/lab-messages/:id/raw":         roleLabQueue,
	"POST /v1/lab-messages/:id/assign":     roleLabQueue,
	"POST /v1/lab-messages/:id/dismiss":    roleLabQueue,
	"POST /v1/care-assignments":            roleCareManage,
	"GET /v1/care-assignments":             roleCareList,
	"POST /v1/care-assignments/:id/end":    roleCareManage,
	"POST /v1/proxy-relations":             roleProxyManage,
	"GET /v1/proxy-relations":              roleProxyList,
	"POST /v1/proxy-relations/:id/end":     roleProxyManage,
	"POST /v1/admin/keys/rotate":           roleKeys,
	"POST /v1/patients/:id/exports":        roleDSRExport,
	"POST /v1/patients/:id/erasure":        roleDSRAdmin,
	"GET /v1/patients/:id/dsr":             roleDSRExport,
	"GET /v1/dsr/:id":                      roleDSRExport,
	"POST /v1/patients/:id/legal-holds":    roleDSRAdmin,
	"GET /v1/patients/:id/legal-holds":     roleDSRAdmin,
	"POST /v1/legal-holds/:id/release":     roleDSRAdmin,
	"GET /v1/retention-settings":           roleDSRAdmin,
	"PUT /v1/retention-settings":           roleDSRAdmin,
	"GET /v1/admin/identity-provider":      roleSSO,
	"PUT /v1/admin/identity-provider":      roleSSO,
	"DELETE /v1/admin/identity-provider":   roleSSO,
	"POST /v1/patients/:id/notes":          roleNoteWrite,
	"GET /v1/patients/:id/notes":           roleNoteRead,
	"GET /v1/notes/:id":                    roleNoteRead,
	"PUT /v1/notes/:id":                    roleNoteWrite,
	"POST /v1/notes/:id/sign":              roleNoteWrite,
	"POST /v1/notes/:id/addenda":           roleNoteWrite,

	// Messaging.
	"GET /v1/message-threads":               roleMessages,
	"POST /v1/message-threads":              roleMessages,
	"GET /v1/message-threads/:id":           roleMessages,
	"POST /v1/message-threads/:id/messages": roleMessages,
	"POST /v1/message-threads/:id/read":     roleMessages,
	"POST /v1/message-threads/:id/close":    roleMessageClose,
	"GET /v1/patients/:id":                  rolePatientRead,
	"PATCH /v1/patients/:id":                rolePatientRectify,
}

// Permissions returns a copy of the matrix, for documentation and tests.
func Permissions() map[string][]models.Role {
	out := make(map[string][]models.Role, len(permissions))
	for k, v := range permissions {
		out[k] = slices.Clone(v)
	}
	return out
}

// authorize lets the caller's role through to the route, or answers 403.
// A signed-in route missing from the matrix is a bug: it answers 500
// rather than guess.
func authorize(c *gin.Context) error {
	roles, ok := permissions[c.Request.Method+" "+c.FullPath()]
	if !ok {
		return internal(fmt.Errorf("route %s %s is not in the permission matrix", c.Request.Method, c.FullPath()))
	}
	if !slices.Contains(roles, principal(c).Role) {
		return forbidden()
	}
	c.Next()
	return nil
}
