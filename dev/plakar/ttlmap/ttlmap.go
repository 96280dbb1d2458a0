// Package ttlmap stands in for go.omarpolo.com/ttlmap, which the module
// proxy here does not serve: a map whose entries expire after a time.
package ttlmap

import (
	"sync"
	"time"
)

type entry[V any] struct {
	value   V
	expires time.Time
}

// Map is a map whose entries live for ttl after they were added.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[K]entry[V]
}

// New returns an empty map whose entries live for ttl.
func New[K comparable, V any](ttl time.Duration) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, m: make(map[K]entry[V])}
}

// Add stores v under k, replacing what was there.
func (t *Map[K, V]) Add(k K, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[k] = entry[V]{v, time.Now().Add(t.ttl)}
}

// Get returns the value under k unless it has expired.
func (t *Map[K, V]) Get(k K) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// AutoExpire drops expired entries in the background.
func (t *Map[K, V]) AutoExpire() {
	go func() {
		for range time.Tick(t.ttl) {
			now := time.Now()
			t.mu.Lock()
			for k, e := range t.m {
				if now.After(e.expires) {
					delete(t.m, k)
				}
			}
			t.mu.Unlock()
		}
	}()
}
