// grpcclient drives a plugin as Plakar does: it starts the program with
// its stdin and stdout as the connection, and speaks gRPC over them with
// grpc-go at Plakar's version and the importer client that Plakar itself
// uses (integration-grpc). For the tests of plakar-pg-importer and of its
// gRPC server.
//
//	grpcclient PLUGIN init CONFIG           print the InitResponse
//	grpcclient PLUGIN ping CONFIG           Init, then Ping
//	grpcclient PLUGIN import CONFIG DIR     rebuild the records in DIR, but /manifest.json
//	grpcclient PLUGIN read CONFIG           read every record, keep nothing
//	grpcclient PLUGIN drop CONFIG N         read N records, then hang up
//	grpcclient PLUGIN drop-open CONFIG N    hang up in an Open of 2 MiB or more
//	grpcclient PLUGIN cancel-open CONFIG N  cancel an Open of 2 MiB or more mid-way,
//	                                        ack its record, read on
//	grpcclient PLUGIN stall CONFIG N SECS   stop reading after N records
//	grpcclient PLUGIN raw METHOD HEX        one unary call with these bytes
//	grpcclient PLUGIN big CONFIG BYTES      Init with a value of BYTES bytes
//	grpcclient PLUGIN echo                  the transport's laws, on t/grpc_echo
//
// CONFIG is a JSON object of strings. A gRPC error prints
// "grpc-error CODE: MESSAGE" and exits 2. The last line says how the
// plugin ended once the connection was closed: "plugin: exit N".
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gconn "github.com/PlakarKorp/integration-grpc"
	"github.com/PlakarKorp/integration-grpc/importer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	goModeDir     = 1 << 31
	goModeSymlink = 1 << 27
)

// stdioConn is the plugin's stdout and stdin as one connection.
type stdioConn struct {
	r *os.File
	w *os.File
}

func (c *stdioConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *stdioConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *stdioConn) Close() error {
	c.w.Close()
	return c.r.Close()
}
func (c *stdioConn) LocalAddr() net.Addr                { return &net.UnixAddr{Name: "stdio", Net: "unix"} }
func (c *stdioConn) RemoteAddr() net.Addr               { return &net.UnixAddr{Name: "stdio", Net: "unix"} }
func (c *stdioConn) SetDeadline(t time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return nil }

type plugin struct {
	cmd  *exec.Cmd
	conn *stdioConn
	cc   *grpc.ClientConn
}

func start(path string) *plugin {
	cmd := exec.Command(path)
	cmd.Stderr = os.Stderr
	w, err := cmd.StdinPipe()
	check(err)
	r, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	conn := &stdioConn{r: r.(*os.File), w: w.(*os.File)}
	cc, err := grpc.NewClient("127.0.0.1:0",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithIdleTimeout(0),
		grpc.WithContextDialer(func(ctx context.Context, s string) (net.Conn, error) {
			return conn, nil
		}))
	check(err)
	return &plugin{cmd, conn, cc}
}

// hangUp closes the connection and says how the plugin ended.
func (p *plugin) hangUp() {
	p.conn.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		st := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if st.Signaled() {
			fmt.Printf("plugin: signal %d\n", st.Signal())
		} else {
			fmt.Printf("plugin: exit %d\n", st.ExitStatus())
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		fmt.Println("plugin: still running 15 s after the hang-up")
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcclient:", err)
		os.Exit(1)
	}
}

// UPPER_SNAKE as gRPC's documentation names codes.
func codeName(err error) string {
	s := status.Convert(err).Code().String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

func grpcError(p *plugin, err error) {
	fmt.Printf("grpc-error %s: %s\n", codeName(err), status.Convert(err).Message())
	p.hangUp()
	os.Exit(2)
}

func config(arg string) map[string]string {
	m := map[string]string{}
	check(json.Unmarshal([]byte(arg), &m))
	return m
}

func initPlugin(p *plugin, client importer.ImporterClient, cfg map[string]string) *importer.InitResponse {
	resp, err := client.Init(context.Background(), &importer.InitRequest{
		Options: &importer.Options{Hostname: "test", Os: "linux"},
		Proto:   "postgres+bin",
		Config:  cfg,
	})
	if err != nil {
		grpcError(p, err)
	}
	return resp
}

func readContent(client importer.ImporterClient, rec *gconn.Record) ([]byte, error) {
	st, err := client.Open(context.Background(), &importer.OpenRequest{Record: &gconn.Record{Pathname: rec.Pathname}})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return b.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		b.Write(r.Chunk)
	}
}

type dirTime struct {
	path  string
	perm  os.FileMode
	mtime time.Time
}

// write one record below outdir, as Plakar's restore would.
func write(outdir string, rec *gconn.Record, content []byte, dirs *[]dirTime) {
	if rec.Pathname == "/manifest.json" || rec.Error != "" {
		return
	}
	path := filepath.Join(outdir, rec.Pathname)
	fi := rec.FileInfo
	perm := os.FileMode(fi.Mode & 0o7777)
	mtime := fi.ModTime.AsTime()
	switch {
	case fi.Mode&goModeDir != 0:
		check(os.MkdirAll(path, 0o700))
		*dirs = append(*dirs, dirTime{path, perm, mtime})
	case fi.Mode&goModeSymlink != 0:
		check(os.Symlink(rec.Target, path))
	default:
		check(os.MkdirAll(filepath.Dir(path), 0o700))
		check(os.WriteFile(path, content, 0o600))
		check(os.Chmod(path, perm))
		check(os.Chtimes(path, mtime, mtime))
	}
}

// importAll reads records as Plakar does: each one's content, then its
// ack. stop, if not nil, is asked after each record whether to give up.
func importAll(p *plugin, client importer.ImporterClient, outdir string, stop func(n int, rec *gconn.Record) bool) {
	stream, err := client.Import(context.Background())
	check(err)
	var dirs []dirTime
	records, files := 0, 0
	finished := false
	manifestVersion := any(nil)
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			grpcError(p, err)
		}
		if resp.Finished {
			finished = true
			break
		}
		rec := resp.Record
		records++
		if stop != nil && stop(records, rec) {
			return
		}
		var content []byte
		if rec.HasReader {
			content, err = readContent(client, rec)
			if err != nil {
				grpcError(p, err)
			}
			files++
			if int64(len(content)) != rec.FileInfo.Size {
				check(fmt.Errorf("%s: %d bytes, not %d", rec.Pathname, len(content), rec.FileInfo.Size))
			}
		}
		if rec.Pathname == "/manifest.json" {
			var m map[string]any
			check(json.Unmarshal(content, &m))
			manifestVersion = m["version"]
		} else if outdir != "" {
			write(outdir, rec, content, &dirs)
		}
		ack(p, stream, rec.Pathname)
	}
	stream.CloseSend()
	for i := len(dirs) - 1; i >= 0; i-- {
		check(os.Chmod(dirs[i].path, dirs[i].perm))
		check(os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime))
	}
	if _, err := client.Close(context.Background(), &importer.CloseRequest{}); err != nil {
		grpcError(p, err)
	}
	out, _ := json.Marshal(map[string]any{"records": records, "files": files,
		"finished": finished, "manifest_version": manifestVersion})
	fmt.Println(string(out))
}

// ack acknowledges a record.  A server that ended the call first makes
// Send return io.EOF: its status comes with Recv.
func ack(p *plugin, stream importer.Importer_ImportClient, path string) {
	err := stream.Send(&importer.ImportRequest{Result: &gconn.Result{Header: &gconn.Record{Pathname: path}}})
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			grpcError(p, rerr)
		}
		return
	}
	check(err)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	check(err)
	return n
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: grpcclient PLUGIN OP [ARG ...]")
		os.Exit(1)
	}
	p := start(os.Args[1])
	client := importer.NewImporterClient(p.cc)
	op, args := os.Args[2], os.Args[3:]
	switch op {
	case "init":
		r := initPlugin(p, client, config(args[0]))
		out, _ := json.Marshal(map[string]any{"origin": r.Origin, "type": r.Type, "root": r.Root, "flags": r.Flags})
		fmt.Println(string(out))
	case "ping":
		initPlugin(p, client, config(args[0]))
		if _, err := client.Ping(context.Background(), &importer.PingRequest{}); err != nil {
			grpcError(p, err)
		}
		fmt.Println("pong")
	case "import":
		initPlugin(p, client, config(args[0]))
		check(os.MkdirAll(args[1], 0o700))
		importAll(p, client, args[1], nil)
	case "read":
		initPlugin(p, client, config(args[0]))
		importAll(p, client, "", nil)
	case "drop":
		initPlugin(p, client, config(args[0]))
		n := atoi(args[1])
		importAll(p, client, "", func(i int, rec *gconn.Record) bool { return i >= n })
		fmt.Println("dropped")
	case "drop-open":
		initPlugin(p, client, config(args[0]))
		n := atoi(args[1])
		importAll(p, client, "", func(i int, rec *gconn.Record) bool {
			if i < n || !rec.HasReader || rec.FileInfo.Size < 2<<20 {
				return false
			}
			st, err := client.Open(context.Background(), &importer.OpenRequest{Record: &gconn.Record{Pathname: rec.Pathname}})
			check(err)
			_, err = st.Recv()
			check(err)
			return true
		})
		fmt.Println("dropped in an Open")
	case "cancel-open":
		initPlugin(p, client, config(args[0]))
		cancelOpen(p, client, atoi(args[1]))
	case "stall":
		initPlugin(p, client, config(args[0]))
		n := atoi(args[1])
		importAll(p, client, "", func(i int, rec *gconn.Record) bool {
			if i < n {
				return false
			}
			time.Sleep(time.Duration(atoi(args[2])) * time.Second)
			return true
		})
		fmt.Println("stalled")
	case "raw":
		in, err := hex.DecodeString(args[1])
		check(err)
		var out []byte
		if err := p.cc.Invoke(context.Background(), args[0], in, &out, grpc.ForceCodec(rawCodec{})); err != nil {
			grpcError(p, err)
		}
		fmt.Printf("reply: %x\n", out)
	case "big":
		cfg := config(args[0])
		cfg["label"] = strings.Repeat("x", atoi(args[1]))
		initPlugin(p, client, cfg)
		fmt.Println("accepted")
	case "echo":
		echo(p)
	default:
		check(fmt.Errorf("unknown operation %s", op))
	}
	p.hangUp()
}

// rawCodec sends and receives messages as the bytes they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// cancelOpen reads records as Plakar does until the Nth or a later one
// holds 2 MiB or more: its Open is cancelled after one chunk, the record
// acked all the same (as kloset does with a record it could not read),
// and the Import read on. The importer must end it with an error.
func cancelOpen(p *plugin, client importer.ImporterClient, n int) {
	stream, err := client.Import(context.Background())
	check(err)
	cancelled := ""
	for i := 1; ; i++ {
		resp, err := stream.Recv()
		if err != nil {
			if cancelled != "" {
				fmt.Printf("cancelled %s\n", cancelled)
			}
			grpcError(p, err)
		}
		if resp.Finished {
			fmt.Println("finished")
			return
		}
		rec := resp.Record
		if rec.HasReader && cancelled == "" && i >= n && rec.FileInfo.Size >= 2<<20 {
			ctx, cancel := context.WithCancel(context.Background())
			st, err := client.Open(ctx, &importer.OpenRequest{Record: &gconn.Record{Pathname: rec.Pathname}})
			check(err)
			_, err = st.Recv()
			check(err)
			cancel()
			cancelled = rec.Pathname
		} else if rec.HasReader {
			if _, err := readContent(client, rec); err != nil {
				grpcError(p, err)
			}
		}
		ack(p, stream, rec.Pathname)
	}
}
