package amqpframe

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the frame decoder. It must never panic, and a
// frame it accepts must encode again into bytes that decode to the same performative.
// The seed corpus (testdata/fuzz/FuzzReadFrame) holds valid frames of every kind and a
// few broken ones.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range samplePerformatives() {
		b, err := AppendFrame(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) &&
					!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type: %v", err)
				}
				return
			}
			enc, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encoding a decoded frame: %v", err)
			}
			// The encoder may write a value in fewer bytes than it came in (an array32 as
			// an array8, a ulong 0 as ulong0), so the re-encoded frame decodes with the
			// allowance of zero-width elements the original had.
			again, err := parseFrame(enc, max(len(data), len(enc)))
			if err != nil {
				t.Fatalf("decoding a re-encoded frame: %v", err)
			}
			if (fr.Body == nil) != (again.Body == nil) || fr.Body != nil && Name(fr.Body) != Name(again.Body) ||
				!bytes.Equal(fr.Payload, again.Payload) || fr.Channel != again.Channel || fr.Type != again.Type {
				t.Fatalf("re-encoded frame differs: %#v vs %#v", fr, again)
			}
		}
	})
}
