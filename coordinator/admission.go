package coordinator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// ErrOverloaded reports that a cap of [Config] (MaxSessions, MaxStreams) is
// reached: the call is refused at once with codes.ResourceExhausted rather
// than left to hang. Retry later, or raise the cap.
var ErrOverloaded = errors.New("coordinator: overloaded")

// reserveSession takes a live-session slot, or refuses with ErrOverloaded
// when MaxSessions are live or being created. The caller must call release
// once the session is live (or failed to start).
func (s *Server) reserveSession() (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, ErrShuttingDown
	}
	if m := s.cfg.MaxSessions; m > 0 && len(s.sessions)+s.pending >= m {
		s.log.Warn("session refused: live-session cap reached", "max_sessions", m)
		return nil, fmt.Errorf("%w: %d live sessions, the cap (--max-sessions) is %d", ErrOverloaded, len(s.sessions)+s.pending, m)
	}
	s.pending++
	return func() {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
	}, nil
}

// reserveStream takes a stream slot, or refuses with ErrOverloaded when
// MaxStreams party streams are open.
func (s *Server) reserveStream(peer string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.cfg.MaxStreams; m > 0 && s.streams >= m {
		s.log.Warn("stream refused: stream cap reached", "peer", peer, "max_streams", m)
		return nil, fmt.Errorf("%w: %d party streams open, the cap (--max-streams) is %d", ErrOverloaded, s.streams, m)
	}
	s.streams++
	return func() {
		s.mu.Lock()
		s.streams--
		s.mu.Unlock()
	}, nil
}

// LoggingCredentials wraps the server's transport credentials so that every
// refused TLS handshake (an expired, revoked or foreign client certificate,
// a plaintext client) is logged with the peer address and the reason; gRPC
// itself only drops the connection.
func LoggingCredentials(c credentials.TransportCredentials, log *slog.Logger) credentials.TransportCredentials {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &loggingCreds{TransportCredentials: c, log: log}
}

type loggingCreds struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (c *loggingCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.log.Warn("TLS handshake refused", "peer", raw.RemoteAddr().String(), "reason", err.Error())
	}
	return conn, info, err
}

func (c *loggingCreds) Clone() credentials.TransportCredentials {
	return &loggingCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}

// LoggingListener wraps a listener so that failed accepts (EMFILE: out of
// file descriptors) are logged; gRPC retries them silently. One line per
// distinct error per second at most.
func LoggingListener(l net.Listener, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &loggingListener{Listener: l, log: log}
}

type loggingListener struct {
	net.Listener
	log  *slog.Logger
	last string
	at   time.Time
}

func (l *loggingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		// Accept is called from one goroutine (grpc.Server.Serve).
		if msg := err.Error(); msg != l.last || time.Since(l.at) > time.Second {
			l.log.Error("accepting a connection failed", "addr", l.Addr().String(), "err", msg)
			l.last, l.at = msg, time.Now()
		}
	}
	return c, err
}

// ErrCertificateValidity reports that the coordinator's own certificate is
// not valid now.
var ErrCertificateValidity = errors.New("coordinator: certificate not valid now")

// CertExpiryWarning is how long before its expiry [CheckCertificate] warns
// about a certificate.
const CertExpiryWarning = 14 * 24 * time.Hour

// CheckCertificate checks the coordinator's own certificate chain at now:
// one not yet valid or expired is an error wrapping ErrCertificateValidity
// (unless allowInvalid, when it is logged as an error instead), one that
// expires within CertExpiryWarning is logged as a warning.
func CheckCertificate(ctx context.Context, chain []*x509.Certificate, now time.Time, allowInvalid bool, log *slog.Logger) error {
	for _, c := range chain {
		subject := c.Subject.CommonName
		var bad error
		switch {
		case now.Before(c.NotBefore):
			bad = fmt.Errorf("%w: %q is valid from %s", ErrCertificateValidity, subject, c.NotBefore.UTC().Format(time.RFC3339))
		case now.After(c.NotAfter):
			bad = fmt.Errorf("%w: %q expired at %s", ErrCertificateValidity, subject, c.NotAfter.UTC().Format(time.RFC3339))
		case c.NotAfter.Sub(now) < CertExpiryWarning:
			log.WarnContext(ctx, "certificate expires soon", "subject", subject, "not_after", c.NotAfter.UTC().Format(time.RFC3339),
				"days_left", int(c.NotAfter.Sub(now)/(24*time.Hour)))
		}
		if bad != nil {
			if !allowInvalid {
				return bad
			}
			log.ErrorContext(ctx, "serving with an invalid certificate (--allow-expired-cert)", "err", bad.Error())
		}
	}
	return nil
}
