package upload

import (
	"crypto/cipher"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Limits of the request encoding.
const (
	// MaxNameLen is the longest client, record or file name.
	MaxNameLen = 64
	// MinCredentialSize and MaxCredentialSize bound a credential.
	MinCredentialSize = 16
	MaxCredentialSize = 64
	// MaxFiles is the most files one recording may hold.
	MaxFiles = 16
	// MaxUrgency is the highest urgency a client may ask for.
	MaxUrgency = 9
	// MinChunkSize and MaxChunkSize bound the chunk size of a stream upload.
	MinChunkSize = 4 << 10
	MaxChunkSize = 4 << 20
	// MaxChunks is the most chunks one job may have.
	MaxChunks = 1 << 20
	// MaxRecordingSize is the largest recording the encoding admits; a
	// server may set a lower limit.
	MaxRecordingSize = 1 << 40
)

const requestVersion = 1

// A Mode is how a recording travels.
type Mode uint8

const (
	// ModeUnary sends the sealed recording in one call ("web service").
	ModeUnary Mode = 1
	// ModeStream sends sealed chunks over a stream ("socket").
	ModeStream Mode = 2
)

// String returns "unary" or "stream".
func (m Mode) String() string {
	switch m {
	case ModeUnary:
		return "unary"
	case ModeStream:
		return "stream"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// FileInfo describes one file of a recording.
type FileInfo struct {
	Name   string
	Size   uint64
	SHA256 [DigestSize]byte
}

// Request is the upload request a client seals under the data key. Its
// Credential is secret; the other fields are metadata the server may log.
type Request struct {
	ClientID   string
	Credential []byte // secret
	Time       time.Time
	JobID      [JobIDSize]byte // random; doubles as the replay nonce
	Mode       Mode
	Urgency    uint8
	Record     string
	Files      []FileInfo
	ChunkSize  uint32 // 0 in ModeUnary
	Digest     [DigestSize]byte
}

// TotalSize returns the summed size of the files.
func (r *Request) TotalSize() uint64 {
	var n uint64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// ChunkCount returns the number of chunks of the recording: 1 in ModeUnary.
func (r *Request) ChunkCount() uint32 {
	if r.Mode != ModeStream || r.ChunkSize == 0 {
		return 1
	}
	total := r.TotalSize()
	n := (total + uint64(r.ChunkSize) - 1) / uint64(r.ChunkSize)
	if n == 0 {
		n = 1
	}
	return uint32(n)
}

// chunkLen returns the plaintext length of chunk i.
func (r *Request) chunkLen(i uint32) int {
	total := r.TotalSize()
	if r.Mode != ModeStream {
		return int(total)
	}
	start := uint64(i) * uint64(r.ChunkSize)
	end := min(start+uint64(r.ChunkSize), total)
	return int(end - start)
}

// validName reports whether s is a safe file or record name: 1 to
// MaxNameLen characters from [A-Za-z0-9._-], not starting with a dot.
func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validate checks every field against the limits.
func (r *Request) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: request: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if !validName(r.ClientID) {
		return bad("invalid client id")
	}
	if len(r.Credential) < MinCredentialSize || len(r.Credential) > MaxCredentialSize {
		return bad("credential of %d bytes", len(r.Credential))
	}
	if !validName(r.Record) {
		return bad("invalid record name")
	}
	if r.Urgency > MaxUrgency {
		return bad("urgency %d above %d", r.Urgency, MaxUrgency)
	}
	if len(r.Files) == 0 || len(r.Files) > MaxFiles {
		return bad("%d files", len(r.Files))
	}
	seen := map[string]bool{}
	var total uint64
	for _, f := range r.Files {
		if !validName(f.Name) || f.Name == ManifestName {
			return bad("invalid file name")
		}
		if seen[f.Name] {
			return bad("duplicate file name %q", f.Name)
		}
		seen[f.Name] = true
		if f.Size > MaxRecordingSize-total {
			return bad("recording larger than %d bytes", uint64(MaxRecordingSize))
		}
		total += f.Size
	}
	switch r.Mode {
	case ModeUnary:
		if r.ChunkSize != 0 {
			return bad("chunk size in unary mode")
		}
	case ModeStream:
		if r.ChunkSize < MinChunkSize || r.ChunkSize > MaxChunkSize {
			return bad("chunk size %d", r.ChunkSize)
		}
		if (total+uint64(r.ChunkSize)-1)/uint64(r.ChunkSize) > MaxChunks {
			return bad("more than %d chunks", MaxChunks)
		}
	default:
		return bad("unknown mode %d", r.Mode)
	}
	return nil
}

// MarshalBinary encodes r canonically. It fails if r violates a limit.
func (r *Request) MarshalBinary() ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(requestVersion)
	addString := func(s []byte) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s) })
	}
	addString([]byte(r.ClientID))
	addString(r.Credential)
	b.AddUint64(uint64(r.Time.UnixNano()))
	b.AddBytes(r.JobID[:])
	b.AddUint8(uint8(r.Mode))
	b.AddUint8(r.Urgency)
	addString([]byte(r.Record))
	b.AddUint8(uint8(len(r.Files)))
	for _, f := range r.Files {
		addString([]byte(f.Name))
		b.AddUint64(f.Size)
		b.AddBytes(f.SHA256[:])
	}
	b.AddUint32(r.ChunkSize)
	b.AddBytes(r.Digest[:])
	return b.Bytes()
}

// UnmarshalRequest decodes a request encoded by MarshalBinary. It rejects
// trailing bytes, unknown versions and any field outside the limits, so an
// accepted input re-encodes to the same bytes. On error it returns nil and
// an error wrapping ErrMalformed.
func UnmarshalRequest(data []byte) (*Request, error) {
	s := cryptobyte.String(data)
	var (
		r                      Request
		version, mode, nfiles  uint8
		clientID, cred, record cryptobyte.String
		ts                     uint64
		jobID, digest          []byte
	)
	if !s.ReadUint8(&version) || version != requestVersion {
		return nil, fmt.Errorf("%w: request: bad version", ErrMalformed)
	}
	if !s.ReadUint8LengthPrefixed(&clientID) || !s.ReadUint8LengthPrefixed(&cred) ||
		!s.ReadUint64(&ts) || !s.ReadBytes(&jobID, JobIDSize) ||
		!s.ReadUint8(&mode) || !s.ReadUint8(&r.Urgency) ||
		!s.ReadUint8LengthPrefixed(&record) || !s.ReadUint8(&nfiles) {
		return nil, fmt.Errorf("%w: request: truncated", ErrMalformed)
	}
	if nfiles == 0 || nfiles > MaxFiles {
		return nil, fmt.Errorf("%w: request: %d files", ErrMalformed, nfiles)
	}
	r.Files = make([]FileInfo, nfiles)
	for i := range r.Files {
		var name cryptobyte.String
		var sum []byte
		if !s.ReadUint8LengthPrefixed(&name) || !s.ReadUint64(&r.Files[i].Size) || !s.ReadBytes(&sum, DigestSize) {
			return nil, fmt.Errorf("%w: request: truncated file entry", ErrMalformed)
		}
		r.Files[i].Name = string(name)
		copy(r.Files[i].SHA256[:], sum)
	}
	if !s.ReadUint32(&r.ChunkSize) || !s.ReadBytes(&digest, DigestSize) {
		return nil, fmt.Errorf("%w: request: truncated", ErrMalformed)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: request: %d trailing bytes", ErrMalformed, len(s))
	}
	r.ClientID = string(clientID)
	r.Credential = append([]byte(nil), cred...)
	r.Time = time.Unix(0, int64(ts))
	copy(r.JobID[:], jobID)
	r.Mode = Mode(mode)
	r.Record = string(record)
	copy(r.Digest[:], digest)
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func sealRequest(aead cipher.AEAD, epoch uint64, enc []byte, r *Request) ([]byte, error) {
	pt, err := r.MarshalBinary()
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return aead.Seal(nil, nonce(purposeRequest, 0), pt, requestAD(epoch, enc)), nil
}

func openRequest(aead cipher.AEAD, epoch uint64, enc, sealed []byte) (*Request, error) {
	pt, err := aead.Open(nil, nonce(purposeRequest, 0), sealed, requestAD(epoch, enc))
	if err != nil {
		return nil, fmt.Errorf("%w: upload request", ErrDecrypt)
	}
	defer clear(pt)
	return UnmarshalRequest(pt)
}
