package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/nationalid"
)

// Patient records and their rectification (GDPR Art. 16, KVKK 11(1)(d)):
// whoever reaches a patient (reach.go) reads the record; the patient, a
// proxy for a dependant, the desk for patients seen at its facility and
// admins correct it. Birth date and national ID match lab results to
// patients (labs.go), so only the desk and admins, who check documents,
// change them. The e-mail address is not part of the record: it belongs to
// the login, and changing it would need the new address verified first;
// that is not built yet (TODO(#5)).
//
// Every answer carries the record's version as a strong ETag, and a
// change must send it back in If-Match: of two people correcting the same
// record at once, the second is told (412) instead of overwriting the
// first unseen.

// patientView is a patient's record as the API shows it. National ID
// numbers are never shown, only which systems the record holds one of.
type patientView struct {
	ID                string   `json:"id"`
	GivenName         string   `json:"given_name"`
	FamilyName        string   `json:"family_name"`
	BirthDate         string   `json:"birth_date,omitempty"`
	Phone             string   `json:"phone"`
	PreferredLanguage string   `json:"preferred_language,omitempty"`
	NationalIDSystems []string `json:"national_id_systems"`
	Erased            bool     `json:"erased"`
	Version           int      `json:"version"`
}

// patientPatch is the body of PATCH /v1/patients/:id: the fields to
// change, each left out to keep it. An empty phone or preferred_language
// clears it.
type patientPatch struct {
	GivenName         *string          `json:"given_name"`
	FamilyName        *string          `json:"family_name"`
	Phone             *string          `json:"phone"`
	PreferredLanguage *string          `json:"preferred_language"`
	BirthDate         *string          `json:"birth_date"`
	NationalID        *nationalIDPatch `json:"national_id"`
}

type nationalIDPatch struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// languages are the languages the apps speak, and a patient may prefer.
var languages = []string{"en", "tr"}

// phonePattern accepts the ways people write a phone number: digits with
// spaces, dashes, dots or parentheses, optionally after a +.
var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{3,30}$`)

// getPatient handles GET /v1/patients/:id: a patient's record, for those
// who reach the patient; audited as a read.
func (s *Server) getPatient(c *gin.Context) error {
	p := principal(c)
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("patient")
	}
	var v patientView
	err = s.inTenant(c, func(tx *gorm.DB) error {
		pt, err := reachedPatient(tx, p, id, false)
		if err != nil {
			return err
		}
		if v, err = viewPatient(tx, pt); err != nil {
			return err
		}
		return s.audit(c, tx, "read", "patient", &pt.ID, &pt.ID, "")
	})
	if err != nil {
		return err
	}
	c.Header("ETag", etag(v.Version))
	c.JSON(http.StatusOK, v)
	return nil
}

// patchPatient handles PATCH /v1/patients/:id: corrects a patient's
// record (rectification). The request must carry the record's ETag in
// If-Match. The audit event names the fields changed, never their values.
func (s *Server) patchPatient(c *gin.Context) error {
	p := principal(c)
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("patient")
	}
	var req patientPatch
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if p.Role == models.RolePatient && (req.BirthDate != nil || req.NationalID != nil) {
		return newProblem(KindForbidden, "field-not-allowed", "Forbidden",
			"birth_date and national_id are corrected at the desk, where documents are checked.")
	}
	set, err := s.checkPatch(req)
	if err != nil {
		return err
	}
	var v patientView
	err = s.inTenant(c, func(tx *gorm.DB) error {
		pt, err := reachedPatient(tx, p, id, true)
		if err != nil {
			return err
		}
		if pt.ErasedAt != nil {
			return conflict("patient-erased", "The patient was erased; the record can no longer be changed.")
		}
		// After the lookup, so that an ID out of reach answers 404
		// whatever the headers.
		version, err := ifMatch(c)
		if err != nil {
			return err
		}
		if pt.Version != version {
			pr := newProblem(KindConflict, "version-mismatch", "Precondition failed",
				"The record changed since you read it; read it again and repeat your change.")
			pr.Status = http.StatusPreconditionFailed
			return pr
		}
		changes := map[string]any{}
		var changed []string
		for _, col := range []string{"given_name", "family_name", "phone", "preferred_language", "birth_date"} {
			want, ok := set[col]
			if ok && !samePatientValue(pt, col, want) {
				changes[col] = want
				changed = append(changed, col)
			}
		}
		if req.NationalID != nil {
			moved, err := s.replaceNationalID(c, tx, p.TenantID, pt.ID, *req.NationalID)
			if err != nil {
				return err
			}
			if moved {
				changed = append(changed, "national_id")
			}
		}
		if len(changed) == 0 {
			// Nothing differs: the answer shows the record, a read.
			if v, err = viewPatient(tx, pt); err != nil {
				return err
			}
			return s.audit(c, tx, "read", "patient", &pt.ID, &pt.ID, "no change")
		}
		changes["version"] = gorm.Expr("version + 1")
		if err := tx.Model(&models.Patient{}).Where("id = ?", pt.ID).Updates(changes).Error; err != nil {
			return internal(err)
		}
		if err := tx.Where("id = ?", pt.ID).Take(&pt).Error; err != nil {
			return internal(err)
		}
		if v, err = viewPatient(tx, pt); err != nil {
			return err
		}
		return s.audit(c, tx, "rectify", "patient", &pt.ID, &pt.ID, "fields: "+strings.Join(changed, ", "))
	})
	if err != nil {
		return err
	}
	c.Header("ETag", etag(v.Version))
	c.JSON(http.StatusOK, v)
	return nil
}

// checkPatch validates a patch and returns the column values it sets
// (national_id apart). Problems name the field, never echo its value.
func (s *Server) checkPatch(req patientPatch) (map[string]any, error) {
	set := map[string]any{}
	for col, v := range map[string]*string{"given_name": req.GivenName, "family_name": req.FamilyName} {
		if v == nil {
			continue
		}
		name := strings.TrimSpace(*v)
		if name == "" || len([]rune(name)) > 100 || !readableName(name) {
			return nil, invalid("invalid-name", col+" must be 1 to 100 visible characters, not only spaces.")
		}
		set[col] = name
	}
	if req.Phone != nil {
		phone := strings.TrimSpace(*req.Phone)
		if phone != "" && !phonePattern.MatchString(phone) {
			return nil, invalid("invalid-phone", "phone must be digits (spaces, dashes, dots and parentheses allowed), optionally after +.")
		}
		set["phone"] = phone
	}
	if req.PreferredLanguage != nil {
		lang := *req.PreferredLanguage
		switch {
		case lang == "":
			set["preferred_language"] = nil
		case slices.Contains(languages, lang):
			set["preferred_language"] = lang
		default:
			return nil, invalid("invalid-language", "preferred_language must be one of "+inList(languages)+", or empty to clear it.")
		}
	}
	if req.BirthDate != nil {
		b, err := time.Parse(time.DateOnly, *req.BirthDate)
		if err != nil || b.After(s.Now()) || b.Year() < 1900 {
			return nil, invalid("invalid-birth-date", "birth_date must be a past date as YYYY-MM-DD.")
		}
		set["birth_date"] = b
	}
	if n := req.NationalID; n != nil {
		if !nationalid.IsNational(n.System) {
			return nil, invalid("invalid-national-id", "national_id.system must be a national ID system: "+inList(nationalid.Systems())+".")
		}
		if !nationalid.Valid(n.System, n.Value) {
			return nil, invalid("invalid-national-id", "national_id.value is not a valid number for its system (length or check digits).")
		}
	}
	if len(set) == 0 && req.NationalID == nil {
		return nil, invalid("empty-patch", "Send at least one field to change.")
	}
	return set, nil
}

// replaceNationalID makes n the patient's national ID under its system
// (and the systems that name the same number), sealed and indexed anew.
// It reports whether anything changed; a number another patient holds is
// refused, since the blind index matches lab results on it.
func (s *Server) replaceNationalID(c *gin.Context, tx *gorm.DB, tenant, patient uuid.UUID, n nationalIDPatch) (bool, error) {
	ctx := c.Request.Context()
	siblings := nationalid.Siblings(n.System)
	holders, err := nationalid.Find(ctx, tx, s.Keys, tenant, "", n.Value)
	if err != nil {
		return false, internal(err)
	}
	if slices.ContainsFunc(holders, func(h uuid.UUID) bool { return h != patient }) {
		return false, conflict("national-id-in-use", "Another patient's record holds this national ID; correct or merge that record first.")
	}
	if slices.Contains(holders, patient) {
		// The same number under one of the siblings: only the system
		// may differ. Keep it unless it is the very one asked for.
		var n2 int64
		idx, err := s.Keys.Index(ctx, tenant, keyring.PurposeNationalID, n.Value)
		if err != nil {
			return false, internal(err)
		}
		if err := tx.Table("patient_identifiers").Where("patient_id = ? AND system = ? AND value_index = ?", patient, n.System, idx).
			Count(&n2).Error; err != nil {
			return false, internal(err)
		}
		if n2 > 0 {
			return false, nil
		}
	}
	if err := tx.Exec("DELETE FROM patient_identifiers WHERE patient_id = ? AND system IN ?", patient, siblings).Error; err != nil {
		return false, internal(err)
	}
	if err := nationalid.Store(ctx, tx, s.Keys, tenant, patient, n.System, n.Value, nationalid.TypeCode(n.System)); err != nil {
		return false, internal(err)
	}
	return true, nil
}

// reachedPatient loads the patient id if p reaches them (for update, with
// the row locked), or answers 404 as for a patient that does not exist.
func reachedPatient(tx *gorm.DB, p Principal, id uuid.UUID, lock bool) (models.Patient, error) {
	var pt models.Patient
	ok, err := reachesPatient(tx, p, id)
	if err != nil {
		return pt, internal(err)
	}
	if !ok {
		return pt, notFound("patient")
	}
	q := tx
	if lock {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Where("id = ?", id).Take(&pt).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return pt, notFound("patient")
	} else if err != nil {
		return pt, internal(err)
	}
	return pt, nil
}

// samePatientValue reports whether pt's column col already holds want.
func samePatientValue(pt models.Patient, col string, want any) bool {
	switch col {
	case "given_name":
		return pt.GivenName == want
	case "family_name":
		return pt.FamilyName == want
	case "phone":
		return pt.Phone == want
	case "preferred_language":
		if want == nil {
			return pt.PreferredLanguage == nil
		}
		return pt.PreferredLanguage != nil && *pt.PreferredLanguage == want
	case "birth_date":
		b, _ := want.(time.Time)
		return pt.BirthDate != nil && pt.BirthDate.Format(time.DateOnly) == b.Format(time.DateOnly)
	}
	return false
}

func viewPatient(tx *gorm.DB, pt models.Patient) (patientView, error) {
	v := patientView{ID: pt.ID.String(), GivenName: pt.GivenName, FamilyName: pt.FamilyName, Phone: pt.Phone,
		Erased: pt.ErasedAt != nil, Version: pt.Version, NationalIDSystems: []string{}}
	if pt.BirthDate != nil {
		v.BirthDate = pt.BirthDate.Format(time.DateOnly)
	}
	if pt.PreferredLanguage != nil {
		v.PreferredLanguage = *pt.PreferredLanguage
	}
	if err := tx.Table("patient_identifiers").Where("patient_id = ? AND system IN ?", pt.ID, nationalid.Systems()).
		Order("system").Pluck("system", &v.NationalIDSystems).Error; err != nil {
		return v, internal(err)
	}
	return v, nil
}

// etag is a record version as a strong entity tag.
func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// ifMatch reads the version a change is based on from If-Match.
func ifMatch(c *gin.Context) (int, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" {
		p := newProblem(KindInvalid, "if-match-required", "Precondition required",
			"Send the record's ETag in If-Match, so that a change made since you read it is not overwritten.")
		p.Status = http.StatusPreconditionRequired
		return 0, p
	}
	v, err := strconv.Atoi(strings.Trim(h, `"`))
	if err != nil || v < 1 || !strings.HasPrefix(h, `"`) || !strings.HasSuffix(h, `"`) || len(h) < 3 {
		return 0, badRequest("invalid-if-match", `If-Match must be the record's ETag, such as "3".`)
	}
	return v, nil
}
