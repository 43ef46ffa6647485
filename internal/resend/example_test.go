package resend_test

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/internal/resend"
)

// A sender's frames 2 and 3 are lost with a broken stream; on the new one
// the receiver says it has frame 1, and the sender resends from there. The
// receiver drops frame 1 if it comes again.
func Example() {
	out := resend.NewOutbox(0)
	var in resend.Inbox
	for _, m := range []string{"hello", "ready", "batch"} {
		out.Push([]byte(m))
	}
	f, _ := out.Next()
	fresh, _ := in.Accept(f.Seq)
	fmt.Println("received", string(f.Data), fresh)
	out.Next() // frames 2 and 3 go out on a stream that breaks
	out.Next()

	// The resume: the receiver's last frame is the resend point.
	if err := out.Resume(in.Last()); err != nil {
		fmt.Println(err)
	}
	for f, ok := out.Next(); ok; f, ok = out.Next() {
		fresh, _ := in.Accept(f.Seq)
		fmt.Println("received", string(f.Data), fresh)
	}
	fresh, _ = in.Accept(1)
	fmt.Println("frame 1 again:", fresh)
	_, err := in.Accept(5)
	fmt.Println(err)
	// Output:
	// received hello true
	// received ready true
	// received batch true
	// frame 1 again: false
	// resend: frame sequence gap: frame 5 after frame 3 (frames lost in between)
}
