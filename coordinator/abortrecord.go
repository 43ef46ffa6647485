package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/mpsi-dev/mpsi/coordinator/store"
)

// Retries of an abort the store refused: a few at once with backoff, then
// in the background every abortRetryEvery until one succeeds.
const (
	abortRetries     = 4
	abortRetryFirst  = 50 * time.Millisecond
	abortRetryEvery  = 2 * time.Second
	abortWriteBudget = 10 * time.Second
)

// unrecordedAbort is an abort the store has not recorded yet.
type unrecordedAbort struct {
	reason string
	err    error // the store's last error
}

// recordAbort writes session id's abort to the store, retrying with
// backoff. When the store still refuses it, the abort is kept in memory
// (GetResult reports the session aborted, Ready reports the backlog), logged
// as an error, and retried in the background until it is recorded.
func (s *Server) recordAbort(id, reason string) {
	err := s.writeAbort(id, reason)
	for try, wait := 1, abortRetryFirst; err != nil && try < abortRetries; try, wait = try+1, wait*4 {
		s.log.Warn("recording abort failed, retrying", "session", id, "attempt", try, "err", err)
		select {
		case <-time.After(wait):
		case <-s.quit:
		}
		err = s.writeAbort(id, reason)
	}
	if err == nil {
		return
	}
	s.log.Error("abort NOT recorded in the store; retrying in the background, the session is reported aborted meanwhile",
		"session", id, "reason", reason, "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unrecorded[id] = unrecordedAbort{reason: reason, err: err}
	if !s.retrying && !s.closing {
		s.retrying = true
		s.wg.Add(1)
		go s.retryAborts()
	}
}

// writeAbort records one abort; an abort the store refuses as no longer
// applicable (the session is already final, or gone) counts as recorded.
func (s *Server) writeAbort(id, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), abortWriteBudget)
	defer cancel()
	err := s.cfg.Store.Abort(ctx, id, reason)
	if errors.Is(err, store.ErrState) || errors.Is(err, store.ErrNotFound) {
		s.log.Error("abort not applicable in the store", "session", id, "err", err)
		return nil
	}
	return err
}

// retryAborts retries the unrecorded aborts until none is left or the
// server shuts down (then each is logged with its reason: the next start
// marks those sessions aborted as interrupted).
func (s *Server) retryAborts() {
	defer s.wg.Done()
	t := time.NewTicker(abortRetryEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			s.mu.Lock()
			for id, u := range s.unrecorded {
				s.log.Error("shutting down with an abort not recorded in the store", "session", id, "reason", u.reason, "err", u.err)
			}
			s.retrying = false
			s.mu.Unlock()
			return
		case <-t.C:
		}
		s.mu.Lock()
		pending := make(map[string]unrecordedAbort, len(s.unrecorded))
		for id, u := range s.unrecorded {
			pending[id] = u
		}
		s.mu.Unlock()
		for id, u := range pending {
			err := s.writeAbort(id, u.reason)
			s.mu.Lock()
			if err == nil {
				delete(s.unrecorded, id)
				s.log.Info("abort recorded after retries", "session", id)
			} else {
				s.unrecorded[id] = unrecordedAbort{reason: u.reason, err: err}
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		if len(s.unrecorded) == 0 {
			s.retrying = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// unrecordedAbort returns session id's abort if the store has not recorded
// it yet.
func (s *Server) unrecordedAbort(id string) (unrecordedAbort, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.unrecorded[id]
	return u, ok
}
