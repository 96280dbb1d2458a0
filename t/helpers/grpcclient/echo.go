package main

// The laws of lib/grpcserver.c, checked through t/unit/grpc_echo with
// grpc-go as Plakar configures it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

const messageMax = 4 << 20

func fail(format string, a ...any) {
	fmt.Printf("echo: "+format+"\n", a...)
	os.Exit(1)
}

var rawStream = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

func unary(p *plugin, method string, in []byte, opts ...grpc.CallOption) ([]byte, error) {
	var out []byte
	opts = append(opts, grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(64<<20))
	err := p.cc.Invoke(context.Background(), method, in, &out, opts...)
	return out, err
}

func wantCode(err error, code codes.Code, what string) {
	if status.Code(err) != code {
		fail("%s: want %v, got %v", what, code, err)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// peak RSS of the server, in KiB
func vmHWM(p *plugin) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

func echo(p *plugin) {
	laws := 0
	law := func(name string) { laws++; fmt.Println("ok:", name) }

	for _, n := range []int{0, 1, 100000, 1 << 20, messageMax} {
		out, err := unary(p, "/echo.Echo/Unary", pattern(n))
		if err != nil || !bytes.Equal(out, pattern(n)) {
			fail("unary of %d bytes: %d back, %v", n, len(out), err)
		}
	}
	law("a unary call returns its request, up to 4 MiB")

	_, err := unary(p, "/echo.Echo/Unary", pattern(messageMax+1))
	wantCode(err, codes.ResourceExhausted, "4 MiB + 1")
	law("a message over 4 MiB is RESOURCE_EXHAUSTED")

	_, err = unary(p, "/echo.Echo/Nope", nil)
	wantCode(err, codes.Unimplemented, "unknown method")
	law("an unknown method is UNIMPLEMENTED")

	_, err = unary(p, "/echo.Echo/Unary", pattern(1000), grpc.UseCompressor("gzip"))
	wantCode(err, codes.Unimplemented, "compressed")
	law("a compressed message is UNIMPLEMENTED")

	ctx := context.Background()
	st, err := p.cc.NewStream(ctx, rawStream, "/echo.Echo/Stream", grpc.ForceCodec(rawCodec{}))
	check(err)
	for i := 1; i <= 1000; i++ {
		msg := pattern(i*13%70000 + 1)
		check(st.SendMsg(msg))
		var back []byte
		check(st.RecvMsg(&back))
		if !bytes.Equal(back, msg) {
			fail("stream message %d differs", i)
		}
	}
	check(st.SendMsg([]byte{}))
	var none []byte
	if err := st.RecvMsg(&none); !errors.Is(err, io.EOF) {
		fail("stream end: %v", err)
	}
	law("a stream returns 1000 messages in order, then OK")

	before := closedCalls(p)
	cctx, cancel := context.WithCancel(ctx)
	st, err = p.cc.NewStream(cctx, rawStream, "/echo.Echo/Stream", grpc.ForceCodec(rawCodec{}))
	check(err)
	check(st.SendMsg([]byte("x")))
	var x []byte
	check(st.RecvMsg(&x))
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for closedCalls(p) < before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := closedCalls(p); got < before+2 {
		fail("a cancelled stream was not closed on the server (%d, %d)", before, got)
	}
	law("a cancelled stream reaches the service as closed")

	const total = 256 << 20
	fl, err := p.cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/echo.Echo/Flood",
		grpc.ForceCodec(rawCodec{}))
	check(err)
	check(fl.SendMsg([]byte(strconv.Itoa(total))))
	check(fl.CloseSend())
	got := 0
	for {
		var m []byte
		err := fl.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		check(err)
		for i, b := range m {
			if b != byte((got+i)%251) {
				fail("flood byte %d differs", got+i)
			}
		}
		got += len(m)
		if got%(16<<20) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got != total {
		fail("flood: %d bytes, not %d", got, total)
	}
	law("256 MiB sent only as fast as they are read, every byte right")

	if hwm := vmHWM(p); hwm > 48*1024 {
		fail("peak RSS %d KiB: the server buffered what the client did not read", hwm)
	} else {
		fmt.Printf("server peak RSS %d KiB\n", hwm)
	}
	law("the server's memory stays bounded")
	fmt.Printf("echo: %d laws hold\n", laws)
}

func closedCalls(p *plugin) int {
	out, err := unary(p, "/echo.Echo/Closed", nil)
	check(err)
	n, err := strconv.Atoi(string(out))
	check(err)
	return n
}
