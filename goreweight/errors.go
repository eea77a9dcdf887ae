package goreweight

import (
	"errors"
	"fmt"
)

// Errors are values: every error the core returns matches one of these
// with errors.Is or errors.As, and callers (the C ABI's status codes, the
// Python exception classes) branch on them, never on message text.
//
//	ErrInvalid    any bad argument: options, schedule, state, lengths, r, ids
//	ErrEmpty      a batch with no samples (also Is ErrInvalid)
//	ErrNonFinite  non-finite losses under "raise", or every loss non-finite
//	              (also Is ErrInvalid); a *NonFiniteError carries the counts
//	*OptionError  a bad option or schedule field, naming its JSON key
//	              (Is ErrInvalid)
var (
	// ErrInvalid is the base of every bad-argument error.
	ErrInvalid = errors.New("goreweight: invalid argument")
	// ErrEmpty is returned for a batch with no samples.
	ErrEmpty error = &argError{msg: "goreweight: empty batch: there are no losses to weight"}
	// ErrNonFinite is matched by the error for non-finite losses under
	// nonfinite="raise" and for a batch whose losses are all non-finite.
	ErrNonFinite error = &argError{msg: "goreweight: non-finite losses (NaN or Inf)"}
)

// argError is a bad-argument error: it Is ErrInvalid and unwraps to its
// cause, if any.
type argError struct {
	msg   string
	cause error
}

func (e *argError) Error() string        { return e.msg }
func (e *argError) Unwrap() error        { return e.cause }
func (e *argError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns a bad-argument error with a formatted message; a %w verb
// makes the wrapped error its cause.
func invalidf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &argError{msg: err.Error(), cause: errors.Unwrap(err)}
}

// An OptionError reports an invalid option or schedule field. It Is
// ErrInvalid.
type OptionError struct {
	// Key is the field's JSON key, e.g. "delta", "cap", "schedule.r_start"
	// or "domain_multipliers".
	Key string
	// Msg says what is wrong, naming the field, e.g. "delta must be a
	// finite number in (0, 1e+300], got 0".
	Msg string
}

func (e *OptionError) Error() string        { return "goreweight: " + e.Msg }
func (e *OptionError) Is(target error) bool { return target == ErrInvalid }

func optionErr(key, format string, a ...any) error {
	return &OptionError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// A NonFiniteError reports non-finite losses (NaN or ±Inf) where they are
// not allowed: any under nonfinite="raise", or all of them. It Is
// ErrNonFinite (and so ErrInvalid).
type NonFiniteError struct {
	Count int     // number of non-finite losses
	First int     // index of the first
	Value float32 // the first non-finite loss
	All   bool    // every loss of the batch is non-finite
}

func (e *NonFiniteError) Error() string {
	if e.All {
		return fmt.Sprintf("goreweight: all %d losses are non-finite (NaN or Inf); the first is at index %d (%v)", e.Count, e.First, e.Value)
	}
	return fmt.Sprintf("goreweight: %d non-finite loss(es) (NaN or Inf) under nonfinite=\"raise\"; the first is at index %d (%v)", e.Count, e.First, e.Value)
}

// Is reports whether target is ErrNonFinite or ErrInvalid.
func (e *NonFiniteError) Is(target error) bool { return target == ErrNonFinite || target == ErrInvalid }
