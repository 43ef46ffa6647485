package terminal

import (
	"testing"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/stretchr/testify/require"
)

func TestNewValidates(t *testing.T) {
	k, err := recordkey.GenerateTerminalKey()
	require.NoError(t, err)
	ev, err := recordkey.GenerateEvaluator("hospital-a")
	require.NoError(t, err)
	cloud := identitypb.NewCloudClient(nil)
	relay := identitypb.NewRelayClient(nil)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"valid", Config{Name: "t", Key: k, Cloud: cloud, Hospitals: []Hospital{{Name: "hospital-a", OPRFKey: ev.PublicKey(), Relay: relay}}}, true},
		{"no name", Config{Key: k, Cloud: cloud}, false},
		{"no key", Config{Name: "t", Cloud: cloud}, false},
		{"no cloud", Config{Name: "t", Key: k}, false},
		{"identity OPRF key", Config{Name: "t", Key: k, Cloud: cloud, Hospitals: []Hospital{{Name: "hospital-a", OPRFKey: make([]byte, 32), Relay: relay}}}, false},
		{"no relay", Config{Name: "t", Key: k, Cloud: cloud, Hospitals: []Hospital{{Name: "hospital-a", OPRFKey: ev.PublicKey()}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
