// Package nationalid keeps patients' national ID numbers (a US Social
// Security number, a Turkish T.C. Kimlik No) in patient_identifiers sealed
// with the tenant's data key, and finds patients by them through a blind
// index. Other identifiers (a hospital's MRN, a FHIR server's patient URL)
// are kept in the clear: they mean nothing outside the hospital that
// issued them, and staff match on them by eye.
package nationalid

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
)

// Identifier systems that are national IDs, as labs.Identifier writes
// systems: HL7 OIDs as "urn:oid:...", FHIR's naming system URIs. The
// migration refuses these systems in patient_identifiers.value, so the list
// there must grow with this one.
const (
	SystemUSSSN    = "urn:oid:2.16.840.1.113883.4.1"
	SystemUSSSNURI = "http://hl7.org/fhir/sid/us-ssn"
	// SystemTCKimlik is the T.C. Kimlik No under Turkey's MERNIS OID;
	// SystemTCKimlikAlt is the form some Turkish systems send with a
	// trailing ".1".
	SystemTCKimlik    = "urn:oid:2.16.792.1.56.5.2.1.1"
	SystemTCKimlikAlt = "urn:oid:2.16.792.1.56.5.2.1.1.1"
)

var systems = map[string]bool{SystemUSSSN: true, SystemUSSSNURI: true, SystemTCKimlik: true, SystemTCKimlikAlt: true}

// IsNational reports whether identifiers of system are national IDs.
func IsNational(system string) bool { return systems[system] }

// Systems lists the national ID systems, sorted.
func Systems() []string {
	out := make([]string, 0, len(systems))
	for s := range systems {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Siblings are the systems that name the same number as system (itself
// included): a number replaced under one is replaced under each.
func Siblings(system string) []string {
	switch system {
	case SystemTCKimlik, SystemTCKimlikAlt:
		return []string{SystemTCKimlik, SystemTCKimlikAlt}
	case SystemUSSSN, SystemUSSSNURI:
		return []string{SystemUSSSN, SystemUSSSNURI}
	}
	return []string{system}
}

// TypeCode is the HL7 identifier type of a national ID system: SS for a
// US SSN, NI (national identifier) otherwise.
func TypeCode(system string) string {
	if system == SystemUSSSN || system == SystemUSSSNURI {
		return "SS"
	}
	return "NI"
}

// Store adds a national ID for a patient in tx (a transaction of tenant):
// sealed and bound to the patient and system, and indexed. Storing the same
// number for the same system again changes nothing.
func Store(ctx context.Context, tx *gorm.DB, keys *keyring.Keyring, tenant, patient uuid.UUID, system, value, typ string) error {
	if !IsNational(system) {
		return fmt.Errorf("nationalid: %q is not a national ID system", system)
	}
	sealed, err := keys.SealFor(ctx, tenant, binding(patient, system), keyring.Normalize(value))
	if err != nil {
		return err
	}
	idx, err := keys.Index(ctx, tenant, keyring.PurposeNationalID, value)
	if err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO patient_identifiers (tenant_id, patient_id, system, value_sealed, value_index, type)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, system, value_index) DO NOTHING`,
		tenant, patient, system, sealed, idx, typ).Error
}

// Find returns the patients holding value under system (any national ID
// system when system is ""), through the blind index.
func Find(ctx context.Context, tx *gorm.DB, keys *keyring.Keyring, tenant uuid.UUID, system, value string) ([]uuid.UUID, error) {
	idx, err := keys.Index(ctx, tenant, keyring.PurposeNationalID, value)
	if err != nil {
		return nil, err
	}
	q := tx.Table("patient_identifiers").Where("tenant_id = ? AND value_index = ?", tenant, idx)
	if system != "" {
		q = q.Where("system = ?", system)
	}
	var ids []uuid.UUID
	if err := q.Distinct().Pluck("patient_id", &ids).Error; err != nil {
		return nil, fmt.Errorf("nationalid: find: %w", err)
	}
	return ids, nil
}

// Reveal returns a patient's national IDs by system, opened; for the rare
// screen that must show one (and audit that it did).
func Reveal(ctx context.Context, tx *gorm.DB, keys *keyring.Keyring, tenant, patient uuid.UUID) (map[string]string, error) {
	var rows []struct {
		System      string
		ValueSealed []byte
	}
	if err := tx.Table("patient_identifiers").Where("tenant_id = ? AND patient_id = ? AND value_sealed IS NOT NULL", tenant, patient).
		Select("system, value_sealed").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("nationalid: reveal: %w", err)
	}
	out := map[string]string{}
	for _, r := range rows {
		v, err := keys.OpenFor(ctx, tenant, binding(patient, r.System), r.ValueSealed)
		if err != nil {
			return nil, err
		}
		out[r.System] = v
	}
	return out, nil
}

func binding(patient uuid.UUID, system string) keyring.Binding {
	return keyring.Binding{Purpose: keyring.PurposeNationalID, Row: keyring.NationalIDRow(patient.String(), system)}
}

// Valid reports whether value is a well-formed national ID of system,
// after keyring.Normalize (spaces, dashes, dots and slashes dropped):
//
//   - a T.C. Kimlik No is 11 digits, the first not 0, the tenth the
//     difference of seven times the sum of the odd-placed first nine and
//     the sum of the even-placed ones, mod 10, and the eleventh the sum
//     of the first ten, mod 10;
//   - a US SSN is 9 digits whose area (first three) is not 000, 666 or
//     9xx, whose group (next two) is not 00 and whose serial (last four)
//     is not 0000, as the Social Security Administration assigns them,
//     and not one of the numbers printed in advertising and on sample
//     cards that many people have copied as their own (voidSSNs).
//
// Other systems are not national IDs and are never valid here.
func Valid(system, value string) bool {
	v := keyring.Normalize(value)
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	switch system {
	case SystemTCKimlik, SystemTCKimlikAlt:
		return validTCKimlik(v)
	case SystemUSSSN, SystemUSSSNURI:
		return validSSN(v)
	}
	return false
}

func validTCKimlik(v string) bool {
	if len(v) != 11 || v[0] == '0' {
		return false
	}
	d := func(i int) int { return int(v[i] - '0') }
	odd := d(0) + d(2) + d(4) + d(6) + d(8)
	even := d(1) + d(3) + d(5) + d(7)
	if ((odd*7-even)%10+10)%10 != d(9) {
		return false
	}
	sum := 0
	for i := range 10 {
		sum += d(i)
	}
	return sum%10 == d(10)
}

// voidSSNs are well-formed numbers that belong to nobody who gives them:
// the one on the sample card in Woolworth wallets (1938), the one the SSA
// itself printed in a 1940s pamphlet, and the keyboard run that forms
// fill in as an example.
var voidSSNs = map[string]bool{"078051120": true, "219099999": true, "123456789": true}

func validSSN(v string) bool {
	if len(v) != 9 || voidSSNs[v] {
		return false
	}
	area, group, serial := v[:3], v[3:5], v[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}
