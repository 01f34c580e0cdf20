package activities

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/workflows"
)

// Keys runs the steps of a tenant's key rotation over the keyring.
type Keys struct {
	Keys *keyring.Keyring
}

func rotationTenant(s string) (uuid.UUID, error) {
	t, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, temporal.NewNonRetryableApplicationError("tenant is not a UUID", workflows.ErrTypeNotFound, nil)
	}
	return t, nil
}

// KeyRotationBegin makes a new data key version active for the tenant.
func (k *Keys) KeyRotationBegin(ctx context.Context, req workflows.KeyRotationBeginRequest) (workflows.KeyRotationBegun, error) {
	tenant, err := rotationTenant(req.TenantID)
	if err != nil {
		return workflows.KeyRotationBegun{}, err
	}
	r, err := k.Keys.BeginRotation(ctx, tenant, req.RotationID)
	if err != nil {
		return workflows.KeyRotationBegun{}, err
	}
	out := workflows.KeyRotationBegun{Version: r.Version, Old: r.Old}
	for _, c := range keyring.Columns() {
		out.Columns = append(out.Columns, c.Name)
	}
	return out, nil
}

// KeyReencrypt re-seals one batch of a column under the new version.
func (k *Keys) KeyReencrypt(ctx context.Context, req workflows.KeyReencryptRequest) (workflows.KeyReencrypted, error) {
	tenant, err := rotationTenant(req.TenantID)
	if err != nil {
		return workflows.KeyReencrypted{}, err
	}
	if _, ok := keyring.ColumnByName(req.Column); !ok {
		return workflows.KeyReencrypted{}, temporal.NewNonRetryableApplicationError("unknown sealed column", workflows.ErrTypeNotFound, nil)
	}
	n, err := k.Keys.Reencrypt(ctx, tenant, req.Column, req.Version, req.Limit)
	if errors.Is(err, keyring.ErrDoesNotOpen) || errors.Is(err, keyring.ErrWrongKEK) {
		// A value that does not open will not open on a retry either: the
		// rotation stops and says so, and the old key stays.
		return workflows.KeyReencrypted{}, temporal.NewNonRetryableApplicationError("a sealed value does not open", workflows.ErrTypeInvalidState, nil)
	}
	return workflows.KeyReencrypted{Done: n}, err
}

// KeyRetire retires the versions before the new one when nothing uses them.
func (k *Keys) KeyRetire(ctx context.Context, req workflows.KeyRetireRequest) (workflows.KeyRetired, error) {
	tenant, err := rotationTenant(req.TenantID)
	if err != nil {
		return workflows.KeyRetired{}, err
	}
	retired, remaining, err := k.Keys.Retire(ctx, tenant, req.Version)
	return workflows.KeyRetired{Retired: retired, Remaining: remaining}, err
}
