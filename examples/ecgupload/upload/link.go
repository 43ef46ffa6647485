package upload

import (
	"fmt"
	"time"
)

// LinkType is the network a client reports it is on. The server uses it,
// until it has measured the client, to estimate how fast a transfer will
// go; the client uses it to pick its chunk size.
type LinkType uint8

// Link types.
const (
	LinkUnknown  LinkType = 0
	LinkWired    LinkType = 1
	LinkWiFi     LinkType = 2
	LinkCellular LinkType = 3
	LinkPoor     LinkType = 4 // a weak or metered connection
)

// String returns the link type's name.
func (l LinkType) String() string {
	switch l {
	case LinkUnknown:
		return "unknown"
	case LinkWired:
		return "wired"
	case LinkWiFi:
		return "wifi"
	case LinkCellular:
		return "cellular"
	case LinkPoor:
		return "poor"
	}
	return fmt.Sprintf("LinkType(%d)", uint8(l))
}

// ParseLinkType parses a link type name.
func ParseLinkType(s string) (LinkType, error) {
	for l := LinkUnknown; l <= LinkPoor; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%w: link type %q (want unknown, wired, wifi, cellular or poor)", ErrMalformed, s)
}

// ExpectedRate is the throughput, in bytes per second, assumed for a link
// type before anything is measured.
func (l LinkType) ExpectedRate() float64 {
	switch l {
	case LinkWired:
		return 50e6
	case LinkWiFi:
		return 10e6
	case LinkCellular:
		return 1e6
	case LinkPoor:
		return 100e3
	}
	return 5e6
}

// chunkTime is how long one chunk should take on the wire: long enough to
// amortise per-chunk costs, short enough that a broken link loses little
// and a preemption is noticed quickly.
const chunkTime = 250 * time.Millisecond

// ChunkSizeFor picks a stream chunk size from the link: the bytes the link
// moves in a quarter of a second at rate (bytes per second, as measured; if
// not positive, the link type's expected rate), rounded down to a power of
// two between 16 KiB and MaxChunkSize.
func ChunkSizeFor(link LinkType, rate float64) int {
	if rate <= 0 {
		rate = link.ExpectedRate()
	}
	want := rate * chunkTime.Seconds()
	size := MaxChunkSize
	for size > 16<<10 && float64(size) > want {
		size /= 2
	}
	return size
}

// Role is what a client credential is for. The server assigns a job's
// urgency from the role of the credential that sent it; a client may ask
// for less, never for more.
type Role uint8

// Roles.
const (
	RoleRoutine   Role = 1 // scheduled recordings, Holter uploads: urgency at most 1
	RoleClinic    Role = 2 // clinic and ward devices: at most 5
	RoleEmergency Role = 3 // emergency department, ambulances: at most 9
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleRoutine:
		return "routine"
	case RoleClinic:
		return "clinic"
	case RoleEmergency:
		return "emergency"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// MaxUrgency is the highest urgency a job sent under the role gets.
func (r Role) MaxUrgency() uint8 {
	switch r {
	case RoleRoutine:
		return 1
	case RoleClinic:
		return 5
	case RoleEmergency:
		return MaxUrgency
	}
	return 0
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	for r := RoleRoutine; r <= RoleEmergency; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: role %q (want routine, clinic or emergency)", ErrMalformed, s)
}

// Credential is what the server knows about a client: its secret, its role
// and when the credential stops being accepted.
type Credential struct {
	Secret  []byte
	Role    Role
	Expires time.Time // required
}
