// Command capi is the C ABI of goreweight: built with
//
//	go build -buildmode=c-shared -o libgoreweight.so ./capi
//
// it gives one shared library, libgoreweight.so, and its header,
// libgoreweight.h. The library holds exactly one Go runtime for the whole
// process: every entry point (the reweighter here, the trainer in train.go)
// lives in this one package main so that a process never loads two runtimes.
// capi holds no logic of its own: it converts, checks and forwards to the
// core package goreweight.
//
// # Conventions (follow them in every new file, e.g. capi/train.go)
//
//  1. Names. Every export is `grw_<noun>_<verb>` (or `grw_<verb>` for
//     process-wide helpers), declared with //export in a file named after the
//     noun. Go types in signatures are C types: C.int64_t, C.uint64_t,
//     C.double, *C.float, *C.int32_t, *C.char, unsafe.Pointer for void*.
//  2. Status. Every export (but grw_free, which cannot fail) returns C.int,
//     chosen from the Go error's class in one place (statusOf):
//     GRW_OK (0) on success;
//     GRW_EINVAL (1) for anything the caller got wrong (bad JSON, invalid
//     option, unknown handle, NULL pointer, wrong length, released Arrow
//     array; goreweight.ErrInvalid and every error not classed below);
//     GRW_EINTERNAL (2) for a recovered Go panic (a goreweight bug);
//     GRW_EEMPTY (3) for an empty batch (goreweight.ErrEmpty);
//     GRW_ENONFINITE (4) for non-finite losses under "raise", or a batch
//     whose losses are all non-finite (goreweight.ErrNonFinite);
//     GRW_EINTR (5) for a grw_train run stopped by SIGINT, its checkpoint
//     written (train.ErrInterrupted);
//     GRW_EIO (6) for a file that could not be read or written (an
//     *fs.PathError, *os.LinkError or *os.SyscallError in the chain) or
//     whose content is corrupt (tensorfile.ErrFormat: a checkpoint or
//     parameter file; data.ErrData: a data file that does not parse).
//     Codes 3 and 4 are bad arguments too: a caller that only tells success
//     from failure can treat every nonzero status as an error.
//  3. Errors. The last parameter of every export is `char **err`. On failure,
//     if err is not NULL, *err receives a malloc'd, NUL-terminated message
//     that the caller frees with grw_free; on success *err is set to NULL.
//     There is no global "last error": the message travels with the call, so
//     threads never see each other's errors.
//  4. No panic crosses the boundary. The first statement of every export is
//     `defer guard(&status, err)()` (the result must be named `status`): it
//     recovers any panic, including a memory fault in Go code
//     (debug.SetPanicOnFault), and turns it into GRW_EINTERNAL. Return with
//     `return done(err, e)` where e is the Go error or nil (or return one of
//     the shared bodies newHandleOut, jsonOut, doubleOut, withString, which
//     end so). Keep the body a
//     call to a Go-typed function (plain Go types, unsafe.Pointer) so that
//     tests, which cannot use cgo, can call it.
//  5. Handles. Long-lived Go objects are opaque uint64_t handles from the
//     process-wide table in handles.go: newHandle(obj), lookup[*T](h),
//     withObject(h, f) (lookup and hold the object's lock),
//     grw_close(h) for every kind. 0 is never a valid handle, and a closed
//     handle's number is never reused. Each object embeds a sync.Mutex
//     that every export holds while using it, so concurrent calls on one
//     handle are safe (and serialised).
//  6. Memory. Go never keeps a pointer it was given past the call, and
//     never hands Go memory to C: strings going out are C.CString (freed by
//     the caller with grw_free), arrays going out are written into buffers
//     the caller allocated. Pointers coming in are checked for NULL and
//     lengths for sign and agreement before use.
//  7. JSON in, JSON out. Configuration is the JSON form of the core's
//     Options and Config, decoded on top of goreweight.DefaultOptions /
//     DefaultConfig (a key left out takes its default; "delta": 0,
//     "strategy": "" and unknown fields are errors) and forwarded: every
//     validation rule lives in the core. Results with structure
//     (stats, state, lists) are JSON strings. Stats JSON may contain the
//     tokens NaN, Infinity and -Infinity (Python's json reads them).
//  8. The generated header concatenates every file's cgo preamble, so each
//     macro or type is defined in exactly one preamble (status codes here,
//     struct grw_weights_args in packed.go, struct grw_masked_args and the
//     GRW_MASK_* flags in masked.go); other preambles include
//     standard headers only.
//
// A process forked after the library was loaded must not call into it: the
// child has no Go runtime threads and would hang. The Python package guards
// against this; C callers must do the same.
package main

/*
#include <stdint.h>
#include <stdlib.h>

// Status codes returned by every grw_* function (see capi's package doc).
#define GRW_OK 0         // success
#define GRW_EINVAL 1     // a bad argument: the message names it
#define GRW_EINTERNAL 2  // a recovered Go panic: a goreweight bug, please report it
#define GRW_EEMPTY 3     // an empty batch
#define GRW_ENONFINITE 4 // non-finite losses under "raise", or all losses non-finite
#define GRW_EINTR 5      // grw_train interrupted by SIGINT; its checkpoint is written
#define GRW_EIO 6        // a file could not be read or written, or is corrupt
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

// Version is the version of the library (and of the Python package that
// bundles it).
const Version = "0.1.0"

// Status codes, equal to the C macros GRW_OK ... GRW_EIO.
const (
	statusOK        = 0
	statusInvalid   = 1
	statusInternal  = 2
	statusEmpty     = 3
	statusNonFinite = 4
	statusInterrupt = 5
	statusIO        = 6
)

func main() {}

// errNullHandleOut is the error for a NULL handle out-parameter.
var errNullHandleOut = errInvalid("goreweight: handle (the out-parameter) is NULL")

// argError is a bad argument found by capi itself (a NULL pointer, a bad
// length, a released Arrow array): it Is goreweight.ErrInvalid, like the
// core's, and unwraps to its cause.
type argError struct {
	msg   string
	cause error
}

func (e *argError) Error() string        { return e.msg }
func (e *argError) Unwrap() error        { return e.cause }
func (e *argError) Is(target error) bool { return target == goreweight.ErrInvalid }

// errInvalid returns a bad-argument error with message msg.
func errInvalid(msg string) error { return &argError{msg: msg} }

// errInvalidf returns a bad-argument error with a formatted message; a %w
// verb makes the wrapped error its cause.
func errInvalidf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &argError{msg: err.Error(), cause: errors.Unwrap(err)}
}

// statusOf is the one mapping from Go errors to C status codes. The more
// specific classes are tested first: ErrEmpty and ErrNonFinite are also
// ErrInvalid.
func statusOf(e error) int {
	var ie internalError
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case e == nil:
		return statusOK
	case errors.As(e, &ie):
		return statusInternal
	case errors.Is(e, train.ErrInterrupted):
		return statusInterrupt
	case errors.Is(e, goreweight.ErrEmpty):
		return statusEmpty
	case errors.Is(e, goreweight.ErrNonFinite):
		return statusNonFinite
	case errors.As(e, &pe), errors.As(e, &le), errors.As(e, &se),
		errors.Is(e, tensorfile.ErrFormat), errors.Is(e, data.ErrData):
		// a file that cannot be read, or whose content is corrupt (a
		// checkpoint, a parameter file, a data file that does not parse)
		return statusIO
	}
	return statusInvalid
}

// internalError marks an error as a recovered panic.
type internalError struct{ msg string }

func (e internalError) Error() string { return e.msg }

// guard is deferred first by every export, as `defer guard(&status, err)()`.
// It makes a memory fault in Go code a panic for the duration of the call
// (debug.SetPanicOnFault) and returns the deferred function, which recovers
// any panic into GRW_EINTERNAL with its message in *err.
func guard(status *C.int, err **C.char) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			*status = done(err, internalError{fmt.Sprintf("goreweight: internal error (please report it): %v", p)})
		}
	}
}

// done stores e's message in *err (if err is not NULL) and returns
// statusOf(e).
func done(err **C.char, e error) C.int {
	if err != nil {
		*err = nil
		if e != nil {
			*err = C.CString(e.Error())
		}
	}
	return C.int(statusOf(e))
}

// cString returns a malloc'd copy of b with a terminating NUL.
func cString(b []byte) *C.char {
	p := (*byte)(C.malloc(C.size_t(len(b) + 1)))
	s := unsafe.Slice(p, len(b)+1)
	copy(s, b)
	s[len(b)] = 0
	return (*C.char)(unsafe.Pointer(p))
}

// setOut stores a malloc'd copy of b in *out; out must not be NULL.
func setOut(out **C.char, b []byte) error {
	if out == nil {
		return errInvalid("goreweight: output pointer is NULL")
	}
	*out = cString(b)
	return nil
}

// goString returns the C string p, or an error naming it when p is NULL.
func goString(p *C.char, name string) (string, error) {
	if p == nil {
		return "", errInvalidf("goreweight: %s is NULL", name)
	}
	return C.GoString(p), nil
}

// The bodies that many exports share. An export still defers guard itself
// (the named status is its own) and then returns one of these, so that
// each rule (check the out-parameter, call, store only on success, report
// through done) is written once.

// newHandleOut is the body of an export that creates an object from a
// JSON string argument (named name in errors) and stores its handle in
// *handle: create is called only when both pointers are given.
func newHandleOut(arg *C.char, name string, handle *C.uint64_t, err **C.char, create func(string) (uint64, error)) C.int {
	s, e := goString(arg, name)
	if e == nil && handle == nil {
		e = errNullHandleOut
	}
	if e != nil {
		return done(err, e)
	}
	h, e := create(s)
	if e == nil {
		*handle = C.uint64_t(h)
	}
	return done(err, e)
}

// jsonOut is the body of an export that stores a JSON result of handle h
// in *out (free with grw_free); *out is written only on success.
func jsonOut(h C.uint64_t, out **C.char, err **C.char, get func(uint64) ([]byte, error)) C.int {
	b, e := get(uint64(h))
	if e == nil {
		e = setOut(out, b)
	}
	return done(err, e)
}

// doubleOut is the body of an export that stores a number of handle h in
// *out; a NULL out is refused (naming the out-parameter name) before get
// runs.
func doubleOut(h C.uint64_t, out *C.double, name string, err **C.char, get func(uint64) (float64, error)) C.int {
	if out == nil {
		return done(err, errInvalidf("goreweight: %s (the out-parameter) is NULL", name))
	}
	v, e := get(uint64(h))
	if e == nil {
		*out = C.double(v)
	}
	return done(err, e)
}

// withString is the body of an export that passes a C string argument
// (named name in errors) to set on handle h.
func withString(h C.uint64_t, arg *C.char, name string, err **C.char, set func(uint64, string) error) C.int {
	s, e := goString(arg, name)
	if e == nil {
		e = set(uint64(h), s)
	}
	return done(err, e)
}

// grw_free frees memory the library returned (error messages, JSON
// strings). NULL is ignored.
//
//export grw_free
func grw_free(p unsafe.Pointer) {
	C.free(p)
}

// grw_version stores the library version, e.g. "0.1.0 (go1.26.0)", in *out
// (free with grw_free).
//
//export grw_version
func grw_version(out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, setOut(out, []byte(Version+" ("+runtime.Version()+")")))
}

// grw_strategies stores the registered strategy names as a JSON list in
// *out (free with grw_free).
//
//export grw_strategies
func grw_strategies(out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	b, e := json.Marshal(goreweight.Strategies())
	if e != nil {
		return done(err, e)
	}
	return done(err, setOut(out, b))
}

// grw_max_weight_bound stores in *out the largest weight any batch of m
// finite losses can get at temperature r with score range d (the core's
// MaxWeightBound).
//
//export grw_max_weight_bound
func grw_max_weight_bound(m C.int64_t, d C.double, r C.double, out *C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	v, e := maxWeightBound(int64(m), float64(d), float64(r))
	if e == nil {
		if out == nil {
			e = errInvalid("goreweight: out is NULL")
		} else {
			*out = C.double(v)
		}
	}
	return done(err, e)
}

// grw_close closes a handle of any kind. Calls already running on it finish
// normally; later calls get GRW_EINVAL.
//
//export grw_close
func grw_close(h C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, closeHandle(uint64(h)))
}
