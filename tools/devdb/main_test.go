package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()

	opts, err := parseFlags([]string{"--data-dir", "d", "--listen", "127.0.0.1:0", "--log-level", "debug", "--exit-on-stdin-eof"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if opts.dataDir != "d" || opts.listen != "127.0.0.1:0" || opts.logLevel.String() != "DEBUG" || !opts.exitOnStdinEOF || opts.noSerialize {
		t.Fatalf("parseFlags() = %+v", opts)
	}

	for _, args := range [][]string{
		{},
		{"--data-dir", "d", "--log-level", "loud"},
		{"--data-dir", "d", "extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

func TestSQLiteURL(t *testing.T) {
	t.Parallel()

	if got, want := sqliteURL("/var/lib/dev db"), "file:/var/lib/dev%20db/"; got != want {
		t.Fatalf("sqliteURL() = %q, want %q", got, want)
	}
}

// bsonPing builds {ping: 1, $db: "admin"}.
func bsonPing() []byte {
	body := []byte{0x10}
	body = append(body, "ping\x00"...)
	body = binary.LittleEndian.AppendUint32(body, 1)
	body = append(body, 0x02)
	body = append(body, "$db\x00"...)
	body = binary.LittleEndian.AppendUint32(body, uint32(len("admin")+1))
	body = append(body, "admin\x00"...)
	return finishDoc(body)
}

// TestRunServesFerretDB starts the real embedded FerretDB behind the front and pings it.
func TestRunServesFerretDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FerretDB")
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	stdoutR, stdoutW := io.Pipe()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: "127.0.0.1:0", dataDir: dataDir, logLevel: slog.LevelError}, stdoutW)
		_ = stdoutW.Close()
	}()

	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()

	var ready struct {
		Ready  bool   `json:"ready"`
		Listen string `json:"listen"`
	}
	if err = json.Unmarshal([]byte(line), &ready); err != nil || !ready.Ready || !strings.HasPrefix(ready.Listen, "127.0.0.1:") {
		t.Fatalf("ready line %q (%v)", line, err)
	}

	conn, err := net.Dial("tcp", ready.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	if _, err = conn.Write(opMsgMessage(42, 0, 0, bodySection(bsonPing()))); err != nil {
		t.Fatal(err)
	}
	reply, err := readMessage(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	if responseTo(reply) != 42 || !bytes.Contains(reply, []byte("ok\x00")) {
		t.Fatalf("unexpected reply %x", reply)
	}

	if _, err = os.Stat(filepath.Join(dataDir, "devdb.lock")); err != nil {
		t.Fatalf("data dir not created and locked: %v", err)
	}

	cancel()
	select {
	case err = <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}

func TestLockDataDir(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	unlock, err := lockDataDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}

	if _, err = lockDataDir(dir, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "in use by another devdb process") {
		t.Fatalf("second lock: err = %v", err)
	}

	go func() {
		time.Sleep(100 * time.Millisecond)
		unlock()
	}()
	unlockAgain, err := lockDataDir(dir, 5*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlockAgain()
}
