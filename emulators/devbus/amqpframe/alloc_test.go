package amqpframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// zeroWidthFrame builds an open frame whose field list is n arrays, each claiming count
// elements of a zero-width type (constructor elem) in a few bytes.
func zeroWidthFrame(n int, count uint32, elem []byte) []byte {
	var arrays []byte
	for range n {
		arrays = append(arrays, codeArray32)
		arrays = binary.BigEndian.AppendUint32(arrays, uint32(4+len(elem)))
		arrays = binary.BigEndian.AppendUint32(arrays, count)
		arrays = append(arrays, elem...)
	}
	body := []byte{codeDescribed, codeSmallUlong, descOpen, codeList32}
	body = binary.BigEndian.AppendUint32(body, uint32(4+len(arrays)))
	body = binary.BigEndian.AppendUint32(body, uint32(n))
	body = append(body, arrays...)
	frame := binary.BigEndian.AppendUint32(nil, uint32(HeaderSize+len(body)))
	frame = append(frame, 2, TypeAMQP, 0, 0)
	return append(frame, body...)
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestZeroWidthArraysCannotInflateAllocation: an array of zero-width elements claims any
// number of them in ten bytes. A 2 KiB frame of such arrays once made the decoder
// allocate 200 MiB; what one frame can claim is now bounded by its size.
func TestZeroWidthArraysCannotInflateAllocation(t *testing.T) {
	cases := []struct {
		name string
		elem []byte // the element constructor
	}{
		{"null", []byte{codeNull}},
		{"true", []byte{codeTrue}},
		{"uint0", []byte{codeUint0}},
		{"ulong0", []byte{codeUlong0}},
		{"list0", []byte{codeList0}},
		{"described null", []byte{codeDescribed, codeSmallUlong, 0x01, codeNull}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := zeroWidthFrame(2048/(9+len(tc.elem)), 65536, tc.elem)
			if len(frame) > 2100 {
				t.Fatalf("test frame is %d bytes, meant to be about 2 KiB", len(frame))
			}
			var err error
			n := allocated(func() { _, err = ReadFrame(bytes.NewReader(frame), 1<<16) })
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ReadFrame = %v, want a malformed-data error", err)
			}
			// 16 bytes of interface per element the frame may claim, with room to spare.
			if limit := uint64(64 * len(frame)); n > limit {
				t.Errorf("decoding a %d-byte frame allocated %d bytes (limit %d)", len(frame), n, limit)
			}
		})
	}
}

// TestZeroWidthArraysWithinTheAllowance: arrays of zero-width elements that the input's
// size pays for still decode, the allowance shared by every array of the value.
func TestZeroWidthArraysWithinTheAllowance(t *testing.T) {
	cases := []struct {
		name   string
		n      int
		count  uint32
		wantOK bool
	}{
		{"one small array", 1, 3, true},
		{"several arrays within the size", 4, 10, true},
		{"one array claiming more than the frame's size", 1, 200, false},
		{"arrays that together claim more than the frame's size", 20, 30, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := zeroWidthFrame(tc.n, tc.count, []byte{codeNull})
			body := frame[HeaderSize+3:] // the field list
			v, _, err := DecodeValue(body)
			if tc.wantOK != (err == nil) {
				t.Fatalf("DecodeValue(%d arrays of %d nulls in %d bytes) = %v, want ok %v", tc.n, tc.count, len(body), err, tc.wantOK)
			}
			if err != nil {
				return
			}
			l := v.([]any)
			if len(l) != tc.n || len(l[0].(Array).Values) != int(tc.count) {
				t.Errorf("decoded %d arrays of %d elements, want %d of %d", len(l), len(l[0].(Array).Values), tc.n, tc.count)
			}
		})
	}
}
