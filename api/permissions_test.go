package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
)

// publicRoutes take no user token: they authenticate otherwise (a
// password, a refresh token, a webhook signature, a lab partner's key, a
// token from an account e-mail).
var publicRoutes = []string{
	"POST /v1/auth/signup", "POST /v1/auth/login", "POST /v1/auth/refresh",
	"POST /v1/auth/mfa/verify", "POST /v1/auth/mfa/enrol", "POST /v1/auth/mfa/enrol/confirm",
	"POST /v1/webhooks/stripe/:tenant", "POST /v1/labs/hl7", "POST /v1/labs/fhir",
	"POST /v1/auth/verify-email", "POST /v1/auth/password-reset", "POST /v1/auth/password-reset/confirm",
	"GET /v1/auth/oidc/start", "GET /v1/auth/oidc/callback", "POST /v1/auth/oidc/token",
}

var matrixRoles = []models.Role{models.RolePatient, models.RoleDoctor, models.RoleStaff, models.RoleBilling, models.RoleAdmin}

// TestPermissionMatrixEveryRouteEveryRole sends every signed-in route a
// request from every role: a role the matrix leaves out gets 403 before
// anything else (even a malformed body), a role it lets in never does.
// Every route is public or in the matrix, and nothing else is.
func TestPermissionMatrixEveryRouteEveryRole(t *testing.T) {
	st := newStack(t)
	tokens := map[models.Role]string{
		models.RolePatient: st.login("demo", "ayse@demo.carebook.test"),
		models.RoleDoctor:  st.login("demo", "doctor1@demo.carebook.test"),
		models.RoleStaff:   st.login("demo", "staff.istanbul@demo.carebook.test"),
		models.RoleBilling: st.login("demo", "billing@demo.carebook.test"),
		models.RoleAdmin:   st.login("demo", "admin@demo.carebook.test"),
	}
	h, err := st.Server.Router()
	if err != nil {
		t.Fatal(err)
	}
	matrix := api.Permissions()
	var routes []gin.RouteInfo
	for _, r := range h.(*gin.Engine).Routes() {
		key := r.Method + " " + r.Path
		if slices.Contains(publicRoutes, key) {
			if _, ok := matrix[key]; ok {
				t.Errorf("%s is public and in the matrix", key)
			}
			continue
		}
		if r.Path == "/healthz" || r.Path == "/v1/openapi.yaml" {
			continue
		}
		if _, ok := matrix[key]; !ok {
			t.Errorf("%s is signed-in but not in the matrix", key)
			continue
		}
		routes = append(routes, r)
	}
	if len(routes) != len(matrix) {
		t.Errorf("%d routes checked, %d in the matrix", len(routes), len(matrix))
	}
	// Logging out everywhere ends the caller's tokens: last.
	sort.SliceStable(routes, func(i, j int) bool {
		return !strings.HasSuffix(routes[i].Path, "/logout-all") && strings.HasSuffix(routes[j].Path, "/logout-all")
	})
	for _, r := range routes {
		path := strings.NewReplacer(":id", uuid.NewString(), ":day", "2026-01-01").Replace(r.Path)
		allowed := matrix[r.Method+" "+r.Path]
		for _, role := range matrixRoles {
			var body any
			if r.Method == http.MethodPost {
				body = map[string]any{}
			}
			if strings.HasSuffix(r.Path, "/auth/logout") {
				// Another session's refresh token (none): the caller's
				// own session must outlive the walk.
				body = map[string]any{"refresh_token": strings.Repeat("0", 32) + ".none"}
			}
			resp := st.do(r.Method, path, tokens[role], body)
			if slices.Contains(allowed, role) {
				if resp.Status == http.StatusForbidden || resp.Status == http.StatusUnauthorized || resp.Status >= 500 {
					t.Errorf("%s %s as %s: %d %s, want it let through", r.Method, r.Path, role, resp.Status, resp.Raw)
				}
			} else if resp.Status != http.StatusForbidden || resp.problemType() != "forbidden" {
				t.Errorf("%s %s as %s: %d %s, want 403 forbidden", r.Method, r.Path, role, resp.Status, resp.Raw)
			}
		}
	}
}

// TestReadmePermissionTableIsTheMatrix: the README's table says what the
// code enforces, row for row.
func TestReadmePermissionTableIsTheMatrix(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	matrix := api.Permissions()
	seen := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !slices.ContainsFunc([]string{"GET", "POST", "PUT", "DELETE", "PATCH"}, func(m string) bool { return strings.HasPrefix(line, "| `"+m+" /v1/") }) {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 1+len(matrixRoles) {
			t.Fatalf("row %q has %d cells", line, len(cells))
		}
		key := strings.Trim(strings.TrimSpace(cells[0]), "`")
		want, ok := matrix[key]
		if !ok {
			t.Errorf("README lists %s, which the matrix does not", key)
			continue
		}
		seen[key] = true
		for i, role := range matrixRoles {
			says := strings.TrimSpace(cells[1+i]) == "yes"
			if says != slices.Contains(want, role) {
				t.Errorf("README: %s for %s says %v, the matrix %v", key, role, says, !says)
			}
		}
	}
	for key := range matrix {
		if !seen[key] {
			t.Errorf("README has no row for %s", key)
		}
	}
}
