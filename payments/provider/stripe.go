package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// StripeConfig configures one Stripe account, normally one tenant's.
type StripeConfig struct {
	// SecretKey is the account's secret or restricted key. Required.
	SecretKey string

	// BackendURL is where API calls go, e.g. "http://127.0.0.1:12111" for
	// stripe-mock. Empty means Stripe's own API; tests must always set it.
	BackendURL string

	// HTTPClient makes the calls; nil means stripe-go's default client
	// (80-second timeout). Each call is also bound to its context.
	HTTPClient *http.Client

	// MaxNetworkRetries is how often stripe-go itself retries a failed
	// call, with the same idempotency key and a short backoff. Zero leaves
	// all retrying to the caller (for the saga, the activity's retry
	// policy), which keeps each attempt short and visible in the workflow
	// history.
	MaxNetworkRetries int64
}

// String describes the configuration without the key, so that printing or
// logging a config cannot leak it.
func (c StripeConfig) String() string {
	backend := c.BackendURL
	if backend == "" {
		backend = stripe.APIURL
	}
	return fmt.Sprintf("StripeConfig{BackendURL: %s, SecretKey: [redacted], MaxNetworkRetries: %d}",
		backend, c.MaxNetworkRetries)
}

// GoString is String, so that %#v hides the key as well.
func (c StripeConfig) GoString() string { return c.String() }

// Stripe is the Provider for one Stripe account. It is safe for concurrent
// use.
type Stripe struct {
	api *client.API
}

var _ Provider = (*Stripe)(nil)

// listPageSize is the largest page Stripe serves; fewer round trips for a
// busy day's reconciliation.
const listPageSize = 100

// NewStripe returns a provider for the account cfg describes. It makes no
// call; a wrong key shows up as [ErrAuth] on first use.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if strings.TrimSpace(cfg.SecretKey) == "" {
		return nil, errors.New("stripe provider: secret key is required")
	}
	if cfg.MaxNetworkRetries < 0 {
		return nil, errors.New("stripe provider: max network retries must not be negative")
	}
	backendURL := stripe.APIURL
	if cfg.BackendURL != "" {
		u, err := url.Parse(cfg.BackendURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("stripe provider: backend URL %q is not an http(s) URL", cfg.BackendURL)
		}
		backendURL = cfg.BackendURL
	}

	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(backendURL),
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(cfg.MaxNetworkRetries),
		// stripe-go logs to stderr by default, and its error lines include
		// Stripe's messages. This package returns errors instead and lets
		// the caller log them.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
		// Telemetry would send the previous request's ID and timing along
		// with the next call; nothing here needs it.
		EnableTelemetry: stripe.Bool(false),
	})

	// Only the API backend is set. The Connect and upload clients are left
	// without one rather than falling back to stripe-go's globals, which
	// aim at Stripe's hosts.
	api := client.New(cfg.SecretKey, &stripe.Backends{API: backend})
	return &Stripe{api: api}, nil
}

// Name returns NameStripe.
func (s *Stripe) Name() string { return NameStripe }

// EnsureCustomer returns req.CustomerID when that customer exists and is
// not someone else's, or creates a customer carrying only the tenant and
// patient IDs as metadata.
//
// If req.CustomerID was deleted at Stripe, a new customer is created with
// the key req.IdempotencyKey + ":replaces:" + req.CustomerID, so that
// Stripe does not answer with the deleted one it created under the plain
// key.
func (s *Stripe) EnsureCustomer(ctx context.Context, req CustomerRequest) (string, error) {
	const op = "ensure customer"
	if err := checkKey(NameStripe, op, req.IdempotencyKey); err != nil {
		return "", err
	}
	if err := checkCustomerRequest(NameStripe, op, req); err != nil {
		return "", err
	}

	key := req.IdempotencyKey
	if req.CustomerID != "" {
		p := &stripe.CustomerParams{}
		p.Context = ctx
		c, err := s.api.Customers.Get(req.CustomerID, p)
		if err != nil {
			return "", fromStripe(op, err)
		}
		if !c.Deleted {
			// A customer made for another patient would put a fee on the
			// wrong card. Customers made outside Carebook carry no
			// patient ID and are accepted.
			if owner, ok := c.Metadata[MetaPatientID]; ok && owner != req.PatientID {
				return "", invalid(NameStripe, op, "customer_mismatch", "CustomerID")
			}
			return c.ID, nil
		}
		key = req.IdempotencyKey + ":replaces:" + req.CustomerID
		if err := checkKey(NameStripe, op, key); err != nil {
			return "", err
		}
	}

	p := &stripe.CustomerParams{
		Metadata: map[string]string{
			MetaTenantID:  req.TenantID,
			MetaPatientID: req.PatientID,
		},
	}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	c, err := s.api.Customers.New(p)
	if err != nil {
		return "", fromStripe(op, err)
	}
	return c.ID, nil
}

// CreateIntent creates a PaymentIntent with capture_method=manual for
// cards only, and setup_future_usage=off_session when the card is to be
// kept. The patient confirms it with Intent.ClientSecret.
//
// Cards only, because a hold that is captured later is a card feature:
// letting Stripe offer every enabled method would show the patient methods
// that cannot be held (bank debits, vouchers). Wallets such as Apple Pay
// and Google Pay pay with a card and still work.
func (s *Stripe) CreateIntent(ctx context.Context, req IntentRequest) (Intent, error) {
	const op = "create intent"
	if err := checkKey(NameStripe, op, req.IdempotencyKey); err != nil {
		return Intent{}, err
	}
	if err := checkIntentRequest(NameStripe, op, req); err != nil {
		return Intent{}, err
	}

	p := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(req.AmountMinor),
		Currency:           stripe.String(strings.ToLower(req.Currency)),
		CaptureMethod:      stripe.String(string(stripe.PaymentIntentCaptureMethodManual)),
		PaymentMethodTypes: stripe.StringSlice([]string{string(stripe.PaymentMethodTypeCard)}),
		Metadata:           req.Refs.metadata(),
	}
	if req.CustomerID != "" {
		p.Customer = stripe.String(req.CustomerID)
	}
	if req.SaveForOffSession {
		p.SetupFutureUsage = stripe.String(string(stripe.PaymentIntentSetupFutureUsageOffSession))
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)

	pi, err := s.api.PaymentIntents.New(p)
	if err != nil {
		return Intent{}, fromStripe(op, err)
	}
	return intentFromStripe(pi), nil
}

// GetIntent reads a PaymentIntent.
func (s *Stripe) GetIntent(ctx context.Context, id string) (Intent, error) {
	const op = "get intent"
	if id == "" {
		return Intent{}, invalid(NameStripe, op, "parameter_missing", "id")
	}
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	pi, err := s.api.PaymentIntents.Get(id, p)
	if err != nil {
		return Intent{}, fromStripe(op, err)
	}
	return intentFromStripe(pi), nil
}

// Capture captures an authorized PaymentIntent, amountMinor of it or all
// of it when amountMinor is 0. Stripe releases what is not captured.
func (s *Stripe) Capture(ctx context.Context, id string, amountMinor int64, key string) (Intent, error) {
	const op = "capture intent"
	if err := checkKey(NameStripe, op, key); err != nil {
		return Intent{}, err
	}
	if id == "" {
		return Intent{}, invalid(NameStripe, op, "parameter_missing", "id")
	}
	if amountMinor < 0 {
		return Intent{}, invalid(NameStripe, op, "amount_invalid", "amountMinor")
	}

	p := &stripe.PaymentIntentCaptureParams{}
	if amountMinor > 0 {
		p.AmountToCapture = stripe.Int64(amountMinor)
	}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	pi, err := s.api.PaymentIntents.Capture(id, p)
	if err != nil {
		return Intent{}, fromStripe(op, err)
	}
	return intentFromStripe(pi), nil
}

// CancelIntent cancels a PaymentIntent that is not captured, releasing any
// hold on the card.
func (s *Stripe) CancelIntent(ctx context.Context, id string, key string) (Intent, error) {
	const op = "cancel intent"
	if err := checkKey(NameStripe, op, key); err != nil {
		return Intent{}, err
	}
	if id == "" {
		return Intent{}, invalid(NameStripe, op, "parameter_missing", "id")
	}

	p := &stripe.PaymentIntentCancelParams{}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	pi, err := s.api.PaymentIntents.Cancel(id, p)
	if err != nil {
		return Intent{}, fromStripe(op, err)
	}
	return intentFromStripe(pi), nil
}

// Refund creates a Refund against a PaymentIntent. Stripe may answer with
// status pending; the final status arrives by webhook.
func (s *Stripe) Refund(ctx context.Context, req RefundRequest) (Refund, error) {
	const op = "refund"
	if err := checkKey(NameStripe, op, req.IdempotencyKey); err != nil {
		return Refund{}, err
	}
	if err := checkRefundRequest(NameStripe, op, req); err != nil {
		return Refund{}, err
	}

	p := &stripe.RefundParams{
		PaymentIntent: stripe.String(req.PaymentIntentID),
		Metadata:      req.Refs.metadata(),
	}
	if req.AmountMinor > 0 {
		p.Amount = stripe.Int64(req.AmountMinor)
	}
	if req.Reason != "" {
		p.Reason = stripe.String(req.Reason)
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	r, err := s.api.Refunds.New(p)
	if err != nil {
		return Refund{}, fromStripe(op, err)
	}
	return refundFromStripe(r), nil
}

// ChargeOffSession creates and confirms a PaymentIntent on a saved card
// with off_session=true and automatic capture.
func (s *Stripe) ChargeOffSession(ctx context.Context, req OffSessionRequest) (Intent, error) {
	const op = "charge off-session"
	if err := checkKey(NameStripe, op, req.IdempotencyKey); err != nil {
		return Intent{}, err
	}
	if err := checkOffSessionRequest(NameStripe, op, req); err != nil {
		return Intent{}, err
	}

	p := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(req.AmountMinor),
		Currency:           stripe.String(strings.ToLower(req.Currency)),
		Customer:           stripe.String(req.CustomerID),
		PaymentMethod:      stripe.String(req.PaymentMethodID),
		PaymentMethodTypes: stripe.StringSlice([]string{string(stripe.PaymentMethodTypeCard)}),
		CaptureMethod:      stripe.String(string(stripe.PaymentIntentCaptureMethodAutomatic)),
		Confirm:            stripe.Bool(true),
		OffSession:         stripe.Bool(true),
		Metadata:           req.Refs.metadata(),
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	pi, err := s.api.PaymentIntents.New(p)
	if err != nil {
		return Intent{}, fromStripe(op, err)
	}
	return intentFromStripe(pi), nil
}

// BalanceTransactions lists the balance transactions created in [from, to)
// at whole-second precision, 100 per page, following every page.
func (s *Stripe) BalanceTransactions(ctx context.Context, from, to time.Time) ([]BalanceTransaction, error) {
	const op = "list balance transactions"
	if err := checkRange(NameStripe, op, from, to); err != nil {
		return nil, err
	}

	p := &stripe.BalanceTransactionListParams{
		CreatedRange: &stripe.RangeQueryParams{
			GreaterThanOrEqual: from.Unix(),
			LesserThan:         to.Unix(),
		},
	}
	p.Context = ctx
	p.Limit = stripe.Int64(listPageSize)

	var out []BalanceTransaction
	it := s.api.BalanceTransactions.List(p)
	for it.Next() {
		out = append(out, balanceTransactionFromStripe(it.BalanceTransaction()))
	}
	if err := it.Err(); err != nil {
		return nil, fromStripe(op, err)
	}
	return out, nil
}

// Payouts lists the payouts created in [from, to) at whole-second
// precision, 100 per page, following every page. A payout created late in
// the day may arrive at the bank days later; ArrivalDate says when.
func (s *Stripe) Payouts(ctx context.Context, from, to time.Time) ([]Payout, error) {
	const op = "list payouts"
	if err := checkRange(NameStripe, op, from, to); err != nil {
		return nil, err
	}

	p := &stripe.PayoutListParams{
		CreatedRange: &stripe.RangeQueryParams{
			GreaterThanOrEqual: from.Unix(),
			LesserThan:         to.Unix(),
		},
	}
	p.Context = ctx
	p.Limit = stripe.Int64(listPageSize)

	var out []Payout
	it := s.api.Payouts.List(p)
	for it.Next() {
		out = append(out, payoutFromStripe(it.Payout()))
	}
	if err := it.Err(); err != nil {
		return nil, fromStripe(op, err)
	}
	return out, nil
}

func checkCustomerRequest(name, op string, req CustomerRequest) error {
	switch {
	case req.TenantID == "":
		return invalid(name, op, "parameter_missing", "TenantID")
	case req.PatientID == "":
		return invalid(name, op, "parameter_missing", "PatientID")
	}
	return nil
}

func checkIntentRequest(name, op string, req IntentRequest) error {
	switch {
	case req.AmountMinor <= 0:
		return invalid(name, op, "amount_invalid", "AmountMinor")
	case req.SaveForOffSession && req.CustomerID == "":
		return invalid(name, op, "parameter_missing", "CustomerID")
	}
	if err := checkCurrency(name, op, req.Currency); err != nil {
		return err
	}
	return checkRefs(name, op, req.Refs)
}

func checkRefundRequest(name, op string, req RefundRequest) error {
	switch {
	case req.PaymentIntentID == "":
		return invalid(name, op, "parameter_missing", "PaymentIntentID")
	case req.AmountMinor < 0:
		return invalid(name, op, "amount_invalid", "AmountMinor")
	}
	return checkRefs(name, op, req.Refs)
}

func checkOffSessionRequest(name, op string, req OffSessionRequest) error {
	switch {
	case req.CustomerID == "":
		return invalid(name, op, "parameter_missing", "CustomerID")
	case req.PaymentMethodID == "":
		return invalid(name, op, "parameter_missing", "PaymentMethodID")
	case req.AmountMinor <= 0:
		return invalid(name, op, "amount_invalid", "AmountMinor")
	}
	if err := checkCurrency(name, op, req.Currency); err != nil {
		return err
	}
	return checkRefs(name, op, req.Refs)
}

func intentFromStripe(pi *stripe.PaymentIntent) Intent {
	in := Intent{
		ID:                    pi.ID,
		Status:                string(pi.Status),
		AmountMinor:           pi.Amount,
		AmountCapturableMinor: pi.AmountCapturable,
		AmountReceivedMinor:   pi.AmountReceived,
		Currency:              strings.ToUpper(string(pi.Currency)),
		CaptureMethod:         string(pi.CaptureMethod),
		CancellationReason:    string(pi.CancellationReason),
		ClientSecret:          pi.ClientSecret,
		Metadata:              pi.Metadata,
		Created:               unixTime(pi.Created),
	}
	if pi.LastPaymentError != nil {
		in.LastPaymentErrorCode = string(pi.LastPaymentError.Code)
		in.LastPaymentDeclineCode = string(pi.LastPaymentError.DeclineCode)
	}
	if pi.LatestCharge != nil {
		in.LatestChargeID = pi.LatestCharge.ID
	}
	if pi.Customer != nil {
		in.CustomerID = pi.Customer.ID
	}
	if pi.PaymentMethod != nil {
		in.PaymentMethodID = pi.PaymentMethod.ID
	}
	return in
}

func refundFromStripe(r *stripe.Refund) Refund {
	out := Refund{
		ID:            r.ID,
		Status:        string(r.Status),
		AmountMinor:   r.Amount,
		Currency:      strings.ToUpper(string(r.Currency)),
		Reason:        string(r.Reason),
		FailureReason: string(r.FailureReason),
		Metadata:      r.Metadata,
		Created:       unixTime(r.Created),
	}
	if r.PaymentIntent != nil {
		out.PaymentIntentID = r.PaymentIntent.ID
	}
	if r.Charge != nil {
		out.ChargeID = r.Charge.ID
	}
	return out
}

func balanceTransactionFromStripe(t *stripe.BalanceTransaction) BalanceTransaction {
	out := BalanceTransaction{
		ID:                t.ID,
		Type:              string(t.Type),
		ReportingCategory: string(t.ReportingCategory),
		Status:            string(t.Status),
		AmountMinor:       t.Amount,
		FeeMinor:          t.Fee,
		NetMinor:          t.Net,
		Currency:          strings.ToUpper(string(t.Currency)),
		Created:           unixTime(t.Created),
		AvailableOn:       unixTime(t.AvailableOn),
	}
	if t.Source != nil {
		out.SourceID = t.Source.ID
	}
	return out
}

func payoutFromStripe(p *stripe.Payout) Payout {
	out := Payout{
		ID:                   p.ID,
		Status:               string(p.Status),
		AmountMinor:          p.Amount,
		Currency:             strings.ToUpper(string(p.Currency)),
		Automatic:            p.Automatic,
		Method:               string(p.Method),
		FailureCode:          string(p.FailureCode),
		ReconciliationStatus: string(p.ReconciliationStatus),
		Created:              unixTime(p.Created),
		ArrivalDate:          unixTime(p.ArrivalDate),
	}
	if p.BalanceTransaction != nil {
		out.BalanceTransactionID = p.BalanceTransaction.ID
	}
	return out
}
