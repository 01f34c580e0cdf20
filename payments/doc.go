// Package payments is the pure core of Carebook's payments: money in
// integer minor units, the double-entry ledger model, cancellation and
// no-show policy, and the checking and parsing of Stripe webhooks.
//
// Nothing here does I/O or reads the system clock. Callers pass "now" in,
// so workflow code can use the package without breaking determinism and
// tests can pin any instant. Storage, the Stripe client and the HTTP
// endpoint live elsewhere and build on these types.
//
// Amounts are never floats. A Money holds an int64 count of the currency's
// minor unit (cents for USD, yen for JPY), which is also how Stripe counts,
// so amounts pass between the two without conversion.
package payments
