package main

import (
	"sync"
)

// An object is anything a handle refers to. Each object guards itself with
// its own mutex (an embedded sync.Mutex), held by every export while it
// uses the object (see withObject).
type object interface {
	// kind names the object in error messages ("weigher", "reweighter").
	kind() string
	sync.Locker
}

// handles is the process-wide table of live objects. Handles are never
// reused, so a stale handle is an error rather than someone else's object.
var handles = struct {
	sync.RWMutex
	next uint64
	m    map[uint64]object
}{m: map[uint64]object{}}

// newHandle registers o and returns its handle (never 0).
func newHandle(o object) uint64 {
	handles.Lock()
	defer handles.Unlock()
	handles.next++
	handles.m[handles.next] = o
	return handles.next
}

// find returns the object of handle h, of any kind.
func find(h uint64) (object, error) {
	handles.RLock()
	o, ok := handles.m[h]
	handles.RUnlock()
	if !ok {
		return nil, errInvalidf("goreweight: handle %d is unknown or closed", h)
	}
	return o, nil
}

// lookup returns the object of handle h if it is a T.
func lookup[T object](h uint64) (T, error) {
	var zero T
	o, err := find(h)
	if err != nil {
		return zero, err
	}
	t, ok := o.(T)
	if !ok {
		return zero, errInvalidf("goreweight: handle %d is a %s, not a %s", h, o.kind(), zero.kind())
	}
	return t, nil
}

// withObject runs f on the object of handle h, if it is a T, under the
// object's lock.
func withObject[T object](h uint64, f func(o T) error) error {
	o, err := lookup[T](h)
	if err != nil {
		return err
	}
	o.Lock()
	defer o.Unlock()
	return f(o)
}

// closeHandle forgets handle h. Calls running on its object finish normally.
func closeHandle(h uint64) error {
	handles.Lock()
	defer handles.Unlock()
	if _, ok := handles.m[h]; !ok {
		return errInvalidf("goreweight: handle %d is unknown or closed", h)
	}
	delete(handles.m, h)
	return nil
}

// liveHandles returns the number of open handles (for tests and leak checks).
func liveHandles() int {
	handles.RLock()
	defer handles.RUnlock()
	return len(handles.m)
}
